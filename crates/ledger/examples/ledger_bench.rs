//! Prints the in-memory ledger throughput (`proofmesh_ledger::bench::run`)
//! as JSON and as a sentence: `cargo run --release -p proofmesh-ledger
//! --example ledger_bench -- [N]` (default 200 000 transactions).

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let report = proofmesh_ledger::bench::run(n);
    println!("{report}");
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
}
