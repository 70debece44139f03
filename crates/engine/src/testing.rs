//! Test support: writes a tiny random-weight llama GGUF with candle's real
//! GGUF writer, so this crate's tests and other crates' tests can run a real
//! [`crate::Engine`] in milliseconds. The file mixes weight types on purpose
//! (Q4_1 and Q8_0 quantized, F16 output head, F32 norms) and carries a
//! byte-level BPE tokenizer with ChatML control tokens.

use std::io::{BufWriter, Write};
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::tokenizer::{byte_token, string_array};
use crate::EngineError;

/// Dimensions of the tiny model.
pub const TINY_N_EMBD: usize = 64;
pub const TINY_N_LAYER: usize = 2;
pub const TINY_N_HEAD: usize = 4;
pub const TINY_N_HEAD_KV: usize = 2;
pub const TINY_N_FF: usize = 256;
pub const TINY_CONTEXT: usize = 512;
/// The ChatML control tokens, ids 0, 1, 2 (EOS = 2, like SmolLM2).
pub const TINY_SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
/// Merges appended after the 256 byte tokens, in rank order.
const TINY_MERGES: [(&str, &str); 11] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("e", "r"),
    ("Ġ", "a"),
    ("o", "n"),
    ("r", "e"),
    ("Ġ", "s"),
    ("a", "n"),
    // Never applied: digits are pre-split one by one, as in SmolLM2.
    ("1", "2"),
];

/// Vocabulary size of the tiny model: specials + 256 bytes + merges.
pub const TINY_VOCAB: usize = 3 + 256 + TINY_MERGES.len();

/// Deterministic uniform values in [-scale, scale) (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self, scale: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    fn tensor(
        &mut self,
        dims: &[usize],
        scale: f32,
        offset: f32,
        dtype: GgmlDType,
    ) -> Result<QTensor, EngineError> {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| offset + self.next(scale)).collect();
        Tensor::from_vec(data, dims, &Device::Cpu)
            .and_then(|t| QTensor::quantize(&t, dtype))
            .map_err(EngineError::candle("build tiny tensor"))
    }
}

fn tokenizer_metadata() -> Vec<(&'static str, Value)> {
    let mut tokens: Vec<String> = TINY_SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend((0..=255u8).map(byte_token));
    tokens.extend(TINY_MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i < TINY_SPECIALS.len() { 3 } else { 1 }))
        .collect();
    let merges: Vec<String> = TINY_MERGES
        .iter()
        .map(|(a, b)| format!("{a} {b}"))
        .collect();
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens", string_array(&tokens)),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        ("tokenizer.ggml.merges", string_array(&merges)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
    ]
}

fn model_metadata() -> Vec<(&'static str, Value)> {
    let u = |v: usize| Value::U32(v as u32);
    vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("proofmesh-tiny-llama".into())),
        ("llama.block_count", u(TINY_N_LAYER)),
        ("llama.context_length", u(TINY_CONTEXT)),
        ("llama.embedding_length", u(TINY_N_EMBD)),
        ("llama.feed_forward_length", u(TINY_N_FF)),
        ("llama.attention.head_count", u(TINY_N_HEAD)),
        ("llama.attention.head_count_kv", u(TINY_N_HEAD_KV)),
        ("llama.rope.dimension_count", u(TINY_N_EMBD / TINY_N_HEAD)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
    ]
}

fn tensors(seed: u64) -> Result<Vec<(String, QTensor)>, EngineError> {
    let mut rng = Rng(seed ^ 0x005e_ed0f_7e57);
    let (d, ff, v) = (TINY_N_EMBD, TINY_N_FF, TINY_VOCAB);
    let kv = TINY_N_HEAD_KV * d / TINY_N_HEAD;
    let proj = |k: usize| 1.7 / (k as f32).sqrt();
    let mut out = vec![
        (
            "token_embd.weight".to_string(),
            rng.tensor(&[v, d], 1.0, 0.0, GgmlDType::Q8_0)?,
        ),
        (
            "output_norm.weight".to_string(),
            rng.tensor(&[d], 0.1, 1.0, GgmlDType::F32)?,
        ),
        (
            "output.weight".to_string(),
            rng.tensor(&[v, d], 0.5, 0.0, GgmlDType::F16)?,
        ),
    ];
    for i in 0..TINY_N_LAYER {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        out.push((p("attn_norm"), rng.tensor(&[d], 0.1, 1.0, GgmlDType::F32)?));
        out.push((
            p("attn_q"),
            rng.tensor(&[d, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((
            p("attn_k"),
            rng.tensor(&[kv, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((
            p("attn_v"),
            rng.tensor(&[kv, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((
            p("attn_output"),
            rng.tensor(&[d, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((p("ffn_norm"), rng.tensor(&[d], 0.1, 1.0, GgmlDType::F32)?));
        out.push((
            p("ffn_gate"),
            rng.tensor(&[ff, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((
            p("ffn_up"),
            rng.tensor(&[ff, d], proj(d), 0.0, GgmlDType::Q4_1)?,
        ));
        out.push((
            p("ffn_down"),
            rng.tensor(&[d, ff], proj(ff), 0.0, GgmlDType::Q8_0)?,
        ));
    }
    Ok(out)
}

/// Write the tiny model to `path`. Different seeds give different weights;
/// the same seed always gives the same file.
pub fn write_tiny_gguf(path: &Path, seed: u64) -> Result<(), EngineError> {
    write_tiny_gguf_with(path, seed, &[], &[])
}

/// Like [`write_tiny_gguf`], but overriding metadata values (matched by key)
/// and omitting the named tensors — for building deliberately broken files.
#[doc(hidden)]
pub fn write_tiny_gguf_with(
    path: &Path,
    seed: u64,
    metadata_overrides: &[(&str, Value)],
    omit_tensors: &[&str],
) -> Result<(), EngineError> {
    let mut md = model_metadata();
    md.extend(tokenizer_metadata());
    for (key, value) in metadata_overrides {
        match md.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => {
                return Err(EngineError::MissingMetadata {
                    key: key.to_string(),
                })
            }
        }
    }
    let tensors: Vec<(String, QTensor)> = tensors(seed)?
        .into_iter()
        .filter(|(n, _)| !omit_tensors.contains(&n.as_str()))
        .collect();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let file = std::fs::File::create(path).map_err(EngineError::io(path))?;
    let mut w = BufWriter::new(file);
    gguf_file::write(&mut w, &md_refs, &t_refs).map_err(EngineError::candle("write gguf"))?;
    w.flush().map_err(EngineError::io(path))?;
    Ok(())
}

/// The real default model for tests that need it: its path, asserting (not
/// skipping) that it is there, with instructions when it is not.
pub fn require_default_model() -> std::path::PathBuf {
    let path = crate::default_model_path();
    assert!(
        path.is_file(),
        "real model not found at {}: set PROOFMESH_MODEL to the SmolLM2-135M-Instruct.Q4_1.gguf file \
         (or PROOFMESH_MODEL_DIR to its directory), or run `cargo xtask fetch-model`",
        path.display()
    );
    path
}

/// The real default model loaded once per thread count, shared by a test binary.
pub fn shared_default_engine(threads: usize) -> &'static crate::Engine {
    use std::sync::OnceLock;
    static ONE: OnceLock<crate::Engine> = OnceLock::new();
    static TWO: OnceLock<crate::Engine> = OnceLock::new();
    let cell = if threads == 1 { &ONE } else { &TWO };
    cell.get_or_init(|| {
        let opts = crate::EngineOptions {
            threads: Some(threads),
        };
        crate::Engine::load(&require_default_model(), opts)
            .unwrap_or_else(|e| panic!("loading the default model: {e}"))
    })
}
