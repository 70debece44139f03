//! Runs `bench::run` and prints the report as JSON: the quick way to measure
//! placement throughput outside criterion.
//! `cargo run --release -p proofmesh-placement --example bench_schedule -- [providers] [placements] [seed] [threads]`

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let cfg = proofmesh_placement::bench::BenchConfig {
        providers: arg(0, 10_000) as usize,
        placements: arg(1, 200_000) as usize,
        seed: arg(2, 1),
        threads: arg(3, 1) as usize,
    };
    let report = proofmesh_placement::bench::run_with(&cfg);
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serialises")
    );
}
