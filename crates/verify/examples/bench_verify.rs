//! Release-mode figures for `proofmesh bench verify`: honest jobs on the
//! default model (cost, false positives) and every attack row, with the
//! requantized model (Q4_1 → Q8_0 and → Q4_0) as "other weights" providers.
//! `cargo run --release -p proofmesh-verify --example bench_verify -- [jobs] [gen_tokens] [provider_threads] [verifier_threads]`

use candle_core::quantized::GgmlDType;
use proofmesh_engine::{default_model_path, Engine, EngineOptions};
use proofmesh_verify::testing::requantize_gguf;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn load(path: &std::path::Path, threads: usize) -> Result<Engine, Box<dyn std::error::Error>> {
    Ok(Engine::load(
        path,
        EngineOptions {
            threads: Some(threads),
        },
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (jobs, gen) = (arg(1, 8), arg(2, 48));
    let path = default_model_path();
    let dir = tempfile::tempdir()?;
    let q8 = dir.path().join("q8_0.gguf");
    let q4 = dir.path().join("q4_0.gguf");
    requantize_gguf(&path, &q8, GgmlDType::Q4_1, GgmlDType::Q8_0)?;
    requantize_gguf(&path, &q4, GgmlDType::Q4_1, GgmlDType::Q4_0)?;
    let provider = load(&path, arg(3, 2))?;
    let verifier = load(&path, arg(4, 2))?;
    let (q8, q4) = (load(&q8, 2)?, load(&q4, 2)?);
    let report = proofmesh_verify::bench::run(
        &provider,
        &verifier,
        jobs,
        gen,
        &[("requantized_q8_0", &q8), ("requantized_q4_0", &q4)],
    )?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
