//! Provider-side helpers for tests, the bench and calibration: run a job the
//! honest way and package it as a [`JobUnderAudit`], simulate a foreign
//! (non-bit-exact) engine by perturbing logits, write "same weights, other
//! quantization" model files, and the fixed job mix (messages, sampling)
//! that `proofmesh bench verify` and the calibration example run. Not part
//! of the verification API.

use std::io::{BufReader, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use proofmesh_engine::{
    sample_token, ChatMessage, Engine, GenerateRequest, SamplingParams, Session,
};

use crate::check::{JobUnderAudit, Sampling};
use crate::f16::{f16_bits_to_f32, f32_to_f16_bits};
use crate::fingerprint::{exact_fingerprint_from_top_k, fingerprint_from_logits, FingerprintMode};
use crate::VerifyError;

/// A job as a provider produced it, with its generation time.
#[derive(Clone, Debug)]
pub struct ProviderRun {
    pub job: JobUnderAudit,
    pub generate_ms: f64,
}

/// Engine sampling parameters for a [`Sampling`].
pub fn sampling_params(s: &Sampling, top_k_logits: usize) -> SamplingParams {
    SamplingParams {
        temperature: s.temperature,
        top_p: s.top_p,
        seed: s.seed,
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        top_k_logits,
    }
}

/// Run `prompt_tokens` honestly on `engine` and fingerprint the result. Exact
/// fingerprints come from the top-k the generation loop itself recorded;
/// tolerant ones from a prefill of the provider's own engine.
pub fn honest_job(
    engine: &Engine,
    prompt_tokens: &[u32],
    sampling: &Sampling,
    mode: FingerprintMode,
    k: u8,
) -> Result<ProviderRun, VerifyError> {
    let req = GenerateRequest {
        prompt_tokens: prompt_tokens.to_vec(),
        sampling: sampling_params(sampling, k as usize),
    };
    let t0 = Instant::now();
    let gen = engine
        .generate(&req, &mut |_| ControlFlow::Continue(()))
        .map_err(VerifyError::engine("generate"))?;
    let generate_ms = t0.elapsed().as_secs_f64() * 1e3;
    let fp = match mode {
        FingerprintMode::Exact => exact_fingerprint_from_top_k(k, &gen.logits)?,
        FingerprintMode::Tolerant => {
            let rows = completion_logits(engine, prompt_tokens, &gen.completion_tokens)?;
            fingerprint_from_logits(mode, k, &rows)?
        }
    };
    Ok(ProviderRun {
        job: JobUnderAudit {
            prompt_tokens: prompt_tokens.to_vec(),
            completion_tokens: gen.completion_tokens,
            finish_reason: gen.finish_reason.as_str().to_string(),
            sampling: sampling.clone(),
            fingerprint: fp.encode()?,
            text: gen.text,
        },
        generate_ms,
    })
}

/// Full logits behind each completion token, from one prefill on `engine`.
pub fn completion_logits(
    engine: &Engine,
    prompt: &[u32],
    completion: &[u32],
) -> Result<Vec<Vec<f32>>, VerifyError> {
    let Some(last) = completion.len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let seq: Vec<u32> = prompt.iter().chain(&completion[..last]).copied().collect();
    let mut all = engine
        .prefill_logits(&seq)
        .map_err(VerifyError::engine("prefill"))?;
    Ok(all.split_off(prompt.len() - 1))
}

/// A logits perturbation standing in for another engine's numerics:
/// `(position, logits)`, applied before sampling and fingerprinting.
pub type Perturb<'a> = &'a dyn Fn(usize, &mut [f32]);

/// Round every logit to binary16, as an engine that emits fp16 logits would.
pub fn round_to_f16(_position: usize, logits: &mut [f32]) {
    for l in logits {
        *l = f16_bits_to_f32(f32_to_f16_bits(*l));
    }
}

/// Relative noise of up to `rel` per logit (deterministic in position and
/// id), then binary16 rounding: a stand-in for fp16 kernels with another
/// accumulation order.
pub fn fp16_noise(rel: f32) -> impl Fn(usize, &mut [f32]) {
    move |position, logits| {
        for (i, l) in logits.iter_mut().enumerate() {
            let mut z = (position as u64) << 32 | i as u64;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let r = ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            *l *= 1.0 + rel * r;
        }
        round_to_f16(position, logits);
    }
}

/// A provider on a foreign engine, simulated: our forward pass, logits
/// perturbed by `perturb`, then the protocol's seeded sampler; stops on stop
/// tokens or `max_tokens` (no stop strings). Fingerprints in tolerant mode.
pub fn foreign_job(
    engine: &Engine,
    prompt_tokens: &[u32],
    sampling: &Sampling,
    perturb: Perturb<'_>,
) -> Result<JobUnderAudit, VerifyError> {
    let mut session = Session::new(engine);
    let mut logits = session
        .feed(prompt_tokens)
        .map_err(VerifyError::engine("prefill"))?;
    let (mut tokens, mut rows) = (Vec::new(), Vec::new());
    let mut finish = "length";
    for i in 0..sampling.max_tokens as usize {
        perturb(i, &mut logits);
        let s = sampling;
        let t = sample_token(&logits, s.temperature, s.top_p, s.seed, i as u64);
        tokens.push(t);
        rows.push(std::mem::take(&mut logits));
        if engine.stop_token_ids().contains(&t) {
            finish = "stop";
            break;
        }
        if i + 1 == s.max_tokens as usize || session.len() >= engine.max_sequence_len() {
            break;
        }
        logits = session.feed(&[t]).map_err(VerifyError::engine("decode"))?;
    }
    let body_len = tokens.len() - usize::from(finish == "stop");
    let text = engine
        .decode(&tokens[..body_len])
        .map_err(VerifyError::engine("decode"))?;
    let fp = fingerprint_from_logits(FingerprintMode::Tolerant, 2, &rows)?;
    Ok(JobUnderAudit {
        prompt_tokens: prompt_tokens.to_vec(),
        completion_tokens: tokens,
        finish_reason: finish.to_string(),
        sampling: sampling.clone(),
        fingerprint: fp.encode()?,
        text,
    })
}

/// Copy a GGUF file, re-quantizing every `from` tensor as `to` (same
/// weights, other quantization). Returns how many tensors changed.
pub fn requantize_gguf(
    src: &Path,
    dst: &Path,
    from: GgmlDType,
    to: GgmlDType,
) -> Result<usize, VerifyError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |e: candle_core::Error| VerifyError::ModelFile {
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| VerifyError::ModelFile {
            path: path.clone(),
            reason: e.to_string(),
        }
    };
    let mut reader = BufReader::new(std::fs::File::open(src).map_err(io(src))?);
    let content = gguf_file::Content::read(&mut reader).map_err(err(src))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    let mut changed = 0;
    for name in names {
        let t = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(err(src))?;
        let t = if t.dtype() == from {
            changed += 1;
            let f = t.dequantize(&Device::Cpu).map_err(err(src))?;
            QTensor::quantize(&f, to).map_err(err(dst))?
        } else {
            t
        };
        tensors.push((name.as_str(), t));
    }
    let mut md: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    md.sort_by_key(|(k, _)| *k);
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut w = BufWriter::new(std::fs::File::create(dst).map_err(io(dst))?);
    gguf_file::write(&mut w, &md, &t_refs).map_err(err(dst))?;
    w.flush().map_err(io(dst))?;
    Ok(changed)
}

/// User questions the bench's jobs cycle through.
pub const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Write a haiku about GPUs.",
    "Explain photosynthesis in one sentence.",
    "List three prime numbers.",
    "What is 12 times 7?",
    "Give me a name for a cat.",
    "Translate 'good morning' to Spanish.",
    "Why is the sky blue?",
];

/// Sampling of honest job `i`: greedy, 0.7 and 1.0, with top_p 1 or 0.9.
pub fn job_sampling(i: usize, gen_tokens: usize) -> Sampling {
    Sampling {
        temperature: [0.0, 0.7, 1.0][i % 3],
        top_p: if i % 2 == 0 { 1.0 } else { 0.9 },
        seed: 1000 + i as u64,
        max_tokens: gen_tokens as u32,
        stop: Vec::new(),
    }
}

/// Chat messages of job `i`.
pub fn job_messages(i: usize) -> Vec<ChatMessage> {
    vec![ChatMessage::new("user", PROMPTS[i % PROMPTS.len()])]
}
