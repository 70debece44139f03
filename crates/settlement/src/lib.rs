//! `proofmesh-settlement`: the durable ledger service. One writer task owns
//! the in-memory mirror (`proofmesh_ledger::Ledger`), validates every
//! transaction against it, and group-commits whatever is queued into the
//! store in one transaction, answering callers only after the commit.
//!
//! Why a crate apart from `proofmesh-ledger`: that crate is the pure rules
//! (balanced, never negative, idempotent keys); this one owns the task, the
//! channel and the store, like `proofmesh-log` does for the transparency log.
//!
//! - [`bank`]: [`Bank`] open/apply/close.

pub mod bank;
mod writer;

pub use bank::{Bank, BankConfig, BankError};
