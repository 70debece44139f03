//! The llama forward pass, owned by this crate: token embedding, RMSNorm,
//! interleaved RoPE, grouped-query attention, SwiGLU feed-forward, final norm
//! and output projection (tied to the embedding when `output.weight` is
//! absent). Every step is row-wise, so logits for a position are bit-identical
//! whether it was computed in a long prefill or one token at a time.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use crate::attention::{attend, Heads, KvCache};
use crate::gguf::{GgufFile, Hparams, WeightRegion};
use crate::kernels::QType;
use crate::linear::{Fused, Linear};
use crate::ops::{add_in_place, rms_norm, silu_mul, RopeRows, RopeTable};
use crate::qweight::QWeight;
use crate::EngineError;

/// Longest context the precomputed RoPE table covers, whatever the file says.
pub(crate) const MAX_ROPE_POSITIONS: usize = 32_768;

struct Layer {
    attn_norm: Vec<f32>,
    /// q, k, v projections (fused when possible).
    qkv: Fused,
    wo: Linear,
    ffn_norm: Vec<f32>,
    /// gate, up projections (fused when possible).
    gate_up: Fused,
    down: Linear,
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
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Linear,
    rope: RopeTable,
}

fn norm_vector(f: &mut GgufFile, name: &str, d: usize) -> Result<Vec<f32>, EngineError> {
    f.tensor(name, &[d])?
        .dequantize(&Device::Cpu)
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EngineError::candle("dequantize norm"))
}

/// A native quantized weight (a view of the tensor data) if the tensor's
/// type has kernels, else `None`.
fn native(
    f: &GgufFile,
    region: &WeightRegion,
    name: &str,
    n: usize,
    k: usize,
) -> Result<Option<QWeight>, EngineError> {
    match f.dtype(name).and_then(QType::from_ggml) {
        Some(t) => {
            let (_, range) = f.tensor_range(region, name, &[n, k])?;
            QWeight::new(name, t, n, k, region.data.clone(), range).map(Some)
        }
        None => Ok(None),
    }
}

fn linear(
    f: &mut GgufFile,
    r: &WeightRegion,
    name: &str,
    n: usize,
    k: usize,
) -> Result<Linear, EngineError> {
    match native(f, r, name, n, k)? {
        Some(w) => Ok(Linear::Native(w)),
        None => Linear::new(name, Arc::new(f.tensor(name, &[n, k])?)),
    }
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
        let r = &f.read_region()?;
        let embed = match native(f, r, "token_embd.weight", vocab_size, d)? {
            Some(w) => Embedding::Native(w),
            None => Embedding::Candle(Arc::new(f.tensor("token_embd.weight", &[vocab_size, d])?)),
        };
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: norm_vector(f, &p("attn_norm"), d)?,
                qkv: Fused::new(vec![
                    linear(f, r, &p("attn_q"), qd, d)?,
                    linear(f, r, &p("attn_k"), kvd, d)?,
                    linear(f, r, &p("attn_v"), kvd, d)?,
                ]),
                wo: linear(f, r, &p("attn_output"), d, qd)?,
                ffn_norm: norm_vector(f, &p("ffn_norm"), d)?,
                gate_up: Fused::new(vec![
                    linear(f, r, &p("ffn_gate"), hp.n_ff, d)?,
                    linear(f, r, &p("ffn_up"), hp.n_ff, d)?,
                ]),
                down: linear(f, r, &p("ffn_down"), d, hp.n_ff)?,
            });
        }
        let output_norm = norm_vector(f, "output_norm.weight", d)?;
        let output = if f.has_tensor("output.weight") {
            linear(f, r, "output.weight", vocab_size, d)?
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

    /// Run `tokens` (positions `cache.len()..`) through every layer, appending
    /// to the cache; returns the final-normed hidden state of each token.
    /// Token ids must already be validated against the vocabulary.
    pub(crate) fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
    ) -> Result<Vec<f32>, EngineError> {
        let m = tokens.len();
        let pos0 = cache.len();
        if m == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if pos0 + m > self.max_positions() {
            return Err(EngineError::ContextOverflow {
                tokens: pos0 + m,
                context_length: self.max_positions(),
            });
        }
        let mut x = self.embed(tokens)?;
        let rope = self.rope.rows(pos0, m);
        for (li, layer) in self.layers.iter().enumerate() {
            self.attention_block(layer, li, &mut x, &rope, pos0, cache)?;
            self.ffn_block(layer, &mut x, m)?;
        }
        cache.commit(m);
        Ok(rms_norm(&x, &self.output_norm, self.hp.rms_eps))
    }

    /// Logits for `m` rows of final hidden state (`m * vocab_size` values).
    pub(crate) fn logits(&self, hidden: &[f32], m: usize) -> Result<Vec<f32>, EngineError> {
        self.output.forward(hidden, m)
    }

    fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
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

    fn attention_block(
        &self,
        layer: &Layer,
        li: usize,
        x: &mut [f32],
        rope: &RopeRows,
        pos0: usize,
        cache: &mut KvCache,
    ) -> Result<(), EngineError> {
        let hp = &self.hp;
        let m = x.len() / hp.n_embd;
        let h = rms_norm(x, &layer.attn_norm, hp.rms_eps);
        let mut qkv = layer.qkv.forward(&h, m)?.into_iter();
        let (Some(mut q), Some(mut k), Some(v)) = (qkv.next(), qkv.next(), qkv.next()) else {
            unreachable!("qkv has three parts");
        };
        let (qd, kvd) = (hp.n_head * hp.head_dim, hp.kv_dim());
        for r in 0..m {
            rope.apply(&mut q[r * qd..(r + 1) * qd], pos0 + r);
            rope.apply(&mut k[r * kvd..(r + 1) * kvd], pos0 + r);
        }
        cache.append(li, &k, &v);
        let heads = Heads {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hp.head_dim,
        };
        let attn = attend(&q, m, pos0, cache, li, heads);
        let o = layer.wo.forward(&attn, m)?;
        add_in_place(x, &o);
        Ok(())
    }

    fn ffn_block(&self, layer: &Layer, x: &mut [f32], m: usize) -> Result<(), EngineError> {
        let h = rms_norm(x, &layer.ffn_norm, self.hp.rms_eps);
        let mut gu = layer.gate_up.forward(&h, m)?.into_iter();
        let (Some(mut g), Some(u)) = (gu.next(), gu.next()) else {
            unreachable!("gate_up has two parts");
        };
        silu_mul(&mut g, &u);
        let d = layer.down.forward(&g, m)?;
        add_in_place(x, &d);
        Ok(())
    }
}
