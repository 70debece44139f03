//! The measurement behind `proofmesh bench log`: sustained durable appends
//! per second through the real sequencer (`proofmesh-log`'s [`Log`]) and
//! the real SQLite store (WAL, synchronous=FULL), the append-to-checkpoint
//! latency distribution, and proof sizes, next to the published reference
//! figures.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use proofmesh_log::{Log, LogConfig, LogEntry};
use proofmesh_receipt::testing::sample_receipt;
use proofmesh_store::{receipt_log_key, SqliteStore};
use proofmesh_tlog::CheckpointSigner;
use serde::Serialize;

use crate::cmd::bench::stats::percentile;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Entries to append (real signed receipts).
    pub entries: usize,
    /// Concurrent appenders.
    pub concurrency: usize,
    /// Sequencer settings (batch size/age).
    pub config: LogConfig,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            entries: 100_000,
            concurrency: 2_048,
            config: LogConfig::default(),
        }
    }
}

/// Measured figures; key names carry units.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Entries appended.
    pub entries: u64,
    /// Mean encoded entry size.
    pub mean_entry_bytes: u64,
    /// Concurrent appenders.
    pub concurrency: u64,
    /// Batch bound used.
    pub batch_max_entries: u64,
    /// Batch age bound used.
    pub batch_max_age_ms: u64,
    /// Checkpoints published (= committed batches).
    pub checkpoints: u64,
    /// Sustained durable appends per second.
    pub appends_per_s: f64,
    /// Append call to covering checkpoint, median.
    pub append_to_checkpoint_p50_ms: f64,
    /// ... 99th percentile.
    pub append_to_checkpoint_p99_ms: f64,
    /// ... maximum.
    pub append_to_checkpoint_max_ms: f64,
    /// Inclusion proof size at the final tree size (hashes x 32).
    pub inclusion_proof_bytes: u64,
    /// Consistency proof size from half the tree to the whole.
    pub consistency_proof_bytes: u64,
    /// Signed checkpoint note size.
    pub checkpoint_bytes: u64,
    /// Database file size after the run (entries are stored once).
    pub database_bytes: u64,
    /// Reference: Tessera, local NVMe, 7 cores.
    pub reference_tessera_appends_per_s: f64,
    /// Reference: Trillian batch interval.
    pub reference_trillian_batch_ms: f64,
    /// Reference: real Certificate Transparency write load.
    pub reference_ct_writes_per_s: f64,
    /// Target on this machine.
    pub target_appends_per_s: f64,
    /// Target p99 append-to-checkpoint.
    pub target_p99_ms: f64,
}

/// Runs the benchmark in a fresh temporary database.
pub async fn run(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let db = dir.path().join("bench.sqlite");
    let store = SqliteStore::open(&db).await?;
    let signer = CheckpointSigner::from_seed(&opts.config.origin, &[7u8; 32])?;
    let (log, task) = Log::open(Arc::new(store.clone()), signer, opts.config.clone()).await?;

    // Real signed receipts, made before the clock starts.
    let entries: Vec<(LogEntry, String)> = (0..opts.entries)
        .map(|i| {
            let r = sample_receipt(&format!("rcpt_bench_{i}"), &format!("job_bench_{i}"));
            (LogEntry::receipt(&r), receipt_log_key(&r.body.receipt_id))
        })
        .collect();
    let mean_entry_bytes = entries
        .iter()
        .take(1000)
        .map(|(e, _)| e.encode().map(|b| b.len() as u64).unwrap_or(0))
        .sum::<u64>()
        / entries.len().clamp(1, 1000) as u64;
    let entries = Arc::new(entries);
    let workers = opts.concurrency.max(1);
    let first_size = log.checkpoint().size;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (log, entries) = (log.clone(), entries.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..entries.len()).step_by(workers) {
                let t = Instant::now();
                let (e, k) = &entries[i];
                log.append(e, Some(k.clone())).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::with_capacity(opts.entries);
    for h in handles {
        let part = h.await.context("bench worker")??;
        lat.extend(part);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let cp = log.checkpoint();
    let checkpoints = log.checkpoints(first_size + 1, u32::MAX).await?.len() as u64;
    let inclusion = log.inclusion_proof(cp.size / 3, cp.size)?.len() as u64 * 32;
    let consistency = log.consistency_proof(cp.size / 2, cp.size)?.len() as u64 * 32;
    log.close().await;
    let _ = task.await;
    store.close().await;
    let database_bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Ok(BenchReport {
        entries: opts.entries as u64,
        mean_entry_bytes,
        concurrency: workers as u64,
        batch_max_entries: opts.config.batch_max_entries as u64,
        batch_max_age_ms: opts.config.batch_max_age_ms,
        checkpoints,
        appends_per_s: opts.entries as f64 / elapsed.max(1e-9),
        append_to_checkpoint_p50_ms: percentile(&lat, 0.50),
        append_to_checkpoint_p99_ms: percentile(&lat, 0.99),
        append_to_checkpoint_max_ms: lat.last().copied().unwrap_or(0.0),
        inclusion_proof_bytes: inclusion,
        consistency_proof_bytes: consistency,
        checkpoint_bytes: cp.note.len() as u64,
        database_bytes,
        reference_tessera_appends_per_s: 10_000.0,
        reference_trillian_batch_ms: 100.0,
        reference_ct_writes_per_s: 70.0,
        target_appends_per_s: 20_000.0,
        target_p99_ms: 1_000.0,
    })
}
