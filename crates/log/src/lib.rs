//! `proofmesh-log`: the transparency-log service: a sequencer that batches
//! appends (C2SP tlog-tiles layout, Tessera-style "every N entries or T ms"),
//! writes each batch and the signed checkpoint covering it to the store in
//! one transaction, and answers reads (checkpoint, tiles, entry bundles,
//! inclusion and consistency proofs) from an in-memory tree.
//!
//! Why a crate apart from `proofmesh-tlog`: that crate is the pure, I/O-free
//! core that offline verifiers link; this one owns the task, the channel and
//! the store. HTTP lives in the coordinator, which mounts these reads.
//!
//! - [`config`]: batch size and age, origin, queue bound.
//! - [`service`]: [`Log`], open/append/read/close.
//! - [`sequencer`]: the batching task.
//! - [`bench`]: `proofmesh bench log`.

pub mod bench;
pub mod config;
pub mod error;
mod sequencer;
pub mod service;

pub use config::LogConfig;
pub use error::LogError;
pub use service::{Log, Sequenced, SignedCheckpoint};
