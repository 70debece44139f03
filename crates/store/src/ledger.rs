//! Storage for the double-entry ledger: balances and the journal.
//!
//! Why a trait of its own: the settlement service validates every
//! transaction against its in-memory mirror (`proofmesh_ledger::Ledger`) and
//! hands the store only finished rows. The store's rule is the durability
//! and safety net: a batch commits in one transaction, and each balance
//! update is applied only if the stored balance is still the one the writer
//! saw; otherwise the whole batch is refused ([`StoreError::LedgerStale`]) and
//! the writer reloads. Types here are plain strings and integers, so the
//! store does not depend on the ledger crate.

use async_trait::async_trait;

use crate::StoreError;

/// One balance change: `account`/`currency` from `before` to `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    /// Stable account id (`client:<id>`, `fee`, ...).
    pub account: String,
    /// Currency code.
    pub currency: String,
    /// Balance the writer saw.
    pub before: i64,
    /// Balance after.
    pub after: i64,
}

/// One journal row and the balance changes it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// Sequence number (dense from 0).
    pub seq: u64,
    /// Idempotency key.
    pub key: String,
    /// Transaction hash.
    pub hash: [u8; 32],
    /// Reason, as text.
    pub reason: String,
    /// Link (`job:<id>`, ...), if any.
    pub link: Option<String>,
    /// The transaction, JSON.
    pub tx_json: String,
    /// When, unix ms.
    pub at_ms: u64,
    /// Net balance changes.
    pub changes: Vec<BalanceRow>,
}

/// Everything needed to rebuild the in-memory mirror.
#[derive(Debug, Clone, Default)]
pub struct LedgerSnapshot {
    /// (account, currency, balance).
    pub balances: Vec<(String, String, i64)>,
    /// (key, seq, hash) of every applied transaction.
    pub keys: Vec<(String, u64, [u8; 32])>,
    /// Next sequence number.
    pub next_seq: u64,
}

/// One journal line touching an account, for usage/earnings reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountActivity {
    /// Journal sequence number.
    pub seq: u64,
    /// Reason.
    pub reason: String,
    /// Link.
    pub link: Option<String>,
    /// Currency.
    pub currency: String,
    /// Net change to the account (credit positive).
    pub delta: i64,
    /// When, unix ms.
    pub at_ms: u64,
}

/// Durable ledger state.
#[async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// Balances, applied keys and the next seq, in one read transaction.
    async fn ledger_snapshot(&self) -> Result<LedgerSnapshot, StoreError>;
    /// Writes journal rows and their balance changes in one transaction,
    /// refusing everything if a `before` does not match or the first seq is
    /// not the next one.
    async fn ledger_write(&self, rows: &[JournalRow]) -> Result<(), StoreError>;
    /// The journal's next sequence number (its length).
    async fn ledger_next_seq(&self) -> Result<u64, StoreError>;
    /// The latest `limit` journal lines touching `account`, newest first.
    async fn ledger_activity(
        &self,
        account: &str,
        limit: u32,
    ) -> Result<Vec<AccountActivity>, StoreError>;
    /// The balances of one account, per currency.
    async fn ledger_balances(&self, account: &str) -> Result<Vec<(String, i64)>, StoreError>;
}
