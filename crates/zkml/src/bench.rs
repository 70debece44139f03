//! `proofmesh bench zk`: setup, prove and verify times, proof size, key
//! sizes, constraint count and peak memory for each committed worked model
//! (the digits MLP and CNN).

use std::time::Instant;

use ark_bn254::Fr;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};

use crate::circuit::{num_public_inputs, InferenceCircuit};
use crate::model::QuantModel;
use crate::{builtin_model, prove, setup, verify_bundle, ZkError, BUILTIN_MODELS};

/// The first image of the digits dataset (a 0), used as the bench input.
pub const SAMPLE_ZERO: [i8; 64] = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0,
    8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6,
    13, 10, 0, 0, 0,
];

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

/// Peak resident set of this process from `/proc/self/status`.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) of this process from `/proc/self/stat`, in
/// milliseconds, assuming the usual 100 ticks per second.
pub fn cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * 10.0)
}

/// The whole suite: one report per committed model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchSuite {
    /// Per-model figures, smallest model first.
    pub models: Vec<BenchReport>,
}

/// Benchmarks every committed model (see [`run_model`]).
pub fn run(runs: usize) -> Result<BenchSuite, ZkError> {
    let mut models = Vec::new();
    for (name, _) in BUILTIN_MODELS {
        models.push(run_model(name, &builtin_model(name)?, runs)?);
    }
    Ok(BenchSuite { models })
}

/// Benchmarks one model on [`SAMPLE_ZERO`]: one setup, then `runs` proofs
/// and verifications.
pub fn run_model(name: &str, model: &QuantModel, runs: usize) -> Result<BenchReport, ZkError> {
    let runs = runs.max(1);
    let cs = ConstraintSystem::<Fr>::new_ref();
    InferenceCircuit::blank(model).generate_constraints(cs.clone())?;
    let mut rng = rand_core::OsRng;
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
    let b = last.ok_or(ZkError::VerificationFailed)?;
    Ok(BenchReport {
        model: name.into(),
        model_digest: model.digest_hex(),
        system: "groth16-bn254 (arkworks 0.6)".into(),
        runs,
        constraints: cs.num_constraints(),
        witness_variables: cs.num_witness_variables(),
        public_inputs: num_public_inputs(model),
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
