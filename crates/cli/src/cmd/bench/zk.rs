//! `proofmesh bench zk`: Groth16 proof of inference for the committed digits
//! MLP and CNN — setup, prove and verify time, proof and key size,
//! constraints and peak memory.

mod measure;

use std::process::ExitCode;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Proofs to make and verify; medians are reported.
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let runs = a.runs.max(1);
    let r = tokio::task::spawn_blocking(move || measure::run(runs)).await??;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &r.models {
        print_report(r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &measure::BenchReport) {
    println!("zk benchmark: {} ({}), {} runs", r.model, r.system, r.runs);
    println!(
        "  circuit      {} constraints, {} witness variables, {} public inputs",
        r.constraints, r.witness_variables, r.public_inputs
    );
    println!(
        "  setup        {:>8.1} ms (once per model, by the registrant)",
        r.setup_ms
    );
    println!("  prove        {:>8.1} ms   (target <= 50)", r.prove_ms);
    println!("  verify       {:>8.2} ms   (target <= 10)", r.verify_ms);
    println!("  proof        {:>8} bytes (target <= 2048)", r.proof_bytes);
    println!(
        "  keys         pk {} bytes, vk {} bytes",
        r.pk_bytes, r.vk_bytes
    );
    match r.peak_rss_bytes {
        Some(b) => println!(
            "  peak memory  {:>8.1} MiB (process VmHWM so far)",
            b as f64 / (1 << 20) as f64
        ),
        None => println!("  peak memory  unknown"),
    }
}
