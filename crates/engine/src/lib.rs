//! proofmesh-engine: an embedded CPU inference engine for llama-family GGUF
//! models. It owns the forward pass so that results are reproducible bit for
//! bit — one-pass prefill equals incremental decoding — which lets a verifier
//! re-score a provider's output; sampling is seeded and fully specified.

mod attention;
mod bpe;
mod chat;
mod engine;
mod error;
mod forward;
mod generate;
mod gguf;
mod heap;
mod kernels;
mod linear;
pub mod microbench;
mod model;
mod ops;
mod prompt;
mod qweight;
mod sampling;
mod stream;
mod team;
#[doc(hidden)]
pub mod testing;
mod tokenizer;
mod topk;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use chat::ChatMessage;
pub use engine::{Engine, EngineOptions};
pub use error::EngineError;
pub use forward::PREFILL_CHUNK;
pub use generate::{FinishReason, GenerateRequest, Generation, Session, TokenEvent};
pub use gguf::ModelInfo;
pub use prompt::PromptCounter;
pub use sampling::{
    argmax, logits_digest, sample_token, sample_uniform, SamplingParams, TopKLogits,
};

/// File name of the default model in the model directory.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of the default model file.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Where the default model is expected: `$PROOFMESH_MODEL` if set, else
/// `$PROOFMESH_MODEL_DIR` (or `$HOME/.cache/proofmesh/models`) joined with
/// [`DEFAULT_MODEL_FILE`].
pub fn default_model_path() -> PathBuf {
    if let Some(p) = proofmesh_ambient::env::var_os("PROOFMESH_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = proofmesh_ambient::env::var_os("PROOFMESH_MODEL_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = proofmesh_ambient::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache").join("proofmesh").join("models")
        });
    dir.join(DEFAULT_MODEL_FILE)
}

/// Lowercase hex SHA-256 of a file's contents (streamed).
pub fn sha256_file(path: &Path) -> Result<String, EngineError> {
    let mut file = std::fs::File::open(path).map_err(error::EngineError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(EngineError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
