//! Quantized matmul kernels for the weight types the engine runs natively
//! (Q4_0, Q4_1, Q8_0). Activations are quantized to 8 bits once per row
//! ([`QActs`]); each output is then an exact integer dot product per 32-wide
//! block followed by a fixed sequence of f32 operations:
//!
//! ```text
//! lane[l] (l = 0..8)  = Σ_{e = 4l .. 4l+3} w[e] · x[e]         (exact i32)
//! acc[l]              = fma(d_w · d_x, lane[l] as f32, acc[l]) (block order)
//! msum                = fma(m_w, s_x, msum)                    (Q4_1 only)
//! y                   = reduce8(acc) + msum
//! ```
//!
//! The scalar reference below and the SIMD path in `x86.rs` both implement
//! exactly this, so they give the same bits, and the result for one
//! (weight row, activation row) pair never depends on how many rows are
//! batched or how columns are split across threads — the property that makes
//! a one-pass prefill bit-identical to incremental decoding.

#[cfg(target_arch = "x86_64")]
mod x86;

use candle_core::quantized::GgmlDType;

/// Elements per quantization block (all supported types).
pub(crate) const BLOCK: usize = 32;

/// Weight types with native kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QType {
    /// f16 scale, 16 bytes of nibbles; value = d · (q − 8).
    Q4_0,
    /// f16 scale, f16 min, 16 bytes of nibbles; value = d · q + m.
    Q4_1,
    /// f16 scale, 32 signed bytes; value = d · q.
    Q8_0,
}

impl QType {
    /// The native type for a GGML storage type, if there is one.
    pub(crate) fn from_ggml(t: GgmlDType) -> Option<Self> {
        match t {
            GgmlDType::Q4_0 => Some(Self::Q4_0),
            GgmlDType::Q4_1 => Some(Self::Q4_1),
            GgmlDType::Q8_0 => Some(Self::Q8_0),
            _ => None,
        }
    }

    /// Bytes per 32-element block.
    pub(crate) const fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
        }
    }

    /// Dequantize one block into 32 floats.
    pub(crate) fn dequantize_block(self, blk: &[u8], out: &mut [f32]) {
        let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let mut q = [0i8; BLOCK];
        let m = self.block_ints(blk, &mut q);
        for (o, &v) in out.iter_mut().zip(&q) {
            *o = match self {
                Self::Q4_1 => d * v as f32 + m,
                _ => d * v as f32,
            };
        }
    }

    /// The block's 32 integer weights in element order (Q4_0 already
    /// centred to −8..7); returns the Q4_1 min (0 for other types).
    fn block_ints(self, blk: &[u8], q: &mut [i8; BLOCK]) -> f32 {
        match self {
            Self::Q8_0 => {
                for (o, &b) in q.iter_mut().zip(&blk[2..34]) {
                    *o = b as i8;
                }
                0.0
            }
            Self::Q4_0 | Self::Q4_1 => {
                let off = if self == Self::Q4_1 { 4 } else { 2 };
                let bias = if self == Self::Q4_0 { 8 } else { 0 };
                for (i, &b) in blk[off..off + 16].iter().enumerate() {
                    q[i] = (b & 0x0F) as i8 - bias;
                    q[i + 16] = (b >> 4) as i8 - bias;
                }
                if self == Self::Q4_1 {
                    f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]))
                } else {
                    0.0
                }
            }
        }
    }
}

/// Exact IEEE half → single conversion (what F16C's `vcvtph2ps` does).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x3FF) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal half: value = man · 2^-24, exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1F, 0) => sign | 0x7F80_0000,
        (0x1F, _) => sign | 0x7FC0_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Round to nearest, ties to even, for |v| < 2^22 (here |v| <= 127.5): adding
/// and subtracting 1.5 · 2^23 leaves exactly the rounded integer (IEEE
/// round-to-nearest-even), without a libm call. NaN stays NaN.
#[inline]
fn round_small(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// Rows of activations quantized to signed bytes in 32-wide blocks:
/// `q = round_ties_even(x / d)` with `d = max|x| / 127`, plus per block
/// `s = d · Σq` (the Q4_1 min term's partner).
#[derive(Clone, Debug, Default)]
pub(crate) struct QActs {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) q: Vec<i8>,
    pub(crate) d: Vec<f32>,
    pub(crate) s: Vec<f32>,
}

impl QActs {
    /// Quantize `m` rows of `k` floats (`k` a multiple of [`BLOCK`]).
    pub(crate) fn quantize(x: &[f32], m: usize, k: usize) -> Self {
        debug_assert!(k % BLOCK == 0 && x.len() >= m * k);
        let nb = k / BLOCK;
        let mut a = QActs {
            m,
            k,
            q: vec![0; m * k],
            d: vec![0.0; m * nb],
            s: vec![0.0; m * nb],
        };
        let blocks = x[..m * k]
            .chunks_exact(BLOCK)
            .zip(a.q.chunks_exact_mut(BLOCK));
        for ((xb, qb), (d, s)) in blocks.zip(a.d.iter_mut().zip(a.s.iter_mut())) {
            let amax = xb.iter().fold(0f32, |acc, v| acc.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (q, &v) in qb.iter_mut().zip(xb) {
                *q = round_small(v * inv) as i8;
                sum += *q as i32;
            }
            *d = scale;
            *s = scale * sum as f32;
        }
        a
    }

    /// A copy of rows `r0..r0 + m`.
    pub(crate) fn rows(&self, r0: usize, m: usize) -> QActs {
        let nb = self.blocks_per_row();
        QActs {
            m,
            k: self.k,
            q: self.q[r0 * self.k..(r0 + m) * self.k].to_vec(),
            d: self.d[r0 * nb..(r0 + m) * nb].to_vec(),
            s: self.s[r0 * nb..(r0 + m) * nb].to_vec(),
        }
    }

    fn blocks_per_row(&self) -> usize {
        self.k / BLOCK
    }
}

/// Which implementation computes the dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Portable reference.
    Scalar,
    /// AVX2 + FMA + F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU supports (detected once).
    pub(crate) fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if x86::available() {
                return Kernel::Avx2;
            }
            Kernel::Scalar
        })
    }
}

/// Final reduction of the eight lane accumulators, in the fixed order the
/// SIMD path uses: halves, then pairs, then the last two.
#[inline]
pub(crate) fn reduce8(a: &[f32; 8]) -> f32 {
    let h = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let p = [h[0] + h[2], h[1] + h[3]];
    p[0] + p[1]
}

/// Scalar reference: dot of one weight row (`nb` blocks of `t`) with
/// activation row `r`.
pub(crate) fn dot_scalar(t: QType, w: &[u8], a: &QActs, r: usize) -> f32 {
    let nb = a.blocks_per_row();
    let bb = t.block_bytes();
    let mut acc = [0f32; 8];
    let mut msum = 0f32;
    let mut wq = [0i8; BLOCK];
    for b in 0..nb {
        let blk = &w[b * bb..(b + 1) * bb];
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let mw = t.block_ints(blk, &mut wq);
        let xq = &a.q[r * a.k + b * BLOCK..][..BLOCK];
        let scale = dw * a.d[r * nb + b];
        for (l, acc) in acc.iter_mut().enumerate() {
            let lane: i32 = (4 * l..4 * l + 4)
                .map(|e| wq[e] as i32 * xq[e] as i32)
                .sum();
            *acc = scale.mul_add(lane as f32, *acc);
        }
        if t == QType::Q4_1 {
            msum = mw.mul_add(a.s[r * nb + b], msum);
        }
    }
    reduce8(&acc) + msum
}

/// `out[r * out_stride + j] = dot(weight row j, activation row r)` for the
/// `cols` weight rows in `w` (each `row_bytes` long) and every activation row.
pub(crate) fn matmul_tile(
    kernel: Kernel,
    t: QType,
    w: &[u8],
    cols: usize,
    a: &QActs,
    out: &mut [f32],
    out_stride: usize,
) {
    let row_bytes = a.blocks_per_row() * t.block_bytes();
    assert!(w.len() >= cols * row_bytes, "weight tile too short");
    assert!(
        a.m == 0 || out.len() >= (a.m - 1) * out_stride + cols,
        "output too short"
    );
    assert!(a.q.len() >= a.m * a.k && a.d.len() >= a.m * a.blocks_per_row());
    match kernel {
        Kernel::Scalar => {
            for j in 0..cols {
                let wr = &w[j * row_bytes..(j + 1) * row_bytes];
                for r in 0..a.m {
                    out[r * out_stride + j] = dot_scalar(t, wr, a, r);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => x86::matmul_tile(t, w, cols, a, out, out_stride),
    }
}

#[cfg(test)]
mod tests;
