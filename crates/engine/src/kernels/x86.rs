//! AVX2/FMA/F16C implementation of the quantized dot products defined in
//! `kernels/mod.rs`. This is the one module of the engine allowed to use
//! `unsafe`: SIMD intrinsics and `#[target_feature]` functions cannot be
//! called without it. Every entry point is reached only after runtime
//! feature detection, checks all slice lengths up front, and computes the
//! exact operation sequence of the scalar reference (integer lane sums, then
//! per-block `fma` into eight f32 lanes, then a fixed reduction), so its
//! results are bit-identical to `dot_scalar`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{QActs, QType, BLOCK};

/// Type tags for the const-generic kernels.
const T_Q4_0: u8 = 0;
const T_Q4_1: u8 = 1;
const T_Q8_0: u8 = 2;

/// Whether this CPU has everything the kernels use.
pub(super) fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// See [`super::matmul_tile`]; lengths are checked by the caller.
pub(super) fn matmul_tile(
    t: QType,
    w: &[u8],
    cols: usize,
    a: &QActs,
    out: &mut [f32],
    out_stride: usize,
) {
    assert!(
        available(),
        "AVX2 kernel selected on a CPU without AVX2/FMA/F16C"
    );
    let nb = a.k / BLOCK;
    let row_bytes = nb * t.block_bytes();
    assert!(w.len() >= cols * row_bytes);
    assert!(a.m == 0 || out.len() >= (a.m - 1) * out_stride + cols);
    assert!(a.q.len() >= a.m * a.k && a.d.len() >= a.m * nb && a.s.len() >= a.m * nb);
    // SAFETY: the CPU features were detected above, and the asserts
    // guarantee every pointer the kernels form stays inside `w`, `a` and
    // `out` (weight row j < cols, activation row r < a.m, block b < nb).
    unsafe {
        match t {
            QType::Q4_0 => tile::<T_Q4_0>(w, row_bytes, cols, a, out, out_stride),
            QType::Q4_1 => tile::<T_Q4_1>(w, row_bytes, cols, a, out, out_stride),
            QType::Q8_0 => tile::<T_Q8_0>(w, row_bytes, cols, a, out, out_stride),
        }
    }
}

/// Activation rows processed together against one unpacked weight block.
const ROWS: usize = 4;

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const T: u8>(
    w: &[u8],
    row_bytes: usize,
    cols: usize,
    a: &QActs,
    out: &mut [f32],
    out_stride: usize,
) {
    let groups = a.m / ROWS;
    for j in 0..cols {
        // SAFETY: j < cols and w.len() >= cols * row_bytes (checked by caller).
        let wr = unsafe { w.as_ptr().add(j * row_bytes) };
        for g in 0..groups {
            // SAFETY: rows g*ROWS .. g*ROWS+ROWS are < a.m.
            let y = unsafe { dot_rows::<T, ROWS>(wr, a, g * ROWS) };
            for (i, v) in y.iter().enumerate() {
                out[(g * ROWS + i) * out_stride + j] = *v;
            }
        }
        for r in groups * ROWS..a.m {
            // SAFETY: r < a.m.
            let y = unsafe { dot_rows::<T, 1>(wr, a, r) };
            out[r * out_stride + j] = y[0];
        }
    }
}

/// The 32 weights of a block as bytes in element order: unsigned nibbles for
/// Q4_1, signed values for Q4_0 (centred) and Q8_0. Also returns the scale
/// and (Q4_1) the min.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_block<const T: u8>(blk: *const u8) -> (__m256i, f32, f32) {
    // SAFETY: the caller passes a pointer to a whole block of type T.
    unsafe {
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128((blk as *const i32).read_unaligned()));
        let d = _mm_cvtss_f32(dm);
        if T == T_Q8_0 {
            let q = _mm256_loadu_si256(blk.add(2) as *const __m256i);
            return (q, d, 0.0);
        }
        let off = if T == T_Q4_1 { 4 } else { 2 };
        let raw = _mm_loadu_si128(blk.add(off) as *const __m128i);
        let mask = _mm_set1_epi8(0x0F);
        let lo = _mm_and_si128(raw, mask);
        let hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
        let q = _mm256_set_m128i(hi, lo);
        if T == T_Q4_1 {
            (q, d, _mm_cvtss_f32(_mm_movehdup_ps(dm)))
        } else {
            (_mm256_sub_epi8(q, _mm256_set1_epi8(8)), d, 0.0)
        }
    }
}

/// Eight i32 lanes, lane l = Σ of products of elements 4l..4l+3 (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn lanes<const T: u8>(wq: __m256i, xq: __m256i) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    let pairs = if T == T_Q4_1 {
        // Unsigned nibbles times signed bytes: |pair| <= 2·15·128.
        _mm256_maddubs_epi16(wq, xq)
    } else {
        // |w| times x carrying w's sign: |pair| <= 2·128·128 < 2^15 only
        // because activations never reach −128 (they are clamped to ±127).
        _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq))
    };
    _mm256_madd_epi16(pairs, ones)
}

/// Horizontal sum in the order of `super::reduce8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn reduce8(v: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let p = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(p, _mm_shuffle_ps(p, p, 1)))
}

/// Dots of one weight row with activation rows r0..r0+R.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows<const T: u8, const R: usize>(w: *const u8, a: &QActs, r0: usize) -> [f32; R] {
    let nb = a.k / BLOCK;
    let bb = match T {
        T_Q4_0 => QType::Q4_0.block_bytes(),
        T_Q4_1 => QType::Q4_1.block_bytes(),
        _ => QType::Q8_0.block_bytes(),
    };
    let mut acc = [_mm256_setzero_ps(); R];
    let mut msum = [0f32; R];
    for b in 0..nb {
        // SAFETY: b < nb, so the block lies inside the weight row.
        let (wq, dw, mw) = unsafe { load_block::<T>(w.add(b * bb)) };
        for r in 0..R {
            let row = r0 + r;
            // SAFETY: row < a.m and b < nb, inside a.q / a.d / a.s.
            let (xq, dx, sx) = unsafe {
                (
                    _mm256_loadu_si256(a.q.as_ptr().add(row * a.k + b * BLOCK) as *const __m256i),
                    *a.d.get_unchecked(row * nb + b),
                    *a.s.get_unchecked(row * nb + b),
                )
            };
            let p = _mm256_cvtepi32_ps(lanes::<T>(wq, xq));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), p, acc[r]);
            if T == T_Q4_1 {
                msum[r] = mw.mul_add(sx, msum[r]);
            }
        }
    }
    let mut y = [0f32; R];
    for r in 0..R {
        y[r] = reduce8(acc[r]) + msum[r];
    }
    y
}
