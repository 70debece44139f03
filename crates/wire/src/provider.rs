//! The provider protocol.
//!
//! 1. Provider dials `GET /v1/provider/connect` (WebSocket).
//! 2. Coordinator sends [`CoordinatorMsg::Challenge`] with a fresh nonce.
//! 3. Provider answers [`ProviderMsg::Hello`]: its key, a signature over
//!    [`auth_message`], its hardware and models.
//! 4. Coordinator answers [`CoordinatorMsg::Welcome`] or closes with a reason.
//! 5. Jobs flow as [`CoordinatorMsg::Job`]; the provider streams
//!    [`ProviderMsg::Token`]s and ends with [`ProviderMsg::Done`] (a
//!    provider-signed receipt) or [`ProviderMsg::Failed`].
//! 6. The provider sends [`ProviderMsg::Heartbeat`] every few seconds.
//! 7. A provider that advertised zk models also gets
//!    [`CoordinatorMsg::ZkJob`]s and answers [`ProviderMsg::ZkDone`] (the
//!    proof bundle and a provider-signed receipt) or [`ProviderMsg::Failed`].

use proofmesh_receipt::canon::Encoder;
use proofmesh_receipt::{Digest, PublicKey, Receipt, SamplingRecord, Signature};
use serde::{Deserialize, Serialize};

/// Bumped on any incompatible protocol change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The bytes a provider signs to prove possession of its key: bound to the
/// coordinator's nonce and the coordinator's own key, so a signature cannot be
/// replayed to another coordinator or another session.
pub fn auth_message(nonce: &str, coordinator: &PublicKey, provider: &PublicKey) -> Vec<u8> {
    let mut e = Encoder::new("proofmesh/provider-auth/v1");
    e.str("nonce", nonce)
        .str("coordinator_key", coordinator.as_str())
        .str("provider_key", provider.as_str());
    e.finish()
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    /// Text content.
    pub content: String,
}

/// A GPU as advertised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// Model name, e.g. "NVIDIA H100 80GB HBM3".
    pub model: String,
    /// Memory in bytes.
    pub vram_bytes: u64,
}

/// Self-declared hardware of a provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// CPU model string.
    pub cpu_model: String,
    /// Logical CPU count.
    pub cpu_cores: u32,
    /// System memory in bytes.
    pub memory_bytes: u64,
    /// GPUs, empty on CPU-only providers.
    #[serde(default)]
    pub gpus: Vec<Gpu>,
}

/// Per-model price in integer micro-units per 1M tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRate {
    /// Currency code.
    pub currency: String,
    /// Per 1M prompt tokens.
    pub input_per_mtok_micros: u64,
    /// Per 1M completion tokens.
    pub output_per_mtok_micros: u64,
}

/// A model a provider has loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAdvert {
    /// SHA-256 of the model file: its identity.
    pub digest: Digest,
    /// Human name, e.g. "SmolLM2-135M-Instruct".
    pub name: String,
    /// Context window in tokens.
    pub context_length: u32,
    /// Price for this model.
    pub price: PriceRate,
    /// Size of the weights file in bytes (0 = not given), for VRAM fit.
    #[serde(default)]
    pub size_bytes: u64,
}

/// Where a provider is and what its box costs (self-declared; the
/// coordinator measures RTT and marks these claims as such).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// Region label, e.g. "eu-west".
    pub region: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Price per hour for the whole box, micro-USD.
    pub price_per_hour_micros: u64,
    /// "pcie", "nvlink" or "infiniband".
    pub interconnect: String,
}

/// A job as dispatched to a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Job id.
    pub job_id: String,
    /// Receipt id to use.
    pub receipt_id: String,
    /// Hashed client id for the receipt.
    pub client: Digest,
    /// Model digest to run.
    pub model: Digest,
    /// Conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling, with the coordinator-chosen seed.
    pub sampling: SamplingRecord,
    /// Dispatch time, unix ms.
    pub dispatched_at_ms: u64,
    /// Rates the provider advertised, to be charged.
    pub price: PriceRate,
    /// Whether to stream tokens.
    pub stream: bool,
    /// The provider's attestation as the coordinator verified it; the
    /// provider copies it into the receipt it signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<proofmesh_receipt::AttestationRef>,
}

impl JobSpec {
    /// The request digest both sides compute for this job
    /// ([`proofmesh_receipt::request_digest`] of its model, conversation and
    /// sampling).
    pub fn request_digest(&self) -> Digest {
        let msgs: Vec<(&str, &str)> = self
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        proofmesh_receipt::request_digest(proofmesh_receipt::RequestForDigest {
            model: &self.model,
            messages: &msgs,
            sampling: &self.sampling,
        })
    }
}

/// A finished job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The provider-signed receipt (no countersignature yet).
    pub receipt: Receipt,
    /// Completion token ids.
    pub completion_token_ids: Vec<u32>,
    /// Completion text.
    pub text: String,
    /// The logit fingerprint (proofmesh-verify encoding, ≤ 8 bytes per token
    /// plus a 12-byte header), lowercase hex. The receipt's `logits_digest` is
    /// `Digest::of` its bytes; the coordinator keeps it for audits.
    pub fingerprint: String,
}

/// Most fingerprint bytes accepted in one result (hex is twice this).
pub const MAX_FINGERPRINT_BYTES: usize = 1 << 20;

/// Decodes a hex fingerprint with a size bound.
pub fn fingerprint_bytes(hex_str: &str) -> Result<Vec<u8>, String> {
    if hex_str.len() > 2 * MAX_FINGERPRINT_BYTES {
        return Err(format!(
            "fingerprint is larger than {MAX_FINGERPRINT_BYTES} bytes"
        ));
    }
    hex::decode(hex_str).map_err(|e| format!("fingerprint is not hex: {e}"))
}

/// A job for a verifier to re-execute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditTask {
    /// Audit id.
    pub audit_id: String,
    /// The countersigned receipt under audit.
    pub receipt: Receipt,
    /// The original conversation (the verifier derives the prompt tokens itself).
    pub messages: Vec<ChatMessage>,
    /// Completion token ids as served.
    pub completion_token_ids: Vec<u32>,
    /// Completion text as served.
    pub text: String,
    /// The committed fingerprint, hex.
    pub fingerprint: String,
}

/// Coordinator → provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinatorMsg {
    /// Prove possession of your key by signing this.
    Challenge {
        /// Fresh random nonce, hex.
        nonce: String,
        /// The coordinator's key.
        coordinator_key: PublicKey,
        /// Protocol version the coordinator speaks.
        protocol_version: u32,
    },
    /// Registration accepted.
    Welcome {
        /// Heartbeat interval the coordinator expects, ms.
        heartbeat_ms: u64,
    },
    /// Run this job.
    Job(JobSpec),
    /// Run and prove this inference (providers that advertised the model).
    ZkJob(crate::zk::ZkJobSpec),
    /// Re-execute a job and report (verifiers only).
    Audit(Box<AuditTask>),
    /// Send fresh attestation evidence bound to this nonce (the scheduled
    /// re-check of a provider's attestation).
    Reattest {
        /// Fresh random nonce, hex.
        nonce: String,
    },
    /// Stop working on a job (client went away).
    Cancel {
        /// The job.
        job_id: String,
    },
}

/// Provider → coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderMsg {
    /// Answer to the challenge.
    Hello {
        /// The provider's key.
        provider_key: PublicKey,
        /// Signature over [`auth_message`].
        signature: Signature,
        /// Protocol version the provider speaks.
        protocol_version: u32,
        /// Agent software version.
        agent_version: String,
        /// Hardware (self-declared).
        hardware: Hardware,
        /// Loaded models.
        models: Vec<ModelAdvert>,
        /// Max concurrent jobs.
        max_concurrent_jobs: u32,
        /// Location and box price, if the operator declared them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<Site>,
        /// Hardware attestation evidence bound to this key and the
        /// challenge nonce (absent: trust level `none`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attestation: Option<Box<EvidenceJson>>,
        /// Zero-knowledge-provable models this provider can prove (issue 9).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        zk_models: Vec<crate::zk::ZkModelAdvert>,
    },
    /// Fresh evidence, answering [`CoordinatorMsg::Reattest`].
    Attestation {
        /// The nonce it answers, hex.
        nonce: String,
        /// Evidence bound to the key and that nonce (None: no TEE).
        bundle: Option<Box<EvidenceJson>>,
    },
    /// Liveness and load.
    Heartbeat {
        /// Jobs running now.
        in_flight: u32,
    },
    /// One generated token.
    Token {
        /// The job.
        job_id: String,
        /// 0-based token index.
        index: u32,
        /// Token id.
        token_id: u32,
        /// Text added by this token (may be empty while a UTF-8 char or stop string is pending).
        text: String,
    },
    /// Job finished.
    Done {
        /// The job.
        job_id: String,
        /// Result and signed receipt.
        result: Box<JobResult>,
    },
    /// A proved inference finished.
    ZkDone {
        /// The job.
        job_id: String,
        /// The proof bundle and the signed receipt.
        result: Box<crate::zk::ZkJobResult>,
    },
    /// A finished audit (verifiers only).
    AuditDone {
        /// The signed report.
        report: Box<proofmesh_receipt::AuditReport>,
    },
    /// Job failed on the provider.
    Failed {
        /// The job.
        job_id: String,
        /// Stable code: "context_length_exceeded" and "invalid_request" are the
        /// client's fault (not retried); anything else is the provider's.
        code: String,
        /// Why.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofmesh_receipt::Identity;

    #[test]
    fn auth_message_binds_all_parts() {
        let c = Identity::from_seed([1; 32]);
        let p = Identity::from_seed([2; 32]);
        let a = auth_message("n1", c.public(), p.public());
        assert_ne!(a, auth_message("n2", c.public(), p.public()));
        assert_ne!(a, auth_message("n1", p.public(), p.public()));
    }

    #[test]
    fn messages_roundtrip_as_tagged_json() {
        let m = ProviderMsg::Heartbeat { in_flight: 3 };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(s, r#"{"type":"heartbeat","in_flight":3}"#);
        assert_eq!(serde_json::from_str::<ProviderMsg>(&s).unwrap(), m);
        assert!(serde_json::from_str::<ProviderMsg>(r#"{"type":"bogus"}"#).is_err());
    }
}

/// A provider's hardware attestation evidence bundle
/// (`proofmesh_attest::EvidenceBundle`) as the JSON document it is on the
/// wire. The protocol carries it without parsing it, so that speaking the
/// protocol (or verifying receipts offline) does not link attestation
/// verification; the provider encodes it and the coordinator decodes it with
/// `proofmesh-attest`, which owns the format and rejects a malformed bundle
/// with a named reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EvidenceJson(pub serde_json::Value);

impl EvidenceJson {
    /// The JSON of `bundle`.
    pub fn encode<T: Serialize>(bundle: &T) -> Result<EvidenceJson, serde_json::Error> {
        serde_json::to_value(bundle).map(EvidenceJson)
    }

    /// The bundle this JSON holds.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.0)
    }
}
