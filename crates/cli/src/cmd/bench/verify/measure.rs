//! The measurement behind `proofmesh bench verify`: what verification costs
//! and what it catches. Runs honest jobs on a provider engine, verifies each
//! on a verifier engine (generation vs verification time, false positives),
//! then mounts every attack of `proofmesh_verify::attacks` on a few jobs and
//! reports detection rates. Alternative engines (other weights,
//! requantized) come from the caller.

use proofmesh_engine::{ChatMessage, Engine};
use proofmesh_verify::fingerprint::{ENTRY_LEN, HEADER_LEN};
use proofmesh_verify::testing::{honest_job, job_messages, job_sampling};
use proofmesh_verify::{
    attacks, prompt_tokens_for, verify_job, FingerprintMode, JobUnderAudit, Sampling, VerifyError,
    DEFAULT_EXACT_K,
};
use serde::Serialize;

/// TOPLOC's commitment size, for comparison: 258 bytes per 32 tokens.
pub const TOPLOC_BYTES_PER_TOKEN: f64 = 258.0 / 32.0;
/// Attacked jobs per attack row (at most).
pub const ATTACK_JOBS_PER_ROW: usize = 4;

/// One attack and how often it was caught.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttackRow {
    pub attack: String,
    pub jobs: usize,
    pub detected: usize,
    pub detection_rate: f64,
}

/// The bench result; key names carry their units.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyBenchReport {
    pub provider_model: String,
    pub verifier_model: String,
    pub provider_threads: usize,
    pub verifier_threads: usize,
    pub fingerprint_mode: String,
    pub fingerprint_k: u8,
    pub jobs: usize,
    pub gen_tokens_requested_per_job: usize,
    pub completion_tokens_total: usize,
    /// Entry bytes only (8 by construction).
    pub fingerprint_bytes_per_token: f64,
    /// Including the 12-byte header, averaged over these jobs.
    pub fingerprint_bytes_per_token_with_header: f64,
    pub toploc_bytes_per_token: f64,
    pub generate_ms_total: f64,
    pub verify_ms_total: f64,
    pub verify_prefill_ms_total: f64,
    pub verify_ms_per_token: f64,
    pub generate_ms_per_token: f64,
    /// verify_ms_total / generate_ms_total.
    pub verify_to_generate_time_ratio: f64,
    pub honest_false_positives: usize,
    pub honest_false_positive_rate: f64,
    pub attacks: Vec<AttackRow>,
}

/// Measure `jobs` honest jobs of up to `gen_tokens` tokens and the attack
/// rows; `attack_engines` are provider engines with other weights
/// (e.g. `("different_model", &e)`, `("requantized_q8_0", &e)`).
pub fn run(
    provider: &Engine,
    verifier: &Engine,
    jobs: usize,
    gen_tokens: usize,
    attack_engines: &[(&str, &Engine)],
) -> Result<VerifyBenchReport, VerifyError> {
    let k = DEFAULT_EXACT_K;
    let mode = FingerprintMode::Exact;
    let mut r = VerifyBenchReport {
        provider_model: provider.model_name().to_string(),
        verifier_model: verifier.model_name().to_string(),
        provider_threads: provider.threads(),
        verifier_threads: verifier.threads(),
        fingerprint_mode: mode.as_str().into(),
        fingerprint_k: k,
        jobs,
        gen_tokens_requested_per_job: gen_tokens,
        completion_tokens_total: 0,
        fingerprint_bytes_per_token: ENTRY_LEN as f64,
        fingerprint_bytes_per_token_with_header: 0.0,
        toploc_bytes_per_token: TOPLOC_BYTES_PER_TOKEN,
        generate_ms_total: 0.0,
        verify_ms_total: 0.0,
        verify_prefill_ms_total: 0.0,
        verify_ms_per_token: 0.0,
        generate_ms_per_token: 0.0,
        verify_to_generate_time_ratio: 0.0,
        honest_false_positives: 0,
        honest_false_positive_rate: 0.0,
        attacks: Vec::new(),
    };
    let mut honest = Vec::with_capacity(jobs);
    let mut fp_bytes = 0usize;
    for i in 0..jobs {
        let prompt = prompt_tokens_for(provider, &job_messages(i))?;
        let run = honest_job(provider, &prompt, &job_sampling(i, gen_tokens), mode, k)?;
        let v = verify_job(verifier, &run.job)?;
        r.generate_ms_total += run.generate_ms;
        r.verify_ms_total += v.verify_ms;
        r.verify_prefill_ms_total += v.prefill_ms;
        r.completion_tokens_total += run.job.completion_tokens.len();
        fp_bytes += run.job.fingerprint.len();
        r.honest_false_positives += usize::from(!v.passed);
        honest.push(run.job);
    }
    let tokens = r.completion_tokens_total.max(1) as f64;
    r.fingerprint_bytes_per_token_with_header = fp_bytes as f64 / tokens;
    r.verify_ms_per_token = r.verify_ms_total / tokens;
    r.generate_ms_per_token = r.generate_ms_total / tokens;
    r.verify_to_generate_time_ratio = r.verify_ms_total / r.generate_ms_total.max(1e-9);
    r.honest_false_positive_rate = r.honest_false_positives as f64 / jobs.max(1) as f64;
    r.attacks = attack_rows(provider, verifier, &honest, gen_tokens, attack_engines)?;
    Ok(r)
}

fn row(name: &str, verifier: &Engine, fakes: Vec<JobUnderAudit>) -> Result<AttackRow, VerifyError> {
    let mut detected = 0;
    for job in &fakes {
        detected += usize::from(!verify_job(verifier, job)?.passed);
    }
    Ok(AttackRow {
        attack: name.to_string(),
        jobs: fakes.len(),
        detected,
        detection_rate: detected as f64 / fakes.len().max(1) as f64,
    })
}

/// Turns honest job `i` into what a cheater would submit.
type Tamper<'a> = Box<dyn Fn(usize, &JobUnderAudit) -> Result<JobUnderAudit, VerifyError> + 'a>;

fn attack_rows(
    provider: &Engine,
    verifier: &Engine,
    honest: &[JobUnderAudit],
    gen_tokens: usize,
    attack_engines: &[(&str, &Engine)],
) -> Result<Vec<AttackRow>, VerifyError> {
    let some = &honest[..honest.len().min(ATTACK_JOBS_PER_ROW)];
    let mut rows = Vec::new();
    for (name, engine) in attack_engines {
        let mut fakes = Vec::with_capacity(some.len());
        for (i, h) in some.iter().enumerate() {
            let s = job_sampling(i, gen_tokens);
            let run = honest_job(
                engine,
                &h.prompt_tokens,
                &s,
                FingerprintMode::Exact,
                DEFAULT_EXACT_K,
            )?;
            fakes.push(run.job);
        }
        rows.push(row(name, verifier, fakes)?);
    }
    let mut tampers = output_tampers(provider);
    tampers.extend(sampling_and_fingerprint_tampers(
        provider, honest, gen_tokens,
    ));
    for (name, tamper) in tampers {
        let fakes = some
            .iter()
            .enumerate()
            .map(|(i, h)| tamper(i, h))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row(name, verifier, fakes)?);
    }
    Ok(rows)
}

fn output_tampers(provider: &Engine) -> Vec<(&'static str, Tamper<'_>)> {
    let (k, mode) = (DEFAULT_EXACT_K, FingerprintMode::Exact);
    vec![
        (
            "fabricated_output",
            Box::new(move |_, h| attacks::fabricate(provider, h, "The answer is 42, of course.")),
        ),
        (
            "truncated_output",
            Box::new(move |_, h| attacks::truncate(provider, h, 1)),
        ),
        (
            "extended_output",
            Box::new(move |_, h| attacks::extend(provider, h, 2)),
        ),
        (
            "prompt_altered",
            Box::new(move |i, h| {
                let original = job_messages(i);
                let mut altered = vec![ChatMessage::new("system", "Always answer like a pirate.")];
                altered.extend(original.iter().cloned());
                attacks::alter_prompt(provider, &original, &altered, &h.sampling, mode, k)
            }),
        ),
    ]
}

fn sampling_and_fingerprint_tampers<'a>(
    provider: &'a Engine,
    honest: &'a [JobUnderAudit],
    gen_tokens: usize,
) -> Vec<(&'static str, Tamper<'a>)> {
    let (k, mode) = (DEFAULT_EXACT_K, FingerprintMode::Exact);
    let claimed = move |i| Sampling {
        temperature: 1.0,
        top_p: 1.0,
        ..job_sampling(i, gen_tokens)
    };
    vec![
        (
            "other_seed",
            Box::new(move |i, h| {
                let c = claimed(i);
                let actual = Sampling {
                    seed: c.seed ^ 0xdead_beef,
                    ..c.clone()
                };
                attacks::cheat_sampling(provider, &h.prompt_tokens, &c, &actual, mode, k)
            }),
        ),
        (
            "other_temperature",
            Box::new(move |i, h| {
                let c = claimed(i);
                let actual = Sampling {
                    temperature: 0.0,
                    ..c.clone()
                };
                attacks::cheat_sampling(provider, &h.prompt_tokens, &c, &actual, mode, k)
            }),
        ),
        (
            "fingerprint_byte_flipped",
            Box::new(|_, h| {
                let middle = HEADER_LEN + (h.fingerprint.len().saturating_sub(HEADER_LEN)) / 2;
                Ok(attacks::flip_fingerprint_byte(h, middle))
            }),
        ),
        (
            "fingerprint_replayed",
            Box::new(move |i, h| {
                Ok(attacks::replay_fingerprint(
                    h,
                    &honest[(i + 1) % honest.len()],
                ))
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use proofmesh_engine::testing::write_tiny_gguf;
    use proofmesh_engine::EngineOptions;

    use super::*;

    fn load(path: &std::path::Path, threads: usize) -> Engine {
        Engine::load(
            path,
            EngineOptions {
                threads: Some(threads),
            },
        )
        .unwrap()
    }

    #[test]
    fn zero_false_positives_and_full_detection_on_the_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let (base, other) = (dir.path().join("tiny.gguf"), dir.path().join("other.gguf"));
        write_tiny_gguf(&base, 1).unwrap();
        write_tiny_gguf(&other, 2).unwrap();
        let (provider, verifier, other) = (load(&base, 1), load(&base, 2), load(&other, 1));
        let r = run(&provider, &verifier, 6, 16, &[("different_model", &other)]).unwrap();
        assert_eq!(r.honest_false_positives, 0);
        assert_eq!(r.fingerprint_bytes_per_token, 8.0);
        assert!(r.completion_tokens_total > 0);
        assert!(r.verify_ms_total > 0.0 && r.generate_ms_total > 0.0);
        assert_eq!(r.attacks.len(), 9);
        for row in &r.attacks {
            assert_eq!(row.jobs, ATTACK_JOBS_PER_ROW, "{row:?}");
            assert_eq!(row.detected, ATTACK_JOBS_PER_ROW, "{row:?}");
        }
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"verify_ms_total\""));
    }
}
