//! `proofmesh bench verify`: fingerprint size, verify vs generate time,
//! false positives on honest jobs and detection per attack row
//! ([`measure`]), printed as text or one JSON object.

mod measure;

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_engine::{Engine, EngineOptions};

/// `bench verify`: the provider runs the default model; "other weights"
/// attackers run the same model requantized to Q8_0 and Q4_0.
pub async fn run(
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
        Ok(measure::run(
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
