//! Entry points for the engine's criterion micro-benchmarks
//! (`benches/kernels.rs`): one quantized matmul shape, packed and with
//! quantized activations, run by any kernel this CPU has. Public only so an
//! out-of-crate bench can reach the crate-private kernels; nothing else
//! uses it.

use std::sync::Arc;

use crate::kernels::{matmul_cols, packed, Kernel, QActs, QType, BLOCK};
use crate::qweight::QWeight;
use crate::EngineError;

/// A `[n][k]` weight of one type against `m` activation rows.
pub struct MatmulCase {
    t: QType,
    w: QWeight,
    a: QActs,
    out: Vec<f32>,
}

impl MatmulCase {
    /// `qtype` is `"q4_0"`, `"q4_1"` or `"q8_0"`; `k` a multiple of 32.
    pub fn new(qtype: &str, n: usize, k: usize, m: usize) -> Result<Self, EngineError> {
        let t = match qtype {
            "q4_0" => QType::Q4_0,
            "q4_1" => QType::Q4_1,
            "q8_0" => QType::Q8_0,
            other => {
                return Err(EngineError::UnsupportedTensorType {
                    name: "bench weight".into(),
                    dtype: other.into(),
                })
            }
        };
        let rb = k / BLOCK * t.block_bytes();
        // Deterministic bytes with a sane f16 scale (byte 1 of each block).
        let mut data: Vec<u8> = (0..n * rb)
            .map(|i| {
                if i % t.block_bytes() == 1 {
                    0x1C
                } else {
                    (i * 31) as u8
                }
            })
            .collect();
        packed::pack_in_place(t, &mut data, n, k);
        let w = QWeight::new("bench", t, n, k, Arc::new(data), 0..n * rb)?;
        let x: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 - 8.0).collect();
        Ok(Self {
            t,
            w,
            a: QActs::quantize(&x, m, k),
            out: vec![0.0; m * n],
        })
    }

    /// Names of the kernels this CPU can run, slowest first.
    pub fn kernels() -> Vec<String> {
        Kernel::available()
            .into_iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect()
    }

    /// Multiply-accumulates of one run.
    pub fn macs(&self) -> u64 {
        (self.w.n * self.w.k * self.a.m) as u64
    }

    /// Run the matmul once with the named kernel (unknown names run the
    /// scalar reference); returns one output so the work is observable.
    pub fn run(&mut self, kernel: &str) -> f32 {
        let k = Kernel::available()
            .into_iter()
            .find(|k| format!("{k:?}").eq_ignore_ascii_case(kernel))
            .unwrap_or(Kernel::Scalar);
        let n = self.w.n;
        matmul_cols(
            k,
            self.t,
            self.w.bytes(),
            n,
            &self.a,
            0..n,
            &mut self.out,
            n,
        );
        self.out[0]
    }
}
