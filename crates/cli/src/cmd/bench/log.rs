//! `proofmesh bench log`: prints the transparency log's figures
//! ([`measure`]) beside the published references (Tessera, Trillian, real
//! CT load).

mod measure;

use std::process::ExitCode;

use proofmesh_log::LogConfig;

use measure::{run as bench, BenchOptions};

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Entries to append (real signed receipts, ~1.5 KB each).
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
    /// Concurrent appenders.
    #[arg(long, default_value_t = 2_048)]
    concurrency: usize,
    /// Batch size bound (Tessera: 256).
    #[arg(long, default_value_t = 256)]
    batch_entries: usize,
    /// Batch linger in ms: 0 (the log's default) commits as soon as the
    /// sequencer is free (group commit); Tessera lingers 250.
    #[arg(long, default_value_t = 0)]
    batch_ms: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = BenchOptions {
        entries: a.entries.max(1),
        concurrency: a.concurrency.max(1),
        config: LogConfig {
            batch_max_entries: a.batch_entries,
            batch_max_age_ms: a.batch_ms,
            ..LogConfig::default()
        },
    };
    let r = bench(opts).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "transparency log benchmark: {} entries (mean {} B), {} appenders, batches of {} / {} ms linger, SQLite WAL synchronous=FULL",
        r.entries, r.mean_entry_bytes, r.concurrency, r.batch_max_entries, r.batch_max_age_ms
    );
    println!(
        "  durable appends      {:>10.0} /s   (target >= {:.0}; Tessera ~{:.0}/s on NVMe x7 cores; CT ~{:.0}/s)",
        r.appends_per_s,
        r.target_appends_per_s,
        r.reference_tessera_appends_per_s,
        r.reference_ct_writes_per_s
    );
    println!(
        "  append->checkpoint   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   (target p99 < {:.0} ms; Trillian batches every {:.0} ms)",
        r.append_to_checkpoint_p50_ms,
        r.append_to_checkpoint_p99_ms,
        r.append_to_checkpoint_max_ms,
        r.target_p99_ms,
        r.reference_trillian_batch_ms
    );
    println!("  checkpoints          {}", r.checkpoints);
    println!(
        "  proof sizes          inclusion {} B, consistency {} B, checkpoint note {} B",
        r.inclusion_proof_bytes, r.consistency_proof_bytes, r.checkpoint_bytes
    );
    println!(
        "  database             {:.1} MB",
        r.database_bytes as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
