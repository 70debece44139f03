//! The measurement behind `proofmesh bench engine`: prefill and decode
//! tokens per second of a loaded engine (median over runs), the cost of
//! verifying a generation (one prefill over prompt + output) relative to
//! generating it, and peak resident memory, so providers can advertise
//! honest capacity figures. Uses only the engine's public API.

use std::time::Instant;

use anyhow::{bail, ensure};
use proofmesh_engine::{argmax, Engine, Session};

use crate::cmd::bench::process;

/// Text repeated to build benchmark prompts.
const FILLER: &str =
    "The quick brown fox jumps over the lazy dog while 12 clocks tick in the old tower. ";

/// Benchmark results.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Median prompt tokens per second of the single prefill pass.
    pub prefill_tokens_per_s: f64,
    /// Median tokens per second of the one-token decode steps.
    pub decode_tokens_per_s: f64,
    /// Peak resident set size of the process (`VmHWM`), 0 if unknown.
    pub peak_rss_bytes: u64,
    pub model_file_bytes: u64,
    pub threads: usize,
    /// Median time to prefill the prompt and decode `generated_tokens`.
    pub generate_ms: f64,
    /// Median time of the verification pass: prompt + generated tokens
    /// (but the last) in ONE prefill with logits (top-k kept) at every
    /// position that predicts a generated token, as the verifier runs it.
    pub verify_ms: f64,
    /// Median over runs of `verify_ms / generate_ms` (per run).
    pub verify_to_generate_ratio: f64,
}

/// Top-k kept per position by the verification pass (as the verifier does).
const VERIFY_TOP_K: usize = 8;

/// Prompt length of the verification measurement: a short chat-sized
/// prompt, so the pass re-runs mostly generated tokens.
pub const VERIFY_PROMPT_TOKENS: usize = 16;

/// Prefill `prompt_tokens` tokens, then greedily decode `gen_tokens` tokens
/// (EOS ignored), `runs` times; report medians. Each run also generates
/// `gen_tokens` after a [`VERIFY_PROMPT_TOKENS`]-token prompt and times the
/// one-pass verification of that prompt + output.
pub fn run(
    engine: &Engine,
    prompt_tokens: usize,
    gen_tokens: usize,
    runs: usize,
) -> anyhow::Result<BenchReport> {
    ensure!(
        prompt_tokens > 0,
        "the benchmark prompt must have at least one token"
    );
    let total = prompt_tokens.max(VERIFY_PROMPT_TOKENS) + gen_tokens;
    ensure!(
        total <= engine.max_sequence_len(),
        "{total} tokens exceed the model's context length {}",
        engine.max_sequence_len()
    );
    let prompt = bench_prompt(engine, prompt_tokens)?;
    let verify_prompt = bench_prompt(engine, VERIFY_PROMPT_TOKENS)?;
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    let (mut generate, mut verify, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let g = generate_greedy(engine, &prompt, gen_tokens)?;
        prefill.push(prompt_tokens as f64 / g.prefill_s.max(1e-9));
        if gen_tokens > 0 {
            decode.push(gen_tokens as f64 / g.decode_s.max(1e-9));
        }
        let g = generate_greedy(engine, &verify_prompt, gen_tokens)?;
        let t = Instant::now();
        verify_pass(engine, &g.tokens, gen_tokens)?;
        let verify_s = t.elapsed().as_secs_f64();
        let generate_s = (g.prefill_s + g.decode_s).max(1e-9);
        generate.push(generate_s * 1e3);
        verify.push(verify_s * 1e3);
        ratio.push(verify_s / generate_s);
    }
    Ok(BenchReport {
        prompt_tokens,
        generated_tokens: gen_tokens,
        prefill_tokens_per_s: median(&mut prefill),
        decode_tokens_per_s: median(&mut decode),
        peak_rss_bytes: process::peak_rss_bytes().unwrap_or(0),
        model_file_bytes: engine.info().file_size_bytes,
        threads: engine.threads(),
        generate_ms: median(&mut generate),
        verify_ms: median(&mut verify),
        verify_to_generate_ratio: median(&mut ratio),
    })
}

/// The verifier's pass over a generation (`crates/verify`, `check.rs`):
/// prompt + every completion token but the last in ONE prefill, with the
/// top-k logits of the `gen` positions that predict completion tokens
/// (prompt positions before the last need none). Without completion tokens,
/// the whole prompt with logits everywhere.
fn verify_pass(engine: &Engine, tokens: &[u32], gen: usize) -> anyhow::Result<()> {
    if gen == 0 {
        engine.prefill_top_k(tokens, VERIFY_TOP_K)?;
    } else {
        let seq = &tokens[..tokens.len() - 1];
        engine.prefill_top_k_from(seq, seq.len() - gen, VERIFY_TOP_K)?;
    }
    Ok(())
}

/// One timed greedy generation.
struct Timed {
    /// Prompt followed by the generated tokens.
    tokens: Vec<u32>,
    prefill_s: f64,
    decode_s: f64,
}

fn generate_greedy(engine: &Engine, prompt: &[u32], n: usize) -> anyhow::Result<Timed> {
    let mut session = Session::new(engine);
    let mut tokens = prompt.to_vec();
    let t0 = Instant::now();
    let mut logits = session.feed(prompt)?;
    let prefill_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..n {
        let next = argmax(&logits);
        tokens.push(next);
        logits = session.feed(&[next])?;
    }
    Ok(Timed {
        tokens,
        prefill_s,
        decode_s: t1.elapsed().as_secs_f64(),
    })
}

/// A prompt of exactly `n` tokens cut from repeated filler text.
fn bench_prompt(engine: &Engine, n: usize) -> anyhow::Result<Vec<u32>> {
    let unit = engine.encode(FILLER)?;
    if unit.is_empty() {
        bail!("the benchmark filler encodes to no tokens");
    }
    Ok(unit.iter().copied().cycle().take(n).collect())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_plausible_numbers_on_the_tiny_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        proofmesh_engine::testing::write_tiny_gguf(&path, 1).unwrap();
        let e = Engine::load(&path, proofmesh_engine::EngineOptions { threads: Some(2) }).unwrap();
        let r = run(&e, 16, 4, 2).unwrap();
        assert_eq!((r.prompt_tokens, r.generated_tokens, r.threads), (16, 4, 2));
        assert!(r.prefill_tokens_per_s > 0.0 && r.decode_tokens_per_s > 0.0);
        assert!(r.generate_ms > 0.0 && r.verify_ms > 0.0);
        assert_eq!(r.model_file_bytes, e.info().file_size_bytes);
        assert!(r.peak_rss_bytes > 0 || !cfg!(target_os = "linux"));
        assert!(run(&e, 0, 4, 1).is_err());
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
