//! The quantized model: int8 dense layers with fused requantization and
//! ReLU, an argmax on the last layer's int8 logits, its plain (integer)
//! evaluator, its canonical encoding and digest, and its safetensors file.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

use crate::fixed::{Requant, MAX_MULTIPLIER, MAX_SHIFT};

/// Largest accepted layer width.
pub const MAX_DIM: usize = 4096;
/// Largest accepted number of layers.
pub const MAX_LAYERS: usize = 16;
/// The `format` metadata value of a quantized model file.
pub const FILE_FORMAT: &str = "proofmesh-zkml-int8-v1";
/// Domain separator of the canonical encoding.
const ENCODING_MAGIC: &[u8] = b"proofmesh-zkml/model/v1\0";

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

/// One int8 dense layer: `y = requant(bias + W·x)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Input width.
    pub in_dim: usize,
    /// Output width.
    pub out_dim: usize,
    /// Row-major `out_dim × in_dim` weights.
    pub weights: Vec<i8>,
    /// `out_dim` biases in accumulator units.
    pub bias: Vec<i32>,
    /// Requantization (and fused ReLU).
    pub requant: Requant,
}

impl Dense {
    /// The weight row of output `j`.
    pub fn row(&self, j: usize) -> &[i8] {
        &self.weights[j * self.in_dim..(j + 1) * self.in_dim]
    }

    /// The exact int accumulators for input `x`.
    pub fn accumulate(&self, x: &[i8]) -> Vec<i64> {
        (0..self.out_dim)
            .map(|j| {
                let dot: i64 = self
                    .row(j)
                    .iter()
                    .zip(x)
                    .map(|(&w, &v)| i64::from(w) * i64::from(v))
                    .sum();
                dot + i64::from(self.bias[j])
            })
            .collect()
    }
}

/// A feed-forward int8 classifier; its output is the last layer's int8
/// logits and their argmax (the first index of the maximum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantModel {
    /// The layers, first to last.
    pub layers: Vec<Dense>,
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
            if l.in_dim == 0 || l.out_dim == 0 || l.in_dim > MAX_DIM || l.out_dim > MAX_DIM {
                return Err(bad(format!("dims {}x{} out of range", l.out_dim, l.in_dim)));
            }
            if l.weights.len() != l.in_dim * l.out_dim || l.bias.len() != l.out_dim {
                return Err(bad("weight or bias length does not match dims".into()));
            }
            if i > 0 && self.layers[i - 1].out_dim != l.in_dim {
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
        self.layers.first().map_or(0, |l| l.in_dim)
    }

    /// Number of logits.
    pub fn output_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_dim)
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

    /// The canonical byte encoding the digest is taken over: a magic string,
    /// the layer count, then per layer `in_dim, out_dim, multiplier, shift,
    /// relu` (u32 little-endian; relu as 0/1), the weights (row-major, one
    /// byte each) and the biases (i32 little-endian).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = ENCODING_MAGIC.to_vec();
        let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
        put(&mut out, self.layers.len() as u32);
        for l in &self.layers {
            put(&mut out, l.in_dim as u32);
            put(&mut out, l.out_dim as u32);
            put(&mut out, l.requant.multiplier);
            put(&mut out, l.requant.shift);
            put(&mut out, u32::from(l.requant.relu));
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

fn file_err(reason: impl Into<String>) -> ModelError {
    ModelError::File {
        reason: reason.into(),
    }
}

impl QuantModel {
    /// Writes the model as safetensors: `layers.{i}.weight` (I8,
    /// `[out, in]`), `layers.{i}.bias` (I32, `[out]`), and the
    /// requantization in the metadata (`layers.{i}.multiplier`, `.shift`,
    /// `.relu`, and `format`).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FILE_FORMAT.to_string());
        let bias_bytes: Vec<Vec<u8>> = self
            .layers
            .iter()
            .map(|l| l.bias.iter().flat_map(|b| b.to_le_bytes()).collect())
            .collect();
        let weight_bytes: Vec<Vec<u8>> = self
            .layers
            .iter()
            .map(|l| l.weights.iter().map(|&w| w as u8).collect())
            .collect();
        let mut views = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let r = l.requant;
            meta.insert(format!("layers.{i}.multiplier"), r.multiplier.to_string());
            meta.insert(format!("layers.{i}.shift"), r.shift.to_string());
            meta.insert(format!("layers.{i}.relu"), r.relu.to_string());
            let w = TensorView::new(Dtype::I8, vec![l.out_dim, l.in_dim], &weight_bytes[i])
                .map_err(|e| file_err(e.to_string()))?;
            let b = TensorView::new(Dtype::I32, vec![l.out_dim], &bias_bytes[i])
                .map_err(|e| file_err(e.to_string()))?;
            views.push((format!("layers.{i}.weight"), w));
            views.push((format!("layers.{i}.bias"), b));
        }
        safetensors::serialize(views, Some(meta)).map_err(|e| file_err(e.to_string()))
    }

    /// Parses and validates a file written by [`Self::to_safetensors`].
    /// Safe on untrusted bytes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| file_err(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FILE_FORMAT) {
            return Err(file_err(format!("format metadata is not {FILE_FORMAT}")));
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| file_err(e.to_string()))?;
        let mut layers = Vec::new();
        for i in 0..=MAX_LAYERS {
            let Ok(w) = st.tensor(&format!("layers.{i}.weight")) else {
                break;
            };
            let b = st
                .tensor(&format!("layers.{i}.bias"))
                .map_err(|_| file_err(format!("layers.{i}.bias missing")))?;
            if w.dtype() != Dtype::I8 || w.shape().len() != 2 {
                return Err(file_err(format!("layers.{i}.weight must be I8 [out, in]")));
            }
            if b.dtype() != Dtype::I32 || b.shape().len() != 1 {
                return Err(file_err(format!("layers.{i}.bias must be I32 [out]")));
            }
            let get = |k: &str| -> Result<&String, ModelError> {
                meta.get(&format!("layers.{i}.{k}"))
                    .ok_or_else(|| file_err(format!("layers.{i}.{k} metadata missing")))
            };
            let num = |k: &str| -> Result<u32, ModelError> {
                get(k)?
                    .parse()
                    .map_err(|_| file_err(format!("layers.{i}.{k} is not a u32")))
            };
            let relu = match get("relu")?.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(file_err(format!("layers.{i}.relu is not a bool"))),
            };
            layers.push(Dense {
                in_dim: w.shape()[1],
                out_dim: w.shape()[0],
                weights: w.data().iter().map(|&v| v as i8).collect(),
                bias: b
                    .data()
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                requant: Requant {
                    multiplier: num("multiplier")?,
                    shift: num("shift")?,
                    relu,
                },
            });
        }
        if st.len() != 2 * layers.len() {
            return Err(file_err("unexpected tensors in file"));
        }
        let m = QuantModel { layers };
        m.validate()?;
        Ok(m)
    }
}
