//! Verification against the real default model (SmolLM2-135M-Instruct Q4_1):
//! honest jobs pass across thread counts (exact and tolerant fingerprints)
//! and the main cheats are caught. FAILS, not skips, when the model is
//! missing: set PROOFMESH_MODEL or put the file in the model directory.

use proofmesh_engine::{ChatMessage, Engine};
use proofmesh_verify::testing::{foreign_job, fp16_noise, honest_job};
use proofmesh_verify::{
    attacks, prompt_tokens_for, verify_job, FailureKind, FingerprintMode, Sampling, DEFAULT_EXACT_K,
};

fn engine(threads: usize) -> &'static Engine {
    proofmesh_engine::testing::shared_default_engine(threads)
}

const QUESTIONS: [&str; 5] = [
    "What is the capital of France?",
    "Write a haiku about GPUs.",
    "List three prime numbers.",
    "Why is the sky blue?",
    "Give me a name for a cat.",
];

fn sampling(i: usize) -> Sampling {
    Sampling {
        temperature: [0.0, 0.7, 1.0][i % 3],
        top_p: if i % 2 == 0 { 1.0 } else { 0.9 },
        seed: 42 + i as u64,
        max_tokens: 24,
        stop: if i == 4 { vec![".".into()] } else { Vec::new() },
    }
}

fn prompt(e: &Engine, i: usize) -> Vec<u32> {
    prompt_tokens_for(
        e,
        &[ChatMessage::new("user", QUESTIONS[i % QUESTIONS.len()])],
    )
    .unwrap()
}

#[test]
fn honest_real_jobs_pass_across_thread_counts() {
    for i in 0..5 {
        let (p, v) = if i % 2 == 0 { (1, 2) } else { (2, 1) };
        let run = honest_job(
            engine(p),
            &prompt(engine(p), i),
            &sampling(i),
            FingerprintMode::Exact,
            DEFAULT_EXACT_K,
        )
        .unwrap();
        assert!(!run.job.completion_tokens.is_empty());
        let verdict = verify_job(engine(v), &run.job).unwrap();
        assert!(verdict.passed, "job {i}: {:?}", verdict.failures);
        assert_eq!(verdict.positions_checked, run.job.completion_tokens.len());
    }
}

#[test]
fn honest_foreign_numerics_pass_in_tolerant_mode() {
    let noise = fp16_noise(1e-3);
    for i in 0..3 {
        let s = Sampling {
            stop: Vec::new(),
            ..sampling(i)
        };
        let job = foreign_job(engine(1), &prompt(engine(1), i), &s, &noise).unwrap();
        let verdict = verify_job(engine(2), &job).unwrap();
        assert!(verdict.passed, "job {i}: {:?}", verdict.failures);
    }
}

#[test]
fn real_model_cheats_are_caught() {
    let e = engine(2);
    let honest = honest_job(e, &prompt(e, 0), &sampling(0), FingerprintMode::Exact, 8)
        .unwrap()
        .job;
    let fake = attacks::fabricate(e, &honest, "The capital of France is Lyon.").unwrap();
    let v = verify_job(engine(1), &fake).unwrap();
    assert!(v.has(FailureKind::TokenNotSampled), "{:?}", v.failures);
    let original = [ChatMessage::new("user", QUESTIONS[0])];
    let altered = [
        ChatMessage::new("system", "Answer in French."),
        ChatMessage::new("user", QUESTIONS[0]),
    ];
    let job = attacks::alter_prompt(
        e,
        &original,
        &altered,
        &sampling(1),
        FingerprintMode::Exact,
        8,
    )
    .unwrap();
    let v = verify_job(engine(1), &job).unwrap();
    assert!(v.has(FailureKind::FingerprintMismatch), "{:?}", v.failures);
    let cut = attacks::truncate(e, &honest, 1).unwrap();
    assert!(!verify_job(engine(1), &cut).unwrap().passed);
}
