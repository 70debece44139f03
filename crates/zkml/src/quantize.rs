//! Float models and the quantization step that turns them into
//! [`QuantModel`]s, plus the float safetensors import and export.
//!
//! Quantization (post-training, per-tensor symmetric):
//! - inputs: the caller gives the float value of one int8 step (`input_scale`);
//! - weights: `s_w = max|W| / 127`, `W_q = round(W / s_w)`; pooling's
//!   constant taps are 1 in int8, so their `s_w` is the float tap `1/k²`;
//! - biases: `b_q = round(b / (s_in · s_w))` (int32, accumulator units);
//! - outputs: `s_out = max |activation| / 127` over a calibration set;
//! - requantization: `M = s_in · s_w / s_out ≈ m / 2^s` with `m ∈ [128, 256)`
//!   (8 significant bits) whenever `M < 256`.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors};

use crate::fixed::{quantize_i8, Requant, MAX_MULTIPLIER, MAX_SHIFT};
use crate::layer::{Op, Tap};
use crate::model::{Layer, ModelError, QuantModel};
use crate::model_file::{file_err, raw_layers, write_layers, LayerBytes};

/// One float layer: `relu?(b + Σ w·x)` over the taps of its [`Op`]
/// (pooling taps weigh `1/k²` and have no bias).
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// The geometry.
    pub op: Op,
    /// `op.weight_len()` weights.
    pub weight: Vec<f32>,
    /// `op.bias_len()` biases.
    pub bias: Vec<f32>,
    /// ReLU after the layer.
    pub relu: bool,
}

/// A float feed-forward model.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatModel {
    /// Layers, first to last.
    pub layers: Vec<FloatLayer>,
}

impl FloatLayer {
    /// A dense layer from a row-major `out × in` matrix.
    pub fn dense(
        in_dim: usize,
        out_dim: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    ) -> Self {
        FloatLayer {
            op: Op::Dense { in_dim, out_dim },
            weight,
            bias,
            relu,
        }
    }

    /// The float weight of a tap.
    pub fn tap_weight(&self, t: Tap) -> f32 {
        t.weight
            .map_or_else(|| self.op.constant_tap_value(), |w| self.weight[w])
    }

    /// `relu?(b + Σ w·x)`, summed in tap order and the bias added last.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.op.out_len())
            .map(|j| {
                let mut terms = Vec::new();
                self.op
                    .for_each_tap(j, |t| terms.push(self.tap_weight(t) * x[t.input]));
                let b = self.op.bias_index(j).map_or(0.0, |b| self.bias[b]);
                let v = terms.into_iter().sum::<f32>() + b;
                if self.relu {
                    v.max(0.0)
                } else {
                    v
                }
            })
            .collect()
    }
}

impl FloatModel {
    /// Every layer's outputs.
    pub fn activations(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let mut acts: Vec<Vec<f32>> = Vec::new();
        for l in &self.layers {
            let y = l.forward(acts.last().map_or(x, Vec::as_slice));
            acts.push(y);
        }
        acts
    }

    /// The logits.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.activations(x).pop().unwrap_or_default()
    }

    /// Reads F32 layers in the layout of `model_file.rs` (dense, conv2d,
    /// avgpool2d); ReLU after every layer but the last. Safe on untrusted
    /// bytes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| file_err(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes).map_err(|e| file_err(e.to_string()))?;
        let f32s = |d: &[u8]| -> Vec<f32> {
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mut layers: Vec<FloatLayer> = Vec::new();
        for raw in raw_layers(&st, &meta)? {
            let i = raw.index;
            let op = raw.op()?;
            let (weight, bias) = match (&raw.weight, &raw.bias) {
                (Some(w), Some(b)) => {
                    if w.dtype() != Dtype::F32 || b.dtype() != Dtype::F32 {
                        return Err(file_err(format!("layers.{i}: expected F32 tensors")));
                    }
                    (f32s(w.data()), f32s(b.data()))
                }
                _ => (Vec::new(), Vec::new()),
            };
            if layers.last().is_some_and(|l| l.op.out_len() != op.in_len()) {
                return Err(file_err(format!("layers.{i}: width mismatch")));
            }
            if weight.iter().chain(&bias).any(|v| !v.is_finite()) {
                return Err(file_err(format!("layers.{i}: non-finite value")));
            }
            layers.push(FloatLayer {
                op,
                weight,
                bias,
                relu: true,
            });
        }
        match layers.last_mut() {
            Some(l) => l.relu = false,
            None => return Err(ModelError::LayerCount { layers: 0 }),
        }
        Ok(FloatModel { layers })
    }

    /// Writes the model as F32 safetensors, readable by
    /// [`Self::from_safetensors`] (the ReLU rule is implied).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let layers: Vec<LayerBytes<'_>> = self
            .layers
            .iter()
            .map(|l| LayerBytes {
                op: &l.op,
                weight: l.weight.iter().flat_map(|v| v.to_le_bytes()).collect(),
                bias: l.bias.iter().flat_map(|v| v.to_le_bytes()).collect(),
            })
            .collect();
        write_layers(HashMap::new(), &layers, (Dtype::F32, Dtype::F32))
    }
}

/// `M ≈ m / 2^s` with 8 significant bits in `m` where possible.
pub fn multiplier_shift(m: f64) -> (u32, u32) {
    let mut s = 0u32;
    while m * 2f64.powi(s as i32) < 128.0 && s < MAX_SHIFT {
        s += 1;
    }
    let q = (m * 2f64.powi(s as i32)).round();
    let q = q.clamp(1.0, f64::from(MAX_MULTIPLIER - 1));
    (q as u32, s)
}

/// Quantizes `fm` given the float value of one int8 input step and a
/// calibration set of float inputs (used for the activation scales).
pub fn quantize(
    fm: &FloatModel,
    input_scale: f64,
    calibration: &[Vec<f32>],
) -> Result<QuantModel, ModelError> {
    let mut max_act = vec![0f64; fm.layers.len()];
    for x in calibration {
        for (i, a) in fm.activations(x).iter().enumerate() {
            for &v in a {
                max_act[i] = max_act[i].max(f64::from(v).abs());
            }
        }
    }
    let mut s_in = input_scale;
    let mut layers = Vec::with_capacity(fm.layers.len());
    for (i, l) in fm.layers.iter().enumerate() {
        // Pooling's constant taps weigh 1 in int8 and 1/k² in float.
        let s_w = match l.op {
            Op::AvgPool2d(_) => f64::from(l.op.constant_tap_value()),
            _ => {
                let wmax = l
                    .weight
                    .iter()
                    .fold(0f64, |a, &w| a.max(f64::from(w).abs()));
                if wmax > 0.0 {
                    wmax / 127.0
                } else {
                    1.0
                }
            }
        };
        let s_acc = s_in * s_w;
        let s_out = if max_act[i] > 0.0 {
            max_act[i] / 127.0
        } else {
            1.0
        };
        let (multiplier, shift) = multiplier_shift(s_acc / s_out);
        layers.push(Layer {
            op: l.op,
            weights: l
                .weight
                .iter()
                .map(|&w| quantize_i8(f64::from(w) / s_w))
                .collect(),
            bias: l
                .bias
                .iter()
                .map(|&b| (f64::from(b) / s_acc).round().clamp(-1e9, 1e9) as i32)
                .collect(),
            requant: Requant {
                multiplier,
                shift,
                relu: l.relu,
            },
        });
        s_in = s_out;
    }
    let m = QuantModel { layers };
    m.validate()?;
    Ok(m)
}
