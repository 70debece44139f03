//! Proved inference (issue 9) on the wire: what a proving provider
//! advertises, the job it is sent, what it answers, and the gateway's
//! `POST /v1/zk/infer` request and response.
//!
//! The proof travels as [`ProofBundle`], plain data defined with the
//! receipt's zk digests (`proofmesh_receipt::zk::bundle`) and re-exported by
//! `proofmesh-zkml`, which proves and verifies it; this crate links no
//! proving system.
//!
//! Pricing: a zk model's [`PriceRate`] uses `input_per_mtok_micros` as the
//! price per 1M proved inferences (a receipt counts one inference as one
//! prompt token; see `proofmesh_receipt::zk`); `output_per_mtok_micros` must
//! be 0.

use proofmesh_receipt::zk::{
    zk_job_nonce, zk_logits_digest, zk_request_digest, zk_response_digest, ProofBundle,
};
use proofmesh_receipt::{AttestationRef, Digest, Receipt, ReceiptBody};
use serde::{Deserialize, Serialize};

use crate::provider::PriceRate;

/// A model a provider can run and prove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkModelAdvert {
    /// Registry name, e.g. `digits-mlp`.
    pub name: String,
    /// `sha256:` of the quantized model's canonical encoding.
    pub model_digest: Digest,
    /// Hex SHA-256 of the verifying key the provider's proving key matches.
    pub vk_digest: String,
    /// Input width (int8 values).
    pub input_len: u32,
    /// Output width (int8 logits).
    pub output_len: u32,
    /// Price per 1M proved inferences in `input_per_mtok_micros`.
    pub price: PriceRate,
}

/// A proved-inference job as dispatched to a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkJobSpec {
    /// Job id (its nonce is `zk_job_nonce(job_id)`).
    pub job_id: String,
    /// Receipt id to use.
    pub receipt_id: String,
    /// Hashed client id for the receipt.
    pub client: Digest,
    /// zk model digest.
    pub model: Digest,
    /// The int8 input.
    pub input: Vec<i8>,
    /// Dispatch time, unix ms.
    pub dispatched_at_ms: u64,
    /// The provider's advertised rates for this model, to be charged.
    pub price: PriceRate,
    /// The provider's attestation as the coordinator verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationRef>,
}

impl ZkJobSpec {
    /// The nonce the proof must carry.
    pub fn nonce(&self) -> [u8; 32] {
        zk_job_nonce(&self.job_id)
    }

    /// The request digest both sides compute.
    pub fn request_digest(&self) -> Digest {
        zk_request_digest(&self.model, &self.input, &self.nonce())
    }
}

/// A finished proved inference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkJobResult {
    /// The provider-signed receipt (its `zk` names the proof's digest).
    pub receipt: Receipt,
    /// The proof bundle.
    pub bundle: ProofBundle,
}

/// `POST /v1/zk/infer` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkInferRequest {
    /// Registry name or model digest.
    pub model: String,
    /// The int8 input, as many values as the model's input width.
    pub input: Vec<i64>,
    /// The least attestation level a provider needs (`tee`, `tee+gpu`).
    #[serde(default)]
    pub min_attestation: Option<String>,
}

/// `POST /v1/zk/infer` answer: the output, the proof and the receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkInferResponse {
    /// `zkinf-<uuid>`.
    pub id: String,
    /// `zk.inference`.
    pub object: String,
    /// Registry name of the model.
    pub model: String,
    /// The model digest.
    pub model_digest: String,
    /// The proved class (argmax of the logits).
    pub class: u32,
    /// The proved int8 logits.
    pub logits: Vec<i8>,
    /// The proof bundle (`proofmesh zk verify` checks it offline).
    pub proof: ProofBundle,
    /// The countersigned receipt, with its log inclusion.
    pub receipt: Receipt,
}

/// Checks that `bundle` is the proof a signed proved-inference receipt
/// names: same model, the job's nonce, the request digest over the bundle's
/// input, the proof's digest, and the response and logits digests over its
/// output. Signatures and the pairing check are separate
/// (`Receipt::verify`, `proofmesh_zkml::verify_bundle`). The first mismatch
/// is named.
pub fn bundle_matches_receipt(body: &ReceiptBody, bundle: &ProofBundle) -> Result<(), String> {
    let zk = body
        .zk
        .as_ref()
        .ok_or("the receipt has no zk reference (not a proved inference)")?;
    let same = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} does not match the signed receipt"))
        }
    };
    same(
        "model (bundle)",
        body.model.as_str() == format!("sha256:{}", bundle.model_digest),
    )?;
    same("verifying key (bundle)", bundle.vk_digest == zk.vk_digest)?;
    let nonce = zk_job_nonce(&body.job_id);
    same("nonce (bundle)", bundle.nonce == hex::encode(nonce))?;
    same(
        "request_digest (model, bundle input, nonce)",
        body.request_digest == zk_request_digest(&body.model, &bundle.input, &nonce),
    )?;
    let proof_digest = bundle.proof_digest().map_err(|e| e.to_string())?;
    same(
        "proof digest",
        zk.proof_digest.as_str() == format!("sha256:{}", hex::encode(proof_digest)),
    )?;
    same(
        "response_digest (bundle logits and class)",
        body.response_digest == zk_response_digest(&bundle.logits, bundle.class),
    )?;
    same(
        "logits_digest (bundle logits)",
        body.logits_digest == zk_logits_digest(&bundle.logits),
    )
}
