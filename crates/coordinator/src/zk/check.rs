//! Pure checks of a proving provider's answer against the job it was sent.
//!
//! Two kinds of rejection, because they have different consequences:
//!
//! - [`ZkRejection::Result`]: the answer is not a claim about this job by
//!   this provider (wrong ids, rates or digests of the request, a bad
//!   signature). It is refused and the job retried elsewhere, as a chat
//!   result that fails its checks is.
//! - [`ZkRejection::Proof`]: the provider *signed* a receipt for this job,
//!   but the proof does not back it (the pairing check fails, or the bundle
//!   is for another input, nonce, key or output than the signed receipt
//!   says). That is a false claim under the provider's key, and it is
//!   treated like a failed audit. The signed receipt and the bundle are the
//!   evidence anyone can re-check.

use proofmesh_receipt::zk::{zk_logits_digest, zk_response_digest, zk_sampling};
use proofmesh_receipt::PublicKey;
use proofmesh_wire::{ZkJobResult, ZkJobSpec};

use super::ZkModel;

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkRejection {
    /// Not an attributable claim about this job: refuse and retry.
    #[error("result rejected: {0}")]
    Result(String),
    /// A signed claim whose proof fails: a failed audit.
    #[error("proof failed: {0}")]
    Proof(String),
}

fn result_err(what: &str) -> ZkRejection {
    ZkRejection::Result(format!("{what} does not match the job"))
}

/// Checks `result` from `provider` for `spec` of `model`.
pub fn check(
    model: &ZkModel,
    spec: &ZkJobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    result: &ZkJobResult,
) -> Result<(), ZkRejection> {
    check_receipt(spec, provider, coordinator, result)?;
    check_proof(model, spec, result).map_err(ZkRejection::Proof)
}

/// The receipt is this provider's signed claim about this job.
fn check_receipt(
    spec: &ZkJobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    result: &ZkJobResult,
) -> Result<(), ZkRejection> {
    let b = &result.receipt.body;
    let same = |what: &str, ok: bool| if ok { Ok(()) } else { Err(result_err(what)) };
    same("receipt_id", b.receipt_id == spec.receipt_id)?;
    same("job_id", b.job_id == spec.job_id)?;
    same("client", b.client == spec.client)?;
    same("model", b.model == spec.model)?;
    same("provider_key", &b.provider_key == provider)?;
    same("coordinator_key", &b.coordinator_key == coordinator)?;
    same("request_digest", b.request_digest == spec.request_digest())?;
    same(
        "dispatched_at_ms",
        b.dispatched_at_ms == spec.dispatched_at_ms,
    )?;
    same("attestation", b.attestation == spec.attestation)?;
    same("currency", b.price.currency == spec.price.currency)?;
    same(
        "input rate",
        b.price.input_per_mtok_micros == spec.price.input_per_mtok_micros,
    )?;
    same(
        "output rate",
        b.price.output_per_mtok_micros == spec.price.output_per_mtok_micros,
    )?;
    same(
        "sampling (the fixed zk record)",
        b.sampling == zk_sampling(),
    )?;
    same(
        "token counts (1 inference, 0 completion tokens)",
        b.prompt_tokens == 1 && b.completion_tokens == 0,
    )?;
    same("finish_reason (must be stop)", b.finish_reason == "stop")?;
    same("zk reference (missing)", b.zk.is_some())?;
    b.check_consistency()
        .map_err(|e| ZkRejection::Result(e.to_string()))?;
    result
        .receipt
        .verify_provider_signature()
        .map_err(|e| ZkRejection::Result(e.to_string()))
}

/// The bundle backs the signed receipt and its proof verifies.
fn check_proof(model: &ZkModel, spec: &ZkJobSpec, result: &ZkJobResult) -> Result<(), String> {
    let b = &result.receipt.body;
    let bundle = &result.bundle;
    let zk = b.zk.as_ref().ok_or("receipt has no zk reference")?;
    let same = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} does not match the signed receipt"))
        }
    };
    same(
        "verifying key (receipt vs registry)",
        zk.vk_digest == model.entry.vk_digest,
    )?;
    same(
        "verifying key (bundle)",
        bundle.vk_digest == model.entry.vk_digest,
    )?;
    same(
        "model (bundle)",
        bundle.model_digest == model.entry.model_digest,
    )?;
    same("input (bundle)", bundle.input == spec.input)?;
    same("nonce (bundle)", bundle.nonce == hex::encode(spec.nonce()))?;
    let proof_digest = bundle.proof_digest().map_err(|e| e.to_string())?;
    same(
        "proof digest",
        zk.proof_digest.as_str() == format!("sha256:{}", hex::encode(proof_digest)),
    )?;
    same(
        "response_digest (bundle logits and class)",
        b.response_digest == zk_response_digest(&bundle.logits, bundle.class),
    )?;
    same(
        "logits_digest (bundle logits)",
        b.logits_digest == zk_logits_digest(&bundle.logits),
    )?;
    proofmesh_zkml::verify_bundle(&model.vk, bundle).map_err(|e| e.to_string())
}
