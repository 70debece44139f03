//! `proofmesh bench engine | verify | log | schedule | serve`: the engine's
//! prefill and decode throughput and peak memory (default model:
//! SmolLM2-135M-Instruct Q4_1), verification cost and detection, the
//! transparency log's durable append rate, placement throughput, and the
//! whole serving path of a local network under concurrent load.

mod attest;
mod engine;
mod ledger;
mod log;
mod schedule;
mod serve;
mod zk;

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_engine::{Engine, EngineOptions};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Benchmark the embedded inference engine (optionally against llama.cpp).
    Engine(engine::Args),
    /// Benchmark verification: fingerprint size, verify vs generate time,
    /// false positives on honest jobs, and detection per attack row.
    Verify {
        /// GGUF model (default: the cached SmolLM2-135M-Instruct).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Honest jobs to run and verify.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// Tokens generated per job.
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        /// Engine threads for provider and verifier.
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark the transparency log: durable appends per second through
    /// the real sequencer and SQLite store, append-to-checkpoint latency,
    /// proof sizes.
    Log(log::Args),
    /// Benchmark the durable ledger: balanced transactions per second
    /// through the settlement writer and SQLite.
    Ledger(ledger::Args),
    /// Benchmark placement: placements per second and decision time with
    /// N registered providers and a realistic mix of filters.
    Schedule(schedule::Args),
    /// Benchmark zero-knowledge proofs of inference (digits MLP, Groth16).
    Zk(zk::Args),
    /// Benchmark attestation verification: verifications per second for
    /// TDX, SGX, SEV-SNP and NVIDIA GPU evidence.
    Attest(attest::Args),
    /// Benchmark serving end to end: a local network (coordinator + 2
    /// providers + verifier, default config) under OpenAI-style requests at
    /// concurrency 1, 10 and 100: success rate, latency and TTFT
    /// percentiles, tokens/s, and the time the coordinator adds over the
    /// provider's own.
    Serve(serve::Args),
}

/// Runs the benchmark.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Engine(args) => engine::run(args).await,
        Command::Verify {
            model,
            jobs,
            gen_tokens,
            threads,
            json,
        } => verify(model, jobs, gen_tokens, threads, json).await,
        Command::Log(args) => log::run(args).await,
        Command::Ledger(args) => ledger::run(args).await,
        Command::Schedule(args) => schedule::run(args).await,
        Command::Zk(args) => zk::run(args).await,
        Command::Attest(args) => attest::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}

/// `bench verify`: the provider runs the default model; "other weights"
/// attackers run the same model requantized to Q8_0 and Q4_0.
async fn verify(
    model: Option<PathBuf>,
    jobs: usize,
    gen_tokens: usize,
    threads: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use candle_core::quantized::GgmlDType;
    let path = crate::cmd::provider::model_path(model)?;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let dir = tempfile::tempdir()?;
        let (q8, q4) = (dir.path().join("q8_0.gguf"), dir.path().join("q4_0.gguf"));
        proofmesh_verify::testing::requantize_gguf(&path, &q8, GgmlDType::Q4_1, GgmlDType::Q8_0)?;
        proofmesh_verify::testing::requantize_gguf(&path, &q4, GgmlDType::Q4_1, GgmlDType::Q4_0)?;
        let load = |p: &std::path::Path| Engine::load(p, EngineOptions { threads });
        let (provider, verifier) = (load(&path)?, load(&path)?);
        let (q8, q4) = (load(&q8)?, load(&q4)?);
        let attackers = [("requantized_q8_0", &q8), ("requantized_q4_0", &q4)];
        Ok(proofmesh_verify::bench::run(
            &provider,
            &verifier,
            jobs.max(1),
            gen_tokens,
            &attackers,
        )?)
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &report;
    println!(
        "verification benchmark: {} jobs, {} completion tokens",
        r.jobs, r.completion_tokens_total
    );
    println!(
        "  fingerprint        {:.1} bytes/token ({:.2} with header; TOPLOC {:.2})",
        r.fingerprint_bytes_per_token,
        r.fingerprint_bytes_per_token_with_header,
        r.toploc_bytes_per_token
    );
    println!(
        "  generate           {:.1} ms ({:.2} ms/token)",
        r.generate_ms_total, r.generate_ms_per_token
    );
    println!(
        "  verify             {:.1} ms ({:.2} ms/token)",
        r.verify_ms_total, r.verify_ms_per_token
    );
    println!(
        "  verify / generate  {:.3}",
        r.verify_to_generate_time_ratio
    );
    println!(
        "  false positives    {} of {} honest jobs",
        r.honest_false_positives, r.jobs
    );
    for a in &r.attacks {
        println!(
            "  attack {:<28} detected {}/{} ({:.0}%)",
            a.attack,
            a.detected,
            a.jobs,
            a.detection_rate * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
