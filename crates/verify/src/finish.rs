//! Checks (d) and (e) of a job: the finish reason and the text must follow
//! from the completion tokens exactly as the engine's generation loop derives
//! them — it ends at the first stop token, at the first token that completes
//! a stop string, or when `max_tokens` / the context is reached; anything
//! else is a cancel. The text is the decoded completion without a final stop
//! token and cut at the first stop string.

use proofmesh_engine::Engine;

use crate::check::{FailureKind, Failures, JobUnderAudit};
use crate::VerifyError;

/// Bytes a cancelled stream may still hold back: a partial stop string plus
/// one incomplete UTF-8 character (decoded as U+FFFD, 3 bytes).
const HELD_CHAR_BYTES: usize = 3;

/// Where, by the engine's rules, generation must have ended.
struct Ending {
    /// Index of the token that ends generation with "stop", if any.
    stop_at: Option<usize>,
    /// Whether that token is a stop token (excluded from the text).
    stop_token: bool,
}

pub(crate) fn check_finish_and_text(
    engine: &Engine,
    job: &JobUnderAudit,
    f: &mut Failures,
) -> Result<(), VerifyError> {
    let toks = &job.completion_tokens;
    let n = toks.len();
    let ending = find_ending(engine, job)?;
    let p = job.prompt_tokens.len();
    let max_tokens = job.sampling.max_tokens as usize;
    // First index at which the engine runs out of room.
    let room_end = max_tokens
        .saturating_sub(1)
        .min(engine.max_sequence_len().saturating_sub(p));
    let end = match ending.stop_at {
        Some(s) => s.min(room_end),
        None => room_end,
    };
    if max_tokens == 0 && n > 0 {
        let detail = "max_tokens is 0 but tokens were generated".to_string();
        f.push(Some(0), FailureKind::ContinuedAfterEnd, detail);
        return Ok(());
    }
    if n > end + 1 {
        let why = match ending.stop_at {
            Some(s) if s <= room_end => {
                format!("generation ends at token {s} (stop token or string)")
            }
            _ => format!("generation ends at token {room_end} (max_tokens {max_tokens} / context)"),
        };
        f.push(Some(end + 1), FailureKind::ContinuedAfterEnd, why);
        return Ok(());
    }
    let expected = if n == 0 {
        if max_tokens == 0 {
            "length"
        } else {
            "(none: an empty completion needs max_tokens = 0)"
        }
    } else if ending.stop_at == Some(n - 1) {
        "stop"
    } else if n - 1 == room_end {
        "length"
    } else {
        "cancelled"
    };
    if job.finish_reason != expected {
        let detail = format!(
            "finish reason {:?} but the tokens imply {expected:?}",
            job.finish_reason
        );
        f.push(None, FailureKind::FinishReason, detail);
    }
    check_text(engine, job, &ending, expected == "cancelled", f)
}

/// First stop token, and first token completing a stop string before it.
fn find_ending(engine: &Engine, job: &JobUnderAudit) -> Result<Ending, VerifyError> {
    let toks = &job.completion_tokens;
    let stop_ids = engine.stop_token_ids();
    let tok_stop = toks.iter().position(|t| stop_ids.contains(t));
    let scan_len = tok_stop.unwrap_or(toks.len());
    let stops: Vec<&str> = job
        .sampling
        .stop
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let hit = |j: usize| -> Result<bool, VerifyError> {
        let text = decode(engine, &toks[..=j])?;
        Ok(stops.iter().any(|s| text.contains(s)))
    };
    let mut str_stop = None;
    if !stops.is_empty() && scan_len > 0 && hit(scan_len - 1)? {
        // smallest j with hit(j): containment only grows with j
        let (mut lo, mut hi) = (0usize, scan_len - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if hit(mid)? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        str_stop = Some(lo);
    }
    Ok(match (str_stop, tok_stop) {
        (Some(s), _) => Ending {
            stop_at: Some(s),
            stop_token: false,
        },
        (None, t) => Ending {
            stop_at: t,
            stop_token: t.is_some(),
        },
    })
}

fn decode(engine: &Engine, ids: &[u32]) -> Result<String, VerifyError> {
    engine.decode(ids).map_err(VerifyError::engine("decode"))
}

/// (e): the claimed text against the decoded tokens.
fn check_text(
    engine: &Engine,
    job: &JobUnderAudit,
    ending: &Ending,
    cancelled: bool,
    f: &mut Failures,
) -> Result<(), VerifyError> {
    let toks = &job.completion_tokens;
    let body = match ending.stop_at {
        Some(s) if ending.stop_token => &toks[..s],
        _ => &toks[..],
    };
    let mut expected = decode(engine, body)?;
    let cut = job
        .sampling
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| expected.find(s.as_str()))
        .min();
    if let Some(at) = cut {
        expected.truncate(at);
    }
    let held = job.sampling.stop.iter().map(String::len).max().unwrap_or(0) + HELD_CHAR_BYTES;
    let ok = if cancelled {
        expected.starts_with(job.text.as_str()) && expected.len() - job.text.len() <= held
    } else {
        expected == job.text
    };
    if !ok {
        let at = expected
            .char_indices()
            .zip(job.text.chars())
            .find(|((_, a), b)| a != b)
            .map(|((i, _), _)| i)
            .unwrap_or(expected.len().min(job.text.len()));
        let detail = format!(
            "claimed text ({} bytes) differs from the decoded completion ({} bytes) at byte {at}",
            job.text.len(),
            expected.len()
        );
        f.push(None, FailureKind::TextMismatch, detail);
    }
    Ok(())
}
