//! Signed metrics statements — the covenant oracle — and their hash chain.
//!
//! Why: lenders need revenue, uptime and audit figures the operator cannot
//! fake. Per provider per epoch the coordinator signs a [`StatementBody`]
//! whose figures are computed only from logged evidence (receipts, audit
//! reports, heartbeats; see [`compute`]), so anyone holding the log can
//! recompute them ([`recheck`]) and catch an inflated statement. Each body
//! names the hash of the provider's previous statement, so a statement
//! cannot be dropped or rewritten without breaking the chain
//! ([`verify_chain`]).
//!
//! Canonical encoding (domain `proofmesh/metrics-statement/v1`, via
//! `proofmesh_receipt::canon::Encoder`), fields in this order: version,
//! provider, coordinator, epoch_start_s, epoch_end_s, currency,
//! protocol_fee_bps, heartbeat_grace_ms, verifiers (string list), revenue_micros,
//! net_revenue_micros, refunded_micros, jobs_served, audits_passed,
//! audits_failed, heartbeats, uptime_ms, uptime_bps, busy_ms,
//! utilization_bps, prev_statement_hash. The statement hash is
//! `Digest::of(canonical)`; the first statement's previous hash is
//! [`genesis_hash`] (`sha256:` + 64 zeros). The coordinator signs the same
//! bytes with Ed25519. The JSON form is strict (unknown fields rejected), so
//! the statement can be appended to the transparency log as it is.
//!
//! The heartbeat observations behind uptime are logged separately, as
//! coordinator-signed [`heartbeats::SignedHeartbeats`]. Which logged entries
//! count for a statement is [`evidence`].

pub mod compute;
pub mod evidence;
pub mod heartbeats;

use proofmesh_receipt::canon::Encoder;
use proofmesh_receipt::{Digest, Identity, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::epoch::Epoch;
use crate::money::Currency;

pub use compute::{compute_statement, Computed, Heartbeat, Ignored};
pub use evidence::{audit_cutoff_ms, settle_ms, Evidence, EvidenceItem};
pub use heartbeats::{HeartbeatsBody, HeartbeatsError, SignedHeartbeats};

/// The statement format version.
pub const STATEMENT_VERSION: u32 = 1;

const STATEMENT_DOMAIN: &str = "proofmesh/metrics-statement/v1";

/// Why a statement or chain does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Unknown version.
    #[error("statement version {found} is not supported (expected {STATEMENT_VERSION})")]
    UnsupportedVersion {
        /// Found.
        found: u32,
    },
    /// The signer is not the coordinator the body names.
    #[error("signing key {signer} is not the statement's coordinator {coordinator}")]
    WrongSigner {
        /// Key of the identity used.
        signer: String,
        /// Key in the body.
        coordinator: String,
    },
    /// The signature does not verify.
    #[error("statement {index} (epoch {epoch}): signature does not verify under {coordinator}")]
    BadSignature {
        /// Position in the chain.
        index: usize,
        /// Epoch.
        epoch: Epoch,
        /// Coordinator key.
        coordinator: String,
    },
    /// A statement names a different previous hash.
    #[error("statement {index} (epoch {epoch}): previous hash {found} does not match {expected}")]
    BrokenChain {
        /// Position.
        index: usize,
        /// Epoch.
        epoch: Epoch,
        /// Expected previous hash.
        expected: String,
        /// Found.
        found: String,
    },
    /// Statements are out of order, overlap, or mix providers/coordinators.
    #[error("statement {index} (epoch {epoch}): {reason}")]
    Sequence {
        /// Position.
        index: usize,
        /// Epoch.
        epoch: Epoch,
        /// What is wrong.
        reason: &'static str,
    },
    /// A figure overflowed while computing.
    #[error("overflow computing {figure}")]
    Overflow {
        /// Which figure.
        figure: &'static str,
    },
}

/// The parameters a statement was computed with (signed, so a recomputation
/// uses the same ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementParams {
    /// Only receipts priced in this currency count.
    pub currency: Currency,
    /// Protocol fee used for `net_revenue_micros`.
    pub protocol_fee_bps: u32,
    /// How long one heartbeat counts as "up", ms.
    pub heartbeat_grace_ms: u64,
    /// Verifiers whose audit reports count.
    pub verifiers: Vec<PublicKey>,
}

/// The figures, all derived from evidence by [`compute_statement`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementFigures {
    /// Sum of charges of jobs served (finished in the epoch) whose audits did not fail.
    pub revenue_micros: u64,
    /// `revenue` minus the protocol fee, fee computed per job (rounded down).
    pub net_revenue_micros: u64,
    /// Sum of charges of jobs with a failed audit (refunded to clients).
    pub refunded_micros: u64,
    /// Valid receipts finished in the epoch (including refunded ones).
    pub jobs_served: u64,
    /// Passed audit reports from trusted verifiers about those jobs.
    pub audits_passed: u64,
    /// Failed audit reports from trusted verifiers about those jobs.
    pub audits_failed: u64,
    /// Heartbeats observed in the epoch.
    pub heartbeats: u64,
    /// Time covered by heartbeats (each counts for the grace period), ms.
    pub uptime_ms: u64,
    /// `floor(uptime_ms × 10⁴ / epoch length)`.
    pub uptime_bps: u32,
    /// Time with at least one job running (union of receipt intervals), ms.
    pub busy_ms: u64,
    /// `floor(busy_ms × 10⁴ / uptime_ms)`, capped at 10⁴; 0 with no uptime.
    pub utilization_bps: u32,
}

/// The signed content of a metrics statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementBody {
    /// [`STATEMENT_VERSION`].
    pub version: u32,
    /// The provider described.
    pub provider: PublicKey,
    /// The coordinator that signs.
    pub coordinator: PublicKey,
    /// The period.
    pub epoch: Epoch,
    /// How the figures were computed.
    pub params: StatementParams,
    /// The figures.
    pub figures: StatementFigures,
    /// Hash of the provider's previous statement body, or [`genesis_hash`].
    pub prev_statement_hash: Digest,
}

/// The previous-hash of a provider's first statement: `sha256:` + 64 zeros.
pub fn genesis_hash() -> Digest {
    // 64 lowercase hex digits always form a valid digest.
    Digest::from_hex(&"0".repeat(64)).unwrap_or_else(|_| Digest::of(b""))
}

impl StatementBody {
    /// The canonical encoding (module docs give the field order).
    pub fn canonical(&self) -> Vec<u8> {
        let verifiers: Vec<String> = self
            .params
            .verifiers
            .iter()
            .map(|k| k.to_string())
            .collect();
        let f = &self.figures;
        let mut e = Encoder::new(STATEMENT_DOMAIN);
        e.u64("version", self.version.into())
            .str("provider", self.provider.as_str())
            .str("coordinator", self.coordinator.as_str())
            .u64("epoch_start_s", self.epoch.start_s())
            .u64("epoch_end_s", self.epoch.end_s())
            .str("currency", self.params.currency.code())
            .u64("protocol_fee_bps", self.params.protocol_fee_bps.into())
            .u64("heartbeat_grace_ms", self.params.heartbeat_grace_ms)
            .strs("verifiers", &verifiers)
            .u64("revenue_micros", f.revenue_micros)
            .u64("net_revenue_micros", f.net_revenue_micros)
            .u64("refunded_micros", f.refunded_micros)
            .u64("jobs_served", f.jobs_served)
            .u64("audits_passed", f.audits_passed)
            .u64("audits_failed", f.audits_failed)
            .u64("heartbeats", f.heartbeats)
            .u64("uptime_ms", f.uptime_ms)
            .u64("uptime_bps", f.uptime_bps.into())
            .u64("busy_ms", f.busy_ms)
            .u64("utilization_bps", f.utilization_bps.into())
            .str("prev_statement_hash", self.prev_statement_hash.as_str());
        e.finish()
    }

    /// `Digest::of(canonical)`: what the next statement names as previous.
    pub fn hash(&self) -> Digest {
        Digest::of(&self.canonical())
    }
}

/// A coordinator-signed metrics statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedStatement {
    /// Content.
    pub body: StatementBody,
    /// Coordinator's Ed25519 signature over `body.canonical()`.
    pub signature: Signature,
}

impl SignedStatement {
    /// Signs as `coordinator`, which must be the key the body names.
    pub fn sign(body: StatementBody, coordinator: &Identity) -> Result<Self, StatementError> {
        if coordinator.public() != &body.coordinator {
            return Err(StatementError::WrongSigner {
                signer: coordinator.public().to_string(),
                coordinator: body.coordinator.to_string(),
            });
        }
        let signature = coordinator.sign(&body.canonical());
        Ok(SignedStatement { body, signature })
    }

    /// Checks version and signature (`index` only labels errors).
    pub fn verify(&self, index: usize) -> Result<(), StatementError> {
        if self.body.version != STATEMENT_VERSION {
            return Err(StatementError::UnsupportedVersion {
                found: self.body.version,
            });
        }
        self.body
            .coordinator
            .verify(&self.body.canonical(), &self.signature)
            .map_err(|_| StatementError::BadSignature {
                index,
                epoch: self.body.epoch,
                coordinator: self.body.coordinator.to_string(),
            })
    }
}

/// Checks a provider's statements in order: every signature, one provider,
/// the pinned coordinator (if given), epochs ascending without overlap, and
/// each previous hash. The first statement's previous hash must be
/// `first_prev` (use [`genesis_hash`] for a full history; `None` accepts any,
/// for checking a window).
pub fn verify_chain(
    statements: &[SignedStatement],
    coordinator: Option<&PublicKey>,
    first_prev: Option<&Digest>,
) -> Result<(), StatementError> {
    let mut prev: Option<&SignedStatement> = None;
    for (index, s) in statements.iter().enumerate() {
        s.verify(index)?;
        let b = &s.body;
        let seq = |reason| StatementError::Sequence {
            index,
            epoch: b.epoch,
            reason,
        };
        if coordinator.is_some_and(|c| c != &b.coordinator) {
            return Err(seq("signed by a coordinator other than the pinned one"));
        }
        let expected = match prev {
            Some(p) => {
                if p.body.provider != b.provider {
                    return Err(seq("statement is about a different provider"));
                }
                if b.epoch.start_s() < p.body.epoch.end_s() {
                    return Err(seq("epoch overlaps or precedes the previous statement's"));
                }
                Some(p.body.hash())
            }
            None => first_prev.cloned(),
        };
        if let Some(expected) = expected {
            if expected != b.prev_statement_hash {
                return Err(StatementError::BrokenChain {
                    index,
                    epoch: b.epoch,
                    expected: expected.to_string(),
                    found: b.prev_statement_hash.to_string(),
                });
            }
        }
        prev = Some(s);
    }
    Ok(())
}

/// A figure that differs between a statement and its recomputation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureMismatch {
    /// Field name.
    pub field: &'static str,
    /// In the statement.
    pub claimed: u64,
    /// Recomputed from the log.
    pub recomputed: u64,
}

/// Compares claimed figures with recomputed ones, field by field. Empty
/// means the statement is exactly what the evidence supports.
pub fn recheck(claimed: &StatementFigures, recomputed: &StatementFigures) -> Vec<FigureMismatch> {
    let pairs: [(&'static str, u64, u64); 11] = [
        (
            "revenue_micros",
            claimed.revenue_micros,
            recomputed.revenue_micros,
        ),
        (
            "net_revenue_micros",
            claimed.net_revenue_micros,
            recomputed.net_revenue_micros,
        ),
        (
            "refunded_micros",
            claimed.refunded_micros,
            recomputed.refunded_micros,
        ),
        ("jobs_served", claimed.jobs_served, recomputed.jobs_served),
        (
            "audits_passed",
            claimed.audits_passed,
            recomputed.audits_passed,
        ),
        (
            "audits_failed",
            claimed.audits_failed,
            recomputed.audits_failed,
        ),
        ("heartbeats", claimed.heartbeats, recomputed.heartbeats),
        ("uptime_ms", claimed.uptime_ms, recomputed.uptime_ms),
        (
            "uptime_bps",
            claimed.uptime_bps.into(),
            recomputed.uptime_bps.into(),
        ),
        ("busy_ms", claimed.busy_ms, recomputed.busy_ms),
        (
            "utilization_bps",
            claimed.utilization_bps.into(),
            recomputed.utilization_bps.into(),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, c, r)| c != r)
        .map(|(field, claimed, recomputed)| FigureMismatch {
            field,
            claimed,
            recomputed,
        })
        .collect()
}

#[cfg(test)]
mod tests;
