//! Prints the zk benchmark for the committed digits MLP and CNN as JSON:
//! `cargo run -p proofmesh-zkml --example bench_zk -- [RUNS]`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(9);
    let r = proofmesh_zkml::bench::run(runs)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
