//! The in-memory half of `proofmesh bench ledger`: balanced transactions of
//! the pure ledger (`proofmesh-ledger`) applied per second.
//!
//! Why: the issue sets a target of 20 000 balanced transactions/s *with
//! durable storage*; that figure belongs to the store integration
//! ([`super::durable`]). This one is the ceiling the pure validator imposes
//! in front of any store. The criterion bench `cargo bench -p
//! proofmesh-ledger` times the same workload.
//!
//! Workload: 64 clients with prepaid credit and one provider; each job is an
//! escrow (client → escrow) followed by a release (escrow → earnings + fee +
//! pool + unused back to client), i.e. the real settlement path. The
//! transactions are built before timing starts; the timed part is
//! [`Ledger::apply`] alone (validation, hashing, idempotency index, balance
//! checks, journal append).

use std::time::Instant;

use proofmesh_ledger::settle::{
    deposit, escrow_at_dispatch, settle_completed, AuditDecision, JobParties, PoolShare,
    SettlementConfig,
};
use proofmesh_ledger::{Amount, Currency, Ledger, ModelPrice, Transaction};
use serde::Serialize;

const CLIENTS: usize = 64;

/// Measured figures; names carry units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Transactions applied in the timed loop.
    pub transactions: u64,
    /// Postings in those transactions.
    pub postings: u64,
    /// Wall time of the timed loop, seconds.
    pub elapsed_s: f64,
    /// Throughput, transactions per second.
    pub transactions_per_s: f64,
    /// Throughput, postings per second.
    pub postings_per_s: f64,
    /// Whether every currency summed to zero afterwards (it must).
    pub books_balance: bool,
}

/// A ledger with funded clients, and `n` escrow/release transactions for it.
fn workload(n: usize) -> (Ledger, Vec<Transaction>) {
    let usd = |m| Amount::from_micros(Currency::Usd, m).unwrap_or(Amount::zero(Currency::Usd));
    let price = ModelPrice::per_token(Currency::Usd, 100_000, 300_000);
    let cfg = SettlementConfig::default();
    let pool = PoolShare {
        pool: "bench-pool".into(),
        share_bps: 1_000,
    };
    let mut ledger = Ledger::new();
    for c in 0..CLIENTS {
        if let Ok(tx) = deposit(&format!("client-{c}"), usd(1 << 50), &format!("bench-{c}")) {
            // Setup only; a failure here shows up as rejected jobs below.
            let _ = ledger.apply(tx, 0);
        }
    }
    let mut txs = Vec::with_capacity(n + 1);
    let mut i = 0u32;
    while txs.len() < n {
        let job = JobParties {
            job_id: format!("job-{i}"),
            client: format!("client-{}", i as usize % CLIENTS),
            provider: "ed25519:bench-provider".into(),
        };
        let prompt = 200 + i % 50;
        let Ok(e) = escrow_at_dispatch(&job, &price, prompt, 256, None) else {
            break;
        };
        let charge = price
            .charge(prompt, 1 + i % 256)
            .unwrap_or(e.settlement.breakdown.held);
        let held = e.settlement.breakdown.held;
        txs.push(e.settlement.tx);
        let done = settle_completed(
            &job,
            &format!("rcpt-{i}"),
            held,
            charge,
            &cfg,
            Some(&pool),
            AuditDecision::NotAudited,
        );
        if let Ok(s) = done {
            txs.push(s.tx);
        }
        i += 1;
    }
    txs.truncate(n);
    (ledger, txs)
}

/// Applies `n` settlement transactions in memory and reports throughput.
pub fn run(n: usize) -> BenchReport {
    let (mut ledger, txs) = workload(n);
    let postings: u64 = txs.iter().map(|t| t.postings.len() as u64).sum();
    let count = txs.len() as u64;
    let start = Instant::now();
    let mut applied = 0u64;
    for (at, tx) in txs.into_iter().enumerate() {
        if ledger.apply(tx, at as u64).is_ok() {
            applied += 1;
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let books_balance = applied == count && ledger.totals().values().all(|t| *t == 0);
    BenchReport {
        transactions: applied,
        postings,
        elapsed_s,
        transactions_per_s: applied as f64 / elapsed_s,
        postings_per_s: postings as f64 / elapsed_s,
        books_balance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_applies_every_transaction_and_books_balance() {
        let r = run(1_001);
        assert_eq!(r.transactions, 1_001);
        assert!(r.books_balance);
        assert!(r.postings >= 2 * r.transactions);
        assert!(r.transactions_per_s > 0.0);
    }

    #[test]
    fn empty_run_is_empty() {
        let r = run(0);
        assert_eq!((r.transactions, r.postings), (0, 0));
        assert!(r.books_balance);
    }
}
