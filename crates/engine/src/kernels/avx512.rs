//! AVX-512 VNNI implementation of the quantized dot products defined in
//! `kernels/mod.rs`, over the packed layout of `kernels/packed.rs`. Like
//! `x86.rs`, one of the few modules allowed to use `unsafe`: intrinsics and
//! `#[target_feature]` functions need it. Entry points are reached only
//! after runtime feature detection and check every slice length up front.
//!
//! One 512-bit register holds the sixteen columns of a group. Per block,
//! eight `vpdpbusd` (one per quad, against the broadcast activation dword)
//! leave each column's exact integer block sum (the Q4_0 and Q8_0 offsets
//! removed through the activation block sum), then one `fma` per block
//! applies `d_w · d_x`, as the scalar reference does, so the results are
//! bit-identical to it. Rows are handled in tiles of up to [`TILE`], so each
//! weight block is loaded and unpacked once per tile.
#![allow(
    unsafe_code,
    reason = "AVX-512 intrinsics and #[target_feature] functions need unsafe; see the module doc"
)]

use std::arch::x86_64::*;

use super::packed::{group_block_bytes, payload_offset, GROUP, ROW};
use super::{QActs, QType, BLOCK};

/// Bytes ahead of the current block that the single-row kernel prefetches.
const PREFETCH_AHEAD: usize = 2048;
/// Activation rows per tile.
const TILE: usize = 6;

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
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx2")
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
        "AVX-512 VNNI kernel selected on a CPU without it"
    );
    let nb = a.k / BLOCK;
    assert!(w.len() >= groups * nb * group_block_bytes(t));
    assert!(a.m == 0 || groups == 0 || out.len() >= (a.m - 1) * ldo + groups * GROUP);
    assert!(a.q.len() >= a.m * a.k && a.d.len() >= a.m * nb && a.s.len() >= a.m * nb);
    assert!(a.xs.len() >= a.m * nb);
    // SAFETY: the CPU features were detected above, and the asserts
    // guarantee every pointer the kernels form stays inside `w`, `a` and
    // `out` (group g < groups, activation row r < a.m, block b < nb).
    unsafe {
        match t {
            QType::Q4_0 => run::<T_Q4_0>(w, groups, a, out, ldo),
            QType::Q4_1 => run::<T_Q4_1>(w, groups, a, out, ldo),
            QType::Q8_0 => run::<T_Q8_0>(w, groups, a, out, ldo),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn run<const T: u8>(w: &[u8], groups: usize, a: &QActs, out: &mut [f32], ldo: usize) {
    let gbytes = a.k / BLOCK * group_block_bytes(qtype(T));
    for g in 0..groups {
        // SAFETY (whole body): g < groups and rows < a.m, checked by the caller.
        let wg = unsafe { w.as_ptr().add(g * gbytes) };
        if a.m > 1 {
            // Many rows reuse this group from L1; fetch the next one meanwhile.
            let next = wg.wrapping_add(gbytes);
            for o in (0..gbytes).step_by(64) {
                _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(o) as *const i8);
            }
        }
        let mut r = 0;
        while r + TILE <= a.m {
            let y = unsafe { group_rows::<T, TILE>(wg, a, r) };
            for (i, y) in y.iter().enumerate() {
                store(out, (r + i) * ldo + g * GROUP, *y);
            }
            r += TILE;
        }
        while r + 2 <= a.m {
            let y = unsafe { group_rows::<T, 2>(wg, a, r) };
            for (i, y) in y.iter().enumerate() {
                store(out, (r + i) * ldo + g * GROUP, *y);
            }
            r += 2;
        }
        if r < a.m {
            let y = unsafe { group_rows::<T, 1>(wg, a, r) };
            store(out, r * ldo + g * GROUP, y[0]);
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn store(out: &mut [f32], at: usize, y: __m512) {
    let mut v = [0f32; GROUP];
    // SAFETY: `v` holds exactly sixteen floats.
    unsafe { _mm512_storeu_ps(v.as_mut_ptr(), y) };
    out[at..at + GROUP].copy_from_slice(&v);
}

/// The sixteen outputs of one packed group for activation rows r0..r0+R.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn group_rows<const T: u8, const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
) -> [__m512; R] {
    let nb = a.k / BLOCK;
    let gb = group_block_bytes(qtype(T));
    let off = payload_offset(qtype(T));
    let mask = _mm512_set1_epi8(0x0F);
    // Q4_0 nibbles are q + 8, Q8_0 bytes q + 128: subtract offset · Σx.
    let offset = match T {
        T_Q4_0 => 8,
        T_Q8_0 => 128,
        _ => 0,
    };
    let mut acc = [_mm512_setzero_ps(); R];
    let mut msum = [_mm512_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: b < nb, so the block lies inside the group; rows < a.m.
        unsafe {
            let blk = wg.add(b * gb);
            if R == 1 {
                // One pass over the weights per token: fetch ahead of the
                // hardware prefetcher (addresses past the end are harmless).
                let ahead = blk.wrapping_add(PREFETCH_AHEAD);
                let mut o = 0;
                while o < gb {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(o) as *const i8);
                    o += 64;
                }
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(blk as *const __m256i));
            let mut wv = [_mm512_setzero_si512(); 8];
            for (q, wv) in wv.iter_mut().enumerate() {
                *wv = if T == T_Q8_0 {
                    _mm512_loadu_si512(blk.add(off + ROW * q) as *const __m512i)
                } else {
                    let raw = _mm512_loadu_si512(blk.add(off + ROW * (q % 4)) as *const __m512i);
                    if q < 4 {
                        _mm512_and_si512(raw, mask)
                    } else {
                        _mm512_and_si512(_mm512_srli_epi16::<4>(raw), mask)
                    }
                };
            }
            let mw = if T == T_Q4_1 {
                _mm512_cvtph_ps(_mm256_loadu_si256(blk.add(2 * GROUP) as *const __m256i))
            } else {
                _mm512_setzero_ps()
            };
            for r in 0..R {
                let row = r0 + r;
                let at = row * nb + b;
                let x = a.q.as_ptr().add(row * a.k + b * BLOCK) as *const i32;
                // Two independent chains (even and odd quads): integer sums
                // are exact, so splitting them changes nothing but latency.
                let mut even = _mm512_set1_epi32(-offset * *a.xs.get_unchecked(at));
                let mut odd = _mm512_setzero_si512();
                for q in (0..8).step_by(2) {
                    let x0 = _mm512_set1_epi32(x.add(q).read_unaligned());
                    let x1 = _mm512_set1_epi32(x.add(q + 1).read_unaligned());
                    even = _mm512_dpbusd_epi32(even, wv[q], x0);
                    odd = _mm512_dpbusd_epi32(odd, wv[q + 1], x1);
                }
                let isum = _mm512_add_epi32(even, odd);
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*a.d.get_unchecked(at)));
                acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(isum), acc[r]);
                if T == T_Q4_1 {
                    let sx = _mm512_set1_ps(*a.s.get_unchecked(at));
                    msum[r] = _mm512_fmadd_ps(mw, sx, msum[r]);
                }
            }
        }
    }
    let mut y = [_mm512_setzero_ps(); R];
    for r in 0..R {
        y[r] = _mm512_add_ps(acc[r], msum[r]);
    }
    y
}

/// [`QActs::quantize`]'s per-block quantization of `m * k` floats into the
/// already-sized `a`, with the same operations as the scalar code (see
/// there): `amax` ignoring NaN, `round_small(v * inv)`, NaN → 0, and the
/// exact integer block sum.
pub(super) fn quantize_into(x: &[f32], a: &mut QActs) {
    assert!(
        available(),
        "AVX-512 VNNI kernel selected on a CPU without it"
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

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn quantize_block(x: *const f32, q: *mut i8) -> (f32, i32) {
    // SAFETY: the caller passes 32 floats at `x` and 32 bytes at `q`.
    unsafe {
        let v0 = _mm512_loadu_ps(x);
        let v1 = _mm512_loadu_ps(x.add(16));
        // max(NaN, acc) keeps acc, like f32::max in the scalar fold.
        let m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
        let m = _mm512_max_ps(_mm512_abs_ps(v1), m);
        let amax = _mm512_reduce_max_ps(m);
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        let q0 = _mm512_cvtepi32_epi8(round16(v0, inv));
        let q1 = _mm512_cvtepi32_epi8(round16(v1, inv));
        let qv = _mm256_set_m128i(q1, q0);
        _mm256_storeu_si256(q as *mut __m256i, qv);
        let lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), qv);
        let mut l = [0i32; 8];
        _mm256_storeu_si256(l.as_mut_ptr() as *mut __m256i, lanes);
        (scale, l.iter().sum())
    }
}

/// `round_small(v * inv)` per lane as i32, NaN → 0 (what `as i8` gives).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn round16(v: __m512, inv: f32) -> __m512i {
    let magic = _mm512_set1_ps(12_582_912.0);
    let t = _mm512_mul_ps(v, _mm512_set1_ps(inv));
    let r = _mm512_sub_ps(_mm512_add_ps(t, magic), magic);
    // Integral values in ±127 convert exactly; NaN lanes become 0.
    let ord = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(r, r);
    _mm512_maskz_cvtps_epi32(ord, r)
}
