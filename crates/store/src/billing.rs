//! Storage for the parts of settlement that are not ledger postings: client
//! retries (`Idempotency-Key`), revenue-share pools (charters, units,
//! transfers, decided distributions), the journal read back for epoch
//! settlement batches, and the jobs (and audit holds) left unsettled by a
//! crash.
//!
//! Why a trait of its own: like [`crate::LedgerStore`] it carries plain
//! strings and integers; every money and pool rule lives in
//! `proofmesh_ledger`, and the store's job is to make each step atomic (a
//! claim, a unit transfer with its guard, a distribution decided once).

use async_trait::async_trait;

use crate::StoreError;

/// A stored Idempotency-Key claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRow {
    /// SHA-256 (hex) of the request body it was first used with.
    pub request_sha256: String,
    /// The job that request started.
    pub job_id: String,
    /// The response to replay, once the job answered.
    pub response_json: Option<String>,
    /// When it was claimed.
    pub created_at_ms: u64,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdemClaim {
    /// The key was free; it now names the caller's job.
    Fresh,
    /// The key was already used.
    Existing(IdemRow),
}

/// A job whose money is not settled: a job still `dispatched` (its
/// coordinator died) or one whose escrow account still holds money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledJob {
    /// Job id.
    pub job_id: String,
    /// Client id.
    pub client_id: String,
    /// `dispatched`, `completed` or `failed`.
    pub status: String,
    /// Its receipt id.
    pub receipt_id: String,
    /// Money left in `escrow:<job>`, per currency.
    pub escrow: Vec<(String, i64)>,
}

/// A job escrow (`escrow:<job>`) or audit hold (`hold:<job>`) account whose
/// balance is not zero, with the state of its job and the job's audit: what
/// the recovery sweep settles and the settlement invariant is checked over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundedJobAccount {
    /// `escrow` or `hold`.
    pub kind: String,
    /// The job id (the account name after its `kind:` prefix).
    pub job_id: String,
    /// Currency code.
    pub currency: String,
    /// Balance, micro-units.
    pub balance: i64,
    /// The job, if a row exists for it.
    pub job: Option<FundedJob>,
    /// Status of the job's audit (`pending`, `passed`, `failed`), if any.
    pub audit_status: Option<String>,
    /// When the audit finished, unix ms.
    pub audit_finished_at_ms: Option<u64>,
}

/// The job row behind a [`FundedJobAccount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundedJob {
    /// Client id.
    pub client_id: String,
    /// `dispatched`, `completed` or `failed`.
    pub status: String,
    /// Its receipt id.
    pub receipt_id: String,
    /// When it completed or failed, unix ms.
    pub finished_at_ms: Option<u64>,
}

/// A pool as its provider signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    /// Pool id.
    pub pool_id: String,
    /// The provider whose earnings feed it.
    pub provider_key: String,
    /// Share of earnings, bps.
    pub share_bps: u32,
    /// Currency code.
    pub currency: String,
    /// The signed charter, JSON.
    pub charter_json: String,
    /// When registered.
    pub created_at_ms: u64,
}

/// A unit transfer to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    /// Idempotency key (unique per pool).
    pub key: String,
    /// Pool.
    pub pool_id: String,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Units.
    pub units: u64,
    /// The signed transfer, JSON.
    pub doc_json: String,
    /// When.
    pub at_ms: u64,
}

/// What applying a transfer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Units moved.
    Applied,
    /// The same transfer was applied before; nothing changed.
    Replayed,
    /// The key was used for a different transfer; nothing changed.
    Conflict,
    /// The sender holds fewer units; nothing changed.
    InsufficientUnits {
        /// Units held.
        has: u64,
    },
    /// No such pool.
    UnknownPool,
}

/// One journal line as stored, for rebuilding `JournalEntry`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredJournalLine {
    /// Seq.
    pub seq: u64,
    /// Transaction hash.
    pub hash: [u8; 32],
    /// Transaction JSON.
    pub tx_json: String,
    /// When.
    pub at_ms: u64,
}

/// Durable settlement state beyond balances.
#[async_trait]
pub trait BillingStore: Send + Sync + 'static {
    /// Claims `(client, key)` for `job_id` unless already claimed, in which
    /// case the existing claim is returned unchanged.
    async fn idem_claim(
        &self,
        client_id: &str,
        key: &str,
        request_sha256: &str,
        job_id: &str,
        now_ms: u64,
    ) -> Result<IdemClaim, StoreError>;
    /// Records the response to replay for a claimed key.
    async fn idem_complete(
        &self,
        client_id: &str,
        key: &str,
        response_json: &str,
    ) -> Result<(), StoreError>;
    /// Frees a claim whose job failed (it was refunded; a retry runs anew).
    async fn idem_release(&self, client_id: &str, key: &str) -> Result<(), StoreError>;
    /// Frees every unanswered claim (at startup: their jobs died with the
    /// previous process) and every claim older than `before_ms`. Returns
    /// how many were freed.
    async fn idem_sweep(&self, before_ms: u64) -> Result<u64, StoreError>;
    /// Jobs still `dispatched`, and jobs whose escrow holds money.
    async fn unsettled_jobs(&self) -> Result<Vec<UnsettledJob>, StoreError>;
    /// Every job escrow and audit hold account whose balance is not zero,
    /// with its job and audit, ordered by job id then account.
    async fn funded_job_accounts(&self) -> Result<Vec<FundedJobAccount>, StoreError>;
    /// Journal lines from `from_seq` (ascending), at most `limit`.
    async fn journal_lines(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredJournalLine>, StoreError>;
    /// Registers a pool with its initial units. `Ok(false)` if the identical
    /// charter is already registered; an error if the pool id or provider
    /// already has a different one.
    async fn create_pool(
        &self,
        pool: &PoolRow,
        units: &[(String, u64)],
    ) -> Result<bool, StoreError>;
    /// A pool and its holders (by holder id).
    async fn pool(
        &self,
        pool_id: &str,
    ) -> Result<Option<(PoolRow, Vec<(String, u64)>)>, StoreError>;
    /// The pool fed by a provider, if any.
    async fn pool_of_provider(&self, provider_key: &str) -> Result<Option<PoolRow>, StoreError>;
    /// Every pool.
    async fn list_pools(&self) -> Result<Vec<PoolRow>, StoreError>;
    /// A pool's transfer documents, in the order they were applied.
    async fn pool_transfers(&self, pool_id: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Applies a transfer atomically (idempotent by key).
    async fn transfer_units(&self, t: &TransferRow) -> Result<TransferOutcome, StoreError>;
    /// Records the distribution for (pool, epoch) unless one is recorded
    /// (with `doc_json` None, only reads); returns the recorded one.
    async fn record_distribution(
        &self,
        pool_id: &str,
        epoch_start_s: u64,
        doc_json: Option<&str>,
    ) -> Result<Option<String>, StoreError>;
}
