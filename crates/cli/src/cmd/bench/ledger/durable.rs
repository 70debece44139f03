//! The durable half of `proofmesh bench ledger`: balanced transactions per
//! second through the real settlement writer (`proofmesh-settlement`'s
//! [`Bank`]) and SQLite store (WAL, synchronous=FULL), as a job workload
//! (escrow at dispatch, then release to provider earnings + protocol fee),
//! next to the in-memory rate of the pure ledger ([`super::in_memory`])
//! measured in the same run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use proofmesh_ledger::settle::{self, AuditDecision, JobParties, SettlementConfig};
use proofmesh_ledger::{Amount, Currency, ModelPrice};
use proofmesh_settlement::{Bank, BankConfig};
use proofmesh_store::SqliteStore;
use serde::Serialize;

use crate::cmd::bench::stats::percentile;

/// Figures; key names carry units.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Jobs settled (two transactions each).
    pub jobs: u64,
    /// Client accounts the jobs spread over.
    pub clients: u64,
    /// Concurrent callers.
    pub concurrency: u64,
    /// Durable balanced transactions per second.
    pub transactions_per_s: f64,
    /// Durable postings per second.
    pub postings_per_s: f64,
    /// Apply call to durable commit, median.
    pub apply_p50_ms: f64,
    /// ... 99th percentile.
    pub apply_p99_ms: f64,
    /// The pure in-memory ledger on the same machine, same run.
    pub in_memory_transactions_per_s: f64,
    /// Target on this machine.
    pub target_transactions_per_s: f64,
}

/// Runs `jobs` escrow+release pairs from `concurrency` callers.
pub async fn run(jobs: usize, clients: usize, concurrency: usize) -> anyhow::Result<BenchReport> {
    let in_memory = super::in_memory::run(jobs.clamp(1, 200_000)).transactions_per_s;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let store = SqliteStore::open(&dir.path().join("ledger.sqlite")).await?;
    let (bank, task) = Bank::open(Arc::new(store.clone()), BankConfig::default()).await?;
    let usd = Currency::parse("USD")?;
    let clients = clients.max(1);
    for c in 0..clients {
        let amount = Amount::from_micros(usd, 1_000_000_000)?;
        let tx = settle::deposit(&format!("c{c}"), amount, &format!("bench-{c}"))?;
        bank.apply(tx, 0).await?;
    }
    let price = ModelPrice {
        currency: usd,
        input_per_mtok_micros: 100_000,
        output_per_mtok_micros: 200_000,
        gpu_hour_micros: None,
    };
    let workers = concurrency.max(1);
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let (bank, price) = (bank.clone(), price.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let cfg = SettlementConfig::default();
            for j in (w..jobs).step_by(workers) {
                let job = JobParties {
                    job_id: format!("job{j}"),
                    client: format!("c{}", j % clients),
                    provider: format!("p{}", j % 97),
                };
                let esc = settle::escrow_at_dispatch(&job, &price, 200, 64, None)?;
                let held = esc.settlement.breakdown.held;
                let charge = price.charge(180, 40)?;
                let rel = settle::settle_completed(
                    &job,
                    &format!("rcpt{j}"),
                    held,
                    charge,
                    &cfg,
                    None,
                    AuditDecision::NotAudited,
                )?;
                for tx in [esc.settlement.tx, rel.tx] {
                    let t = Instant::now();
                    bank.apply(tx, 1).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.context("bench worker")??);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    bank.close().await;
    let _ = task.await;
    store.close().await;
    lat.sort_by(f64::total_cmp);
    let txs = lat.len() as f64;
    Ok(BenchReport {
        jobs: jobs as u64,
        clients: clients as u64,
        concurrency: workers as u64,
        transactions_per_s: txs / secs,
        // escrow: 2 postings, release: 3 (refund 0 skipped) + refund = 4.
        postings_per_s: (jobs as f64 * 6.0) / secs,
        apply_p50_ms: percentile(&lat, 0.5),
        apply_p99_ms: percentile(&lat, 0.99),
        in_memory_transactions_per_s: in_memory,
        target_transactions_per_s: 20_000.0,
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn settles_every_job_durably() {
        let r = super::run(50, 4, 8).await.unwrap();
        assert_eq!((r.jobs, r.clients, r.concurrency), (50, 4, 8));
        assert!(r.transactions_per_s > 0.0 && r.in_memory_transactions_per_s > 0.0);
        assert!(r.apply_p50_ms <= r.apply_p99_ms);
        let j = serde_json::to_value(&r).unwrap();
        assert!(j.get("transactions_per_s").is_some() && j.get("apply_p99_ms").is_some());
    }
}
