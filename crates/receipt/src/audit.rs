//! Signed audit reports: an independent verifier's statement that it re-ran a
//! job (one prefill of prompt + output, checking every sampled token and the
//! logit fingerprint) and what it found.
//!
//! A report binds to the exact receipt by the digest of the receipt body's
//! canonical encoding, and is signed by the verifier over its own canonical
//! encoding (domain `proofmesh/audit/v1`). Reports ride along in the receipt
//! JSON (`audits`), outside the provider/coordinator signatures, so anyone
//! can check them offline, and anyone can re-run the same check to catch a
//! verifier that lied.

use serde::{Deserialize, Serialize};

use crate::canon::Encoder;
use crate::digest::Digest;
use crate::identity::{Identity, PublicKey, Signature};
use crate::receipt::ReceiptBody;

/// Audit report format version.
pub const AUDIT_VERSION: u32 = 1;

/// What an audit found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Every check passed.
    Passed,
    /// At least one check failed; `reason` says which.
    Failed,
}

impl AuditOutcome {
    /// `"passed"` / `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Passed => "passed",
            AuditOutcome::Failed => "failed",
        }
    }
}

/// The signed content of an audit report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditBody {
    /// [`AUDIT_VERSION`].
    pub version: u32,
    /// Audit id, assigned by the coordinator.
    pub audit_id: String,
    /// The audited receipt.
    pub receipt_id: String,
    /// `Digest::of(receipt.body.canonical())`: binds the report to that exact receipt.
    pub receipt_digest: Digest,
    /// The verifier.
    pub verifier_key: PublicKey,
    /// Verdict.
    pub outcome: AuditOutcome,
    /// Empty when passed; otherwise the first failed check, with its position.
    pub reason: String,
    /// Completion positions re-checked.
    pub positions_checked: u32,
    /// Unix ms when the check finished.
    pub checked_at_ms: u64,
}

impl AuditBody {
    fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new("proofmesh/audit/v1");
        e.u64("version", self.version.into())
            .str("audit_id", &self.audit_id)
            .str("receipt_id", &self.receipt_id)
            .str("receipt_digest", self.receipt_digest.as_str())
            .str("verifier_key", self.verifier_key.as_str())
            .str("outcome", self.outcome.as_str())
            .str("reason", &self.reason)
            .u64("positions_checked", self.positions_checked.into())
            .u64("checked_at_ms", self.checked_at_ms);
        e.finish()
    }
}

/// Why an audit report does not check out.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuditError {
    /// Unknown version.
    #[error("audit {audit_id}: version {found} is not supported")]
    UnsupportedVersion {
        /// Audit.
        audit_id: String,
        /// Version found.
        found: u32,
    },
    /// The report is about another receipt.
    #[error("audit {audit_id} is about receipt {receipt_id} (digest {digest}), not this one")]
    WrongReceipt {
        /// Audit.
        audit_id: String,
        /// The receipt it names.
        receipt_id: String,
        /// The digest it names.
        digest: String,
    },
    /// The verifier signature does not verify.
    #[error("audit {audit_id}: verifier signature does not verify under {key}")]
    BadSignature {
        /// Audit.
        audit_id: String,
        /// Verifier key.
        key: String,
    },
}

/// A verifier-signed audit report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditReport {
    /// Signed content.
    pub body: AuditBody,
    /// Verifier's signature over the body's canonical encoding.
    pub signature: Signature,
}

/// The digest an audit report binds to.
pub fn receipt_body_digest(body: &ReceiptBody) -> Digest {
    Digest::of(&body.canonical())
}

impl AuditReport {
    /// Signs a report as `verifier` (whose key must be `body.verifier_key`).
    pub fn sign(body: AuditBody, verifier: &Identity) -> AuditReport {
        let signature = verifier.sign(&body.canonical());
        AuditReport { body, signature }
    }

    /// Checks the signature and that the report is about `receipt`.
    pub fn verify_for(&self, receipt: &ReceiptBody) -> Result<(), AuditError> {
        let b = &self.body;
        if b.version != AUDIT_VERSION {
            return Err(AuditError::UnsupportedVersion {
                audit_id: b.audit_id.clone(),
                found: b.version,
            });
        }
        if b.receipt_id != receipt.receipt_id || b.receipt_digest != receipt_body_digest(receipt) {
            return Err(AuditError::WrongReceipt {
                audit_id: b.audit_id.clone(),
                receipt_id: b.receipt_id.clone(),
                digest: b.receipt_digest.to_string(),
            });
        }
        b.verifier_key
            .verify(&b.canonical(), &self.signature)
            .map_err(|_| AuditError::BadSignature {
                audit_id: b.audit_id.clone(),
                key: b.verifier_key.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_receipt;

    fn report(outcome: AuditOutcome) -> (crate::Receipt, AuditReport, Identity) {
        let r = sample_receipt("rcpt_a", "job_a");
        let v = Identity::from_seed([9; 32]);
        let body = AuditBody {
            version: AUDIT_VERSION,
            audit_id: "aud_1".into(),
            receipt_id: "rcpt_a".into(),
            receipt_digest: receipt_body_digest(&r.body),
            verifier_key: v.public().clone(),
            outcome,
            reason: String::new(),
            positions_checked: 8,
            checked_at_ms: 1,
        };
        let rep = AuditReport::sign(body, &v);
        (r, rep, v)
    }

    #[test]
    fn signed_report_verifies_for_its_receipt_only() {
        let (r, rep, _) = report(AuditOutcome::Passed);
        rep.verify_for(&r.body).unwrap();
        let other = sample_receipt("rcpt_b", "job_b");
        assert!(matches!(
            rep.verify_for(&other.body),
            Err(AuditError::WrongReceipt { .. })
        ));
    }

    #[test]
    fn tampered_outcome_breaks_signature() {
        let (r, mut rep, _) = report(AuditOutcome::Failed);
        rep.body.outcome = AuditOutcome::Passed;
        assert!(matches!(
            rep.verify_for(&r.body),
            Err(AuditError::BadSignature { .. })
        ));
    }
}
