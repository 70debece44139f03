//! Cheating providers, as code: each function takes an honest job (or the
//! means to make one) and returns what a dishonest provider would submit.
//! The threat-matrix tests and the bench share them so both measure the same
//! attacks. Every fake is made self-consistent where a cheater could make it
//! so (text re-decoded, fingerprint recomputed from a real prefill of the fake
//! tokens), so a detection is owed to the check meant to catch it.

use proofmesh_engine::{sample_token, ChatMessage, Engine};

use crate::check::{prompt_tokens_for, JobUnderAudit, Sampling};
use crate::fingerprint::{fingerprint_from_logits, Fingerprint, FingerprintMode};
use crate::testing::{completion_logits, honest_job};
use crate::VerifyError;

/// Text the engine would report for these tokens: decoded without a final
/// stop token, cut at the first stop string.
pub fn text_for(engine: &Engine, tokens: &[u32], stop: &[String]) -> Result<String, VerifyError> {
    let body = match tokens.split_last() {
        Some((last, rest)) if engine.stop_token_ids().contains(last) => rest,
        _ => tokens,
    };
    let mut text = engine.decode(body).map_err(VerifyError::engine("decode"))?;
    if let Some(at) = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(at);
    }
    Ok(text)
}

/// Replace the fingerprint with one honestly computed by `engine` for the
/// job's (possibly fake) tokens, in the job's own mode and k.
pub fn refingerprint(engine: &Engine, job: &mut JobUnderAudit) -> Result<(), VerifyError> {
    let (mode, k) = match Fingerprint::decode(&job.fingerprint) {
        Ok(fp) => (fp.mode, fp.k),
        Err(_) => (FingerprintMode::Exact, crate::DEFAULT_EXACT_K),
    };
    let rows = completion_logits(engine, &job.prompt_tokens, &job.completion_tokens)?;
    job.fingerprint = fingerprint_from_logits(mode, k, &rows)?.encode()?;
    Ok(())
}

/// A made-up answer (`fake_text` then a stop token), with a fingerprint
/// honestly computed from a prefill of exactly those tokens.
pub fn fabricate(
    engine: &Engine,
    honest: &JobUnderAudit,
    fake_text: &str,
) -> Result<JobUnderAudit, VerifyError> {
    let mut job = honest.clone();
    job.completion_tokens = engine
        .encode(fake_text)
        .map_err(VerifyError::engine("encode"))?;
    job.completion_tokens
        .extend(engine.stop_token_ids().first().copied());
    job.finish_reason = "stop".into();
    job.text = text_for(engine, &job.completion_tokens, &job.sampling.stop)?;
    refingerprint(engine, &mut job)?;
    Ok(job)
}

/// Drop the last `drop` tokens (and their fingerprint entries), keeping the
/// claimed finish reason; the text is re-decoded.
pub fn truncate(
    engine: &Engine,
    honest: &JobUnderAudit,
    drop: usize,
) -> Result<JobUnderAudit, VerifyError> {
    let mut job = honest.clone();
    let keep = job.completion_tokens.len().saturating_sub(drop);
    job.completion_tokens.truncate(keep);
    job.text = text_for(engine, &job.completion_tokens, &job.sampling.stop)?;
    refingerprint(engine, &mut job)?;
    Ok(job)
}

/// Append `extra` tokens the sampler would pick next (as if generation
/// ignored its end), with honest fingerprint entries and re-decoded text.
pub fn extend(
    engine: &Engine,
    honest: &JobUnderAudit,
    extra: usize,
) -> Result<JobUnderAudit, VerifyError> {
    let mut job = honest.clone();
    for _ in 0..extra {
        let seq: Vec<u32> = job
            .prompt_tokens
            .iter()
            .chain(&job.completion_tokens)
            .copied()
            .collect();
        let all = engine
            .prefill_logits(&seq)
            .map_err(VerifyError::engine("prefill"))?;
        let Some(last) = all.last() else { break };
        let s = &job.sampling;
        let pos = job.completion_tokens.len() as u64;
        job.completion_tokens
            .push(sample_token(last, s.temperature, s.top_p, s.seed, pos));
    }
    job.text = text_for(engine, &job.completion_tokens, &job.sampling.stop)?;
    refingerprint(engine, &mut job)?;
    Ok(job)
}

/// Generate honestly with `actual` sampling but claim `claimed`.
pub fn cheat_sampling(
    engine: &Engine,
    prompt: &[u32],
    claimed: &Sampling,
    actual: &Sampling,
    mode: FingerprintMode,
    k: u8,
) -> Result<JobUnderAudit, VerifyError> {
    let mut job = honest_job(engine, prompt, actual, mode, k)?.job;
    job.sampling = claimed.clone();
    Ok(job)
}

/// Run a different prompt than the client sent; the verifier audits against
/// the prompt it computes from the original messages.
pub fn alter_prompt(
    engine: &Engine,
    original: &[ChatMessage],
    altered: &[ChatMessage],
    sampling: &Sampling,
    mode: FingerprintMode,
    k: u8,
) -> Result<JobUnderAudit, VerifyError> {
    let ran = prompt_tokens_for(engine, altered)?;
    let mut job = honest_job(engine, &ran, sampling, mode, k)?.job;
    job.prompt_tokens = prompt_tokens_for(engine, original)?;
    Ok(job)
}

/// Flip every bit of one fingerprint byte (entry bytes start at 12).
pub fn flip_fingerprint_byte(honest: &JobUnderAudit, index: usize) -> JobUnderAudit {
    let mut job = honest.clone();
    if let Some(b) = job.fingerprint.get_mut(index) {
        *b ^= 0xff;
    }
    job
}

/// Submit another job's fingerprint.
pub fn replay_fingerprint(honest: &JobUnderAudit, other: &JobUnderAudit) -> JobUnderAudit {
    let mut job = honest.clone();
    job.fingerprint = other.fingerprint.clone();
    job
}
