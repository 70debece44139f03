//! The verification crate's error type. Errors are reserved for problems on
//! the *verifier's* side (its engine failed, the job it was handed is
//! malformed, a fingerprint cannot be built); a provider's bad evidence is
//! never an error but a [`crate::Failure`] inside a failed [`crate::Verdict`].

/// Everything that can stop a verification or fingerprint computation.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The encoded fingerprint is shorter than its header or its count says.
    #[error("fingerprint truncated: need {needed} bytes, have {actual}")]
    Truncated { needed: usize, actual: usize },
    /// The encoded fingerprint does not start with `PMFP`.
    #[error("fingerprint has bad magic {found:02x?} (expected \"PMFP\")")]
    BadMagic { found: [u8; 4] },
    /// Unknown encoding version.
    #[error("fingerprint version {version} is not supported (expected {expected})")]
    BadVersion { version: u8, expected: u8 },
    /// Unknown fingerprint mode byte.
    #[error("fingerprint mode {mode} is unknown (0 = exact, 1 = tolerant)")]
    BadMode { mode: u8 },
    /// `k` is out of range for the mode.
    #[error("fingerprint k = {k} is invalid for mode {mode}: {reason}")]
    BadK {
        mode: &'static str,
        k: u8,
        reason: &'static str,
    },
    /// The reserved header byte is not zero.
    #[error("fingerprint reserved byte is {value}, must be 0")]
    BadReserved { value: u8 },
    /// More positions than the hard bound allows.
    #[error("fingerprint declares {count} positions, more than the maximum {max}")]
    TooManyPositions { count: u64, max: u32 },
    /// Bytes follow the last declared entry.
    #[error("fingerprint has {extra} trailing bytes after {count} entries")]
    TrailingBytes { count: u32, extra: usize },
    /// A token id does not fit the tolerant encoding's 24 bits.
    #[error("token id {id} does not fit in 24 bits (tolerant fingerprints need vocab < 2^24)")]
    IdTooLarge { id: u32 },
    /// A logits vector was empty.
    #[error("position {position} has an empty logits vector")]
    EmptyLogits { position: usize },
    /// The job's own parameters are unusable (the verifier's input, not the
    /// provider's evidence).
    #[error("invalid job: {field}: {reason}")]
    InvalidJob { field: &'static str, reason: String },
    /// The verifier's engine failed.
    #[error("engine error during {during}: {source}")]
    Engine {
        during: &'static str,
        #[source]
        source: proofmesh_engine::EngineError,
    },
    /// Building a test/bench model file failed.
    #[error("model file {path}: {reason}")]
    ModelFile { path: String, reason: String },
}

impl VerifyError {
    /// Wrap an engine error with what the verifier was doing.
    pub(crate) fn engine(
        during: &'static str,
    ) -> impl FnOnce(proofmesh_engine::EngineError) -> VerifyError {
        move |source| VerifyError::Engine { during, source }
    }
}
