//! The engine's single error type. Every failure the engine can report — bad
//! files, bad metadata, bad requests — is a structured variant here so callers
//! can match on it instead of parsing strings, and so no bad input panics.

use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading a file failed at the OS level.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed GGUF container (bad magic, bad header,
    /// bad metadata encoding, ...).
    #[error("malformed GGUF file {path}: {reason}")]
    MalformedGguf { path: PathBuf, reason: String },
    /// A tensor's data runs past the end of the file.
    #[error("truncated GGUF file {path}: tensor {tensor} needs bytes {start}..{end} but the file has {file_size} bytes")]
    Truncated {
        path: PathBuf,
        tensor: String,
        start: u64,
        end: u64,
        file_size: u64,
    },
    /// `general.architecture` names a model family the engine cannot run.
    #[error("unsupported model architecture {arch:?} (only \"llama\" is supported)")]
    UnsupportedArchitecture { arch: String },
    /// A required metadata key is absent.
    #[error("missing GGUF metadata key {key}")]
    MissingMetadata { key: String },
    /// A metadata key is present but its value is unusable.
    #[error("invalid GGUF metadata {key}: {reason}")]
    InvalidMetadata { key: String, reason: String },
    /// A required tensor is absent.
    #[error("missing tensor {name}")]
    MissingTensor { name: String },
    /// A tensor has the wrong shape for the declared hyper-parameters.
    #[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// A tensor's storage type cannot be used where it appears.
    #[error("tensor {name} has unsupported type {dtype}")]
    UnsupportedTensorType { name: String, dtype: String },
    /// The tokenizer could not be built or failed to run.
    #[error("tokenizer error: {reason}")]
    Tokenizer { reason: String },
    /// A token id outside the vocabulary was supplied.
    #[error("unknown token id {id} (vocabulary has {vocab_size} tokens)")]
    UnknownToken { id: u32, vocab_size: usize },
    /// An operation that needs at least one token got none.
    #[error("empty token sequence")]
    EmptyPrompt,
    /// Logits were asked from a position the sequence does not have.
    #[error("logits asked from position {from} of a {tokens}-token sequence")]
    LogitsFrom { from: usize, tokens: usize },
    /// The request does not fit in the model's context window.
    #[error("{tokens} tokens exceed the context length of {context_length}")]
    ContextOverflow {
        tokens: usize,
        context_length: usize,
    },
    /// Sampling parameters are out of range.
    #[error("invalid sampling parameter {param}: {reason}")]
    InvalidSampling { param: &'static str, reason: String },
    /// A chat message cannot be rendered safely.
    #[error("invalid chat message #{index}: {reason}")]
    InvalidChatMessage { index: usize, reason: String },
    /// The model has no chat template the engine understands.
    #[error("model has no supported chat template: {reason}")]
    ChatTemplate { reason: String },
    /// The worker thread pool could not be created.
    #[error("cannot build thread pool with {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
    /// A candle tensor operation failed unexpectedly.
    #[error("tensor operation {op} failed: {source}")]
    Candle {
        op: &'static str,
        #[source]
        source: candle_core::Error,
    },
}

impl EngineError {
    /// Wrap a candle error with the name of the operation that produced it.
    pub(crate) fn candle(op: &'static str) -> impl FnOnce(candle_core::Error) -> EngineError {
        move |source| EngineError::Candle { op, source }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        move |source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
