//! Runs the attestation verification benchmark without the full CLI:
//! `cargo run --release -p proofmesh-attest --example attest_bench [ITERS]`.

fn main() {
    let iters = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let r = proofmesh_attest::bench::run(iters);
    match serde_json::to_string_pretty(&r) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
