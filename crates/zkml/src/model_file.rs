//! The model file formats (safetensors): the quantized int8 model
//! ([`QuantModel::to_safetensors`] / [`QuantModel::from_safetensors`]) and
//! the layer geometry metadata it shares with the float import in
//! [`crate::quantize`].
//!
//! Layer `i` is described by tensors `layers.{i}.weight` and
//! `layers.{i}.bias` and string metadata `layers.{i}.*`:
//!
//! | `layers.{i}.kind` | tensors                                   | geometry metadata                         |
//! |-------------------|-------------------------------------------|-------------------------------------------|
//! | `dense` (or absent) | weight `[out, in]`, bias `[out]`        | —                                         |
//! | `conv2d`          | weight `[out_c, in_c, k, k]`, bias `[out_c]` | `in_h`, `in_w`, `stride`, `padding`    |
//! | `avgpool2d`       | none                                      | `channels`, `in_h`, `in_w`, `kernel`, `stride` |
//!
//! A quantized file also carries `multiplier`, `shift` and `relu` per layer
//! and `format = proofmesh-zkml-int8-v1`; its tensors are I8 weights and I32
//! biases. Every parser here is safe on untrusted bytes.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::fixed::Requant;
use crate::layer::{Conv2d, Op, Pool2d};
use crate::model::{Layer, ModelError, QuantModel, FILE_FORMAT, MAX_DIM, MAX_LAYERS};

pub(crate) fn file_err(reason: impl Into<String>) -> ModelError {
    ModelError::File {
        reason: reason.into(),
    }
}

/// One layer's metadata and tensors, as read from a file.
pub(crate) struct RawLayer<'a> {
    /// Layer index.
    pub index: usize,
    /// `layers.{i}.*` metadata lookups go through this.
    meta: &'a HashMap<String, String>,
    /// The weight tensor, if any.
    pub weight: Option<TensorView<'a>>,
    /// The bias tensor, if any.
    pub bias: Option<TensorView<'a>>,
}

impl RawLayer<'_> {
    /// The metadata value `layers.{i}.{key}`.
    pub fn get(&self, key: &str) -> Result<&str, ModelError> {
        self.meta
            .get(&format!("layers.{}.{key}", self.index))
            .map(String::as_str)
            .ok_or_else(|| file_err(format!("layers.{}.{key} metadata missing", self.index)))
    }

    /// A numeric metadata value.
    pub fn num(&self, key: &str) -> Result<u32, ModelError> {
        self.get(key)?
            .parse()
            .map_err(|_| file_err(format!("layers.{}.{key} is not a u32", self.index)))
    }

    fn usize(&self, key: &str) -> Result<usize, ModelError> {
        self.num(key).map(|v| v as usize)
    }

    /// A boolean metadata value.
    pub fn flag(&self, key: &str) -> Result<bool, ModelError> {
        match self.get(key)? {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(file_err(format!(
                "layers.{}.{key} is not a bool",
                self.index
            ))),
        }
    }

    /// The layer's geometry from its kind, tensor shapes and metadata,
    /// checked for range (so the lengths below cannot overflow).
    pub fn op(&self) -> Result<Op, ModelError> {
        let i = self.index;
        let kind = self
            .meta
            .get(&format!("layers.{i}.kind"))
            .map(String::as_str);
        let shape = |rank: usize| -> Result<Vec<usize>, ModelError> {
            let (Some(w), Some(b)) = (&self.weight, &self.bias) else {
                return Err(file_err(format!(
                    "layers.{i}: weight and bias tensors required"
                )));
            };
            if w.shape().len() != rank || b.shape() != [w.shape()[0]] {
                return Err(file_err(format!(
                    "layers.{i}: weight must have rank {rank} and bias [out]"
                )));
            }
            Ok(w.shape().to_vec())
        };
        let op = match kind.unwrap_or("dense") {
            "dense" => {
                let s = shape(2)?;
                Op::Dense {
                    in_dim: s[1],
                    out_dim: s[0],
                }
            }
            "conv2d" => {
                let s = shape(4)?;
                if s[2] != s[3] {
                    return Err(file_err(format!(
                        "layers.{i}: conv2d kernel must be square"
                    )));
                }
                Op::Conv2d(Conv2d {
                    in_c: s[1],
                    in_h: self.usize("in_h")?,
                    in_w: self.usize("in_w")?,
                    out_c: s[0],
                    kernel: s[2],
                    stride: self.usize("stride")?,
                    padding: self.usize("padding")?,
                })
            }
            "avgpool2d" => {
                if self.weight.is_some() || self.bias.is_some() {
                    return Err(file_err(format!("layers.{i}: avgpool2d has no tensors")));
                }
                Op::AvgPool2d(Pool2d {
                    channels: self.usize("channels")?,
                    in_h: self.usize("in_h")?,
                    in_w: self.usize("in_w")?,
                    kernel: self.usize("kernel")?,
                    stride: self.usize("stride")?,
                })
            }
            other => return Err(file_err(format!("layers.{i}: unknown kind {other:?}"))),
        };
        op.validate(MAX_DIM)
            .map_err(|reason| ModelError::Layer { layer: i, reason })?;
        Ok(op)
    }
}

/// The layers of a file, in order: layer `i` exists if it has a weight
/// tensor or a `kind`. Also checks that no tensor is left over.
pub(crate) fn raw_layers<'a>(
    st: &'a SafeTensors<'a>,
    meta: &'a HashMap<String, String>,
) -> Result<Vec<RawLayer<'a>>, ModelError> {
    let mut out = Vec::new();
    let mut tensors = 0;
    for index in 0..=MAX_LAYERS {
        let weight = st.tensor(&format!("layers.{index}.weight")).ok();
        let bias = st.tensor(&format!("layers.{index}.bias")).ok();
        if weight.is_none() && !meta.contains_key(&format!("layers.{index}.kind")) {
            break;
        }
        if index == MAX_LAYERS {
            return Err(ModelError::LayerCount {
                layers: MAX_LAYERS + 1,
            });
        }
        tensors += usize::from(weight.is_some()) + usize::from(bias.is_some());
        out.push(RawLayer {
            index,
            meta,
            weight,
            bias,
        });
    }
    if st.len() != tensors {
        return Err(file_err("unexpected tensors in file"));
    }
    Ok(out)
}

/// Writes `op`'s kind and geometry metadata for layer `i`.
fn put_op(meta: &mut HashMap<String, String>, i: usize, op: &Op) {
    let mut put = |k: &str, v: usize| {
        meta.insert(format!("layers.{i}.{k}"), v.to_string());
    };
    match *op {
        Op::Dense { .. } => {}
        Op::Conv2d(c) => {
            put("in_h", c.in_h);
            put("in_w", c.in_w);
            put("stride", c.stride);
            put("padding", c.padding);
        }
        Op::AvgPool2d(p) => {
            put("channels", p.channels);
            put("in_h", p.in_h);
            put("in_w", p.in_w);
            put("kernel", p.kernel);
            put("stride", p.stride);
        }
    }
    meta.insert(format!("layers.{i}.kind"), op.kind().to_string());
}

/// The tensor shapes of `op`'s weight and bias, if it has them.
fn tensor_shapes(op: &Op) -> Option<(Vec<usize>, Vec<usize>)> {
    match *op {
        Op::Dense { in_dim, out_dim } => Some((vec![out_dim, in_dim], vec![out_dim])),
        Op::Conv2d(c) => Some((vec![c.out_c, c.in_c, c.kernel, c.kernel], vec![c.out_c])),
        Op::AvgPool2d(_) => None,
    }
}

/// One layer to write: its geometry and its weight and bias bytes.
pub(crate) struct LayerBytes<'a> {
    /// The geometry (kind metadata and tensor shapes follow from it).
    pub op: &'a Op,
    /// Weight tensor bytes (empty for pooling).
    pub weight: Vec<u8>,
    /// Bias tensor bytes (empty for pooling).
    pub bias: Vec<u8>,
}

/// Writes `layers` as safetensors with `meta` plus each layer's kind and
/// geometry metadata; weights and biases get the dtypes `(weight, bias)`.
/// Shared by the int8 and the float formats.
pub(crate) fn write_layers(
    mut meta: HashMap<String, String>,
    layers: &[LayerBytes<'_>],
    (wdtype, bdtype): (Dtype, Dtype),
) -> Result<Vec<u8>, ModelError> {
    let mut views = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        put_op(&mut meta, i, l.op);
        if let Some((ws, bs)) = tensor_shapes(l.op) {
            let w = TensorView::new(wdtype, ws, &l.weight).map_err(|e| file_err(e.to_string()))?;
            let b = TensorView::new(bdtype, bs, &l.bias).map_err(|e| file_err(e.to_string()))?;
            views.push((format!("layers.{i}.weight"), w));
            views.push((format!("layers.{i}.bias"), b));
        }
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| file_err(e.to_string()))
}

impl QuantModel {
    /// Writes the model as safetensors (see the module docs).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        self.validate()?;
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FILE_FORMAT.to_string());
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            let r = l.requant;
            meta.insert(format!("layers.{i}.multiplier"), r.multiplier.to_string());
            meta.insert(format!("layers.{i}.shift"), r.shift.to_string());
            meta.insert(format!("layers.{i}.relu"), r.relu.to_string());
            layers.push(LayerBytes {
                op: &l.op,
                weight: l.weights.iter().map(|&w| w as u8).collect(),
                bias: l.bias.iter().flat_map(|b| b.to_le_bytes()).collect(),
            });
        }
        write_layers(meta, &layers, (Dtype::I8, Dtype::I32))
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
        for raw in raw_layers(&st, &meta)? {
            let i = raw.index;
            let op = raw.op()?;
            let (weights, bias) = match (&raw.weight, &raw.bias) {
                (Some(w), Some(b)) => {
                    if w.dtype() != Dtype::I8 || b.dtype() != Dtype::I32 {
                        return Err(file_err(format!("layers.{i}: weight must be I8, bias I32")));
                    }
                    let bias = b
                        .data()
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    (w.data().iter().map(|&v| v as i8).collect(), bias)
                }
                _ => (Vec::new(), Vec::new()),
            };
            layers.push(Layer {
                op,
                weights,
                bias,
                requant: Requant {
                    multiplier: raw.num("multiplier")?,
                    shift: raw.num("shift")?,
                    relu: raw.flag("relu")?,
                },
            });
        }
        let m = QuantModel { layers };
        m.validate()?;
        Ok(m)
    }
}
