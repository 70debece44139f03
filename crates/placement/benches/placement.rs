//! Criterion micro-benchmarks of placement with 10,000 synthetic providers:
//! the fast path per workload class, and the explain path for comparison.
//! `cargo bench -p proofmesh-placement --bench placement`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use proofmesh_placement::synthetic::{fleet, request, Rng, NOW_MS};
use proofmesh_placement::{ClassKind, PlacementConfig, Request};

fn requests_of(kind: ClassKind, n: usize, providers: usize) -> Vec<Request> {
    let mut rng = Rng::new(42);
    std::iter::repeat_with(|| request(&mut rng, providers, NOW_MS))
        .filter(|r| r.class.kind() == kind)
        .take(n)
        .collect()
}

fn placement(c: &mut Criterion) {
    let providers = 10_000;
    let reg = fleet(providers, 1, PlacementConfig::default(), NOW_MS);
    for kind in ClassKind::ALL {
        let reqs = requests_of(kind, 1_024, providers);
        let mut i = 0;
        c.bench_function(&format!("place/{}/10k", kind.name()), |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(reg.place(black_box(&reqs[i])).ok())
            })
        });
    }
    let reqs = requests_of(ClassKind::Interactive, 64, providers);
    let mut i = 0;
    c.bench_function("explain/interactive/10k", |b| {
        b.iter(|| {
            i = (i + 1) % reqs.len();
            black_box(reg.explain(black_box(&reqs[i])).ok())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = placement
}
criterion_main!(benches);
