//! Row-wise numeric kernels (dot product, RMSNorm, RoPE, SwiGLU, dense
//! matmul). They exist so that every floating-point reduction has a fixed
//! order that depends only on the row being computed — never on how many rows
//! are processed together or on the thread count — which is what makes a
//! one-pass prefill bit-identical to incremental decoding.

use rayon::prelude::*;

/// Dot product with a fixed reduction order: eight interleaved lanes over the
/// 8-aligned prefix, lanes summed pairwise in a fixed tree, then the tail in
/// order. Depends only on the two slices.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_by(a, b, |v| v)
}

/// [`dot`] against a half-precision row (a cached key): each half widened
/// exactly, then `dot`'s arithmetic, so it equals `dot(a, &widened)`.
pub(crate) fn dot_f16(a: &[f32], b: &[half::f16]) -> f32 {
    dot_by(a, b, half::f16::to_f32)
}

/// The fixed order of [`dot`]: eight lanes of `acc += a * b` (no fma), a
/// pairwise lane reduction, then the tail in order.
#[inline]
fn dot_by<T: Copy>(a: &[f32], b: &[T], wide: impl Fn(T) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += ca[l] * wide(cb[l]);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in chunks * 8..n {
        sum += a[i] * wide(b[i]);
    }
    sum
}

/// RMSNorm of each `d`-wide row of `x`, scaled by `weight`.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let d = weight.len();
    let mut out = vec![0f32; x.len()];
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = dot(row, row) / d as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &w) in o.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
    out
}

/// `gate <- silu(gate) * up`, element-wise.
pub(crate) fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `x <- x + y`, element-wise.
pub(crate) fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Rotary embeddings, interleaved (llama.cpp's "normal" rope, candle's
/// `rope_i`): dims (2i, 2i+1) of each head rotate by `pos * base^(-2i/head_dim)`.
/// Only the frequencies are kept; cos/sin are computed for the positions of
/// each forward pass ([`RopeTable::rows`]) with the same f32 operations, so a
/// position's values never depend on which pass computes them.
pub(crate) struct RopeTable {
    max_pos: usize,
    theta: Vec<f32>,
}

/// cos/sin for a run of positions.
pub(crate) struct RopeRows {
    half: usize,
    pos0: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    pub(crate) fn new(head_dim: usize, base: f32, max_pos: usize) -> Self {
        let half = head_dim / 2;
        let theta: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Self { max_pos, theta }
    }

    /// Positions the table covers.
    pub(crate) fn max_pos(&self) -> usize {
        self.max_pos
    }

    /// cos/sin of positions `pos0..pos0 + m`.
    pub(crate) fn rows(&self, pos0: usize, m: usize) -> RopeRows {
        let half = self.theta.len();
        let mut cos = Vec::with_capacity(m * half);
        let mut sin = Vec::with_capacity(m * half);
        for p in pos0..pos0 + m {
            for &t in &self.theta {
                let angle = p as f32 * t;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        RopeRows {
            half,
            pos0,
            cos,
            sin,
        }
    }
}

impl RopeRows {
    /// Rotate every head of one row (`row.len()` = heads * head_dim) in place;
    /// `pos` must be one of the positions these rows were computed for.
    pub(crate) fn apply(&self, row: &mut [f32], pos: usize) {
        let i0 = (pos - self.pos0) * self.half;
        let cos = &self.cos[i0..i0 + self.half];
        let sin = &self.sin[i0..i0 + self.half];
        for head in row.chunks_exact_mut(self.half * 2) {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * cos[i] - x1 * sin[i];
                pair[1] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
}

/// Output columns per parallel task in [`dense_matmul`].
const DENSE_COLS_PER_TASK: usize = 64;

/// `y = x · wᵀ` for an f32 weight stored row-major as `[n][k]`; every output
/// is one [`dot`], so results are independent of batch size and threads.
pub(crate) fn dense_matmul(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for (xr, orow) in x.chunks_exact(k).zip(out.chunks_exact_mut(n)).take(m) {
        orow.par_chunks_mut(DENSE_COLS_PER_TASK)
            .enumerate()
            .for_each(|(ci, chunk)| {
                for (j, o) in chunk.iter_mut().enumerate() {
                    let col = ci * DENSE_COLS_PER_TASK + j;
                    *o = dot(xr, &w[col * k..(col + 1) * k]);
                }
            });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_closely() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.25 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.125).collect();
        let naive: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        assert!((dot(&a, &b) as f64 - naive).abs() < 1e-3);
    }

    #[test]
    fn rms_norm_produces_unit_rms_rows() {
        let x = vec![3.0f32, 4.0, 0.0, -5.0, 1.0, 1.0, 1.0, 1.0];
        let out = rms_norm(&x, &[1.0; 4], 0.0);
        for row in out.chunks(4) {
            let rms = (row.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
            assert!((rms - 1.0).abs() < 1e-5, "rms {rms}");
        }
    }

    #[test]
    fn rope_at_position_zero_is_identity_and_preserves_norm() {
        let table = RopeTable::new(8, 10_000.0, 4).rows(0, 4);
        let orig: Vec<f32> = (0..16).map(|i| i as f32 - 7.5).collect();
        let mut row = orig.clone();
        table.apply(&mut row, 0);
        assert_eq!(row, orig);
        table.apply(&mut row, 3);
        assert_ne!(row, orig);
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        assert!((norm(&row) - norm(&orig)).abs() < 1e-2);
    }

    #[test]
    fn rope_rows_do_not_depend_on_the_window() {
        let table = RopeTable::new(64, 100_000.0, 8192);
        let (all, one) = (table.rows(0, 300), table.rows(257, 1));
        let row: Vec<f32> = (0..576).map(|i| (i as f32 * 0.37).sin()).collect();
        let (mut a, mut b) = (row.clone(), row);
        all.apply(&mut a, 257);
        one.apply(&mut b, 257);
        assert_eq!(a, b);
    }

    #[test]
    fn dense_matmul_rows_do_not_depend_on_batching() {
        let (m, n, k) = (3, 130, 40);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 97) as f32 / 13.0 - 3.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729) % 89) as f32 / 17.0 - 2.5)
            .collect();
        let all = dense_matmul(&x, m, &w, n, k);
        for r in 0..m {
            let one = dense_matmul(&x[r * k..(r + 1) * k], 1, &w, n, k);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&all[r * n..(r + 1) * n]));
        }
    }
}
