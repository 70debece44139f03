//! The llama forward pass, owned by this crate: token embedding, RMSNorm,
//! interleaved RoPE, grouped-query attention, SwiGLU feed-forward, final norm
//! and output projection (tied to the embedding when `output.weight` is
//! absent). The pass itself (split over a thread team) is in `forward.rs`.
//! Every step is row-wise, so logits for a position are bit-identical
//! whether it was computed in a long prefill or one token at a time.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use crate::attention::KvCache;
use crate::gguf::{GgufFile, Hparams};
use crate::kernels::packed::pack_in_place;
use crate::kernels::QType;
use crate::linear::Linear;
use crate::ops::RopeTable;
use crate::qweight::{check_range, QWeight};
use crate::EngineError;

/// Longest context the precomputed RoPE table covers, whatever the file says.
pub(crate) const MAX_ROPE_POSITIONS: usize = 32_768;

pub(crate) struct Layer {
    pub(crate) attn_norm: Vec<f32>,
    /// q, k, v projections (one team stage when all native).
    pub(crate) qkv: [Linear; 3],
    pub(crate) wo: Linear,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

/// The token embedding: native quantized rows are dequantized on lookup
/// (no f32 copy of the table); other types go through candle.
enum Embedding {
    Native(QWeight),
    Candle(Arc<QTensor>),
}

/// Loaded weights plus the tables the forward pass needs.
pub(crate) struct Model {
    pub(crate) hp: Hparams,
    pub(crate) vocab_size: usize,
    embed: Embedding,
    pub(crate) layers: Vec<Layer>,
    pub(crate) output_norm: Vec<f32>,
    pub(crate) output: Linear,
    pub(crate) rope: RopeTable,
}

fn norm_vector(f: &mut GgufFile, name: &str, d: usize) -> Result<Vec<f32>, EngineError> {
    f.tensor(name, &[d])?
        .dequantize(&Device::Cpu)
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EngineError::candle("dequantize norm"))
}

/// The native (packed) weights of a file, by tensor name.
struct Natives {
    data: Arc<Vec<u8>>,
    ranges: HashMap<String, (QType, Range<usize>)>,
}

impl Natives {
    /// Read the tensor data once and repack every native weight in `specs`
    /// (name, rows, row length) in place.
    fn load(f: &mut GgufFile, specs: &[(String, usize, usize)]) -> Result<Self, EngineError> {
        let mut region = f.read_region()?;
        let mut ranges = HashMap::new();
        for (name, n, k) in specs {
            let Some(t) = f.dtype(name).and_then(QType::from_ggml) else {
                continue;
            };
            let (_, range) = f.tensor_range(&region, name, &[*n, *k])?;
            check_range(name, t, *n, *k, &range, region.data.len())?;
            if ranges.insert(name.clone(), (t, range.clone())).is_none() {
                pack_in_place(t, &mut region.data[range], *n, *k);
            }
        }
        Ok(Self {
            data: Arc::new(region.data),
            ranges,
        })
    }

    fn get(&self, name: &str, n: usize, k: usize) -> Result<Option<QWeight>, EngineError> {
        match self.ranges.get(name) {
            Some((t, range)) => {
                QWeight::new(name, *t, n, k, self.data.clone(), range.clone()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn linear(
        &self,
        f: &mut GgufFile,
        name: &str,
        n: usize,
        k: usize,
    ) -> Result<Linear, EngineError> {
        match self.get(name, n, k)? {
            Some(w) => Ok(Linear::Native(w)),
            None => Linear::new(name, Arc::new(f.tensor(name, &[n, k])?)),
        }
    }
}

/// Every matmul weight of the model: (name, rows, row length).
fn weight_specs(hp: &Hparams, vocab: usize, has_output: bool) -> Vec<(String, usize, usize)> {
    let (d, qd, kvd, ff) = (hp.n_embd, hp.n_head * hp.head_dim, hp.kv_dim(), hp.n_ff);
    let mut v = vec![("token_embd.weight".to_string(), vocab, d)];
    if has_output {
        v.push(("output.weight".into(), vocab, d));
    }
    for i in 0..hp.n_layer {
        for (s, n, k) in [
            ("attn_q", qd, d),
            ("attn_k", kvd, d),
            ("attn_v", kvd, d),
            ("attn_output", d, qd),
            ("ffn_gate", ff, d),
            ("ffn_up", ff, d),
            ("ffn_down", d, ff),
        ] {
            v.push((format!("blk.{i}.{s}.weight"), n, k));
        }
    }
    v
}

impl Model {
    /// Load every tensor of a llama model, validating names and shapes.
    pub(crate) fn load(f: &mut GgufFile, hp: Hparams) -> Result<Self, EngineError> {
        if f.has_tensor("rope_freqs.weight") {
            return Err(EngineError::UnsupportedTensorType {
                name: "rope_freqs.weight".into(),
                dtype: "rope frequency scaling is not supported".into(),
            });
        }
        let vocab_size = match f.dtype("token_embd.weight") {
            Some(_) => f.tensor_rows("token_embd.weight")?,
            None => {
                return Err(EngineError::MissingTensor {
                    name: "token_embd.weight".into(),
                })
            }
        };
        let (d, qd, kvd) = (hp.n_embd, hp.n_head * hp.head_dim, hp.kv_dim());
        let has_output = f.has_tensor("output.weight");
        let nat = Natives::load(f, &weight_specs(&hp, vocab_size, has_output))?;
        let embed = match nat.get("token_embd.weight", vocab_size, d)? {
            Some(w) => Embedding::Native(w),
            None => Embedding::Candle(Arc::new(f.tensor("token_embd.weight", &[vocab_size, d])?)),
        };
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: norm_vector(f, &p("attn_norm"), d)?,
                qkv: [
                    nat.linear(f, &p("attn_q"), qd, d)?,
                    nat.linear(f, &p("attn_k"), kvd, d)?,
                    nat.linear(f, &p("attn_v"), kvd, d)?,
                ],
                wo: nat.linear(f, &p("attn_output"), d, qd)?,
                ffn_norm: norm_vector(f, &p("ffn_norm"), d)?,
                gate: nat.linear(f, &p("ffn_gate"), hp.n_ff, d)?,
                up: nat.linear(f, &p("ffn_up"), hp.n_ff, d)?,
                down: nat.linear(f, &p("ffn_down"), d, hp.n_ff)?,
            });
        }
        let output_norm = norm_vector(f, "output_norm.weight", d)?;
        let output = if has_output {
            nat.linear(f, "output.weight", vocab_size, d)?
        } else {
            match &embed {
                Embedding::Native(w) => Linear::Native(w.clone()),
                Embedding::Candle(t) => Linear::new("token_embd.weight", t.clone())?,
            }
        };
        let rope = RopeTable::new(
            hp.head_dim,
            hp.rope_base,
            hp.context_length.min(MAX_ROPE_POSITIONS),
        );
        Ok(Self {
            hp,
            vocab_size,
            embed,
            layers,
            output_norm,
            output,
            rope,
        })
    }

    /// Longest sequence (prompt + generated) the model can process.
    pub(crate) fn max_positions(&self) -> usize {
        self.rope.max_pos()
    }

    /// A fresh KV cache for one sequence.
    pub(crate) fn new_cache(&self) -> KvCache {
        KvCache::new(self.hp.n_layer, self.hp.kv_dim())
    }

    pub(crate) fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let table = match &self.embed {
            Embedding::Candle(t) => t,
            Embedding::Native(w) => {
                let mut out = vec![0f32; tokens.len() * w.k];
                for (&t, row) in tokens.iter().zip(out.chunks_exact_mut(w.k)) {
                    w.dequantize_row(t as usize, row);
                }
                return Ok(out);
            }
        };
        let ids = Tensor::from_slice(tokens, tokens.len(), &Device::Cpu)
            .map_err(EngineError::candle("token ids"))?;
        table
            .embedding(&ids)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(EngineError::candle("embedding lookup"))
    }
}
