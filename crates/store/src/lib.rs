//! Durable coordinator state behind a [`Store`] trait.
//!
//! The coordinator talks only to the trait; [`SqliteStore`] is the first
//! implementation (PostgreSQL comes later behind the same trait). Every
//! multi-row change runs in one transaction, so a crash never leaves a job
//! completed without its receipt or a receipt without its job.

mod audit;
mod billing;
mod keys;
mod ledger;
mod log;
mod sqlite;
mod sqlite_audit;
mod sqlite_billing;
mod sqlite_ledger;
mod sqlite_log;

pub use audit::{
    AuditPenalty, AuditStore, Evidence, NewAudit, PendingAudit, ProofFailure, ProviderStats,
};
pub use billing::{
    BillingStore, FundedJob, FundedJobAccount, IdemClaim, IdemRow, PoolRow, StoredJournalLine,
    TransferOutcome, TransferRow, UnsettledJob,
};
pub use keys::{parse_api_key, ApiKeyParts};
pub use ledger::{AccountActivity, BalanceRow, JournalRow, LedgerSnapshot, LedgerStore};
pub use log::{audit_log_key, receipt_log_key, LogRow, LogStore, StoredCheckpoint};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use proofmesh_receipt::Receipt;

/// Storage failures. Messages are for logs; the gateway never echoes them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error during {op}: {source}")]
    Db {
        /// What was being done.
        op: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Running migrations failed.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not decode.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which object.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The referenced row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A log batch does not start where the stored log ends: another writer
    /// appended, and accepting it would fork the history.
    #[error("log append at index {first_index} refused: the stored log has {stored_size} entries")]
    LogFork {
        /// Where the batch wanted to start.
        first_index: u64,
        /// Entries actually stored.
        stored_size: u64,
    },
    /// A ledger write saw a different state than its writer expected (a
    /// balance or the journal moved); nothing was written.
    #[error("ledger write refused: {account} is {found}, the writer expected {expected}")]
    LedgerStale {
        /// Account (or `journal`).
        account: String,
        /// What the writer saw.
        expected: i64,
        /// What is stored.
        found: i64,
    },
    /// A row with this id exists with different content.
    #[error("{what} {id} already exists with different content")]
    Conflict {
        /// Kind of row.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A state transition that is not allowed (e.g. completing a failed job).
    #[error("job {job_id} is {status}, cannot {action}")]
    InvalidTransition {
        /// The job.
        job_id: String,
        /// Its current status.
        status: String,
        /// What was attempted.
        action: &'static str,
    },
}

/// A newly created API key. `key` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The full secret key to hand to the client.
    pub key: String,
    /// Public key id (safe to log).
    pub key_id: String,
    /// The client the key belongs to.
    pub client_id: String,
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Client id.
    pub client_id: String,
    /// Which key was used.
    pub key_id: String,
    /// The key's attestation requirement (`tee`, `tee+gpu`), if any.
    pub min_attestation: Option<String>,
}

/// A provider as last registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// `ed25519:` key.
    pub provider_key: String,
    /// Hardware advert, JSON.
    pub hardware_json: String,
    /// Model adverts, JSON.
    pub models_json: String,
    /// Agent version.
    pub agent_version: String,
    /// First registration, unix ms.
    pub first_seen_ms: u64,
    /// Last heartbeat, unix ms.
    pub last_seen_ms: u64,
}

/// A job at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Job id.
    pub job_id: String,
    /// Receipt id reserved for it.
    pub receipt_id: String,
    /// Owner.
    pub client_id: String,
    /// Model digest.
    pub model: String,
    /// Creation time, unix ms.
    pub created_at_ms: u64,
    /// The conversation as JSON (`[{"role","content"}]`), kept for audits.
    pub request_json: String,
    /// "sampled" or "always".
    pub verification: String,
}

/// A job's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// "dispatched", "completed" or "failed".
    pub status: String,
    /// Provider of the latest attempt.
    pub provider_key: Option<String>,
    /// How many providers were tried.
    pub attempts: u32,
    /// Failure reason.
    pub error: Option<String>,
}

/// A stored receipt and its owner.
#[derive(Debug, Clone)]
pub struct StoredReceipt {
    /// Owner; only this client may read it through the API.
    pub client_id: String,
    /// The countersigned receipt.
    pub receipt: Receipt,
}

/// Everything the coordinator persists.
#[async_trait]
pub trait Store:
    AuditStore + LogStore + LedgerStore + BillingStore + Send + Sync + 'static
{
    /// Creates an API key, and a new client unless `client_id` names one.
    async fn create_api_key(
        &self,
        client_id: Option<&str>,
        label: &str,
        now_ms: u64,
    ) -> Result<NewApiKey, StoreError>;
    /// Resolves a presented key; `None` if unknown, revoked or wrong.
    async fn authenticate(&self, presented: &str) -> Result<Option<Client>, StoreError>;
    /// Records (or refreshes) a provider registration.
    async fn upsert_provider(&self, rec: &ProviderRecord) -> Result<(), StoreError>;
    /// Sets (or clears) an API key's attestation requirement; false if no
    /// such key.
    async fn set_key_min_attestation(
        &self,
        key_id: &str,
        level: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Records a provider's latest verified attestation (JSON; None: none).
    async fn set_provider_attestation(
        &self,
        provider_key: &str,
        attestation_json: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Records a heartbeat.
    async fn touch_provider(&self, provider_key: &str, now_ms: u64) -> Result<(), StoreError>;
    /// All providers ever registered.
    async fn list_providers(&self) -> Result<Vec<ProviderRecord>, StoreError>;
    /// Creates a job in state `dispatched`.
    async fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    /// Records that an attempt went to `provider_key`.
    async fn assign_job(&self, job_id: &str, provider_key: &str) -> Result<(), StoreError>;
    /// Atomically marks the job completed, stores its receipt and the
    /// evidence audits need, and counts the job for its provider.
    async fn complete_job(
        &self,
        job_id: &str,
        client_id: &str,
        receipt: &Receipt,
        evidence: &Evidence,
        now_ms: u64,
    ) -> Result<(), StoreError>;
    /// Marks the job failed (no receipt).
    async fn fail_job(&self, job_id: &str, reason: &str, now_ms: u64) -> Result<(), StoreError>;
    /// A job's state.
    async fn job_status(&self, job_id: &str) -> Result<Option<JobStatus>, StoreError>;
    /// A receipt by id.
    async fn get_receipt(&self, receipt_id: &str) -> Result<Option<StoredReceipt>, StoreError>;
    /// Appends one attempt's placement decision (JSON) to the job.
    async fn record_placement(&self, job_id: &str, decision_json: &str) -> Result<(), StoreError>;
    /// The job's owner and its placement decisions (a JSON array), if the
    /// job exists.
    async fn job_placements(&self, job_id: &str) -> Result<Option<(String, String)>, StoreError>;
    /// Receipt count (for metrics and tests).
    async fn count_receipts(&self) -> Result<u64, StoreError>;
}
