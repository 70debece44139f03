//! Shared helpers for the log service's integration tests: a log over a real
//! SQLite store in a temporary directory, with a fixed signing seed.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::path::Path;
use std::sync::Arc;

use proofmesh_log::{Log, LogConfig, LogEntry};
use proofmesh_receipt::testing::sample_receipt;
use proofmesh_store::{receipt_log_key, SqliteStore};
use proofmesh_tlog::{CheckpointSigner, CheckpointVerifier};
use tokio::task::JoinHandle;

pub const ORIGIN: &str = "test.proofmesh/log";
pub const SEED: [u8; 32] = [42u8; 32];

pub fn config(batch: usize, age_ms: u64) -> LogConfig {
    LogConfig {
        origin: ORIGIN.into(),
        batch_max_entries: batch,
        batch_max_age_ms: age_ms,
        ..LogConfig::default()
    }
}

pub fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(ORIGIN, &SEED).unwrap()
}

pub fn verifier() -> CheckpointVerifier {
    let s = signer();
    CheckpointVerifier::new(ORIGIN, s.verifier_key()).unwrap()
}

pub async fn open(dir: &Path, cfg: LogConfig) -> (Log, JoinHandle<()>, SqliteStore) {
    let store = SqliteStore::open(&dir.join("log.sqlite")).await.unwrap();
    let (log, task) = Log::open(Arc::new(store.clone()), signer(), cfg)
        .await
        .unwrap();
    (log, task, store)
}

pub async fn shut(log: Log, task: JoinHandle<()>, store: SqliteStore) {
    log.close().await;
    task.await.unwrap();
    store.close().await;
}

/// A real signed receipt entry and its dedup key.
pub fn receipt_entry(n: u64) -> (LogEntry, String) {
    let r = sample_receipt(&format!("rcpt_t{n}"), &format!("job_t{n}"));
    (LogEntry::receipt(&r), receipt_log_key(&r.body.receipt_id))
}
