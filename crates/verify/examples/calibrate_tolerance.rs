//! Calibrates the tolerant fingerprint's tolerance: runs honest jobs through
//! simulated foreign engines (fp16 logits, fp16 + relative noise) and cheats
//! (requantized weights, another model) and prints, per tolerance, the share
//! of jobs that fail verification — false positives for the honest rows,
//! detection for the others.
//! `cargo run --release -p proofmesh-verify --example calibrate_tolerance -- [tiny|real] [jobs] [tokens]`

use candle_core::quantized::GgmlDType;
use proofmesh_engine::testing::write_tiny_gguf;
use proofmesh_engine::{default_model_path, Engine, EngineOptions};
use proofmesh_verify::testing::{
    foreign_job, fp16_noise, job_messages, job_sampling, requantize_gguf, round_to_f16, Perturb,
};
use proofmesh_verify::{prompt_tokens_for, verify_job_with, JobUnderAudit, VerifyOptions};

const TOLERANCES: [f64; 9] = [0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn load(path: &std::path::Path) -> Result<Engine, Box<dyn std::error::Error>> {
    Ok(Engine::load(path, EngineOptions { threads: Some(2) })?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tiny = std::env::args().nth(1).as_deref() != Some("real");
    let jobs = arg(2, if tiny { 200 } else { 8 });
    let tokens = arg(3, 32);
    let dir = tempfile::tempdir()?;
    let base = if tiny {
        let p = dir.path().join("tiny.gguf");
        write_tiny_gguf(&p, 1)?;
        p
    } else {
        default_model_path()
    };
    let requant = dir.path().join("requant.gguf");
    requantize_gguf(&base, &requant, GgmlDType::Q4_1, GgmlDType::Q8_0)?;
    let verifier = load(&base)?;
    let requant = load(&requant)?;
    let other = if tiny {
        let p = dir.path().join("other.gguf");
        write_tiny_gguf(&p, 2)?;
        Some(load(&p)?)
    } else {
        None
    };
    let none = |_: usize, _: &mut [f32]| {};
    let n3 = fp16_noise(1e-3);
    let n2 = fp16_noise(1e-2);
    let mut rows: Vec<(&str, &Engine, Perturb<'_>)> = vec![
        ("honest_bit_exact", &verifier, &none),
        ("honest_fp16_logits", &verifier, &round_to_f16),
        ("honest_fp16_noise_1e-3", &verifier, &n3),
        ("honest_fp16_noise_1e-2", &verifier, &n2),
        ("requantized_q8_0", &requant, &none),
    ];
    if let Some(o) = &other {
        rows.push(("other_model", o, &none));
    }
    println!(
        "model {} jobs {jobs} tokens {tokens}",
        verifier.model_name()
    );
    println!("share of jobs failing verification, by tolerance (nats):");
    print!("{:<24}", "scenario");
    for t in TOLERANCES {
        print!("{t:>8}");
    }
    println!();
    for (name, engine, perturb) in rows {
        let mut made: Vec<JobUnderAudit> = Vec::with_capacity(jobs);
        for i in 0..jobs {
            let prompt = prompt_tokens_for(&verifier, &job_messages(i))?;
            made.push(foreign_job(
                engine,
                &prompt,
                &job_sampling(i, tokens),
                perturb,
            )?);
        }
        print!("{name:<24}");
        for tolerance in TOLERANCES {
            let opts = VerifyOptions {
                tolerance,
                ..VerifyOptions::default()
            };
            let mut failed = 0;
            for job in &made {
                let v = verify_job_with(&verifier, job, &opts)?;
                failed += usize::from(!v.passed);
            }
            print!("{:>8.3}", failed as f64 / jobs as f64);
        }
        println!();
    }
    Ok(())
}
