//! Criterion bench of in-memory ledger throughput (balanced settlement
//! transactions applied per second). `proofmesh bench ledger` reports the
//! same workload's rate beside the durable-store figure (its code is in
//! crates/cli/src/cmd/bench/ledger/in_memory.rs; keep the two workloads
//! alike).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use proofmesh_ledger::settle::{
    deposit, escrow_at_dispatch, settle_completed, AuditDecision, JobParties, PoolShare,
    SettlementConfig,
};
use proofmesh_ledger::{Amount, Currency, Ledger, ModelPrice, Transaction};

const CLIENTS: usize = 64;

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

fn apply(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("apply_10k_settlement_transactions", |b| {
        b.iter_batched(
            || workload(N),
            |(mut ledger, txs)| {
                for (at, tx) in txs.into_iter().enumerate() {
                    ledger
                        .apply(tx, at as u64)
                        .expect("bench transaction applies");
                }
                ledger
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
