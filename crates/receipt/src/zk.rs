//! Receipts for proved inference (issue 9): what a receipt of a
//! zero-knowledge-proved job commits to, defined once so that the provider,
//! the coordinator and offline checkers compute the same digests.
//!
//! A proved-inference receipt is an ordinary [`crate::Receipt`] whose body
//! carries a [`ZkRef`] (the verifying key and the SHA-256 of the Groth16
//! proof). Its other fields are read this way (`docs/RECEIPTS.md`):
//!
//! - `model`: the zk model digest (SHA-256 of the quantized model's
//!   canonical encoding, `proofmesh-zkml`);
//! - `request_digest`: [`zk_request_digest`] of model, input and job nonce;
//! - `response_digest`: [`zk_response_digest`] of the logits and class;
//! - `logits_digest`: [`zk_logits_digest`] of the int8 logits;
//! - `prompt_tokens` = 1 (one inference) and `completion_tokens` = 0, so the
//!   input rate is the price per 1M proved inferences and the charge follows
//!   from [`crate::charge_micros`] exactly as for chat;
//! - `sampling`: [`zk_sampling`], the fixed record of a deterministic job;
//! - `finish_reason`: `stop`.
//!
//! The job nonce, a public input of the proof, is [`zk_job_nonce`] of the job
//! id: a proof made for one job cannot be presented for another.
//!
//! The proof itself travels as a [`bundle::ProofBundle`] (plain JSON data;
//! proving and verifying it is `proofmesh-zkml`'s).

pub mod bundle;

pub use bundle::ProofBundle;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::canon::Encoder;
use crate::digest::Digest;
use crate::receipt::SamplingRecord;

/// What a proved-inference receipt adds to its signed body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkRef {
    /// Hex SHA-256 of the verifying key file the proof checks under (the
    /// registry maps the model digest to it).
    pub vk_digest: String,
    /// SHA-256 of the raw (compressed) proof bytes.
    pub proof_digest: Digest,
}

/// The 32-byte nonce a job's proof must carry as a public input.
pub fn zk_job_nonce(job_id: &str) -> [u8; 32] {
    let mut e = Encoder::new("proofmesh/zk-job-nonce/v1");
    e.str("job_id", job_id);
    Sha256::digest(e.finish()).into()
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x.to_le_bytes()[0]).collect()
}

/// Digest of a proved-inference request: model, int8 input, job nonce.
pub fn zk_request_digest(model: &Digest, input: &[i8], nonce: &[u8; 32]) -> Digest {
    let mut e = Encoder::new("proofmesh/zk-request/v1");
    e.str("model", model.as_str())
        .bytes("input", &i8_bytes(input))
        .bytes("nonce", nonce);
    Digest::of(&e.finish())
}

/// Digest of a proved-inference answer: the int8 logits and their argmax.
pub fn zk_response_digest(logits: &[i8], class: u32) -> Digest {
    let mut e = Encoder::new("proofmesh/zk-response/v1");
    e.bytes("logits", &i8_bytes(logits))
        .u64("class", u64::from(class));
    Digest::of(&e.finish())
}

/// The receipt's `logits_digest` for a proved inference: SHA-256 of the
/// int8 logits as bytes (two's complement).
pub fn zk_logits_digest(logits: &[i8]) -> Digest {
    Digest::of(&i8_bytes(logits))
}

/// The sampling record every proved-inference receipt carries: the job is
/// deterministic, so nothing is sampled.
pub fn zk_sampling() -> SamplingRecord {
    SamplingRecord {
        temperature_milli: 0,
        top_p_milli: 1000,
        seed: 0,
        max_tokens: 0,
        stop: Vec::new(),
        top_k_logits: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_per_job() {
        assert_ne!(zk_job_nonce("job_a"), zk_job_nonce("job_b"));
        assert_eq!(zk_job_nonce("job_a"), zk_job_nonce("job_a"));
    }

    #[test]
    fn digests_cover_every_part() {
        let m = Digest::of(b"m");
        let n = [1u8; 32];
        let base = zk_request_digest(&m, &[1, -2], &n);
        assert_ne!(base, zk_request_digest(&Digest::of(b"x"), &[1, -2], &n));
        assert_ne!(base, zk_request_digest(&m, &[1, -3], &n));
        assert_ne!(base, zk_request_digest(&m, &[1, -2], &[2; 32]));
        let r = zk_response_digest(&[5, -1], 0);
        assert_ne!(r, zk_response_digest(&[5, -1], 1));
        assert_ne!(r, zk_response_digest(&[5, -2], 0));
        assert_eq!(zk_logits_digest(&[-1]), Digest::of(&[0xff]));
    }
}
