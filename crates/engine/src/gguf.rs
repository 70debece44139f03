//! GGUF reading with validation. candle parses the container; this module
//! turns its generic errors into structured [`EngineError`]s, checks every
//! tensor's shape, type and byte range before touching its data, and derives
//! the llama hyper-parameters, so a malformed file fails cleanly.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Upper bounds that keep a hostile header from requesting absurd allocations.
const MAX_EMBD: usize = 1 << 16;
const MAX_LAYERS: usize = 1024;
const MAX_HEADS: usize = 1024;
const MAX_FF: usize = 1 << 18;
const MAX_CONTEXT: usize = 1 << 24;
const MAX_VOCAB: usize = 1 << 22;

/// Public description of a loaded model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub arch: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub file_size_bytes: u64,
    /// Width of the SwiGLU hidden layer.
    pub n_ff: usize,
}

/// Hyper-parameters the forward pass needs.
#[derive(Clone, Debug)]
pub(crate) struct Hparams {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub context_length: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
}

impl Hparams {
    pub(crate) fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}

/// Typed accessors over GGUF metadata that report the offending key.
pub(crate) struct Metadata<'a> {
    map: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    pub(crate) fn new(map: &'a HashMap<String, Value>) -> Self {
        Self { map }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn require(&self, key: &str) -> Result<&'a Value, EngineError> {
        self.get(key)
            .ok_or_else(|| EngineError::MissingMetadata { key: key.into() })
    }

    fn invalid(key: &str, reason: impl Into<String>) -> EngineError {
        EngineError::InvalidMetadata {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn string(&self, key: &str) -> Result<&'a str, EngineError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(Self::invalid(
                key,
                format!("expected a string, found {:?}", other.value_type()),
            )),
        }
    }

    pub(crate) fn usize(&self, key: &str) -> Result<usize, EngineError> {
        let v = self.require(key)?;
        value_as_i128(v)
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| {
                Self::invalid(key, format!("expected a non-negative integer, found {v:?}"))
            })
    }

    pub(crate) fn f32(&self, key: &str) -> Result<f32, EngineError> {
        match self.require(key)? {
            Value::F32(f) if f.is_finite() => Ok(*f),
            Value::F64(f) if f.is_finite() => Ok(*f as f32),
            other => Err(Self::invalid(
                key,
                format!("expected a finite float, found {other:?}"),
            )),
        }
    }

    pub(crate) fn string_array(&self, key: &str) -> Result<Vec<String>, EngineError> {
        let Value::Array(items) = self.require(key)? else {
            return Err(Self::invalid(key, "expected an array of strings"));
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Self::invalid(key, "array element is not a string")),
            })
            .collect()
    }

    pub(crate) fn int_array(&self, key: &str) -> Result<Vec<i64>, EngineError> {
        let Value::Array(items) = self.require(key)? else {
            return Err(Self::invalid(key, "expected an array of integers"));
        };
        items
            .iter()
            .map(|v| {
                value_as_i128(v)
                    .and_then(|i| i64::try_from(i).ok())
                    .ok_or_else(|| Self::invalid(key, "array element is not an integer"))
            })
            .collect()
    }
}

fn value_as_i128(v: &Value) -> Option<i128> {
    Some(match v {
        Value::U8(x) => *x as i128,
        Value::I8(x) => *x as i128,
        Value::U16(x) => *x as i128,
        Value::I16(x) => *x as i128,
        Value::U32(x) => *x as i128,
        Value::I32(x) => *x as i128,
        Value::U64(x) => *x as i128,
        Value::I64(x) => *x as i128,
        _ => return None,
    })
}

/// The tensor data of a file, read once; tensors are byte ranges of it
/// (native ones are repacked in place before it is shared).
pub(crate) struct WeightRegion {
    /// File offset of `data[0]`.
    base: u64,
    pub(crate) data: Vec<u8>,
}

/// An open GGUF file whose header has been parsed.
pub(crate) struct GgufFile {
    path: PathBuf,
    reader: BufReader<File>,
    content: Content,
    file_size: u64,
}

impl GgufFile {
    /// Open and parse the header (metadata + tensor directory).
    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        let file = File::open(path).map_err(EngineError::io(path))?;
        let file_size = file.metadata().map_err(EngineError::io(path))?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let content = Content::read(&mut reader).map_err(|e| EngineError::MalformedGguf {
            path: path.to_path_buf(),
            reason: describe_header_error(&e, file_size),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            content,
            file_size,
        })
    }

    pub(crate) fn metadata(&self) -> Metadata<'_> {
        Metadata::new(&self.content.metadata)
    }

    /// Drop the metadata (keeping the tensor directory) once it has been
    /// read, so its memory is free before the weights are loaded.
    pub(crate) fn release_metadata(&mut self) {
        self.content.metadata = HashMap::new();
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.file_size
    }

    pub(crate) fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// Load a tensor after checking its shape (candle order, outermost first),
    /// its type's block size and that its bytes lie inside the file.
    pub(crate) fn tensor(
        &mut self,
        name: &str,
        expected: &[usize],
    ) -> Result<QTensor, EngineError> {
        self.checked_range(name, expected)?;
        let info = &self.content.tensor_infos[name];
        let tensor = info
            .read(
                &mut self.reader,
                self.content.tensor_data_offset,
                &Device::Cpu,
            )
            .map_err(|e| EngineError::MalformedGguf {
                path: self.path.clone(),
                reason: format!("cannot read tensor {name}: {e}"),
            })?;
        // Reading seeks; leave the reader in a defined place for the next call.
        let _ = self.reader.rewind();
        Ok(tensor)
    }

    /// Read the bytes of every tensor in ONE buffer (from the first tensor's
    /// start to the last one's end, within the file), so native weights are a
    /// single allocation viewed by range instead of many separate ones.
    pub(crate) fn read_region(&mut self) -> Result<WeightRegion, EngineError> {
        let base = self.content.tensor_data_offset;
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (name, info) in self.content.tensor_infos.iter() {
            let t = info.ggml_dtype;
            // Checked: dimensions come from the file, and candle's
            // `elem_count` multiplies without overflow checks.
            let elems = info
                .shape
                .dims()
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
                .ok_or_else(|| EngineError::MalformedGguf {
                    path: self.path.clone(),
                    reason: format!("tensor {name}: element count overflows"),
                })?;
            let bytes = (elems / t.block_size().max(1) as u64).saturating_mul(t.type_size() as u64);
            let start = base.saturating_add(info.offset);
            lo = lo.min(start);
            hi = hi.max(start.saturating_add(bytes));
        }
        let (lo, hi) = (lo.min(self.file_size), hi.min(self.file_size));
        let len =
            usize::try_from(hi.saturating_sub(lo)).map_err(|_| EngineError::MalformedGguf {
                path: self.path.clone(),
                reason: "tensor data does not fit in memory".into(),
            })?;
        let mut data = vec![0u8; len];
        let read = self
            .reader
            .seek(SeekFrom::Start(lo))
            .and_then(|_| self.reader.read_exact(&mut data));
        let _ = self.reader.rewind();
        read.map_err(|e| EngineError::MalformedGguf {
            path: self.path.clone(),
            reason: format!("cannot read tensor data: {e}"),
        })?;
        Ok(WeightRegion { base: lo, data })
    }

    /// A tensor's type and its byte range inside `region` (checked like
    /// [`GgufFile::tensor`]).
    pub(crate) fn tensor_range(
        &self,
        region: &WeightRegion,
        name: &str,
        expected: &[usize],
    ) -> Result<(GgmlDType, Range<usize>), EngineError> {
        let (dtype, start, end) = self.checked_range(name, expected)?;
        let in_region = start >= region.base && end - region.base <= region.data.len() as u64;
        if !in_region {
            return Err(EngineError::MalformedGguf {
                path: self.path.clone(),
                reason: format!("tensor {name} lies outside the tensor data"),
            });
        }
        let s = (start - region.base) as usize;
        Ok((dtype, s..s + (end - start) as usize))
    }

    /// Check a tensor's shape, block alignment and byte range; returns its
    /// type and absolute byte range in the file.
    fn checked_range(
        &self,
        name: &str,
        expected: &[usize],
    ) -> Result<(GgmlDType, u64, u64), EngineError> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })?;
        let actual = info.shape.dims().to_vec();
        if actual != expected {
            return Err(EngineError::TensorShape {
                name: name.into(),
                expected: expected.to_vec(),
                actual,
            });
        }
        let dtype = info.ggml_dtype;
        let elems: usize = expected.iter().product();
        let inner = *expected.last().unwrap_or(&1);
        if !inner.is_multiple_of(dtype.block_size()) {
            return Err(EngineError::UnsupportedTensorType {
                name: name.into(),
                dtype: format!(
                    "{dtype:?} (row of {inner} is not a multiple of its block size {})",
                    dtype.block_size()
                ),
            });
        }
        let bytes = (elems / dtype.block_size() * dtype.type_size()) as u64;
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        let end = start.saturating_add(bytes);
        if end > self.file_size {
            return Err(EngineError::Truncated {
                path: self.path.clone(),
                tensor: name.into(),
                start,
                end,
                file_size: self.file_size,
            });
        }
        Ok((dtype, start, end))
    }

    /// Outer dimension of a 2-D tensor (e.g. the vocabulary size of the
    /// embedding), bounded so it cannot drive an absurd allocation.
    pub(crate) fn tensor_rows(&self, name: &str) -> Result<usize, EngineError> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::MissingTensor { name: name.into() })?;
        match info.shape.dims() {
            [rows, _] if (1..=MAX_VOCAB).contains(rows) => Ok(*rows),
            dims => Err(EngineError::MalformedGguf {
                path: self.path.clone(),
                reason: format!(
                    "tensor {name} has shape {dims:?}; expected 2-D with 1..={MAX_VOCAB} rows"
                ),
            }),
        }
    }

    /// The storage type of a tensor, if present.
    pub(crate) fn dtype(&self, name: &str) -> Option<GgmlDType> {
        self.content.tensor_infos.get(name).map(|i| i.ggml_dtype)
    }
}

fn describe_header_error(e: &candle_core::Error, file_size: u64) -> String {
    let text = e.to_string();
    if text.contains("failed to fill whole buffer") || text.contains("UnexpectedEof") {
        format!("file ends inside the header after {file_size} bytes (truncated): {text}")
    } else if text.contains("magic") {
        format!("not a GGUF file (bad magic or version): {text}")
    } else {
        text
    }
}

/// Read and bound-check the llama hyper-parameters.
pub(crate) fn llama_hparams(md: &Metadata<'_>) -> Result<Hparams, EngineError> {
    let arch = md.string("general.architecture")?;
    if arch != "llama" {
        return Err(EngineError::UnsupportedArchitecture { arch: arch.into() });
    }
    let key = |k: &str| format!("llama.{k}");
    let bounded = |k: &str, max: usize| -> Result<usize, EngineError> {
        let v = md.usize(&key(k))?;
        if v == 0 || v > max {
            return Err(Metadata::invalid(
                &key(k),
                format!("{v} is outside 1..={max}"),
            ));
        }
        Ok(v)
    };
    if md.get(&key("expert_count")).is_some() && md.usize(&key("expert_count"))? > 0 {
        return Err(Metadata::invalid(
            &key("expert_count"),
            "mixture-of-experts models are not supported",
        ));
    }
    let n_embd = bounded("embedding_length", MAX_EMBD)?;
    let n_head = bounded("attention.head_count", MAX_HEADS)?;
    let n_head_kv = match md.get(&key("attention.head_count_kv")) {
        Some(_) => bounded("attention.head_count_kv", MAX_HEADS)?,
        None => n_head,
    };
    if n_embd % n_head != 0 || n_head % n_head_kv != 0 || (n_embd / n_head) % 2 != 0 {
        return Err(Metadata::invalid(
            &key("attention.head_count"),
            format!("{n_head} heads / {n_head_kv} kv heads do not divide embedding {n_embd} into even head sizes"),
        ));
    }
    let head_dim = n_embd / n_head;
    if md.get(&key("rope.dimension_count")).is_some()
        && md.usize(&key("rope.dimension_count"))? != head_dim
    {
        return Err(Metadata::invalid(
            &key("rope.dimension_count"),
            "partial rotary embeddings are not supported",
        ));
    }
    let rope_base = match md.get(&key("rope.freq_base")) {
        Some(_) => md.f32(&key("rope.freq_base"))?,
        None => 10_000.0,
    };
    let rms_eps = match md.get(&key("attention.layer_norm_rms_epsilon")) {
        Some(_) => md.f32(&key("attention.layer_norm_rms_epsilon"))?,
        None => 1e-5,
    };
    if rope_base <= 1.0 || rms_eps < 0.0 {
        return Err(Metadata::invalid(
            &key("rope.freq_base"),
            "rope base must exceed 1 and epsilon be >= 0",
        ));
    }
    Ok(Hparams {
        n_layer: bounded("block_count", MAX_LAYERS)?,
        n_embd,
        n_head,
        n_head_kv,
        head_dim,
        n_ff: bounded("feed_forward_length", MAX_FF)?,
        context_length: bounded("context_length", MAX_CONTEXT)?,
        rope_base,
        rms_eps,
    })
}
