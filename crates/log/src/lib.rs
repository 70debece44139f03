//! `proofmesh-log`: the transparency-log service: a sequencer that batches
//! appends (C2SP tlog-tiles layout, Tessera-style "every N entries or T ms"),
//! writes each batch and the signed checkpoint covering it to the store in
//! one transaction, and answers reads (checkpoint, tiles, entry bundles,
//! inclusion and consistency proofs) from an in-memory tree.
//!
//! It also defines what the log holds: [`entry`], proofmesh's versioned
//! entry format (receipts, audit reports, ledger documents), and
//! [`inclusion`], the offline check of a receipt's inclusion proof. Both are
//! pure; offline verifiers use them with `proofmesh-tlog`.
//!
//! Why a crate apart from `proofmesh-tlog`: that crate implements the specs
//! (RFC 6962, C2SP) over opaque bytes and depends on no proofmesh crate;
//! this one knows proofmesh's entries and owns the task, the channel and the
//! store. HTTP lives in the coordinator, which mounts these reads.
//!
//! - [`entry`]: versioned entry encoding and strict decoding, leaf hash.
//! - [`inclusion`]: check a receipt's attached inclusion proof offline.
//! - [`config`]: batch size and age, origin, queue bound.
//! - [`service`]: [`Log`], open/append/read/close.
//! - [`sequencer`]: the batching task.

pub mod config;
pub mod entry;
pub mod error;
pub mod inclusion;
mod sequencer;
pub mod service;

pub use config::LogConfig;
pub use entry::{EntryError, LogEntry};
pub use error::LogError;
pub use inclusion::verify_receipt_inclusion;
pub use service::{Log, Sequenced, SignedCheckpoint};
