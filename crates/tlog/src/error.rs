//! The one error type of `proofmesh-tlog`.
//!
//! Every fallible operation in this crate (C2SP tlog-tiles paths and entry
//! bundles, RFC 6962 §2.1.1/§2.1.2 proofs,
//! C2SP tlog-checkpoint + signed-note checkpoints) reports one of these
//! variants. Fields are structured so callers (the coordinator, the CLI
//! verifier) can match on them instead of parsing messages; bad input never
//! panics, it lands here.

use thiserror::Error;

/// Errors from encoding, parsing, proving and verifying log data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlogError {
    /// An inclusion proof in its text form (or a receipt's log inclusion
    /// record, see `proofmesh_log::verify_receipt_inclusion`) is unusable.
    #[error("receipt log inclusion: {reason}")]
    BadInclusion {
        /// Why.
        reason: String,
    },
    /// An entry exceeds the entry-bundle size bound.
    #[error("entry is {len} bytes, the limit is {max}")]
    EntryTooLarge {
        /// Size of the offending entry.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// An entry bundle ends in the middle of an entry.
    #[error("entry bundle truncated at byte {offset}")]
    BundleTruncated {
        /// Offset of the incomplete entry's length prefix.
        offset: usize,
    },
    /// An entry bundle holds more than one tile's worth of entries.
    #[error("entry bundle holds {count} entries, the limit is {max}")]
    BundleTooLarge {
        /// Entries found or given.
        count: usize,
        /// The bound (tile width).
        max: usize,
    },
    /// A tile path does not follow C2SP tlog-tiles.
    #[error("malformed tile path {path:?}: {reason}")]
    BadTilePath {
        /// The path as given (truncated to 128 chars).
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Tile coordinates that cannot exist.
    #[error("invalid tile: level {level:?} (None = entry bundle), index {index}, width {width}: {reason}")]
    BadTile {
        /// Level (`None` for an entry bundle).
        level: Option<u8>,
        /// Index within the level.
        index: u64,
        /// Width in hashes or entries.
        width: u32,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A leaf index is not below the tree size it is asked about.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A tree size beyond what the tree holds.
    #[error("tree size {requested} is beyond the current size {current}")]
    SizeOutOfRange {
        /// Requested size.
        requested: u64,
        /// Current size.
        current: u64,
    },
    /// Old size larger than new size.
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizesOutOfOrder {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// A proof is longer than any proof in a 64-bit tree can be.
    #[error("proof has {len} hashes, at most {max} are possible")]
    ProofTooLong {
        /// Hashes given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// An inclusion proof does not lead to the claimed root.
    #[error("inclusion proof for leaf {index} in tree of size {size} does not verify")]
    InclusionProofInvalid {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof does not link the two roots.
    #[error("consistency proof from size {old} to size {new} does not verify")]
    ConsistencyProofInvalid {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// The tree cannot grow (u64 sizes exhausted).
    #[error("tree is full at size {size}")]
    TreeFull {
        /// Current size.
        size: u64,
    },
    /// A hash-storage invariant broke inside tlog_tiles (a bug here, not bad input).
    #[error("internal tree error: {reason}")]
    Internal {
        /// tlog_tiles' message.
        reason: String,
    },
    /// The origin cannot be a checkpoint origin / signed-note key name.
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        /// The origin.
        origin: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Extension lines that C2SP tlog-checkpoint forbids.
    #[error("invalid checkpoint extension line {line:?}")]
    InvalidExtension {
        /// The offending line.
        line: String,
    },
    /// The note or checkpoint body is syntactically wrong.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint is for another log.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// Origin the verifier is for.
        expected: String,
        /// Origin in the checkpoint.
        found: String,
    },
    /// No valid signature by the expected key.
    #[error("checkpoint signature check failed for key {key_name}: {reason}")]
    BadSignature {
        /// Verifier key name.
        key_name: String,
        /// signed_note's message.
        reason: String,
    },
    /// A verifier key string does not parse or names another key.
    #[error("invalid verifier key {vkey:?}: {reason}")]
    BadVerifierKey {
        /// The key string.
        vkey: String,
        /// What is wrong.
        reason: String,
    },
    /// Signing failed.
    #[error("signing failed: {reason}")]
    Signing {
        /// The underlying message.
        reason: String,
    },
}
