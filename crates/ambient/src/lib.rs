//! proofmesh-ambient: the one place in the workspace that reads ambient
//! authority — the wall clock ([`clock`]) and the process environment
//! ([`env`]).
//!
//! Why a crate of its own: code that reads the time or an environment
//! variable behind the caller's back is hard to test and hard to reason
//! about (a receipt's timestamp, a cooldown's end, which model file gets
//! loaded). Pure cores (placement, ledger, tlog, attest, ...) take `now` as
//! a parameter; the few callers that need the real thing ask this crate,
//! so a reviewer can find every such read by looking for
//! `proofmesh_ambient`. The workspace `clippy.toml` bans
//! `std::time::SystemTime::now` and `std::env::var{,_os,s}` everywhere
//! else (`disallowed_methods`); the two modules here are the only places
//! allowed to call them.
//!
//! Monotonic time (`std::time::Instant`, `tokio::time::Instant`) is not
//! ambient authority in this sense and is used directly.

pub mod clock;
pub mod env;

pub use clock::{now_ms, now_s, Clock, ManualClock, SystemClock};
