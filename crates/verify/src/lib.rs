//! proofmesh-verify: the pure verification core. An independent verifier
//! re-runs a provider's job in ONE prefill pass on its own engine and checks
//! every sampled token, the provider's 8-byte-per-token logit fingerprint, the
//! finish reason and the text — catching other models, requantized weights,
//! altered prompts, fabricated or truncated outputs and cheated sampling.
//! No I/O beyond what the engine does; no network types.

pub mod attacks;
mod check;
mod error;
mod f16;
pub mod fingerprint;
mod finish;

#[doc(hidden)]
pub mod testing;

pub use check::{
    prompt_tokens_for, sampled_within_tolerance, verify_job, verify_job_with, Failure, FailureKind,
    JobUnderAudit, Sampling, Verdict, VerifyOptions,
};
pub use error::VerifyError;
pub use fingerprint::{
    exact_fingerprint_from_top_k, fingerprint_digest, fingerprint_from_logits, Fingerprint,
    FingerprintMode, DEFAULT_EXACT_K, DEFAULT_LOGPROB_TOLERANCE,
};
