//! The measurement behind `proofmesh bench zk`: setup, prove and verify
//! times, proof size, key sizes, constraint count and peak memory for each
//! committed worked model (the digits MLP and CNN), through
//! `proofmesh-zkml`'s public API.

use std::time::Instant;

use anyhow::Context;
use proofmesh_zkml::digits::SAMPLE_ZERO;
use proofmesh_zkml::{
    builtin_model, circuit, prove, setup, verify_bundle, OsRng, QuantModel, BUILTIN_MODELS,
};

use crate::cmd::bench::process::{cpu_ms, peak_rss_bytes};

/// Figures for one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// Model name.
    pub model: String,
    /// Hex model digest.
    pub model_digest: String,
    /// Proving system.
    pub system: String,
    /// Repetitions behind each median.
    pub runs: usize,
    /// R1CS constraints.
    pub constraints: usize,
    /// Witness variables.
    pub witness_variables: usize,
    /// Public inputs (without the constant 1).
    pub public_inputs: usize,
    /// One setup.
    pub setup_ms: f64,
    /// Median prove time (witness generation included).
    pub prove_ms: f64,
    /// Process CPU time per proof, all threads (less sensitive to a busy machine).
    pub prove_cpu_ms: Option<f64>,
    /// Median verify time (bundle decoding included).
    pub verify_ms: f64,
    /// Compressed proof.
    pub proof_bytes: usize,
    /// Proving key file.
    pub pk_bytes: usize,
    /// Verifying key file.
    pub vk_bytes: usize,
    /// Process peak resident set (Linux `VmHWM`) after this model's runs, if
    /// known (models run in order, so later figures include earlier peaks).
    pub peak_rss_bytes: Option<u64>,
    /// Predicted class of the sample input.
    pub class: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The whole suite: one report per committed model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchSuite {
    /// Per-model figures, smallest model first.
    pub models: Vec<BenchReport>,
}

/// Benchmarks every committed model (see [`run_model`]).
pub fn run(runs: usize) -> anyhow::Result<BenchSuite> {
    let mut models = Vec::new();
    for (name, _) in BUILTIN_MODELS {
        models.push(run_model(name, &builtin_model(name)?, runs)?);
    }
    Ok(BenchSuite { models })
}

/// Benchmarks one model on [`SAMPLE_ZERO`]: one setup, then `runs` proofs
/// and verifications.
pub fn run_model(name: &str, model: &QuantModel, runs: usize) -> anyhow::Result<BenchReport> {
    let runs = runs.max(1);
    let size = circuit::size(model)?;
    let mut rng = OsRng;
    let t = Instant::now();
    let (pk, vk) = setup(model, &mut rng)?;
    let setup_ms = ms(t);
    let (mut prove_t, mut verify_t) = (Vec::new(), Vec::new());
    let mut last = None;
    let mut cpu = 0.0;
    for i in 0..runs {
        let nonce = [i as u8; 32];
        let (t, c0) = (Instant::now(), cpu_ms());
        let b = prove(&pk, model, &SAMPLE_ZERO, &nonce, &mut rng)?;
        prove_t.push(ms(t));
        cpu += cpu_ms().zip(c0).map_or(f64::NAN, |(a, b)| a - b);
        let t = Instant::now();
        verify_bundle(&vk, &b)?;
        verify_t.push(ms(t));
        last = Some(b);
    }
    let b = last.context("no proof was made")?;
    Ok(BenchReport {
        model: name.into(),
        model_digest: model.digest_hex(),
        system: "groth16-bn254 (arkworks 0.6)".into(),
        runs,
        constraints: size.constraints,
        witness_variables: size.witness_variables,
        public_inputs: size.public_inputs,
        setup_ms,
        prove_ms: median(prove_t),
        prove_cpu_ms: Some(cpu / runs as f64).filter(|c| c.is_finite()),
        verify_ms: median(verify_t),
        proof_bytes: b.proof_bytes()?.len(),
        pk_bytes: pk.to_bytes().len(),
        vk_bytes: vk.to_bytes().len(),
        peak_rss_bytes: peak_rss_bytes(),
        class: b.class,
    })
}
