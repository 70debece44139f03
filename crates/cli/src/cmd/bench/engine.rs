//! `proofmesh bench engine`: the embedded engine's prefill and decode
//! throughput, peak memory and verify/generate time ratio; with
//! `--against-llama-cpp`, the same figures from llama.cpp on the same file,
//! each engine measured in its own fresh process so peak RSS is its own.

mod measure;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode};

use anyhow::Context;
use proofmesh_engine::{Engine, EngineOptions};
use serde_json::Value;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// Also measure llama.cpp (bench/llama-ref) on the same file, and run
    /// each engine in a fresh subprocess.
    #[arg(long)]
    against_llama_cpp: bool,
    /// Prebuilt llama-ref binary (default: build and run it with cargo from
    /// bench/llama-ref).
    #[arg(long)]
    llama_ref_bin: Option<PathBuf>,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let path = crate::cmd::provider::model_path(a.model.clone())?;
    if a.against_llama_cpp {
        return against_llama_cpp(&a, &path).await;
    }
    let v = tokio::task::spawn_blocking({
        let (threads, p, g, runs) = (a.threads, a.prompt_tokens, a.gen_tokens, a.runs.max(1));
        move || measure(&path, threads, p, g, runs)
    })
    .await??;
    if a.json {
        println!("{v}");
    } else {
        print_one(&v);
    }
    Ok(ExitCode::SUCCESS)
}

fn measure(
    path: &Path,
    threads: Option<usize>,
    prompt_tokens: usize,
    gen_tokens: usize,
    runs: usize,
) -> anyhow::Result<Value> {
    let name = proofmesh_provider::advertised_name(path);
    let engine = Engine::load(path, EngineOptions { threads })?;
    let r = measure::run(&engine, prompt_tokens, gen_tokens, runs)?;
    Ok(serde_json::json!({
        "engine": "proofmesh",
        "model": name,
        "model_digest": engine.model_digest(),
        "threads": r.threads,
        "runs": runs,
        "prompt_tokens": r.prompt_tokens,
        "generated_tokens": r.generated_tokens,
        "prefill_tokens_per_s": r.prefill_tokens_per_s,
        "decode_tokens_per_s": r.decode_tokens_per_s,
        "peak_rss_bytes": r.peak_rss_bytes,
        "model_file_bytes": r.model_file_bytes,
        "verify_prompt_tokens": measure::VERIFY_PROMPT_TOKENS,
        "generate_ms": r.generate_ms,
        "verify_ms": r.verify_ms,
        "verify_to_generate_ratio": r.verify_to_generate_ratio,
    }))
}

fn print_one(v: &Value) {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    println!("engine benchmark: {} ({})", v["model"], v["model_digest"]);
    println!("  threads            {}", v["threads"]);
    println!(
        "  prefill            {:.1} tokens/s ({} prompt tokens, median of {})",
        f("prefill_tokens_per_s"),
        v["prompt_tokens"],
        v["runs"]
    );
    println!(
        "  decode             {:.1} tokens/s ({} tokens)",
        f("decode_tokens_per_s"),
        v["generated_tokens"]
    );
    println!(
        "  verify / generate  {:.3} ({:.1} ms vs {:.1} ms; {}-token prompt)",
        f("verify_to_generate_ratio"),
        f("verify_ms"),
        f("generate_ms"),
        v["verify_prompt_tokens"]
    );
    println!("  peak RSS           {:.1} MB", f("peak_rss_bytes") / 1e6);
    println!("  model file         {:.1} MB", f("model_file_bytes") / 1e6);
}

/// Both engines, each in its own process, same file, threads and lengths.
async fn against_llama_cpp(a: &Args, path: &Path) -> anyhow::Result<ExitCode> {
    let threads = a.threads.unwrap_or(2);
    let common = [
        "--threads".to_string(),
        threads.to_string(),
        "--prompt-tokens".into(),
        a.prompt_tokens.to_string(),
        "--gen-tokens".into(),
        a.gen_tokens.to_string(),
        "--runs".into(),
        a.runs.max(1).to_string(),
    ];
    let load_before = load_average();
    let exe = std::env::current_exe().context("locating the proofmesh binary")?;
    let mut ours = Process::new(exe);
    ours.args(["bench", "engine", "--json", "--model"])
        .arg(path)
        .args(&common);
    let ours = run_json(ours, "proofmesh engine bench")?;
    let llama = run_json(
        llama_command(a, path, &common),
        "llama.cpp reference (bench/llama-ref)",
    )?;
    let load_after = load_average();
    let file = ours["model_file_bytes"].as_f64().unwrap_or(1.0);
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let row = |v: &Value| {
        serde_json::json!({
            "prefill_tokens_per_s": f(v, "prefill_tokens_per_s"),
            "decode_tokens_per_s": f(v, "decode_tokens_per_s"),
            "peak_rss_bytes": f(v, "peak_rss_bytes"),
            "peak_rss_over_file": f(v, "peak_rss_bytes") / file,
            "verify_to_generate_ratio": f(v, "verify_to_generate_ratio"),
        })
    };
    let out = serde_json::json!({
        "model": ours["model"],
        "model_file_bytes": file,
        "threads": threads,
        "runs": a.runs.max(1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "proofmesh": row(&ours),
        "llama_cpp": row(&llama),
        "decode_speedup": f(&ours, "decode_tokens_per_s") / f(&llama, "decode_tokens_per_s").max(1e-9),
        "prefill_speedup": f(&ours, "prefill_tokens_per_s") / f(&llama, "prefill_tokens_per_s").max(1e-9),
    });
    if a.json {
        println!("{out}");
    } else {
        print_comparison(&out);
    }
    Ok(ExitCode::SUCCESS)
}

fn llama_command(a: &Args, path: &Path, common: &[String]) -> Process {
    let mut cmd = match &a.llama_ref_bin {
        Some(bin) => Process::new(bin),
        None => {
            let manifest =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/llama-ref/Cargo.toml");
            let mut c = Process::new(
                proofmesh_ambient::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            );
            c.args(["run", "--quiet", "--release", "--manifest-path"])
                .arg(manifest)
                .arg("--");
            c
        }
    };
    cmd.arg("--model").arg(path).args(common);
    cmd
}

/// Run a command whose last stdout line is a JSON object.
fn run_json(mut cmd: Process, what: &str) -> anyhow::Result<Value> {
    let out = cmd
        .output()
        .with_context(|| format!("starting the {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("parsing the {what} output: {text}"))
}

/// The 1-minute load average, so noisy figures can be recognised.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn print_comparison(v: &Value) {
    let f = |e: &str, k: &str| v[e][k].as_f64().unwrap_or(0.0);
    println!(
        "engine benchmark vs llama.cpp: {} ({:.1} MB file), {} threads, median of {} runs",
        v["model"],
        v["model_file_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        v["threads"],
        v["runs"]
    );
    println!(
        "  {:<10} {:>14} {:>14} {:>14} {:>10} {:>16}",
        "engine", "prefill tok/s", "decode tok/s", "peak RSS MB", "RSS/file", "verify/generate"
    );
    for (label, key) in [("proofmesh", "proofmesh"), ("llama.cpp", "llama_cpp")] {
        println!(
            "  {:<10} {:>14.1} {:>14.1} {:>14.1} {:>10.2} {:>16.3}",
            label,
            f(key, "prefill_tokens_per_s"),
            f(key, "decode_tokens_per_s"),
            f(key, "peak_rss_bytes") / 1e6,
            f(key, "peak_rss_over_file"),
            f(key, "verify_to_generate_ratio")
        );
    }
    println!(
        "  decode {:.2}x, prefill {:.2}x llama.cpp; load average {} -> {}",
        v["decode_speedup"].as_f64().unwrap_or(0.0),
        v["prefill_speedup"].as_f64().unwrap_or(0.0),
        v["load_average_before"],
        v["load_average_after"]
    );
}
