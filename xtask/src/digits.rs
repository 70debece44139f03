//! Fetching the scikit-learn digits dataset (1,797 8x8 images, BSD-3) for
//! the zkML worked model: it ships as `sklearn/datasets/data/digits.csv.gz`
//! inside the `scikit-learn==1.5.2` wheel on PyPI. pip fetches the wheel,
//! python's zipfile and gzip extract the CSV into the model cache, and its
//! SHA-256 is checked against the pin before it is used.

use std::path::PathBuf;

use crate::wheel::{self, Pinned};

/// The dataset: `digits.csv.gz` inside `scikit-learn==1.5.2`, cached
/// decompressed; the hash pins the decompressed CSV.
const DIGITS: Pinned = Pinned {
    wheel: "scikit-learn==1.5.2",
    member: "sklearn/datasets/data/digits.csv.gz",
    file: "digits.csv",
    sha256: "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
    gunzip: true,
};

/// Returns the cached CSV path, fetching and checking it first if needed.
pub fn ensure() -> anyhow::Result<PathBuf> {
    wheel::ensure(&DIGITS, &crate::model::cache_dir())
}
