//! `proofmesh bench ledger`: durable balanced transactions per second
//! through the settlement writer and SQLite, beside the pure in-memory rate.

mod durable;
mod in_memory;

use std::process::ExitCode;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Jobs to settle (escrow + release each: two transactions).
    #[arg(long, default_value_t = 50_000)]
    jobs: usize,
    /// Client accounts the jobs spread over.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 1_024)]
    concurrency: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let r = durable::run(a.jobs.max(1), a.clients, a.concurrency).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "ledger benchmark: {} jobs (escrow + release), {} clients, {} callers, SQLite WAL synchronous=FULL",
        r.jobs, r.clients, r.concurrency
    );
    println!(
        "  durable transactions   {:>10.0} /s   (target >= {:.0})",
        r.transactions_per_s, r.target_transactions_per_s
    );
    println!("  durable postings       {:>10.0} /s", r.postings_per_s);
    println!(
        "  apply -> durable       p50 {:.1} ms, p99 {:.1} ms",
        r.apply_p50_ms, r.apply_p99_ms
    );
    println!(
        "  in-memory ledger       {:>10.0} /s   (same run, no storage)",
        r.in_memory_transactions_per_s
    );
    Ok(ExitCode::SUCCESS)
}
