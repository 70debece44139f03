//! Float models and the quantization step that turns them into
//! [`QuantModel`]s, plus the float safetensors import.
//!
//! Quantization (post-training, per-tensor symmetric):
//! - inputs: the caller gives the float value of one int8 step (`input_scale`);
//! - weights: `s_w = max|W| / 127`, `W_q = round(W / s_w)`;
//! - biases: `b_q = round(b / (s_in · s_w))` (int32, accumulator units);
//! - outputs: `s_out = max |activation| / 127` over a calibration set;
//! - requantization: `M = s_in · s_w / s_out ≈ m / 2^s` with `m ∈ [128, 256)`
//!   (8 significant bits) whenever `M < 256`.

use safetensors::tensor::{Dtype, SafeTensors};

use crate::fixed::{quantize_i8, Requant, MAX_MULTIPLIER, MAX_SHIFT};
use crate::model::{Dense, ModelError, QuantModel, MAX_DIM, MAX_LAYERS};

/// One float dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatLayer {
    /// Input width.
    pub in_dim: usize,
    /// Output width.
    pub out_dim: usize,
    /// Row-major `out × in`.
    pub weight: Vec<f32>,
    /// `out` biases.
    pub bias: Vec<f32>,
    /// ReLU after the layer.
    pub relu: bool,
}

/// A float MLP.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatModel {
    /// Layers, first to last.
    pub layers: Vec<FloatLayer>,
}

impl FloatLayer {
    /// `relu?(W·x + b)`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.out_dim)
            .map(|j| {
                let row = &self.weight[j * self.in_dim..(j + 1) * self.in_dim];
                let v = row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + self.bias[j];
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

    /// Reads `layers.{i}.weight` (F32 `[out, in]`) and `layers.{i}.bias`
    /// (F32 `[out]`); ReLU after every layer but the last. Safe on untrusted
    /// bytes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let err = |r: String| ModelError::File { reason: r };
        let st = SafeTensors::deserialize(bytes).map_err(|e| err(e.to_string()))?;
        let f32s = |d: &[u8]| -> Vec<f32> {
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mut layers = Vec::new();
        for i in 0..MAX_LAYERS {
            let Ok(w) = st.tensor(&format!("layers.{i}.weight")) else {
                break;
            };
            let b = st
                .tensor(&format!("layers.{i}.bias"))
                .map_err(|_| err(format!("layers.{i}.bias missing")))?;
            let ok = w.dtype() == Dtype::F32 && w.shape().len() == 2 && b.dtype() == Dtype::F32;
            if !ok
                || b.shape() != [w.shape()[0]]
                || w.shape().iter().any(|&d| d == 0 || d > MAX_DIM)
            {
                return Err(err(format!("layers.{i}: expected F32 [out, in] and [out]")));
            }
            let (in_dim, out_dim) = (w.shape()[1], w.shape()[0]);
            if layers
                .last()
                .is_some_and(|l: &FloatLayer| l.out_dim != in_dim)
            {
                return Err(err(format!("layers.{i}: width mismatch")));
            }
            let (weight, bias) = (f32s(w.data()), f32s(b.data()));
            if weight.iter().chain(&bias).any(|v| !v.is_finite()) {
                return Err(err(format!("layers.{i}: non-finite value")));
            }
            layers.push(FloatLayer {
                in_dim,
                out_dim,
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
        let wmax = l
            .weight
            .iter()
            .fold(0f64, |a, &w| a.max(f64::from(w).abs()));
        let s_w = if wmax > 0.0 { wmax / 127.0 } else { 1.0 };
        let s_acc = s_in * s_w;
        let s_out = if max_act[i] > 0.0 {
            max_act[i] / 127.0
        } else {
            1.0
        };
        let (multiplier, shift) = multiplier_shift(s_acc / s_out);
        layers.push(Dense {
            in_dim: l.in_dim,
            out_dim: l.out_dim,
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
