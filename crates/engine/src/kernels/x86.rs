//! AVX2/FMA/F16C implementation of the quantized dot products defined in
//! `kernels/mod.rs`, over the packed layout of `kernels/packed.rs` (the
//! fallback where AVX-512 VNNI is missing). One of the few modules of the
//! engine allowed to use `unsafe`: SIMD intrinsics and `#[target_feature]`
//! functions cannot be called without it. Every entry point is reached only
//! after runtime feature detection, checks all slice lengths up front, and
//! computes the exact operation sequence of the scalar reference (an exact
//! integer sum per block, then one `fma` per block and column), so its
//! results are bit-identical to it.
#![allow(
    unsafe_code,
    reason = "SIMD intrinsics and #[target_feature] functions need unsafe; see the module doc"
)]

use std::arch::x86_64::*;

use half::f16;

use super::packed::{group_block_bytes, payload_offset, GROUP, ROW};
use super::{QActs, QType, BLOCK};

/// Type tags for the const-generic kernels.
const T_Q4_0: u8 = 0;
const T_Q4_1: u8 = 1;
const T_Q8_0: u8 = 2;

const fn qtype(t: u8) -> QType {
    match t {
        T_Q4_0 => QType::Q4_0,
        T_Q4_1 => QType::Q4_1,
        _ => QType::Q8_0,
    }
}

/// Whether this CPU has everything the kernels use.
pub(super) fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// `out[r * ldo + 16g + c]` for packed groups `g < groups` of `w`.
pub(super) fn matmul_groups(
    t: QType,
    w: &[u8],
    groups: usize,
    a: &QActs,
    out: &mut [f32],
    ldo: usize,
) {
    assert!(
        available(),
        "AVX2 kernel selected on a CPU without AVX2/FMA/F16C"
    );
    let nb = a.k / BLOCK;
    assert!(w.len() >= groups * nb * group_block_bytes(t));
    assert!(a.m == 0 || groups == 0 || out.len() >= (a.m - 1) * ldo + groups * GROUP);
    assert!(a.q.len() >= a.m * a.k && a.d.len() >= a.m * nb && a.s.len() >= a.m * nb);
    assert!(a.xs.len() >= a.m * nb);
    let gbytes = nb * group_block_bytes(t);
    for g in 0..groups {
        for half in 0..2 {
            for r in 0..a.m {
                // SAFETY: the CPU features were detected above, and the
                // asserts guarantee every pointer the kernel forms stays
                // inside `w` and `a` (group g < groups, row r < a.m, block
                // b < nb, half < 2).
                let y = unsafe {
                    let wg = w.as_ptr().add(g * gbytes);
                    match t {
                        QType::Q4_0 => half_row::<T_Q4_0>(wg, half, a, r),
                        QType::Q4_1 => half_row::<T_Q4_1>(wg, half, a, r),
                        QType::Q8_0 => half_row::<T_Q8_0>(wg, half, a, r),
                    }
                };
                out[r * ldo + g * GROUP + 8 * half..][..8].copy_from_slice(&y);
            }
        }
    }
}

/// Outputs `8 · half .. 8 · half + 8` of one packed group for activation
/// row `row`. The integer block sums use `vpmaddubsw` (u8 × i8 pairs):
/// Q4 nibbles directly, their i16 pair sums added over all eight quads
/// (at most 8 · 2 · 15 · 127 = 30480, so exact); Q8_0 as |q| times x with
/// q's sign (pairs at most 2 · 128 · 127). Then the defined f32 steps.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn half_row<const T: u8>(wg: *const u8, half: usize, a: &QActs, row: usize) -> [f32; 8] {
    let nb = a.k / BLOCK;
    let gb = group_block_bytes(qtype(T));
    let off = payload_offset(qtype(T)) + 32 * half;
    let (mask, ones, flip) = (
        _mm256_set1_epi8(0x0F),
        _mm256_set1_epi16(1),
        _mm256_set1_epi8(-128),
    );
    let mut acc = _mm256_setzero_ps();
    let mut msum = _mm256_setzero_ps();
    for b in 0..nb {
        let at = row * nb + b;
        // SAFETY: b < nb, so the block lies inside the group; row < a.m.
        unsafe {
            let blk = wg.add(b * gb);
            let x = a.q.as_ptr().add(row * a.k + b * BLOCK) as *const i32;
            let xq = |q: usize| _mm256_set1_epi32(x.add(q).read_unaligned());
            let isum = if T == T_Q8_0 {
                let mut isum = _mm256_setzero_si256();
                for q in 0..8 {
                    let u = _mm256_loadu_si256(blk.add(off + ROW * q) as *const __m256i);
                    let w = _mm256_xor_si256(u, flip);
                    let p =
                        _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xq(q), w));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
                }
                isum
            } else {
                let mut pairs = _mm256_setzero_si256();
                for j in 0..4 {
                    let raw = _mm256_loadu_si256(blk.add(off + ROW * j) as *const __m256i);
                    let lo = _mm256_and_si256(raw, mask);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), mask);
                    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(lo, xq(j)));
                    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(hi, xq(j + 4)));
                }
                let offset = if T == T_Q4_0 { 8 } else { 0 };
                let init = _mm256_set1_epi32(-offset * *a.xs.get_unchecked(at));
                _mm256_add_epi32(init, _mm256_madd_epi16(pairs, ones))
            };
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(blk.add(16 * half) as *const __m128i));
            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*a.d.get_unchecked(at)));
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
            if T == T_Q4_1 {
                let mw = _mm256_cvtph_ps(_mm_loadu_si128(
                    blk.add(2 * GROUP + 16 * half) as *const __m128i
                ));
                msum = _mm256_fmadd_ps(mw, _mm256_set1_ps(*a.s.get_unchecked(at)), msum);
            }
        }
    }
    let mut y = [0f32; 8];
    // SAFETY: `y` holds eight floats.
    unsafe { _mm256_storeu_ps(y.as_mut_ptr(), _mm256_add_ps(acc, msum)) };
    y
}

/// Four `crate::ops::dot_f16`s of `a` with the half-precision rows `b[i]`
/// (same lengths, a multiple of 8), in `dot`'s exact order: each half
/// widened exactly (`vcvtph2ps`), eight lanes of `acc += a * b` (no fma),
/// then `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`.
pub(super) fn dot4_f16(a: &[f32], b: [&[f16]; 4]) -> [f32; 4] {
    assert!(
        available(),
        "AVX2 kernel selected on a CPU without AVX2/FMA/F16C"
    );
    let n = a.len();
    assert!(n.is_multiple_of(8) && b.iter().all(|r| r.len() >= n));
    // SAFETY: features detected above; every load is inside `a` or `b[i]`
    // (chunk c < n / 8, lengths asserted).
    unsafe { dot4_f16_avx(a, b) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4_f16_avx(a: &[f32], b: [&[f16]; 4]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    for c in 0..a.len() / 8 {
        // SAFETY: c * 8 + 8 <= len of every slice (checked by the caller);
        // `f16` is a plain 16-bit value, so eight of them are 16 bytes.
        unsafe {
            let x = _mm256_loadu_ps(a.as_ptr().add(c * 8));
            for (acc, b) in acc.iter_mut().zip(&b) {
                let h = _mm_loadu_si128(b.as_ptr().add(c * 8) as *const __m128i);
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, _mm256_cvtph_ps(h)));
            }
        }
    }
    let h = acc.map(|v| _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)));
    let r = _mm_hadd_ps(_mm_hadd_ps(h[0], h[1]), _mm_hadd_ps(h[2], h[3]));
    let mut out = [0f32; 4];
    // SAFETY: `out` holds four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), r) };
    out
}

/// `o[i] += w * v[i]` over a half-precision row `v` (attention's weighted
/// value sum), each half widened exactly, `mul` then `add` (no fma) as in
/// the scalar loop, so the bits are the same.
pub(super) fn axpy_f16(o: &mut [f32], w: f32, v: &[f16]) {
    assert!(
        available(),
        "AVX2 kernel selected on a CPU without AVX2/FMA/F16C"
    );
    assert!(v.len() >= o.len());
    // SAFETY: features detected above; chunk c < o.len() / 8 lies inside
    // `o` and `v` (lengths asserted); the tail is safe code.
    unsafe { axpy_f16_avx(o, w, v) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_f16_avx(o: &mut [f32], w: f32, v: &[f16]) {
    let wv = _mm256_set1_ps(w);
    let n8 = o.len() / 8 * 8;
    for c in (0..n8).step_by(8) {
        // SAFETY: c + 8 <= n8 <= len of both slices.
        unsafe {
            let h = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(c) as *const __m128i));
            let y = _mm256_add_ps(_mm256_loadu_ps(o.as_ptr().add(c)), _mm256_mul_ps(wv, h));
            _mm256_storeu_ps(o.as_mut_ptr().add(c), y);
        }
    }
    for (od, vd) in o[n8..].iter_mut().zip(&v[n8..]) {
        *od += w * vd.to_f32();
    }
}

/// [`QActs::quantize`] of `a.m` rows of `x` into the already-sized `a`, with
/// the scalar code's exact operations: `amax` ignoring NaN, `scale = amax /
/// 127`, `round_small(v * inv)`, NaN → 0, the exact integer block sum.
pub(super) fn quantize_into(x: &[f32], a: &mut QActs) {
    assert!(
        available(),
        "AVX2 kernel selected on a CPU without AVX2/FMA/F16C"
    );
    let blocks = a.m * a.k / BLOCK;
    assert!(x.len() >= blocks * BLOCK && a.q.len() >= blocks * BLOCK);
    assert!(a.d.len() >= blocks && a.s.len() >= blocks && a.xs.len() >= blocks);
    for b in 0..blocks {
        // SAFETY: features detected above; block b < blocks lies inside
        // every buffer (asserted).
        let (d, sum) =
            unsafe { quantize_block(x.as_ptr().add(b * BLOCK), a.q.as_mut_ptr().add(b * BLOCK)) };
        a.d[b] = d;
        a.s[b] = d * sum as f32;
        a.xs[b] = sum;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_block(x: *const f32, q: *mut i8) -> (f32, i32) {
    // SAFETY: the caller passes 32 floats at `x` and 32 bytes at `q`.
    unsafe {
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(x.add(8 * i)));
        let sign = _mm256_set1_ps(-0.0);
        // max(|v|, acc) returns acc when |v| is NaN, like f32::max in the
        // scalar fold; max is exact, so the order does not matter.
        let mut m = _mm256_setzero_ps();
        for v in v {
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v), m);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), m);
        let amax = lanes.iter().fold(0f32, |acc, &l| acc.max(l));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        let (magic, vinv) = (_mm256_set1_ps(12_582_912.0), _mm256_set1_ps(inv));
        let r = v.map(|v| {
            let t = _mm256_mul_ps(v, vinv);
            let r = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
            // Integral values in ±127 convert exactly; NaN lanes become 0.
            let ord = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
            _mm256_and_si256(_mm256_cvtps_epi32(r), ord)
        });
        // Packing interleaves 128-bit halves; restore element order.
        let p = _mm256_packs_epi16(
            _mm256_packs_epi32(r[0], r[1]),
            _mm256_packs_epi32(r[2], r[3]),
        );
        let qv = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(q as *mut __m256i, qv);
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), qv);
        let l4 = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        let mut l = [0i32; 8];
        _mm256_storeu_si256(l.as_mut_ptr() as *mut __m256i, l4);
        (scale, l.iter().sum())
    }
}
