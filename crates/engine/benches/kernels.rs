//! Criterion micro-benchmarks of the quantized matmul kernels: decode-shaped
//! (one row, weights in and out of cache) and prefill-shaped (many rows)
//! products of the real model's shapes, for every kernel this CPU has, in
//! multiply-accumulates per second. `cargo bench -p proofmesh-engine`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proofmesh_engine::microbench::MatmulCase;

fn matmuls(c: &mut Criterion) {
    // (type, n, k, m): SmolLM2-135M's FFN and output shapes.
    let cases = [
        ("q4_1", 1536, 576, 1),
        ("q4_1", 1536 * 40, 576, 1),
        ("q8_0", 49152, 576, 1),
        ("q4_1", 1536, 576, 64),
        ("q4_1", 576, 1536, 64),
        ("q8_0", 4096, 576, 80),
    ];
    for (t, n, k, m) in cases {
        let mut case = MatmulCase::new(t, n, k, m).expect("bench case");
        let mut g = c.benchmark_group(format!("matmul_{t}_n{n}_k{k}_m{m}"));
        g.throughput(Throughput::Elements(case.macs()));
        g.sample_size(10);
        for kernel in MatmulCase::kernels() {
            g.bench_function(kernel.as_str(), |b| b.iter(|| case.run(&kernel)));
        }
        g.finish();
    }
}

criterion_group!(benches, matmuls);
criterion_main!(benches);
