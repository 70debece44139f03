//! AVX-512 VNNI implementation of the quantized dot products defined in
//! `kernels/mod.rs`, over the packed layout of `kernels/packed.rs`. Like
//! `x86.rs`, one of the few modules allowed to use `unsafe`: intrinsics and
//! `#[target_feature]` functions need it. Entry points are reached only
//! after runtime feature detection and check every slice length up front.
//!
//! One 512-bit register holds two output columns × eight lanes. `vpdpbusd`
//! gives each lane's exact integer sum of four products (with the Q4_0 and
//! Q8_0 offsets removed exactly through the activation lane sums), then the
//! same per-block `fma` and the same final reduction as the scalar
//! reference, so the results are bit-identical to it.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::packed::{group_block_bytes, payload_offset, GROUP};
use super::{QActs, QType, BLOCK};

/// Bytes ahead of the current block that the single-row kernel prefetches.
const PREFETCH_AHEAD: usize = 2048;

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

/// `out[r * ldo + 8g + c]` for packed groups `g < groups` of `w`.
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
    assert!(a.ls.len() >= a.m * nb * 8);
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
        while r + 4 <= a.m {
            let y = unsafe { group_rows::<T, 4>(wg, a, r) };
            for (i, y) in y.iter().enumerate() {
                store(out, (r + i) * ldo + g * GROUP, *y);
            }
            r += 4;
        }
        while r < a.m {
            let y = unsafe { group_rows::<T, 1>(wg, a, r) };
            store(out, r * ldo + g * GROUP, y[0]);
            r += 1;
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn store(out: &mut [f32], at: usize, y: __m256) {
    let mut v = [0f32; GROUP];
    // SAFETY: `v` holds exactly eight floats.
    unsafe { _mm256_storeu_ps(v.as_mut_ptr(), y) };
    out[at..at + GROUP].copy_from_slice(&v);
}

/// The eight outputs of one packed group for activation rows r0..r0+R.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn group_rows<const T: u8, const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
) -> [__m256; R] {
    let nb = a.k / BLOCK;
    let gb = group_block_bytes(qtype(T));
    let off = payload_offset(qtype(T));
    // Words 0..15 (column 2p, low nibbles) shift by 0, words 16..31 by 4.
    let shift = _mm512_set_epi64(
        0x0004_0004_0004_0004,
        0x0004_0004_0004_0004,
        0x0004_0004_0004_0004,
        0x0004_0004_0004_0004,
        0,
        0,
        0,
        0,
    );
    let mask = _mm512_set1_epi8(0x0F);
    let idx = [
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
        _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
        _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6),
    ];
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    let mut msum = [_mm256_setzero_ps(); R];
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
            let d8 =
                _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(blk as *const __m128i)));
            let mut dp = [_mm512_setzero_ps(); 4];
            let mut wv = [_mm512_setzero_si512(); 4];
            for p in 0..4 {
                dp[p] = _mm512_permutexvar_ps(idx[p], d8);
                wv[p] = if T == T_Q8_0 {
                    _mm512_loadu_si512(blk.add(off + 64 * p) as *const __m512i)
                } else {
                    let raw = _mm256_loadu_si256(blk.add(off + 32 * p) as *const __m256i);
                    _mm512_and_si512(_mm512_srlv_epi16(_mm512_broadcast_i64x4(raw), shift), mask)
                };
            }
            let m8 = if T == T_Q4_1 {
                _mm256_cvtph_ps(_mm_loadu_si128(blk.add(2 * GROUP) as *const __m128i))
            } else {
                _mm256_setzero_ps()
            };
            for r in 0..R {
                let row = r0 + r;
                let at = row * nb + b;
                let xq =
                    _mm256_loadu_si256(a.q.as_ptr().add(row * a.k + b * BLOCK) as *const __m256i);
                let xq = _mm512_broadcast_i64x4(xq);
                let dx = _mm512_set1_ps(*a.d.get_unchecked(at));
                let init = if T == T_Q4_1 {
                    _mm512_setzero_si512()
                } else {
                    let ls = _mm256_loadu_si256(a.ls.as_ptr().add(at * 8) as *const __m256i);
                    let ls = _mm512_broadcast_i64x4(ls);
                    let c = if T == T_Q8_0 {
                        _mm512_slli_epi32::<7>(ls)
                    } else {
                        _mm512_slli_epi32::<3>(ls)
                    };
                    _mm512_sub_epi32(_mm512_setzero_si512(), c)
                };
                for p in 0..4 {
                    let lane = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init, wv[p], xq));
                    acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dp[p], dx), lane, acc[r][p]);
                }
                if T == T_Q4_1 {
                    let sx = _mm256_set1_ps(*a.s.get_unchecked(at));
                    msum[r] = _mm256_fmadd_ps(m8, sx, msum[r]);
                }
            }
        }
    }
    let mut y = [_mm256_setzero_ps(); R];
    for r in 0..R {
        y[r] = finish(&acc[r], msum[r]);
    }
    y
}

/// Per column, `reduce8` of its eight lanes (in `super::reduce8`'s order:
/// halves, then pairs, then the last two) plus its min term.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn finish(acc: &[__m512; 4], msum: __m256) -> __m256 {
    // Quarters of acc[p]: col 2p lanes 0-3, 4-7, col 2p+1 lanes 0-3, 4-7.
    let lo = pairs(halves(acc[0], acc[1]));
    let hi = pairs(halves(acc[2], acc[3]));
    let pick = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
    let y = _mm512_castps512_ps256(_mm512_permutex2var_ps(lo, pick, hi));
    _mm256_add_ps(y, msum)
}

/// Quarter c of the result: lanes 0-3 plus lanes 4-7 of column c (of 4).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn halves(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(
        _mm512_shuffle_f32x4::<0x88>(a, b),
        _mm512_shuffle_f32x4::<0xDD>(a, b),
    )
}

/// Element 0 of each quarter: (h0 + h2) + (h1 + h3).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn pairs(h: __m512) -> __m512 {
    let p = _mm512_add_ps(h, _mm512_permute_ps::<0x4E>(h));
    _mm512_add_ps(p, _mm512_permute_ps::<0x01>(p))
}

/// [`QActs::quantize`]'s per-block quantization of `m * k` floats into the
/// already-sized `a`, with the same operations as the scalar code (see
/// there): `amax` ignoring NaN, `round_small(v * inv)`, NaN → 0, and exact
/// integer lane sums.
pub(super) fn quantize_into(x: &[f32], a: &mut QActs) {
    assert!(
        available(),
        "AVX-512 VNNI kernel selected on a CPU without it"
    );
    let blocks = a.m * a.k / BLOCK;
    assert!(x.len() >= blocks * BLOCK && a.q.len() >= blocks * BLOCK);
    assert!(a.d.len() >= blocks && a.s.len() >= blocks && a.ls.len() >= blocks * 8);
    for b in 0..blocks {
        // SAFETY: features detected above; block b < blocks lies inside
        // every buffer (asserted).
        let (d, sum) = unsafe {
            quantize_block(
                x.as_ptr().add(b * BLOCK),
                a.q.as_mut_ptr().add(b * BLOCK),
                a.ls.as_mut_ptr().add(b * 8),
            )
        };
        a.d[b] = d;
        a.s[b] = d * sum as f32;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn quantize_block(x: *const f32, q: *mut i8, ls: *mut i32) -> (f32, i32) {
    // SAFETY: the caller passes 32 floats at `x`, 32 bytes at `q`, 8 i32 at `ls`.
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
        _mm256_storeu_si256(ls as *mut __m256i, lanes);
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
