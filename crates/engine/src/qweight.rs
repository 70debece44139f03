//! Natively supported quantized weights (Q4_0, Q4_1, Q8_0) kept as their raw
//! GGML bytes, the threaded matmul over them, and row lookup for the token
//! embedding. Work is split by output column only, and each output is one
//! kernel dot product, so the result of a (row, column) pair is the same
//! whatever the batch size or the number of threads.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::kernels::{matmul_tile, Kernel, QActs, QType, BLOCK};
use crate::EngineError;

/// Column tasks per worker thread (a little slack for a busy machine).
const TASKS_PER_THREAD: usize = 2;
/// Below this many multiply-adds a matmul runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// From this many activation rows on, threads split rows instead of columns.
const ROW_SPLIT_MIN: usize = 8;

/// A `[n][k]` matrix of quantized blocks: a byte range of a shared buffer
/// (the file's tensor data, read once).
#[derive(Clone)]
pub(crate) struct QWeight {
    pub(crate) t: QType,
    pub(crate) n: usize,
    pub(crate) k: usize,
    data: Arc<Vec<u8>>,
    off: usize,
}

impl QWeight {
    /// View `data[range]`, checking that it holds exactly `n` rows of `k`.
    pub(crate) fn new(
        name: &str,
        t: QType,
        n: usize,
        k: usize,
        data: Arc<Vec<u8>>,
        range: Range<usize>,
    ) -> Result<Self, EngineError> {
        let want = n
            .checked_mul(k / BLOCK)
            .and_then(|b| b.checked_mul(t.block_bytes()));
        if k % BLOCK != 0 || want != Some(range.len()) || range.end > data.len() {
            return Err(EngineError::UnsupportedTensorType {
                name: name.into(),
                dtype: format!("{t:?} with {} bytes for [{n}][{k}]", range.len()),
            });
        }
        Ok(Self {
            t,
            n,
            k,
            data,
            off: range.start,
        })
    }

    fn row_bytes(&self) -> usize {
        self.k / BLOCK * self.t.block_bytes()
    }

    /// The bytes of rows `c0..`.
    fn rows_from(&self, c0: usize) -> &[u8] {
        &self.data[self.off + c0 * self.row_bytes()..self.off + self.n * self.row_bytes()]
    }

    /// Dequantize row `i` (an embedding lookup) into `out` (`k` floats).
    pub(crate) fn dequantize_row(&self, i: usize, out: &mut [f32]) {
        let row = &self.rows_from(i)[..self.row_bytes()];
        for (blk, o) in row
            .chunks_exact(self.t.block_bytes())
            .zip(out.chunks_exact_mut(BLOCK))
        {
            self.t.dequantize_block(blk, o);
        }
    }

    /// `y = x · Wᵀ` for already-quantized activation rows: `a.m * n` values.
    pub(crate) fn matmul(&self, a: &QActs) -> Vec<f32> {
        let threads = rayon::current_num_threads();
        let mut outs = matmul_parts(Kernel::best(), std::slice::from_ref(self), a, threads);
        outs.pop().unwrap_or_default()
    }
}

/// Several matrices with the same `k` applied to the same activations as one
/// job (fused q/k/v or gate/up): returns each part's `a.m * n_i` outputs.
/// Threads split the rows when there are many, else the columns of all parts
/// together.
pub(crate) fn matmul_parts(
    kernel: Kernel,
    parts: &[QWeight],
    a: &QActs,
    threads: usize,
) -> Vec<Vec<f32>> {
    let m = a.m;
    let mut outs: Vec<Vec<f32>> = parts.iter().map(|w| vec![0f32; m * w.n]).collect();
    let total_n: usize = parts.iter().map(|w| w.n).sum();
    let macs = m * total_n * a.k;
    if threads <= 1 || macs < PARALLEL_MIN_MACS {
        for (w, o) in parts.iter().zip(outs.iter_mut()) {
            matmul_tile(kernel, w.t, w.rows_from(0), w.n, a, o, w.n);
        }
        return outs;
    }
    if m >= ROW_SPLIT_MIN {
        // Many rows: split rows (groups of four); every task reads all weights.
        let rows = m.div_ceil(threads).next_multiple_of(4);
        for (w, o) in parts.iter().zip(outs.iter_mut()) {
            o.par_chunks_mut(rows * w.n).enumerate().for_each(|(i, o)| {
                let part = a.rows(i * rows, o.len() / w.n);
                matmul_tile(kernel, w.t, w.rows_from(0), w.n, &part, o, w.n);
            });
        }
        return outs;
    }
    let chunk = total_n.div_ceil(threads * TASKS_PER_THREAD).max(1);
    let mut tasks = Vec::new();
    for (p, w) in parts.iter().enumerate() {
        tasks.extend(
            (0..w.n)
                .step_by(chunk)
                .map(|c0| (p, c0, chunk.min(w.n - c0))),
        );
    }
    let tiles: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(p, c0, cols)| {
            let w = &parts[p];
            let mut tile = vec![0f32; m * cols];
            matmul_tile(kernel, w.t, w.rows_from(c0), cols, a, &mut tile, cols);
            tile
        })
        .collect();
    for (&(p, c0, cols), tile) in tasks.iter().zip(&tiles) {
        let n = parts[p].n;
        for (r, src) in tile.chunks_exact(cols).enumerate() {
            outs[p][r * n + c0..r * n + c0 + cols].copy_from_slice(src);
        }
    }
    outs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(t: QType, n: usize, k: usize, salt: usize) -> QWeight {
        let rb = k / BLOCK * t.block_bytes();
        let data: Vec<u8> = (0..n * rb)
            .map(|i| match (i % rb) % t.block_bytes() {
                // Keep f16 scales (and Q4_1 mins) finite and small.
                1 => 0x1C,
                3 if t == QType::Q4_1 => 0x1C,
                _ => (((i + salt) * 2654435761) >> 7) as u8,
            })
            .collect();
        let len = data.len();
        QWeight::new("w", t, n, k, Arc::new(data), 0..len).unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Threaded row/column splits, fusing and batching give the
    /// single-threaded, single-row scalar results bit for bit.
    #[test]
    fn matmul_is_independent_of_threads_batch_and_fusion() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let k = 576;
        for (t, m) in [
            (QType::Q4_0, 6),
            (QType::Q4_1, 13),
            (QType::Q8_0, 9),
            (QType::Q4_1, 3),
        ] {
            let parts = [weight(t, 203, k, 1), weight(t, 64, k, 2)];
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 113) as f32 / 20.0 - 2.8)
                .collect();
            let a = QActs::quantize(&x, m, k);
            let reference: Vec<Vec<f32>> = parts
                .iter()
                .map(|w| matmul_parts(Kernel::Scalar, std::slice::from_ref(w), &a, 1).remove(0))
                .collect();
            for threads in [1, 2, 3] {
                let got = pool.install(|| matmul_parts(Kernel::best(), &parts, &a, threads));
                for (g, r) in got.iter().zip(&reference) {
                    assert_eq!(bits(g), bits(r), "{t:?} m={m} threads {threads}");
                }
            }
            for r in 0..m {
                let one = QActs::quantize(&x[r * k..][..k], 1, k);
                let got = pool.install(|| matmul_parts(Kernel::best(), &parts, &one, 2));
                for (g, want) in got.iter().zip(&reference) {
                    let n = g.len();
                    assert_eq!(bits(g), bits(&want[r * n..][..n]), "{t:?} row {r}");
                }
            }
        }
    }

    #[test]
    fn views_are_checked_and_rows_dequantize() {
        let w = weight(QType::Q8_0, 3, 64, 5);
        let mut row = vec![0f32; 64];
        w.dequantize_row(2, &mut row);
        let mut want = vec![0f32; 32];
        let rb = w.row_bytes();
        QType::Q8_0.dequantize_block(&w.data[2 * rb..2 * rb + 34], &mut want);
        assert_eq!(bits(&row[..32]), bits(&want));
        let data = Arc::new(vec![0u8; 100]);
        assert!(QWeight::new("w", QType::Q8_0, 2, 64, data.clone(), 0..10).is_err());
        assert!(QWeight::new("w", QType::Q8_0, 1, 64, data.clone(), 60..128).is_err());
        assert!(QWeight::new("w", QType::Q8_0, 1, 64, data, 0..68).is_ok());
    }
}

/// Kernel throughput probe (not a correctness test): best-of-many timing of
/// decode- and prefill-shaped matmuls on one thread. Run with
/// `cargo test --release -p proofmesh-engine -- --ignored --nocapture kernel_speed`.
#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore]
    fn kernel_speed() {
        for (t, n, k, m) in [
            (QType::Q4_1, 1536, 576, 1),
            (QType::Q4_1, 576, 1536, 1),
            (QType::Q8_0, 4096, 576, 1),
            (QType::Q4_1, 1536, 576, 64),
            (QType::Q8_0, 4096, 576, 8),
        ] {
            let rb = k / BLOCK * t.block_bytes();
            let data: Vec<u8> = (0..n * rb)
                .map(|i| {
                    if i % t.block_bytes() == 1 {
                        0x1C
                    } else {
                        (i * 31) as u8
                    }
                })
                .collect();
            let len = data.len();
            let w = QWeight::new("w", t, n, k, Arc::new(data), 0..len).unwrap();
            let x: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 - 8.0).collect();
            let mut best = f64::MAX;
            let mut best_q = f64::MAX;
            for _ in 0..200 {
                let t0 = std::time::Instant::now();
                let a = QActs::quantize(&x, m, k);
                best_q = best_q.min(t0.elapsed().as_secs_f64());
                let t1 = std::time::Instant::now();
                std::hint::black_box(matmul_parts(
                    Kernel::best(),
                    std::slice::from_ref(&w),
                    &a,
                    1,
                ));
                best = best.min(t1.elapsed().as_secs_f64());
            }
            let macs = (n * k * m) as f64;
            println!(
                "{t:?} n={n} k={k} m={m}: {:.1} GMAC/s ({:.1} us), quantize {:.1} us",
                macs / best / 1e9,
                best * 1e6,
                best_q * 1e6
            );
        }
    }
}
