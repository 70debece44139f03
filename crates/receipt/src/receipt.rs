//! The signed receipt: its JSON shape, its canonical encoding and its checks.
//!
//! JSON form (`docs/RECEIPTS.md` has the full description):
//! `{"body": {...}, "provider_signature": "<hex>", "coordinator_signature": "<hex>"}`.
//! Unknown fields are rejected, so a receipt cannot smuggle unsigned data.
//! The provider signs `canonical(body)`; the coordinator signs
//! `countersign(canonical(body), provider_signature)`.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditOutcome, AuditReport};
use crate::canon::Encoder;
use crate::digest::Digest;
use crate::identity::{Identity, IdentityError, PublicKey, Signature};

/// The receipt format version this code writes and accepts.
pub const RECEIPT_VERSION: u32 = 1;

const BODY_DOMAIN: &str = "proofmesh/receipt/v1";
const COUNTERSIGN_DOMAIN: &str = "proofmesh/receipt-countersign/v1";

/// Why a receipt failed to verify. Each variant names the failing check.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReceiptError {
    /// The JSON does not parse as a receipt.
    #[error("receipt is not valid receipt JSON: {reason}")]
    Malformed {
        /// The parser's message.
        reason: String,
    },
    /// The version field names a format this code does not know.
    #[error("receipt version {found} is not supported (expected {RECEIPT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The provider signature does not cover this body.
    #[error("provider signature does not verify under {key}: the receipt body was altered or not signed by this provider")]
    ProviderSignature {
        /// The provider key named in the body.
        key: String,
    },
    /// The coordinator countersignature is missing.
    #[error("receipt has no coordinator countersignature")]
    MissingCountersignature,
    /// The coordinator countersignature does not verify.
    #[error("coordinator countersignature does not verify under {key}")]
    CoordinatorSignature {
        /// The coordinator key named in the body.
        key: String,
    },
    /// A key named in the receipt is not the one the verifier trusts.
    #[error("{role} key {found} is not the trusted key {expected}")]
    UntrustedKey {
        /// "provider" or "coordinator".
        role: &'static str,
        /// Key in the receipt.
        found: String,
        /// Key the verifier pinned.
        expected: String,
    },
    /// The charged amount does not follow from the token counts and rates.
    #[error("price charged {charged} micro-units, but {prompt} prompt and {completion} completion tokens at the stated rates cost {expected}")]
    PriceMismatch {
        /// Charged amount.
        charged: u64,
        /// Amount implied by the rates.
        expected: u64,
        /// Prompt tokens.
        prompt: u32,
        /// Completion tokens.
        completion: u32,
    },
    /// Timestamps are out of order.
    #[error("finished_at_ms {finished} is before dispatched_at_ms {dispatched}")]
    TimeOrder {
        /// Dispatch time.
        dispatched: u64,
        /// Finish time.
        finished: u64,
    },
    /// An attached audit report does not check out.
    #[error("{reason}")]
    Audit {
        /// What is wrong with it.
        reason: String,
    },
    /// More completion tokens than max_tokens allowed.
    #[error("completion_tokens {completion} exceeds max_tokens {max}")]
    TooManyTokens {
        /// Completion tokens.
        completion: u32,
        /// The limit.
        max: u32,
    },
}

/// Sampling parameters as recorded. Temperature and top-p are fixed-point
/// thousandths so that the recorded value is exactly the value the sampler
/// used (floats have no canonical decimal spelling).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingRecord {
    /// Temperature × 1000; 0 means greedy.
    pub temperature_milli: u32,
    /// Nucleus mass × 1000, in 1..=1000.
    pub top_p_milli: u32,
    /// Seed fixed by the coordinator at dispatch; the only source of randomness.
    pub seed: u64,
    /// Completion token limit.
    pub max_tokens: u32,
    /// Stop strings.
    pub stop: Vec<String>,
    /// How many top logits per position the provider committed to.
    pub top_k_logits: u32,
}

impl SamplingRecord {
    /// Temperature as the sampler uses it.
    pub fn temperature(&self) -> f32 {
        self.temperature_milli as f32 / 1000.0
    }

    /// Top-p as the sampler uses it.
    pub fn top_p(&self) -> f32 {
        self.top_p_milli as f32 / 1000.0
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u64("temperature_milli", self.temperature_milli.into())
            .u64("top_p_milli", self.top_p_milli.into())
            .u64("seed", self.seed)
            .u64("max_tokens", self.max_tokens.into())
            .strs("stop", &self.stop)
            .u64("top_k_logits", self.top_k_logits.into());
    }
}

/// Price rates and the exact charge, in integer micro-units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Currency code, e.g. "USD".
    pub currency: String,
    /// Rate per 1M prompt tokens.
    pub input_per_mtok_micros: u64,
    /// Rate per 1M completion tokens.
    pub output_per_mtok_micros: u64,
    /// The charge, `charge_micros(..)` of the token counts.
    pub charged_micros: u64,
}

/// The charge for a job: rates per 1M tokens applied to the counts, rounded up
/// to the next micro-unit (the provider never works for a fraction for free,
/// and the rounding is the same everywhere).
pub fn charge_micros(prompt: u32, completion: u32, input_rate: u64, output_rate: u64) -> u64 {
    let micros = token_cost(prompt, completion, input_rate, output_rate).div_ceil(1_000_000);
    u64::try_from(micros).unwrap_or(u64::MAX)
}

/// The exact cost of a job's tokens in micro-units × 10⁶ (rates are per
/// million tokens): the one charge formula. [`charge_micros`] and the
/// ledger's `ModelPrice::charge` both round it up from here.
pub fn token_cost(prompt: u32, completion: u32, input_rate: u64, output_rate: u64) -> u128 {
    // ≤ 2·(2³²·2⁶⁴) < 2⁹⁸: no overflow in u128.
    u128::from(prompt) * u128::from(input_rate) + u128::from(completion) * u128::from(output_rate)
}

/// The hardware attestation the coordinator had verified for the provider
/// when it dispatched the job (issue 5): a receipt signed with an attested
/// key carries the hardware maker's guarantee that the key lives in a
/// genuine TEE. Absent for providers at trust level `none`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRef {
    /// `tee` or `tee+gpu` (see `proofmesh_attest::TrustLevel`).
    pub level: String,
    /// SHA-256 (hex) of the evidence bundle the coordinator verified.
    pub evidence_digest: String,
}

/// Everything a receipt asserts; the signed part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// Format version, [`RECEIPT_VERSION`].
    pub version: u32,
    /// Receipt id, assigned by the coordinator at dispatch.
    pub receipt_id: String,
    /// Job id, assigned by the coordinator at dispatch.
    pub job_id: String,
    /// Hashed client id ([`crate::client_hash`]).
    pub client: Digest,
    /// The provider that ran the job.
    pub provider_key: PublicKey,
    /// The coordinator that dispatched it.
    pub coordinator_key: PublicKey,
    /// SHA-256 of the model file.
    pub model: Digest,
    /// [`crate::request_digest`] of the dispatched request.
    pub request_digest: Digest,
    /// [`crate::response_digest`] of the answer.
    pub response_digest: Digest,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Completion length in tokens.
    pub completion_tokens: u32,
    /// "stop", "length" or "cancelled".
    pub finish_reason: String,
    /// How tokens were sampled.
    pub sampling: SamplingRecord,
    /// Digest of the per-token top-k logits (the fingerprint).
    pub logits_digest: Digest,
    /// Unix time in ms when the coordinator dispatched the job.
    pub dispatched_at_ms: u64,
    /// Unix time in ms when the provider finished.
    pub finished_at_ms: u64,
    /// Rates and charge.
    pub price: Price,
    /// The provider's verified hardware attestation at dispatch, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationRef>,
    /// For a proved inference: the verifying key and the proof's digest
    /// (see [`crate::zk`]); absent on chat receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk: Option<crate::zk::ZkRef>,
}

impl ReceiptBody {
    /// The canonical encoding the provider signs.
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(BODY_DOMAIN);
        e.u64("version", self.version.into())
            .str("receipt_id", &self.receipt_id)
            .str("job_id", &self.job_id)
            .str("client", self.client.as_str())
            .str("provider_key", self.provider_key.as_str())
            .str("coordinator_key", self.coordinator_key.as_str())
            .str("model", self.model.as_str())
            .str("request_digest", self.request_digest.as_str())
            .str("response_digest", self.response_digest.as_str())
            .u64("prompt_tokens", self.prompt_tokens.into())
            .u64("completion_tokens", self.completion_tokens.into())
            .str("finish_reason", &self.finish_reason);
        self.sampling.encode(&mut e);
        e.str("logits_digest", self.logits_digest.as_str())
            .u64("dispatched_at_ms", self.dispatched_at_ms)
            .u64("finished_at_ms", self.finished_at_ms)
            .str("currency", &self.price.currency)
            .u64("input_per_mtok_micros", self.price.input_per_mtok_micros)
            .u64("output_per_mtok_micros", self.price.output_per_mtok_micros)
            .u64("charged_micros", self.price.charged_micros);
        // Appended only when present, so receipts without it keep their
        // encoding (and signatures); fields are length-prefixed and named,
        // so presence cannot be confused with absence.
        if let Some(a) = &self.attestation {
            e.str("attestation_level", &a.level)
                .str("attestation_evidence_digest", &a.evidence_digest);
        }
        // Likewise appended only when present (after the attestation, in
        // this fixed order).
        if let Some(z) = &self.zk {
            e.str("zk_vk_digest", &z.vk_digest)
                .str("zk_proof_digest", z.proof_digest.as_str());
        }
        e.finish()
    }

    /// Checks that do not involve signatures: version, price arithmetic, times, limits.
    pub fn check_consistency(&self) -> Result<(), ReceiptError> {
        if self.version != RECEIPT_VERSION {
            return Err(ReceiptError::UnsupportedVersion {
                found: self.version,
            });
        }
        let p = &self.price;
        let expected = charge_micros(
            self.prompt_tokens,
            self.completion_tokens,
            p.input_per_mtok_micros,
            p.output_per_mtok_micros,
        );
        if expected != p.charged_micros {
            return Err(ReceiptError::PriceMismatch {
                charged: p.charged_micros,
                expected,
                prompt: self.prompt_tokens,
                completion: self.completion_tokens,
            });
        }
        if self.finished_at_ms < self.dispatched_at_ms {
            return Err(ReceiptError::TimeOrder {
                dispatched: self.dispatched_at_ms,
                finished: self.finished_at_ms,
            });
        }
        if self.completion_tokens > self.sampling.max_tokens {
            return Err(ReceiptError::TooManyTokens {
                completion: self.completion_tokens,
                max: self.sampling.max_tokens,
            });
        }
        Ok(())
    }
}

/// A receipt: the body and its two signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The signed content.
    pub body: ReceiptBody,
    /// Provider's signature over `body.canonical()`.
    pub provider_signature: Signature,
    /// Coordinator's countersignature; absent until the coordinator accepts the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator_signature: Option<Signature>,
    /// Verifier-signed audit reports, if the job was audited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audits: Vec<AuditReport>,
    /// Where the transparency log holds this receipt, with an inclusion proof
    /// against a signed checkpoint. Outside the signatures (it is assigned
    /// after countersigning); checked against the log's key, not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogInclusion>,
}

/// A receipt's place in the transparency log: leaf index, the checkpoint
/// (a C2SP tlog-checkpoint signed note) and the RFC 6962 §2.1.1 audit path
/// from the leaf to that checkpoint's root. Checked by `proofmesh-tlog`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogInclusion {
    /// The log's origin line (also its checkpoint key name).
    pub origin: String,
    /// Leaf index of the receipt entry.
    pub index: u64,
    /// Tree size of `checkpoint`.
    pub tree_size: u64,
    /// The audit path, base64 SHA-256 hashes, leaf side first.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Which guarantees a receipt carries, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Signed by provider and coordinator; not re-executed.
    SignedOnly,
    /// An independent verifier re-executed it and it passed.
    Audited,
    /// An independent verifier re-executed it and it FAILED.
    AuditFailed,
}

impl Guarantee {
    /// Human label.
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::SignedOnly => "signed only (not audited)",
            Guarantee::Audited => "audited: re-executed by an independent verifier and passed",
            Guarantee::AuditFailed => "audit FAILED: a verifier's re-execution did not match",
        }
    }
}

/// The outcome of a successful verification: who vouched for the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// Provider key that signed.
    pub provider: PublicKey,
    /// Coordinator key that countersigned.
    pub coordinator: PublicKey,
}

impl Receipt {
    /// Provider side: signs a body. The coordinator countersigns later.
    pub fn sign_as_provider(body: ReceiptBody, provider: &Identity) -> Receipt {
        let provider_signature = provider.sign(&body.canonical());
        Receipt {
            body,
            provider_signature,
            coordinator_signature: None,
            audits: Vec::new(),
            log: None,
        }
    }

    fn countersign_message(&self) -> Vec<u8> {
        let mut e = Encoder::new(COUNTERSIGN_DOMAIN);
        e.bytes("body", &self.body.canonical())
            .bytes("provider_signature", &self.provider_signature.0);
        e.finish()
    }

    /// Coordinator side: countersigns a provider-signed receipt.
    pub fn countersign(&mut self, coordinator: &Identity) {
        self.coordinator_signature = Some(coordinator.sign(&self.countersign_message()));
    }

    /// Parses receipt JSON strictly.
    pub fn from_json(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        serde_json::from_slice(bytes).map_err(|e| ReceiptError::Malformed {
            reason: e.to_string(),
        })
    }

    /// Pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the provider's signature only.
    pub fn verify_provider_signature(&self) -> Result<(), ReceiptError> {
        let key = &self.body.provider_key;
        key.verify(&self.body.canonical(), &self.provider_signature)
            .map_err(|_: IdentityError| ReceiptError::ProviderSignature {
                key: key.to_string(),
            })
    }

    /// Checks the coordinator's countersignature only.
    pub fn verify_coordinator_signature(&self) -> Result<(), ReceiptError> {
        let key = &self.body.coordinator_key;
        let sig = self
            .coordinator_signature
            .as_ref()
            .ok_or(ReceiptError::MissingCountersignature)?;
        key.verify(&self.countersign_message(), sig).map_err(|_| {
            ReceiptError::CoordinatorSignature {
                key: key.to_string(),
            }
        })
    }

    /// Runs every check and reports each, so a tool can say exactly what failed.
    pub fn checks(&self) -> Vec<(&'static str, Result<(), ReceiptError>)> {
        let mut v = vec![
            (
                "consistency (version, price, times, limits)",
                self.body.check_consistency(),
            ),
            ("provider signature", self.verify_provider_signature()),
            (
                "coordinator countersignature",
                self.verify_coordinator_signature(),
            ),
        ];
        for a in &self.audits {
            let r = a.verify_for(&self.body).map_err(|e| ReceiptError::Audit {
                reason: e.to_string(),
            });
            v.push(("audit report signature", r));
        }
        v
    }

    /// The guarantee the (valid) audits give. A failed audit dominates.
    pub fn guarantee(&self) -> Guarantee {
        let mut g = Guarantee::SignedOnly;
        for a in self
            .audits
            .iter()
            .filter(|a| a.verify_for(&self.body).is_ok())
        {
            match a.body.outcome {
                AuditOutcome::Failed => return Guarantee::AuditFailed,
                AuditOutcome::Passed => g = Guarantee::Audited,
            }
        }
        g
    }

    /// Full offline verification, optionally pinning the coordinator key.
    pub fn verify(
        &self,
        trusted_coordinator: Option<&PublicKey>,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        for (_, r) in self.checks() {
            r?;
        }
        if let Some(t) = trusted_coordinator {
            if t != &self.body.coordinator_key {
                return Err(ReceiptError::UntrustedKey {
                    role: "coordinator",
                    found: self.body.coordinator_key.to_string(),
                    expected: t.to_string(),
                });
            }
        }
        Ok(VerifiedReceipt {
            provider: self.body.provider_key.clone(),
            coordinator: self.body.coordinator_key.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
