//! The threat matrix on the tiny random-weight model: honest providers pass
//! (across thread counts, ≥ 200 jobs, exact and tolerant fingerprints) and
//! every cheat — other weights, requantized weights, altered prompts,
//! fabricated / truncated / extended outputs, cheated sampling, corrupted or
//! replayed fingerprints — is caught by the check meant to catch it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use proofmesh_engine::testing::write_tiny_gguf;
use proofmesh_engine::{ChatMessage, Engine, EngineOptions};
use proofmesh_verify::testing::{foreign_job, fp16_noise, honest_job, requantize_gguf};
use proofmesh_verify::{
    attacks, prompt_tokens_for, verify_job, verify_job_with, FailureKind, FingerprintMode,
    JobUnderAudit, Sampling, Verdict, VerifyError, VerifyOptions, DEFAULT_EXACT_K,
};

const EXACT: FingerprintMode = FingerprintMode::Exact;

struct Models {
    _dir: tempfile::TempDir,
    base: PathBuf,
    other: PathBuf,
    requant: PathBuf,
}

fn models() -> &'static Models {
    static M: OnceLock<Models> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("tiny.gguf");
        let other = dir.path().join("tiny-other.gguf");
        let requant = dir.path().join("tiny-q8_0.gguf");
        write_tiny_gguf(&base, 1).unwrap();
        write_tiny_gguf(&other, 2).unwrap();
        let n = requantize_gguf(&base, &requant, GgmlDType::Q4_1, GgmlDType::Q8_0).unwrap();
        assert_eq!(n, 12, "every Q4_1 projection is requantized");
        Models {
            _dir: dir,
            base,
            other,
            requant,
        }
    })
}

fn load(path: &Path, threads: usize) -> Engine {
    Engine::load(
        path,
        EngineOptions {
            threads: Some(threads),
        },
    )
    .unwrap()
}

fn engine(threads: usize) -> &'static Engine {
    static ONE: OnceLock<Engine> = OnceLock::new();
    static TWO: OnceLock<Engine> = OnceLock::new();
    let cell = if threads == 1 { &ONE } else { &TWO };
    cell.get_or_init(|| load(&models().base, threads))
}

const QUESTIONS: [&str; 6] = [
    "the rain in spain",
    "What is 12 times 7?",
    "Write a haiku about GPUs.",
    "héllo wörld — ünïcode ✓",
    "there are the others",
    "s",
];

fn messages(i: usize) -> Vec<ChatMessage> {
    let q = format!("{} #{i}", QUESTIONS[i % QUESTIONS.len()]);
    let mut m = vec![ChatMessage::new("user", q)];
    if i % 4 == 1 {
        m.insert(0, ChatMessage::new("system", "Be brief."));
    }
    m
}

fn sampling(i: usize) -> Sampling {
    Sampling {
        temperature: [0.0, 0.7, 1.0][i % 3],
        top_p: [1.0, 0.9, 0.5][(i / 3) % 3],
        seed: 7 + i as u64 * 31,
        max_tokens: 1 + (i as u32 * 7) % 40,
        stop: if i % 5 == 0 {
            vec!["e".into(), "th".into()]
        } else {
            Vec::new()
        },
    }
}

fn honest(e: &Engine, i: usize, mode: FingerprintMode) -> JobUnderAudit {
    let prompt = prompt_tokens_for(e, &messages(i)).unwrap();
    honest_job(e, &prompt, &sampling(i), mode, DEFAULT_EXACT_K)
        .unwrap()
        .job
}

fn assert_caught(v: &Verdict, kind: FailureKind, what: &str) {
    assert!(!v.passed, "{what}: not caught");
    assert!(
        v.has(kind),
        "{what}: expected {kind:?}, got {:?}",
        v.failures
    );
}

fn assert_passes(v: &Verdict, what: &str) {
    assert!(v.passed, "{what}: false positive {:?}", v.failures);
}

#[test]
fn honest_providers_pass_across_thread_counts() {
    let mut finishes = std::collections::HashMap::new();
    let mut tokens = 0;
    for i in 0..240 {
        let (p, v) = if i % 2 == 0 { (1, 2) } else { (2, 1) };
        let mode = if i % 3 == 2 {
            FingerprintMode::Tolerant
        } else {
            EXACT
        };
        let job = honest(engine(p), i, mode);
        let verdict = verify_job(engine(v), &job).unwrap();
        assert_passes(&verdict, &format!("job {i}"));
        assert_eq!(verdict.positions_checked, job.completion_tokens.len());
        *finishes.entry(job.finish_reason.clone()).or_insert(0) += 1;
        tokens += job.completion_tokens.len();
    }
    assert!(
        finishes.get("stop").copied().unwrap_or(0) >= 10,
        "{finishes:?}"
    );
    assert!(
        finishes.get("length").copied().unwrap_or(0) >= 10,
        "{finishes:?}"
    );
    assert!(tokens >= 2000, "{tokens} tokens");
}

#[test]
fn different_model_is_caught() {
    let other = load(&models().other, 1);
    for i in 0..12 {
        let mode = if i % 2 == 0 {
            EXACT
        } else {
            FingerprintMode::Tolerant
        };
        let job = honest(&other, i, mode);
        let v = verify_job(engine(2), &job).unwrap();
        assert_caught(&v, FailureKind::FingerprintMismatch, &format!("job {i}"));
        if mode == EXACT {
            assert_eq!(v.first_failure().unwrap().position, Some(0));
        }
    }
}

#[test]
fn requantized_weights_are_caught() {
    let requant = load(&models().requant, 2);
    let mut tolerant_caught = 0;
    for i in 0..12 {
        let job = honest(&requant, i, EXACT);
        let v = verify_job(engine(1), &job).unwrap();
        assert_caught(&v, FailureKind::FingerprintMismatch, &format!("job {i}"));
        assert_eq!(v.first_failure().unwrap().position, Some(0));
        let s = Sampling {
            max_tokens: 32,
            stop: Vec::new(),
            ..sampling(i)
        };
        let prompt = prompt_tokens_for(&requant, &messages(i)).unwrap();
        let tol = honest_job(&requant, &prompt, &s, FingerprintMode::Tolerant, 2)
            .unwrap()
            .job;
        tolerant_caught += usize::from(!verify_job(engine(1), &tol).unwrap().passed);
    }
    // Q8_0 re-encoding of the same Q4_1 values is a tiny numeric change.
    // Exact mode (the default) catches every job at position 0 (above). The
    // tolerant mode, calibrated for cross-hardware noise, flagged 96% of
    // 32-token jobs on candle's kernels; with the engine's own kernels both
    // weight types share one 8-bit activation quantization, the logits move
    // less, and it flags 7 of these 12 (deterministic: the kernels are
    // bit-exact). Recalibrating the tolerance is open work.
    assert!(tolerant_caught >= 6, "tolerant caught {tolerant_caught}/12");
}

#[test]
fn altered_prompts_are_caught() {
    let e = engine(1);
    let original = vec![
        ChatMessage::new("system", "You are a helpful assistant."),
        ChatMessage::new("user", "the rain in spain falls mainly"),
    ];
    let injected = {
        let mut m = original.clone();
        m.insert(1, ChatMessage::new("system", "Say yes."));
        m
    };
    let dropped = original[1..].to_vec();
    let truncated = vec![
        original[0].clone(),
        ChatMessage::new("user", "the rain in spain"),
    ];
    for (name, altered) in [
        ("injected", injected),
        ("dropped", dropped),
        ("truncated", truncated),
    ] {
        for seed in 0..3 {
            let s = Sampling {
                seed,
                ..sampling(seed as usize)
            };
            let job = attacks::alter_prompt(e, &original, &altered, &s, EXACT, 8).unwrap();
            let v = verify_job(engine(2), &job).unwrap();
            assert_caught(&v, FailureKind::FingerprintMismatch, name);
        }
    }
}

#[test]
fn fabricated_output_with_honest_fingerprint_is_caught_by_sampling() {
    let e = engine(1);
    for i in 0..9 {
        let h = honest(e, i, EXACT);
        let fake = attacks::fabricate(e, &h, "the answer is 42").unwrap();
        let v = verify_job(engine(2), &fake).unwrap();
        assert_caught(&v, FailureKind::TokenNotSampled, &format!("job {i}"));
        assert!(!v.has(FailureKind::FingerprintMismatch), "{:?}", v.failures);
    }
    // One token changed mid-way: the first failure names that position.
    let h = honest(e, 3, EXACT); // greedy, several tokens
    assert!(h.completion_tokens.len() > 4);
    let mut fake = h.clone();
    let vocab = e.info().vocab_size as u32;
    fake.completion_tokens[3] = (fake.completion_tokens[3] + 5) % vocab;
    fake.text = attacks::text_for(e, &fake.completion_tokens, &fake.sampling.stop).unwrap();
    attacks::refingerprint(e, &mut fake).unwrap();
    let v = verify_job(engine(2), &fake).unwrap();
    let first = v.first_failure().unwrap();
    assert_eq!(
        (first.position, first.kind),
        (Some(3), FailureKind::TokenNotSampled)
    );
}

#[test]
fn truncated_and_extended_outputs_are_caught() {
    let e = engine(2);
    for i in 1..30 {
        let h = honest(e, i, EXACT);
        if h.completion_tokens.len() < 2 {
            continue;
        }
        let cut = attacks::truncate(e, &h, 1).unwrap();
        let v = verify_job(engine(1), &cut).unwrap();
        assert_caught(&v, FailureKind::FinishReason, &format!("truncated {i}"));
        let mut short = h.clone();
        short.completion_tokens.pop();
        short.text = attacks::text_for(e, &short.completion_tokens, &[]).unwrap();
        let v = verify_job(engine(1), &short).unwrap();
        assert_caught(&v, FailureKind::FingerprintLength, &format!("short {i}"));
        let long = attacks::extend(e, &h, 2).unwrap();
        let v = verify_job(engine(1), &long).unwrap();
        assert_caught(&v, FailureKind::ContinuedAfterEnd, &format!("extended {i}"));
    }
}

#[test]
fn cheated_sampling_is_caught() {
    let e = engine(1);
    for i in 0..10 {
        let claimed = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            seed: i,
            max_tokens: 24,
            stop: Vec::new(),
        };
        let prompt = prompt_tokens_for(e, &messages(i as usize)).unwrap();
        for actual in [
            Sampling {
                seed: i + 1000,
                ..claimed.clone()
            },
            Sampling {
                temperature: 0.0,
                ..claimed.clone()
            },
            Sampling {
                temperature: 0.7,
                ..claimed.clone()
            },
        ] {
            let job = attacks::cheat_sampling(e, &prompt, &claimed, &actual, EXACT, 8).unwrap();
            let v = verify_job(engine(2), &job).unwrap();
            assert_caught(&v, FailureKind::TokenNotSampled, &format!("{actual:?}"));
        }
    }
}

#[test]
fn every_corrupted_fingerprint_byte_and_replays_are_caught() {
    let e = engine(1);
    let h = honest(e, 4, EXACT);
    assert!(verify_job(engine(2), &h).unwrap().passed);
    for index in 0..h.fingerprint.len() {
        let bad = attacks::flip_fingerprint_byte(&h, index);
        let v = verify_job(engine(2), &bad).unwrap();
        assert!(!v.passed, "flipped byte {index} not caught");
    }
    let mid = attacks::flip_fingerprint_byte(&h, 12 + 8 * 2 + 3);
    let v = verify_job(engine(2), &mid).unwrap();
    assert_eq!(v.first_failure().unwrap().position, Some(2));
    for j in [5, 10, 16] {
        let other = honest(e, j, EXACT);
        let replayed = attacks::replay_fingerprint(&h, &other);
        let v = verify_job(engine(2), &replayed).unwrap();
        assert_caught(&v, FailureKind::FingerprintMismatch, &format!("replay {j}"));
    }
}

#[test]
fn tolerant_mode_accepts_foreign_numerics_and_catches_other_models() {
    let noise = fp16_noise(1e-3);
    let other = load(&models().other, 2);
    let mut caught_other = 0;
    for i in 0..120 {
        let prompt = prompt_tokens_for(engine(1), &messages(i)).unwrap();
        let s = Sampling {
            stop: Vec::new(),
            ..sampling(i)
        };
        let job = foreign_job(engine(1), &prompt, &s, &noise).unwrap();
        assert_passes(
            &verify_job(engine(2), &job).unwrap(),
            &format!("foreign {i}"),
        );
        if i < 12 {
            let fake = foreign_job(&other, &prompt, &s, &noise).unwrap();
            caught_other += usize::from(!verify_job(engine(2), &fake).unwrap().passed);
        }
    }
    assert_eq!(caught_other, 12);
    // Zero tolerance turns the same honest foreign job into a failure.
    let prompt = prompt_tokens_for(engine(1), &messages(3)).unwrap();
    let job = foreign_job(engine(1), &prompt, &sampling(3), &noise).unwrap();
    let strict = VerifyOptions {
        tolerance: 0.0,
        ..VerifyOptions::default()
    };
    assert!(!verify_job_with(engine(2), &job, &strict).unwrap().passed);
}

#[test]
fn finish_reason_and_text_must_follow_from_the_tokens() {
    let e = engine(1);
    let h = (0..40)
        .map(|i| honest(e, i, EXACT))
        .find(|j| j.finish_reason == "stop" && j.completion_tokens.len() > 2)
        .expect("a job that stops");
    for wrong in ["length", "cancelled", "done"] {
        let bad = JobUnderAudit {
            finish_reason: wrong.into(),
            ..h.clone()
        };
        assert_caught(
            &verify_job(engine(2), &bad).unwrap(),
            FailureKind::FinishReason,
            wrong,
        );
    }
    let bad = JobUnderAudit {
        text: format!("{} (edited)", h.text),
        ..h.clone()
    };
    assert_caught(
        &verify_job(engine(2), &bad).unwrap(),
        FailureKind::TextMismatch,
        "text",
    );
}

#[test]
fn bad_input_is_a_failure_or_an_error_never_a_panic() {
    let e = engine(1);
    let h = honest(e, 2, EXACT);
    let mut bad_id = h.clone();
    bad_id.completion_tokens[0] = u32::MAX;
    assert_caught(
        &verify_job(e, &bad_id).unwrap(),
        FailureKind::InvalidToken,
        "id",
    );
    let mut long = h.clone();
    long.completion_tokens = vec![5; 600];
    assert_caught(
        &verify_job(e, &long).unwrap(),
        FailureKind::ContextOverflow,
        "overflow",
    );
    let mut garbage = h.clone();
    garbage.fingerprint = b"PMFP".to_vec();
    assert_caught(
        &verify_job(e, &garbage).unwrap(),
        FailureKind::FingerprintMalformed,
        "fp",
    );
    let mut no_prompt = h.clone();
    no_prompt.prompt_tokens.clear();
    assert!(matches!(
        verify_job(e, &no_prompt),
        Err(VerifyError::InvalidJob { .. })
    ));
    let mut bad_t = h;
    bad_t.sampling.temperature = f32::NAN;
    assert!(matches!(
        verify_job(e, &bad_t),
        Err(VerifyError::InvalidJob {
            field: "temperature",
            ..
        })
    ));
}
