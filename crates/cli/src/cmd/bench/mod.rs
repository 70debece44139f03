//! `proofmesh bench engine | verify | log | schedule | serve`: the engine's
//! prefill and decode throughput and peak memory (default model:
//! SmolLM2-135M-Instruct Q4_1), verification cost and detection, the
//! transparency log's durable append rate, placement throughput, and the
//! whole serving path of a local network under concurrent load.

mod attest;
mod engine;
mod ledger;
mod log;
mod process;
mod schedule;
mod serve;
mod stats;
mod verify;
mod zk;

use std::path::PathBuf;
use std::process::ExitCode;

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
        } => verify::run(model, jobs, gen_tokens, threads, json).await,
        Command::Log(args) => log::run(args).await,
        Command::Ledger(args) => ledger::run(args).await,
        Command::Schedule(args) => schedule::run(args).await,
        Command::Zk(args) => zk::run(args).await,
        Command::Attest(args) => attest::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}
