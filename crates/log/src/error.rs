//! Errors of the log service.

use proofmesh_store::StoreError;
use proofmesh_tlog::TlogError;

use crate::entry::EntryError;

/// What can go wrong appending to or reading from the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The configuration is invalid.
    #[error("log config: {field} {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The log has been closed (shutdown); nothing more is sequenced.
    #[error("the log is closed")]
    Closed,
    /// Storing a batch failed; none of its entries were sequenced.
    #[error("committing a log batch failed: {reason}")]
    CommitFailed {
        /// The store's error, for logs.
        reason: String,
    },
    /// A store read failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Proof or signing failure, or a bad request (index, size, tile)
    /// against the tree.
    #[error(transparent)]
    Tlog(#[from] TlogError),
    /// An entry cannot be encoded (or a stored one decoded).
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The stored log does not match its own checkpoint (at startup).
    #[error("stored log is inconsistent: {reason}")]
    Inconsistent {
        /// What disagrees.
        reason: String,
    },
    /// The request names data beyond the published checkpoint.
    #[error("{what} is beyond the published tree size {published}")]
    NotPublished {
        /// What was asked for.
        what: String,
        /// Size of the latest checkpoint.
        published: u64,
    },
}
