//! Storage for verification: the evidence an audit re-executes, audit
//! records, and per-provider stake and reputation counters.

use async_trait::async_trait;
use proofmesh_receipt::{AuditReport, Receipt};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What a provider served, kept so a verifier can re-execute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Completion token ids.
    pub completion_token_ids: Vec<u32>,
    /// Completion text.
    pub text: String,
    /// Logit fingerprint bytes (their digest is the receipt's `logits_digest`).
    #[serde(skip)]
    pub fingerprint: Vec<u8>,
}

/// A provider's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStats {
    /// Provider key.
    pub provider_key: String,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Audits passed.
    pub audits_passed: u64,
    /// Audits failed.
    pub audits_failed: u64,
    /// Total slashed.
    pub slashed_micros: i64,
    /// Excluded from scheduling.
    pub excluded: bool,
}

/// An audit to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// Audit id.
    pub audit_id: String,
    /// Receipt under audit.
    pub receipt_id: String,
    /// Its provider.
    pub provider_key: String,
    /// Why it was chosen (policy label).
    pub why: String,
    /// Verification fee charged to the client ("always"), micro-units.
    pub fee_micros: i64,
    /// Creation time.
    pub created_at_ms: u64,
}

/// An audit waiting for a verifier, with everything needed to run it.
#[derive(Debug, Clone)]
pub struct PendingAudit {
    /// Audit id.
    pub audit_id: String,
    /// The countersigned receipt.
    pub receipt: Receipt,
    /// The conversation JSON.
    pub request_json: String,
    /// What was served.
    pub evidence: Evidence,
}

/// Consequences of a failed audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPenalty {
    /// Stake slashed (as recorded; the ledger moves at most what the stake
    /// holds).
    pub slash_micros: i64,
    /// The provider's stake once this outcome's slash is taken, as the
    /// ledger (stake's one source of truth) says: a provider whose stake
    /// could not cover another slash is excluded.
    pub stake_after_micros: i64,
    /// Refunded to the client (the job's charge).
    pub refund_micros: i64,
    /// Failed audits after which the provider is excluded.
    pub max_failed_audits: u64,
}

/// A proof of inference that failed verification (issue 9), with the
/// provider-signed evidence of the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFailure {
    /// The job.
    pub job_id: String,
    /// The provider that sent the proof.
    pub provider_key: String,
    /// Why the coordinator rejected it.
    pub reason: String,
    /// The provider-signed receipt (JSON) naming the proof.
    pub receipt_json: String,
    /// The proof bundle (JSON) as sent.
    pub bundle_json: String,
    /// When it was rejected, unix ms.
    pub at_ms: u64,
}

/// Verification storage.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Creates stats on first registration; no-op after. (Stake is not
    /// here: it is money, and lives in the ledger.)
    async fn ensure_provider_stats(&self, provider_key: &str) -> Result<(), StoreError>;
    /// A provider's standing.
    async fn provider_stats(&self, provider_key: &str)
        -> Result<Option<ProviderStats>, StoreError>;
    /// Providers excluded from scheduling.
    async fn excluded_providers(&self) -> Result<Vec<String>, StoreError>;
    /// Records that a job will be audited.
    async fn create_audit(&self, audit: &NewAudit) -> Result<(), StoreError>;
    /// Audits still waiting for a report, oldest first.
    async fn pending_audits(&self, limit: u32) -> Result<Vec<PendingAudit>, StoreError>;
    /// Atomically records a report and its consequences; returns the
    /// provider's new standing. Fails if the audit is not pending.
    async fn finish_audit(
        &self,
        report: &AuditReport,
        penalty: AuditPenalty,
        now_ms: u64,
    ) -> Result<ProviderStats, StoreError>;
    /// Records a failed proof and applies the consequences of a failed
    /// audit (slash, failure count, exclusion) in one transaction; returns
    /// the provider's new standing. Recording the same (job, provider) twice
    /// applies the penalty once.
    async fn record_proof_failure(
        &self,
        failure: &ProofFailure,
        penalty: AuditPenalty,
    ) -> Result<ProviderStats, StoreError>;
    /// A provider's failed proofs, newest first.
    async fn proof_failures(&self, provider_key: &str) -> Result<Vec<ProofFailure>, StoreError>;
    /// Reports attached to a receipt.
    async fn audit_reports(&self, receipt_id: &str) -> Result<Vec<AuditReport>, StoreError>;
    /// Status of the audit of a receipt, if any ("pending", "passed", "failed").
    async fn audit_status(&self, receipt_id: &str) -> Result<Option<String>, StoreError>;
    /// The evidence stored with a receipt, and the request JSON.
    async fn evidence(&self, receipt_id: &str) -> Result<Option<(String, Evidence)>, StoreError>;
}
