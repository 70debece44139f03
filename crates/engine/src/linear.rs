//! Weight matmuls with a batch-size-independent result per row. Q4_0, Q4_1
//! and Q8_0 weights use the engine's own kernels (`qweight.rs`, split over
//! the thread team in `forward.rs`); other
//! quantized weights go through candle's `QMatMul`; on the k-quant path candle quantizes
//! each activation row on its own and computes each output with `vec_dot`, so
//! a row's result does not depend on how many rows are batched. Some candle
//! 0.11 kernels (repacked/AMX tiles for Q4_0/Q8_0/K-quants) switch algorithm
//! with the batch size, so for those types rows are fed one at a time. Float
//! weights never touch gemm: they use [`crate::ops::dense_matmul`].

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::kernels::QActs;
use crate::ops::dense_matmul;
use crate::qweight::QWeight;
use crate::EngineError;

/// A `y = x · Wᵀ` projection with `W` of shape `[n][k]`.
pub(crate) enum Linear {
    Native(QWeight),
    Quant {
        mm: QMatMul,
        n: usize,
        k: usize,
        batch_rows: bool,
    },
    Dense {
        w: Vec<f32>,
        n: usize,
        k: usize,
    },
}

impl Linear {
    /// Wrap a 2-D weight tensor (`[n][k]`, candle order).
    pub(crate) fn new(name: &str, qt: Arc<QTensor>) -> Result<Self, EngineError> {
        let (n, k) = qt
            .shape()
            .dims2()
            .map_err(EngineError::candle("weight shape"))?;
        let dtype = qt.dtype();
        match dtype {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                let w = qt
                    .dequantize(&Device::Cpu)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(EngineError::candle("dequantize"))?;
                Ok(Linear::Dense { w, n, k })
            }
            GgmlDType::Q8_1 | GgmlDType::Q8K => Err(EngineError::UnsupportedTensorType {
                name: name.into(),
                dtype: format!("{dtype:?} (activation-only type)"),
            }),
            _ => Ok(Linear::Quant {
                // Built directly (not via `from_arc`) so CANDLE_DEQUANTIZE_ALL
                // cannot silently reroute it through gemm.
                mm: QMatMul::QTensor(qt),
                n,
                k,
                batch_rows: batch_rows_are_independent(dtype, k),
            }),
        }
    }

    /// Output width `n`.
    pub(crate) fn n(&self) -> usize {
        match self {
            Linear::Native(w) => w.n,
            Linear::Quant { n, .. } | Linear::Dense { n, .. } => *n,
        }
    }

    /// The native weight, if this is one.
    pub(crate) fn native(&self) -> Option<&QWeight> {
        match self {
            Linear::Native(w) => Some(w),
            _ => None,
        }
    }

    /// Apply to `m` rows of `x` (`m * k` values); returns `m * n` values.
    pub(crate) fn forward(&self, x: &[f32], m: usize) -> Result<Vec<f32>, EngineError> {
        match self {
            Linear::Native(w) => Ok(w.matmul(&QActs::quantize(x, m, w.k))),
            Linear::Dense { w, n, k } => Ok(dense_matmul(x, m, w, *n, *k)),
            Linear::Quant {
                mm,
                n,
                k,
                batch_rows,
            } => {
                if *batch_rows || m == 1 {
                    return qmatmul(mm, x, m, *k);
                }
                let mut out = Vec::with_capacity(m * n);
                for row in x.chunks_exact(*k).take(m) {
                    out.extend(qmatmul(mm, row, 1, *k)?);
                }
                Ok(out)
            }
        }
    }
}

fn qmatmul(mm: &QMatMul, x: &[f32], m: usize, k: usize) -> Result<Vec<f32>, EngineError> {
    Tensor::from_slice(&x[..m * k], (m, k), &Device::Cpu)
        .and_then(|t| mm.forward(&t))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EngineError::candle("quantized matmul"))
}

/// Whether candle's CPU kernels for `dtype` with inner size `k` compute every
/// row exactly as they would for a batch of one. True for the plain
/// `vec_dot` path; false where candle may pick a repacked kernel whose choice
/// depends on the batch size (x86: k a multiple of 256 for Q4_0/Q8_0/K-quants;
/// aarch64: always for those types).
pub(crate) fn batch_rows_are_independent(dtype: GgmlDType, k: usize) -> bool {
    match dtype {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q2K | GgmlDType::Q3K => {
            true
        }
        GgmlDType::Q4_0 | GgmlDType::Q8_0 | GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K => {
            cfg!(target_arch = "x86_64") && !k.is_multiple_of(256)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(dtype: GgmlDType, n: usize, k: usize) -> Arc<QTensor> {
        let data: Vec<f32> = (0..n * k)
            .map(|i| (((i * 2654435761) % 1000) as f32 / 500.0 - 1.0) * 0.3)
            .collect();
        let t = Tensor::from_vec(data, (n, k), &Device::Cpu).unwrap();
        Arc::new(QTensor::quantize(&t, dtype).unwrap())
    }

    fn activations(m: usize, k: usize) -> Vec<f32> {
        (0..m * k)
            .map(|i| ((i * 40503) % 733) as f32 / 100.0 - 3.6)
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// The premise of the bit-exact property: a batched QMatMul gives each row
    /// exactly what a batch of one gives, for the types the engine batches.
    #[test]
    fn batched_qmatmul_rows_equal_single_row_results() {
        for (dtype, n, k) in [
            (GgmlDType::Q4_1, 96, 64),
            (GgmlDType::Q4_1, 70, 1536),
            (GgmlDType::Q8_0, 100, 576),
            (GgmlDType::Q4_0, 64, 96),
            (GgmlDType::Q5_1, 32, 128),
        ] {
            assert!(batch_rows_are_independent(dtype, k) || !cfg!(target_arch = "x86_64"));
            let mm = QMatMul::QTensor(weights(dtype, n, k));
            for m in [2usize, 5, 17, 40] {
                let x = activations(m, k);
                let batched = qmatmul(&mm, &x, m, k).unwrap();
                for r in 0..m {
                    let single = qmatmul(&mm, &x[r * k..(r + 1) * k], 1, k).unwrap();
                    assert_eq!(
                        bits(&single),
                        bits(&batched[r * n..(r + 1) * n]),
                        "{dtype:?} n={n} k={k} m={m} row {r}"
                    );
                }
            }
        }
    }

    /// Whatever kernel candle picks, `Linear` results are per-row stable.
    #[test]
    fn linear_rows_equal_single_row_results_for_all_weight_types() {
        for (dtype, n, k) in [
            (GgmlDType::Q8_0, 64, 256),
            (GgmlDType::Q4K, 64, 256),
            (GgmlDType::Q6K, 48, 512),
            (GgmlDType::F16, 33, 64),
            (GgmlDType::F32, 20, 48),
        ] {
            let lin = Linear::new("w", weights(dtype, n, k)).unwrap();
            for m in [3usize, 36] {
                let x = activations(m, k);
                let batched = lin.forward(&x, m).unwrap();
                for r in 0..m {
                    let single = lin.forward(&x[r * k..(r + 1) * k], 1).unwrap();
                    assert_eq!(
                        bits(&single),
                        bits(&batched[r * n..(r + 1) * n]),
                        "{dtype:?} m={m} row {r}"
                    );
                }
            }
        }
    }
}
