//! The provider agent: dials out to a coordinator, proves possession of its
//! Ed25519 key, advertises its hardware and model, runs jobs on the embedded
//! engine and signs a receipt for each. Models it can prove in zero knowledge
//! ([`ZkProver`]) are advertised too, and their jobs answered with a proof.
//!
//! Entry point: [`run`], which keeps a session up (reconnecting with backoff)
//! until the shutdown future resolves.

mod attest;
mod auditor;
mod hardware;
mod runner;
mod session;
mod zk;

pub use attest::{evidence_for, AttestSource};
pub use auditor::audit;
pub use hardware::detect_hardware;
pub use runner::{execute_job, receipt_body, JobOutcome, Served};
pub use session::{advertised_name, run, AgentRole, ProviderConfig, ProviderError};
pub use zk::{execute_zk_job, zk_receipt_body, ZkProver, ZkProverError};
