//! Criterion bench of in-memory ledger throughput (balanced settlement
//! transactions applied per second); the durable-store figure is measured
//! by the store integration.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use proofmesh_ledger::bench::workload;

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
