//! `proofmesh bench engine`: prefill and decode throughput and peak memory of
//! the embedded engine on a model (default: SmolLM2-135M-Instruct Q4_1).

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_engine::{Engine, EngineOptions};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Benchmark the embedded inference engine.
    Engine {
        /// GGUF model (default: the cached SmolLM2-135M-Instruct).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Engine threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Prompt length for the prefill measurement.
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        /// Tokens to decode.
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the benchmark.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Engine {
        model,
        threads,
        prompt_tokens,
        gen_tokens,
        runs,
        json,
    } = cmd;
    let path = crate::cmd::provider::model_path(model)?;
    let name = proofmesh_provider::advertised_name(&path);
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let engine = Engine::load(&path, EngineOptions { threads })?;
        let r = proofmesh_engine::bench::run(&engine, prompt_tokens, gen_tokens, runs.max(1))?;
        Ok((name, engine.model_digest().to_string(), r))
    })
    .await??;
    let (name, digest, r) = report;
    if json {
        let v = serde_json::json!({
            "model": name,
            "model_digest": digest,
            "threads": r.threads,
            "runs": runs.max(1),
            "prompt_tokens": r.prompt_tokens,
            "generated_tokens": r.generated_tokens,
            "prefill_tokens_per_s": r.prefill_tokens_per_s,
            "decode_tokens_per_s": r.decode_tokens_per_s,
            "peak_rss_bytes": r.peak_rss_bytes,
            "model_file_bytes": r.model_file_bytes,
        });
        println!("{v}");
    } else {
        println!("engine benchmark: {name} ({digest})");
        println!("  threads            {}", r.threads);
        println!(
            "  prefill            {:.1} tokens/s ({} prompt tokens, median of {})",
            r.prefill_tokens_per_s,
            r.prompt_tokens,
            runs.max(1)
        );
        println!(
            "  decode             {:.1} tokens/s ({} tokens)",
            r.decode_tokens_per_s, r.generated_tokens
        );
        println!(
            "  peak RSS           {:.1} MB",
            r.peak_rss_bytes as f64 / 1e6
        );
        println!(
            "  model file         {:.1} MB",
            r.model_file_bytes as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
