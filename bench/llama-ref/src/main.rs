//! llama.cpp reference for `proofmesh bench engine --against-llama-cpp`: loads
//! the same GGUF with the same thread count, measures prefill and decode
//! tokens/s plus the verify/generate ratio (one logits-everywhere prefill over
//! a 16-token prompt + 64 generated tokens against generating them), and
//! prints one JSON line with its own peak RSS. It exists so both engines are measured on the
//! same file, on the same machine, in the same run.

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// Same filler the proofmesh engine bench tokenizes.
const FILLER: &str =
    "The quick brown fox jumps over the lazy dog while 12 clocks tick in the old tower. ";

/// Prompt length of the verification measurement (as in proofmesh's bench).
const VERIFY_PROMPT_TOKENS: usize = 16;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    model: String,
    threads: i32,
    prompt_tokens: usize,
    gen_tokens: usize,
    runs: usize,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        model: String::new(),
        threads: 2,
        prompt_tokens: 128,
        gen_tokens: 64,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => a.model = val,
            "--threads" => a.threads = val.parse()?,
            "--prompt-tokens" => a.prompt_tokens = val.parse()?,
            "--gen-tokens" => a.gen_tokens = val.parse()?,
            "--runs" => a.runs = val.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if a.model.is_empty() {
        return Err("--model PATH is required".into());
    }
    Ok(a)
}

fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn argmax(l: &[f32]) -> LlamaToken {
    let mut best = 0;
    for (i, &x) in l.iter().enumerate() {
        if x > l[best] {
            best = i;
        }
    }
    LlamaToken::new(best as i32)
}

/// Decode `tokens` at positions `pos0..` in one batch; logits for all rows or
/// only the last.
fn run_batch(ctx: &mut LlamaContext<'_>, tokens: &[LlamaToken], pos0: usize, all: bool) -> Res<()> {
    let mut batch = LlamaBatch::new(tokens.len(), 1);
    let last = tokens.len() - 1;
    for (i, &t) in tokens.iter().enumerate() {
        batch.add(t, (pos0 + i) as i32, &[0], all || i == last)?;
    }
    ctx.decode(&mut batch)?;
    Ok(())
}

/// Prefill `prompt`, then greedily decode `gen` tokens. Returns the whole
/// sequence and the prefill and decode seconds.
fn generate(
    ctx: &mut LlamaContext<'_>,
    prompt: &[LlamaToken],
    gen: usize,
) -> Res<(Vec<LlamaToken>, f64, f64)> {
    ctx.clear_kv_cache();
    let t0 = Instant::now();
    run_batch(ctx, prompt, 0, false)?;
    let prefill = t0.elapsed().as_secs_f64();
    let mut seq = prompt.to_vec();
    let t1 = Instant::now();
    let mut next = argmax(ctx.get_logits_ith(prompt.len() as i32 - 1));
    for _ in 0..gen {
        seq.push(next);
        run_batch(ctx, &[next], seq.len() - 1, false)?;
        next = argmax(ctx.get_logits_ith(0));
    }
    Ok((seq, prefill, t1.elapsed().as_secs_f64()))
}

/// Generate after `prompt`, then verify: re-run prompt + output as one batch
/// with logits at every position. Returns verify seconds / generate seconds.
fn verify_ratio(ctx: &mut LlamaContext<'_>, prompt: &[LlamaToken], gen: usize) -> Res<f64> {
    let (seq, p, d) = generate(ctx, prompt, gen)?;
    ctx.clear_kv_cache();
    let t = Instant::now();
    run_batch(ctx, &seq, 0, true)?;
    Ok(t.elapsed().as_secs_f64() / (p + d))
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let mut backend = LlamaBackend::init()?;
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &args.model, &LlamaModelParams::default())?;
    let total = args.prompt_tokens.max(VERIFY_PROMPT_TOKENS) + args.gen_tokens;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(512.max(total as u32 + 8)))
        .with_n_batch(512.max(total as u32))
        .with_n_ubatch(512.max(total as u32))
        .with_n_threads(args.threads)
        .with_n_threads_batch(args.threads);
    let mut ctx = model.new_context(&backend, params)?;
    let unit = model.vocab().tokenize(FILLER.as_bytes(), false, false);
    let take = |n: usize| -> Vec<LlamaToken> { unit.iter().copied().cycle().take(n).collect() };
    let (prompt, verify_prompt) = (take(args.prompt_tokens), take(VERIFY_PROMPT_TOKENS));
    generate(&mut ctx, &prompt, 4)?; // warm-up
    let (mut pf, mut dc, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let (_, p, d) = generate(&mut ctx, &prompt, args.gen_tokens)?;
        pf.push(args.prompt_tokens as f64 / p);
        dc.push(args.gen_tokens as f64 / d);
        ratio.push(verify_ratio(&mut ctx, &verify_prompt, args.gen_tokens)?);
    }
    let out = serde_json::json!({
        "engine": "llama.cpp",
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "verify_prompt_tokens": VERIFY_PROMPT_TOKENS,
        "generated_tokens": args.gen_tokens,
        "prefill_tokens_per_s": median(pf),
        "decode_tokens_per_s": median(dc),
        "verify_to_generate_ratio": median(ratio),
        "peak_rss_bytes": peak_rss_bytes(),
    });
    println!("{out}");
    Ok(())
}
