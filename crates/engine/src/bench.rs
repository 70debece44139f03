//! Throughput measurement for a loaded engine: prefill and decode tokens per
//! second (median over runs) plus peak resident memory, so providers can
//! advertise honest capacity figures.

use std::time::Instant;

use crate::generate::Session;
use crate::sampling::argmax;
use crate::{Engine, EngineError};

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
}

/// Prefill `prompt_tokens` tokens, then greedily decode `gen_tokens` tokens
/// (EOS ignored), `runs` times; report medians.
pub fn run(
    engine: &Engine,
    prompt_tokens: usize,
    gen_tokens: usize,
    runs: usize,
) -> Result<BenchReport, EngineError> {
    if prompt_tokens == 0 {
        return Err(EngineError::EmptyPrompt);
    }
    let total = prompt_tokens + gen_tokens;
    if total > engine.max_sequence_len() {
        return Err(EngineError::ContextOverflow {
            tokens: total,
            context_length: engine.max_sequence_len(),
        });
    }
    let prompt = bench_prompt(engine, prompt_tokens)?;
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..runs.max(1) {
        let mut session = Session::new(engine);
        let t0 = Instant::now();
        let mut logits = session.feed(&prompt)?;
        prefill.push(prompt_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9));
        let t1 = Instant::now();
        for _ in 0..gen_tokens {
            logits = session.feed(&[argmax(&logits)])?;
        }
        if gen_tokens > 0 {
            decode.push(gen_tokens as f64 / t1.elapsed().as_secs_f64().max(1e-9));
        }
    }
    Ok(BenchReport {
        prompt_tokens,
        generated_tokens: gen_tokens,
        prefill_tokens_per_s: median(&mut prefill),
        decode_tokens_per_s: median(&mut decode),
        peak_rss_bytes: peak_rss_bytes(),
        model_file_bytes: engine.info().file_size_bytes,
        threads: engine.threads(),
    })
}

/// A prompt of exactly `n` tokens cut from repeated filler text.
fn bench_prompt(engine: &Engine, n: usize) -> Result<Vec<u32>, EngineError> {
    let unit = engine.encode(FILLER)?;
    if unit.is_empty() {
        return Err(EngineError::Tokenizer {
            reason: "benchmark filler encodes to no tokens".into(),
        });
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

/// `VmHWM` from `/proc/self/status`, in bytes (0 where unavailable).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn peak_rss_is_reported_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes() > 1024 * 1024);
        }
    }
}
