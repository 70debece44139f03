//! Quantized matmul kernels for the weight types the engine runs natively
//! (Q4_0, Q4_1, Q8_0). Activations are quantized to 8 bits once per row
//! ([`QActs`]); each output is then an exact integer dot product per 32-wide
//! block followed by a fixed sequence of f32 operations:
//!
//! ```text
//! isum  = Σ_{e < 32} w[e] · x[e]                 (exact i32, any order)
//! acc   = fma(d_w · d_x, isum as f32, acc)       (block order)
//! msum  = fma(m_w, s_x, msum)                    (Q4_1 only; else 0)
//! y     = acc + msum
//! ```
//!
//! One f32 chain per output, so the SIMD kernels spend one `fma` per block
//! and column on it, and the integer sum is free to use whatever exact
//! instruction sequence a CPU has (VNNI `vpdpbusd`, AVX2 `vpmaddubsw`). The
//! scalar reference below and the SIMD paths (`x86.rs`, `avx512.rs`) all
//! implement exactly this, so they give the same bits, and the result for one
//! (weight row, activation row) pair never depends on how many rows are
//! batched or how columns are split across threads — the property that makes
//! a one-pass prefill bit-identical to incremental decoding.

#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod packed;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use packed::GROUP;

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
    pub(crate) fn block_ints(self, blk: &[u8], q: &mut [i8; BLOCK]) -> f32 {
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
/// `s = d · Σq` (the Q4_1 min term's partner) and the exact `Σq` itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct QActs {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) q: Vec<i8>,
    pub(crate) d: Vec<f32>,
    pub(crate) s: Vec<f32>,
    /// Per block, `Σq`: the exact correction that lets unsigned-times-signed
    /// dot instructions compute signed weights (Q4_0's −8 offset, Q8_0
    /// stored as `q + 128`).
    pub(crate) xs: Vec<i32>,
}

impl QActs {
    /// Quantize `m` rows of `k` floats (`k` a multiple of [`BLOCK`]).
    pub(crate) fn quantize(x: &[f32], m: usize, k: usize) -> Self {
        Self::quantize_with(Kernel::best(), x, m, k)
    }

    /// [`QActs::quantize`] with a given kernel (all give the same bytes).
    pub(crate) fn quantize_with(kernel: Kernel, x: &[f32], m: usize, k: usize) -> Self {
        assert!(
            k.is_multiple_of(BLOCK) && x.len() >= m * k,
            "bad activation shape"
        );
        let nb = k / BLOCK;
        let mut a = QActs {
            m,
            k,
            q: vec![0; m * k],
            d: vec![0.0; m * nb],
            s: vec![0.0; m * nb],
            xs: vec![0; m * nb],
        };
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx512 {
            avx512::quantize_into(x, &mut a);
            return a;
        }
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx2 {
            x86::quantize_into(x, &mut a);
            return a;
        }
        let blocks = x[..m * k]
            .chunks_exact(BLOCK)
            .zip(a.q.chunks_exact_mut(BLOCK))
            .zip(a.xs.iter_mut());
        for (((xb, qb), xs), (d, s)) in blocks.zip(a.d.iter_mut().zip(a.s.iter_mut())) {
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
            *xs = sum;
        }
        a
    }

    pub(crate) fn blocks_per_row(&self) -> usize {
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
    /// AVX-512 (F, BW, VL) with VNNI dot products.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU supports (detected once). Setting
    /// `PROOFMESH_KERNEL` to `scalar` or `avx2` caps it (for comparisons);
    /// all kernels give the same bits.
    pub(crate) fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = proofmesh_ambient::env::var("PROOFMESH_KERNEL").unwrap_or_default();
            Self::available()
                .into_iter()
                .rev()
                .find(|k| cap.is_empty() || format!("{k:?}").eq_ignore_ascii_case(&cap))
                .unwrap_or(Kernel::Scalar)
        })
    }

    /// Every kernel this CPU can run, slowest first.
    pub(crate) fn available() -> Vec<Kernel> {
        #[allow(unused_mut, reason = "pushed to only on x86_64")]
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::available() {
                v.push(Kernel::Avx2);
            }
            if avx512::available() {
                v.push(Kernel::Avx512);
            }
        }
        v
    }
}

/// Four [`crate::ops::dot_f16`]s of `a` against the half-precision rows
/// `b[i]` (attention scores against cached keys, four at a time),
/// bit-identical to calling it four times.
pub(crate) fn dot4_f16(a: &[f32], b: [&[half::f16]; 4]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    if a.len().is_multiple_of(8) && x86::available() {
        return x86::dot4_f16(a, b);
    }
    b.map(|b| crate::ops::dot_f16(a, b))
}

/// `o[i] += w * v[i]` for a half-precision row `v` (attention's weighted
/// value sum): `mul` then `add` per element, the same bits on every path.
pub(crate) fn axpy_f16(o: &mut [f32], w: f32, v: &[half::f16]) {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        return x86::axpy_f16(o, w, v);
    }
    axpy_f16_scalar(o, w, v);
}

/// The scalar reference of [`axpy_f16`].
pub(crate) fn axpy_f16_scalar(o: &mut [f32], w: f32, v: &[half::f16]) {
    for (od, vd) in o.iter_mut().zip(v) {
        *od += w * vd.to_f32();
    }
}

/// Scalar reference: dot of one weight row (`nb` blocks of `t`, GGML
/// layout) with activation row `r`.
pub(crate) fn dot_scalar(t: QType, w: &[u8], a: &QActs, r: usize) -> f32 {
    let bb = t.block_bytes();
    dot_with(t, a, r, |b, wq| {
        let blk = &w[b * bb..(b + 1) * bb];
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        (dw, t.block_ints(blk, wq))
    })
}

/// The defined arithmetic of one output, given each block's scale, min and
/// integer weights (`block(b, &mut ints) -> (d, m)`).
pub(crate) fn dot_with(
    t: QType,
    a: &QActs,
    r: usize,
    mut block: impl FnMut(usize, &mut [i8; BLOCK]) -> (f32, f32),
) -> f32 {
    let nb = a.blocks_per_row();
    let mut acc = 0f32;
    let mut msum = 0f32;
    let mut wq = [0i8; BLOCK];
    for b in 0..nb {
        let (dw, mw) = block(b, &mut wq);
        let xq = &a.q[r * a.k + b * BLOCK..][..BLOCK];
        let isum: i32 = wq.iter().zip(xq).map(|(&w, &x)| w as i32 * x as i32).sum();
        acc = (dw * a.d[r * nb + b]).mul_add(isum as f32, acc);
        if t == QType::Q4_1 {
            msum = mw.mul_add(a.s[r * nb + b], msum);
        }
    }
    acc + msum
}

/// `out[r * ldo + (c - cols.start)] = dot(weight row c, activation row r)`
/// for the columns `cols` of a weight packed by [`packed::pack_in_place`]
/// (`n` rows of `a.k` values). `cols.start` must be a multiple of
/// [`packed::GROUP`], and `cols.end` one too or `n`.
pub(crate) fn matmul_cols(
    kernel: Kernel,
    t: QType,
    w: &[u8],
    n: usize,
    a: &QActs,
    cols: std::ops::Range<usize>,
    out: &mut [f32],
    ldo: usize,
) {
    let row_bytes = a.blocks_per_row() * t.block_bytes();
    let full = n / GROUP * GROUP;
    assert!(w.len() >= n * row_bytes, "weight too short");
    assert!(
        cols.start.is_multiple_of(GROUP) && cols.end <= n,
        "unaligned columns"
    );
    assert!(
        cols.end.is_multiple_of(GROUP) || cols.end == n,
        "unaligned columns"
    );
    assert!(cols.len() <= ldo || a.m <= 1, "output stride too small");
    assert!(
        a.m == 0 || out.len() >= (a.m - 1) * ldo + cols.len(),
        "output too short"
    );
    assert!(a.q.len() >= a.m * a.k && a.d.len() >= a.m * a.blocks_per_row());
    assert!(a.s.len() >= a.m * a.blocks_per_row() && a.xs.len() >= a.m * a.blocks_per_row());
    let groups = cols.start / GROUP..cols.end.min(full) / GROUP;
    let gbytes = GROUP * row_bytes;
    let wg = &w[groups.start * gbytes..groups.end * gbytes];
    match kernel {
        Kernel::Scalar => packed::matmul_groups(t, wg, groups.len(), a, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => x86::matmul_groups(t, wg, groups.len(), a, out, ldo),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => avx512::matmul_groups(t, wg, groups.len(), a, out, ldo),
    }
    // Columns past the last whole group keep the GGML row layout.
    for c in cols.start.max(full)..cols.end {
        let wr = &w[c * row_bytes..(c + 1) * row_bytes];
        for r in 0..a.m {
            out[r * ldo + c - cols.start] = dot_scalar(t, wr, a, r);
        }
    }
}

#[cfg(test)]
mod tests;
