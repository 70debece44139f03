//! The quantized model: int8 layers (dense, convolution, average pooling)
//! with fused requantization and ReLU, an argmax on the last layer's int8
//! logits, its plain (integer) evaluator, and its canonical encoding and
//! digest. The safetensors file format is in `model_file.rs`.

use sha2::{Digest, Sha256};

use crate::fixed::{Requant, MAX_MULTIPLIER, MAX_SHIFT};
pub use crate::layer::{Conv2d, Op, Pool2d, Tap};

/// Largest accepted flattened layer input or output.
pub const MAX_DIM: usize = 4096;
/// Largest accepted number of layers.
pub const MAX_LAYERS: usize = 16;
/// The `format` metadata value of a quantized model file.
pub const FILE_FORMAT: &str = "proofmesh-zkml-int8-v1";
/// Domain separator of the canonical encoding of an all-dense model.
const ENCODING_MAGIC: &[u8] = b"proofmesh-zkml/model/v1\0";
/// Domain separator of the canonical encoding of any other model.
const ENCODING_MAGIC_V2: &[u8] = b"proofmesh-zkml/model/v2\0";

/// Why a model was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// Structural problem in layer `layer`.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// Layer index.
        layer: usize,
        /// What is wrong.
        reason: String,
    },
    /// The model has no layers or too many.
    #[error("model has {layers} layers (1..={MAX_LAYERS} allowed)")]
    LayerCount {
        /// Layers found.
        layers: usize,
    },
    /// The file could not be parsed.
    #[error("model file: {reason}")]
    File {
        /// What is wrong.
        reason: String,
    },
    /// An input vector of the wrong length.
    #[error("input has {got} values, model expects {expected}")]
    InputLength {
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

/// One int8 layer: `y_j = requant(bias[b(j)] + Σ w·x)` over the taps of its
/// [`Op`] (pooling taps have weight 1 and no bias).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The geometry.
    pub op: Op,
    /// `op.weight_len()` weights (`[out, in]` or `[out, in, k, k]`).
    pub weights: Vec<i8>,
    /// `op.bias_len()` biases in accumulator units.
    pub bias: Vec<i32>,
    /// Requantization (and fused ReLU).
    pub requant: Requant,
}

impl Layer {
    /// A dense layer from a row-major `out × in` weight matrix.
    pub fn dense(
        in_dim: usize,
        out_dim: usize,
        weights: Vec<i8>,
        bias: Vec<i32>,
        requant: Requant,
    ) -> Self {
        Layer {
            op: Op::Dense { in_dim, out_dim },
            weights,
            bias,
            requant,
        }
    }

    /// Flattened input length.
    pub fn in_len(&self) -> usize {
        self.op.in_len()
    }

    /// Flattened output length.
    pub fn out_len(&self) -> usize {
        self.op.out_len()
    }

    /// The integer weight of a tap (1 for a constant tap).
    pub fn tap_weight(&self, t: Tap) -> i64 {
        t.weight.map_or(1, |w| i64::from(self.weights[w]))
    }

    /// The bias of output `j` (0 without biases).
    pub fn bias_of(&self, j: usize) -> i64 {
        self.op.bias_index(j).map_or(0, |b| i64::from(self.bias[b]))
    }

    /// `Σ |w|` over output `j`'s taps, plus `|bias|`: with `|x| ≤ 128`,
    /// `|acc| ≤ 128·Σ|w| + |bias|`.
    pub fn acc_bound(&self, j: usize) -> i128 {
        let mut wsum = 0i128;
        self.op
            .for_each_tap(j, |t| wsum += i128::from(self.tap_weight(t).abs()));
        wsum * 128 + i128::from(self.bias_of(j).abs())
    }

    /// The exact int accumulators for input `x`.
    pub fn accumulate(&self, x: &[i8]) -> Vec<i64> {
        (0..self.out_len())
            .map(|j| {
                let mut acc = self.bias_of(j);
                self.op.for_each_tap(j, |t| {
                    acc += self.tap_weight(t) * i64::from(x[t.input]);
                });
                acc
            })
            .collect()
    }
}

/// A feed-forward int8 classifier; its output is the last layer's int8
/// logits and their argmax (the first index of the maximum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantModel {
    /// The layers, first to last.
    pub layers: Vec<Layer>,
}

/// What the evaluator produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The last layer's int8 outputs.
    pub logits: Vec<i8>,
    /// The first index of the largest logit.
    pub class: u32,
}

/// First index of the maximum (0 for an empty slice).
pub fn argmax(v: &[i8]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

impl QuantModel {
    /// Checks shapes and parameter ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(ModelError::LayerCount {
                layers: self.layers.len(),
            });
        }
        for (i, l) in self.layers.iter().enumerate() {
            let bad = |reason: String| ModelError::Layer { layer: i, reason };
            l.op.validate(MAX_DIM).map_err(bad)?;
            if l.weights.len() != l.op.weight_len() || l.bias.len() != l.op.bias_len() {
                return Err(bad("weight or bias length does not match dims".into()));
            }
            if i > 0 && self.layers[i - 1].out_len() != l.in_len() {
                return Err(bad("input width differs from previous output".into()));
            }
            let r = l.requant;
            if r.multiplier == 0 || r.multiplier >= MAX_MULTIPLIER || r.shift > MAX_SHIFT {
                return Err(bad(format!(
                    "requant multiplier {} / shift {} out of range",
                    r.multiplier, r.shift
                )));
            }
        }
        Ok(())
    }

    /// Input width.
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, Layer::in_len)
    }

    /// Number of logits.
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, Layer::out_len)
    }

    /// Whether every layer is dense (an MLP).
    pub fn is_mlp(&self) -> bool {
        self.layers.iter().all(|l| matches!(l.op, Op::Dense { .. }))
    }

    /// Every layer's int8 outputs, first to last (the plain evaluator).
    pub fn activations(&self, input: &[i8]) -> Result<Vec<Vec<i8>>, ModelError> {
        if input.len() != self.input_len() {
            return Err(ModelError::InputLength {
                expected: self.input_len(),
                got: input.len(),
            });
        }
        let mut acts: Vec<Vec<i8>> = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let x = acts.last().map_or(input, Vec::as_slice);
            let y = l
                .accumulate(x)
                .into_iter()
                .map(|a| l.requant.apply(a))
                .collect();
            acts.push(y);
        }
        Ok(acts)
    }

    /// Runs the model on an int8 input.
    pub fn evaluate(&self, input: &[i8]) -> Result<Output, ModelError> {
        let logits = self.activations(input)?.pop().unwrap_or_default();
        Ok(Output {
            class: argmax(&logits),
            logits,
        })
    }

    /// The canonical byte encoding the digest is taken over (all integers
    /// u32 little-endian, relu as 0/1, weights one byte each, biases i32
    /// little-endian).
    ///
    /// - An all-dense model (v1): a magic string, the layer count, then per
    ///   layer `in_dim, out_dim, multiplier, shift, relu`, the weights
    ///   (row-major) and the biases.
    /// - Any other model (v2): another magic, the layer count, then per layer
    ///   a kind tag (0 dense, 1 conv2d, 2 avgpool2d), its geometry (dense:
    ///   `in, out`; conv2d: `in_c, in_h, in_w, out_c, kernel, stride,
    ///   padding`; avgpool2d: `channels, in_h, in_w, kernel, stride`), then
    ///   `multiplier, shift, relu`, the weights and the biases.
    ///
    /// v1 is kept for MLPs so that their commitments never change.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let v1 = self.is_mlp();
        let mut out = if v1 {
            ENCODING_MAGIC
        } else {
            ENCODING_MAGIC_V2
        }
        .to_vec();
        let put = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
        put(&mut out, self.layers.len());
        for l in &self.layers {
            let geometry: Vec<usize> = match l.op {
                Op::Dense { in_dim, out_dim } if v1 => vec![in_dim, out_dim],
                Op::Dense { in_dim, out_dim } => vec![0, in_dim, out_dim],
                Op::Conv2d(c) => vec![
                    1, c.in_c, c.in_h, c.in_w, c.out_c, c.kernel, c.stride, c.padding,
                ],
                Op::AvgPool2d(p) => vec![2, p.channels, p.in_h, p.in_w, p.kernel, p.stride],
            };
            for g in geometry {
                put(&mut out, g);
            }
            put(&mut out, l.requant.multiplier as usize);
            put(&mut out, l.requant.shift as usize);
            put(&mut out, usize::from(l.requant.relu));
            out.extend(l.weights.iter().map(|&w| w as u8));
            for b in &l.bias {
                out.extend_from_slice(&b.to_le_bytes());
            }
        }
        out
    }

    /// SHA-256 of [`Self::canonical_bytes`]: the model's commitment.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// Hex form of [`Self::digest`].
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest())
    }
}
