//! Storage for the transparency log: sequenced entries and signed
//! checkpoints, written batch by batch.
//!
//! Why a trait of its own: the log's sequencer (`proofmesh-log`) needs only
//! these operations, and its durability rule lives here: a batch of entries
//! and the checkpoint covering it commit in ONE transaction, and a batch is
//! refused unless it starts exactly where the stored log ends, so two
//! writers can never fork the history.

use async_trait::async_trait;
use proofmesh_receipt::{AuditReport, Receipt};

use crate::StoreError;

/// One entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// RFC 6962 leaf hash of `entry`.
    pub leaf_hash: [u8; 32],
    /// The encoded entry.
    pub entry: Vec<u8>,
    /// Dedup key (`receipt:<id>`, `audit:<id>`); one entry per key.
    pub key: Option<String>,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub tree_size: u64,
    /// Root hash.
    pub root: [u8; 32],
    /// The signed note.
    pub note: Vec<u8>,
    /// When it was signed, unix ms.
    pub created_at_ms: u64,
}

/// Durable log state.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Every leaf hash in index order and the latest checkpoint, read in
    /// ONE transaction so both describe the same state (to rebuild the tree
    /// at startup).
    async fn log_snapshot(&self) -> Result<(Vec<[u8; 32]>, Option<StoredCheckpoint>), StoreError>;
    /// The checkpoint with the largest tree size, if any.
    async fn log_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Up to `limit` checkpoints with tree size >= `from_size`, ascending.
    async fn log_checkpoints(
        &self,
        from_size: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;
    /// Appends `rows` at indexes `first_index..` and stores `checkpoint`, in
    /// one transaction. Fails with [`StoreError::LogFork`] unless
    /// `first_index` is the current log size.
    async fn log_append(
        &self,
        first_index: u64,
        rows: &[LogRow],
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError>;
    /// Encoded entries with index in `start..end`, ascending.
    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Index of the entries with these keys, where logged.
    async fn log_indexes_of(&self, keys: &[String]) -> Result<Vec<(String, u64)>, StoreError>;
    /// Countersigned receipts not yet in the log (after a crash between
    /// storing a receipt and sequencing it).
    async fn log_unlogged_receipts(&self) -> Result<Vec<Receipt>, StoreError>;
    /// Finished audit reports not yet in the log, with their audit ids.
    async fn log_unlogged_audits(&self) -> Result<Vec<(String, AuditReport)>, StoreError>;
}

/// The dedup key of a receipt entry.
pub fn receipt_log_key(receipt_id: &str) -> String {
    format!("receipt:{receipt_id}")
}

/// The dedup key of an audit-report entry.
pub fn audit_log_key(audit_id: &str) -> String {
    format!("audit:{audit_id}")
}
