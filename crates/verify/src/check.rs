//! Re-checking one job: ONE prefill pass over prompt + completion on the
//! verifier's own engine, then, per completion position, (a) the token is the
//! one the seeded sampler picks from those logits, (b) the fingerprint entry
//! matches the recomputed logits; plus (c) the fingerprint has one entry per
//! token, and (d, e) the finish reason and text follow from the tokens
//! (`finish.rs`). The sampling check catches fabricated outputs even when the
//! fingerprint was honestly computed for them; the fingerprint check catches
//! other models and weights even when their tokens happen to agree.

use std::time::Instant;

use proofmesh_engine::{sample_token, ChatMessage, Engine, TopKLogits};
use serde::{Deserialize, Serialize};

use crate::fingerprint::{
    exact_entry, Fingerprint, FingerprintMode, TolerantEntry, DEFAULT_LOGPROB_TOLERANCE,
};
use crate::finish::check_finish_and_text;
use crate::VerifyError;

/// How the job was sampled (as recorded in the receipt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

/// Everything a verifier needs to re-check a job. `prompt_tokens` must be
/// computed by the verifier itself from the original request
/// ([`prompt_tokens_for`]), never taken from the provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobUnderAudit {
    pub prompt_tokens: Vec<u32>,
    pub completion_tokens: Vec<u32>,
    /// `"stop"`, `"length"` or `"cancelled"`.
    pub finish_reason: String,
    pub sampling: Sampling,
    /// The encoded [`Fingerprint`].
    pub fingerprint: Vec<u8>,
    pub text: String,
}

/// Which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The fingerprint bytes do not decode.
    FingerprintMalformed,
    /// The fingerprint's entry count differs from the completion length.
    FingerprintLength,
    /// A completion token id is outside the vocabulary.
    InvalidToken,
    /// Prompt + completion exceed the model's context.
    ContextOverflow,
    /// The token is not what the seeded sampler picks from the logits.
    TokenNotSampled,
    /// The fingerprint entry does not match the recomputed logits.
    FingerprintMismatch,
    /// Tokens continue after a stop token, stop string or `max_tokens`.
    ContinuedAfterEnd,
    /// The finish reason does not follow from the tokens.
    FinishReason,
    /// The text is not the decoded completion (minus stop token / string).
    TextMismatch,
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Completion position (0-based) where it failed, if positional.
    pub position: Option<usize>,
    pub kind: FailureKind,
    pub detail: String,
}

/// The outcome of [`verify_job`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    /// In check order; positional checks stop after `max_failures`.
    pub failures: Vec<Failure>,
    pub positions_checked: usize,
    pub mode: Option<FingerprintMode>,
    pub prefill_ms: f64,
    pub verify_ms: f64,
}

impl Verdict {
    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failures.first()
    }

    /// Whether any failure has this kind.
    pub fn has(&self, kind: FailureKind) -> bool {
        self.failures.iter().any(|f| f.kind == kind)
    }
}

/// Verifier knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyOptions {
    /// Tolerance of tolerant fingerprints and tolerant sampling, in nats.
    pub tolerance: f64,
    /// Stop the per-position checks after this many failures.
    pub max_failures: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            tolerance: DEFAULT_LOGPROB_TOLERANCE,
            max_failures: 8,
        }
    }
}

/// Collects failures up to a bound.
pub(crate) struct Failures {
    pub(crate) list: Vec<Failure>,
    max: usize,
}

impl Failures {
    pub(crate) fn push(&mut self, position: Option<usize>, kind: FailureKind, detail: String) {
        self.list.push(Failure {
            position,
            kind,
            detail,
        });
    }

    fn full(&self) -> bool {
        self.list.len() >= self.max
    }
}

/// The verifier's own prompt tokens for a chat request: ChatML rendering +
/// encoding, exactly as the provider must have done it.
pub fn prompt_tokens_for(
    engine: &Engine,
    messages: &[ChatMessage],
) -> Result<Vec<u32>, VerifyError> {
    let prompt = engine
        .chat_prompt(messages)
        .map_err(VerifyError::engine("chat prompt"))?;
    engine
        .encode(&prompt)
        .map_err(VerifyError::engine("encode prompt"))
}

/// [`verify_job_with`] default options.
pub fn verify_job(engine: &Engine, job: &JobUnderAudit) -> Result<Verdict, VerifyError> {
    verify_job_with(engine, job, &VerifyOptions::default())
}

/// Re-check `job` on `engine`. `Err` only for verifier-side problems (bad
/// sampling parameters or prompt in the job, engine failure); anything the
/// provider got wrong is a failure in the returned [`Verdict`].
pub fn verify_job_with(
    engine: &Engine,
    job: &JobUnderAudit,
    opts: &VerifyOptions,
) -> Result<Verdict, VerifyError> {
    let t0 = Instant::now();
    validate_job(engine, job)?;
    let mut f = Failures {
        list: Vec::new(),
        max: opts.max_failures.max(1),
    };
    let n = job.completion_tokens.len();
    let fp = match Fingerprint::decode(&job.fingerprint) {
        Ok(fp) => Some(fp),
        Err(e) => {
            f.push(None, FailureKind::FingerprintMalformed, e.to_string());
            None
        }
    };
    if let Some(fp) = fp.as_ref().filter(|fp| fp.len() != n) {
        let detail = format!("{} fingerprint entries for {n} completion tokens", fp.len());
        f.push(
            Some(fp.len().min(n)),
            FailureKind::FingerprintLength,
            detail,
        );
    }
    let mut verdict = Verdict {
        passed: false,
        failures: Vec::new(),
        positions_checked: 0,
        mode: fp.as_ref().map(|fp| fp.mode),
        prefill_ms: 0.0,
        verify_ms: 0.0,
    };
    if sequence_is_runnable(engine, job, &mut f) {
        let (checked, prefill_ms) = check_positions(engine, job, fp.as_ref(), opts, &mut f)?;
        verdict.positions_checked = checked;
        verdict.prefill_ms = prefill_ms;
        check_finish_and_text(engine, job, &mut f)?;
    }
    verdict.failures = f.list;
    verdict.passed = verdict.failures.is_empty();
    verdict.verify_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(verdict)
}

/// Reject jobs the verifier itself should never have built.
fn validate_job(engine: &Engine, job: &JobUnderAudit) -> Result<(), VerifyError> {
    let s = &job.sampling;
    if !(s.temperature.is_finite() && s.temperature >= 0.0) {
        return Err(VerifyError::InvalidJob {
            field: "temperature",
            reason: format!("{} is not a finite value >= 0", s.temperature),
        });
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(VerifyError::InvalidJob {
            field: "top_p",
            reason: format!("{} is not in (0, 1]", s.top_p),
        });
    }
    if job.prompt_tokens.is_empty() {
        return Err(VerifyError::InvalidJob {
            field: "prompt_tokens",
            reason: "empty".into(),
        });
    }
    let vocab = engine.info().vocab_size;
    if let Some(&id) = job.prompt_tokens.iter().find(|&&id| id as usize >= vocab) {
        return Err(VerifyError::InvalidJob {
            field: "prompt_tokens",
            reason: format!("id {id} outside the vocabulary of {vocab}"),
        });
    }
    Ok(())
}

/// Token ids in range and sequence within the context; else record why.
fn sequence_is_runnable(engine: &Engine, job: &JobUnderAudit, f: &mut Failures) -> bool {
    let vocab = engine.info().vocab_size;
    let bad = job
        .completion_tokens
        .iter()
        .position(|&id| id as usize >= vocab);
    if let Some(i) = bad {
        let detail = format!(
            "token id {} outside the vocabulary of {vocab}",
            job.completion_tokens[i]
        );
        f.push(Some(i), FailureKind::InvalidToken, detail);
        return false;
    }
    let needed = job.prompt_tokens.len() + job.completion_tokens.len().saturating_sub(1);
    if needed > engine.max_sequence_len() {
        let detail = format!(
            "{needed} positions exceed the context of {}",
            engine.max_sequence_len()
        );
        f.push(None, FailureKind::ContextOverflow, detail);
        return false;
    }
    true
}

/// The prefill pass and the per-position checks (a) and (b).
fn check_positions(
    engine: &Engine,
    job: &JobUnderAudit,
    fp: Option<&Fingerprint>,
    opts: &VerifyOptions,
    f: &mut Failures,
) -> Result<(usize, f64), VerifyError> {
    let n = job.completion_tokens.len();
    if n == 0 {
        return Ok((0, 0.0));
    }
    let p = job.prompt_tokens.len();
    let mut seq = Vec::with_capacity(p + n - 1);
    seq.extend_from_slice(&job.prompt_tokens);
    seq.extend_from_slice(&job.completion_tokens[..n - 1]);
    // Only positions `p - 1..` predict completion tokens; the engine skips
    // the output projection before them (the logits it returns are
    // bit-identical to a full pass's).
    let from = p.saturating_sub(1);
    let t0 = Instant::now();
    let all = engine
        .prefill_logits_from(&seq, from)
        .map_err(VerifyError::engine("prefill"))?;
    let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
    let s = &job.sampling;
    let tolerant = fp.is_some_and(|fp| fp.mode == FingerprintMode::Tolerant);
    let mut checked = 0;
    for (i, &token) in job.completion_tokens.iter().enumerate() {
        if f.full() {
            break;
        }
        let Some(logits) = (p + i).checked_sub(1 + from).and_then(|at| all.get(at)) else {
            break;
        };
        checked += 1;
        let picked = sample_token(logits, s.temperature, s.top_p, s.seed, i as u64);
        let accepted = picked == token
            || (tolerant && sampled_within_tolerance(logits, s, i, token, opts.tolerance));
        if !accepted {
            let detail = format!(
                "token {token} but the sampler picks {picked} (temperature {}, top_p {}, seed {})",
                s.temperature, s.top_p, s.seed
            );
            f.push(Some(i), FailureKind::TokenNotSampled, detail);
        }
        if let Some(entry) = fp.and_then(|fp| fp.entries.get(i).map(|e| (fp, e))) {
            if let Err(detail) = check_entry(entry.0, entry.1, logits, opts.tolerance) {
                f.push(Some(i), FailureKind::FingerprintMismatch, detail);
            }
        }
    }
    Ok((checked, prefill_ms))
}

fn check_entry(fp: &Fingerprint, entry: &[u8; 8], logits: &[f32], tol: f64) -> Result<(), String> {
    match fp.mode {
        FingerprintMode::Exact => {
            let mine = exact_entry(&TopKLogits::from_logits(logits, fp.k as usize));
            if &mine == entry {
                Ok(())
            } else {
                Err(format!(
                    "exact entry {} but recomputed top-{} hashes to {}",
                    hex8(entry),
                    fp.k,
                    hex8(&mine)
                ))
            }
        }
        FingerprintMode::Tolerant => TolerantEntry::unpack(entry).check(logits, tol),
    }
}

fn hex8(e: &[u8; 8]) -> String {
    e.iter().map(|b| format!("{b:02x}")).collect()
}

/// For engines that are not bit-exact with ours (tolerant mode): could a
/// perturbation of every logit by at most `tol` nats make our sampler pick
/// `token`? Greedy: `token` is within `2·tol` of the maximum. Sampled: every
/// probability may change by a factor within `f = exp(±2·tol/T)`, so `token`
/// can only trade places with tokens whose probability is within a factor
/// `f` of its own. That bounds where its cumulative interval can lie
/// (`[lo_min, hi_max]`) and where the seeded draw `u · kept_mass` can land;
/// accept when the two ranges meet.
pub fn sampled_within_tolerance(
    logits: &[f32],
    s: &Sampling,
    position: usize,
    token: u32,
    tol: f64,
) -> bool {
    let Some(&lt) = logits.get(token as usize) else {
        return false;
    };
    let max = logits
        .iter()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    if lt.is_nan() || !max.is_finite() {
        return false;
    }
    if !(s.temperature > 0.0 && s.temperature.is_finite()) {
        return lt as f64 >= max - 2.0 * tol;
    }
    let t = s.temperature as f64;
    let e: Vec<f64> = logits
        .iter()
        .map(|&l| {
            if l.is_nan() {
                0.0
            } else {
                ((l as f64 - max) / t).exp()
            }
        })
        .collect();
    let sum: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|v| v / sum).collect();
    let pj = p[token as usize];
    let f = (2.0 * tol / t).exp();
    let (mut lo_min, mut hi_max) = (0.0, pj * f);
    for (i, &pi) in p.iter().enumerate() {
        if i != token as usize {
            if pi > pj * f {
                lo_min += pi / f;
            }
            if pi >= pj / f {
                hi_max += pi * f;
            }
        }
    }
    let (kept_mass, next) = nucleus(&p, s.top_p as f64);
    let u = proofmesh_engine::sample_uniform(s.seed, position as u64);
    let t_min = u * kept_mass.min(s.top_p as f64) / f;
    let t_max = u * ((kept_mass + next) * f).min(1.0);
    t_max >= lo_min && t_min < hi_max.min(1.0)
}

/// The sampler's kept mass for `top_p`, and the largest probability left out.
/// Only the largest values are sorted (64 first, then sixteen times more
/// while their sum falls short of `top_p`): the running sum over the sorted
/// prefix, and the next value, are the full sort's.
fn nucleus(p: &[f64], top_p: f64) -> (f64, f64) {
    let mut vals: Vec<f64> = p.iter().copied().filter(|&v| v > 0.0).collect();
    let desc = |a: &f64, b: &f64| b.total_cmp(a);
    let mut n = if top_p < 1.0 {
        64.min(vals.len())
    } else {
        vals.len()
    };
    loop {
        if n == 0 {
            return (0.0, 0.0);
        }
        if n < vals.len() {
            vals.select_nth_unstable_by(n - 1, desc);
        }
        let (head, rest) = vals.split_at_mut(n);
        head.sort_unstable_by(desc);
        let mut cum = 0.0;
        for (i, &v) in head.iter().enumerate() {
            cum += v;
            if cum >= top_p {
                let next = match head.get(i + 1) {
                    Some(&v) => v,
                    None => rest.iter().copied().fold(0.0, f64::max),
                };
                return (cum, next);
            }
        }
        if rest.is_empty() {
            return (cum, 0.0);
        }
        n = (n * 16).min(vals.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`nucleus`] by its definition: a full descending sort.
    fn nucleus_full_sort(p: &[f64], top_p: f64) -> (f64, f64) {
        let mut sorted: Vec<f64> = p.iter().copied().filter(|&v| v > 0.0).collect();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        let mut cum = 0.0;
        for (i, &v) in sorted.iter().enumerate() {
            cum += v;
            if cum >= top_p {
                return (cum, sorted.get(i + 1).copied().unwrap_or(0.0));
            }
        }
        (cum, 0.0)
    }

    proptest! {
        #[test]
        fn partial_nucleus_equals_the_full_sort(
            raw in prop::collection::vec(0f64..1.0, 0..3000),
            flat in any::<bool>(),
            top_p in prop::sample::select(vec![1e-9, 0.3, 0.9, 0.999, 1.0]),
        ) {
            // Peaked (cubed) or flat distributions, normalised; some zeros.
            let w: Vec<f64> = raw
                .iter()
                .map(|&v| if v < 0.05 { 0.0 } else if flat { v } else { v * v * v })
                .collect();
            let sum: f64 = w.iter().sum();
            let p: Vec<f64> = w.iter().map(|v| if sum > 0.0 { v / sum } else { 0.0 }).collect();
            let (a, b) = (nucleus(&p, top_p), nucleus_full_sort(&p, top_p));
            prop_assert_eq!(a.0.to_bits(), b.0.to_bits());
            prop_assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
    }
}
