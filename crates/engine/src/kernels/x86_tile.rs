//! Batched (prefill-shaped) AVX2 kernel: up to [`TILE`] activation rows
//! against one packed group of eight weight columns, so each weight block is
//! loaded and unpacked once for several rows instead of once per row. It
//! exists because the one-pass verification and prefill run many rows
//! through every weight, and in the one-row kernel (`x86.rs`) the weight
//! unpacking and scale shuffles cost as much as the dot products.
//!
//! The loop order differs from `x86.rs` (column by column, rows innermost),
//! but every output performs exactly the operation sequence defined in
//! `kernels/mod.rs`: exact i32 lane sums per block, `fma(d_w · d_x, lane,
//! acc)` in block order into the same eight lanes, the Q4_1 `fma(m_w, s_x,
//! msum)` chain in block order, then `reduce8(acc) + msum`. Its results are
//! therefore bit-identical to the scalar reference and to the one-row
//! kernel, whatever the batch size (tested in `kernels/tests.rs`). Uses
//! `unsafe` for the intrinsics only; callers check every bound up front.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::packed::{group_block_bytes, payload_offset, GROUP};
use super::{reduce8, QActs, QType, BLOCK};

/// Activation rows per tile.
pub(super) const TILE: usize = 4;
/// Blocks whose scales are precomputed at once (bounds the stack table).
const CHUNK: usize = 16;

/// Outputs of rows `r0..r0 + R` for the packed group at `wg`, written to
/// `out[(r0 + r) * ldo + col0 + c]`.
///
/// # Safety
/// AVX2, FMA and F16C must be available; `wg` must point at a whole packed
/// group of `a.k / BLOCK` blocks of type `t`; rows `r0..r0 + R` must exist
/// in `a` (with `d`, `s`, `ls` and `q` of full length); and `out` must hold
/// index `(r0 + R - 1) * ldo + col0 + GROUP - 1`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile<const R: usize>(
    t: QType,
    wg: *const u8,
    a: &QActs,
    r0: usize,
    out: &mut [f32],
    ldo: usize,
    col0: usize,
) {
    // SAFETY: forwarded from the caller's contract.
    let y = unsafe {
        match t {
            QType::Q4_0 => tile_t::<0, R>(wg, a, r0),
            QType::Q4_1 => tile_t::<1, R>(wg, a, r0),
            QType::Q8_0 => tile_t::<2, R>(wg, a, r0),
        }
    };
    for (r, y) in y.iter().enumerate() {
        out[(r0 + r) * ldo + col0..][..GROUP].copy_from_slice(y);
    }
}

const fn qtype(t: u8) -> QType {
    match t {
        0 => QType::Q4_0,
        1 => QType::Q4_1,
        _ => QType::Q8_0,
    }
}

/// Accumulators of one tile: eight lanes per (row, column), and the Q4_1
/// min sums per row (one lane per column).
struct Acc<const R: usize> {
    acc: [[__m256; GROUP]; R],
    msum: [__m256; R],
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_t<const T: u8, const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
) -> [[f32; GROUP]; R] {
    let nb = a.k / BLOCK;
    let mut st = Acc::<R> {
        acc: [[_mm256_setzero_ps(); GROUP]; R],
        msum: [_mm256_setzero_ps(); R],
    };
    // sc[j * R + r][c] = d_w[b0 + j][c] · d_x[r0 + r][b0 + j] (R <= TILE).
    assert!(R <= TILE, "tile too tall");
    let mut sc = [[0f32; GROUP]; CHUNK * TILE];
    let mut b0 = 0;
    while b0 < nb {
        let b1 = (b0 + CHUNK).min(nb);
        // SAFETY: blocks b0..b1 lie inside the group, rows inside `a`.
        unsafe {
            scales::<T, R>(wg, a, r0, b0..b1, &mut sc, &mut st.msum);
            if T == 2 {
                q8_chunk::<R>(wg, a, r0, b0..b1, &sc, &mut st.acc);
            } else {
                q4_chunk::<T, R>(wg, a, r0, b0..b1, &sc, &mut st.acc);
            }
        }
        b0 = b1;
    }
    let mut y = [[0f32; GROUP]; R];
    for ((y, acc), msum) in y.iter_mut().zip(&st.acc).zip(&st.msum) {
        let mut ms = [0f32; GROUP];
        // SAFETY: `ms` holds eight floats.
        unsafe { _mm256_storeu_ps(ms.as_mut_ptr(), *msum) };
        for ((y, acc), ms) in y.iter_mut().zip(acc).zip(ms) {
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds eight floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *acc) };
            *y = reduce8(&lanes) + ms;
        }
    }
    y
}

/// The chunk's scale table, and (Q4_1) the min sums in block order.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scales<const T: u8, const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
    blocks: std::ops::Range<usize>,
    sc: &mut [[f32; GROUP]],
    msum: &mut [__m256; R],
) {
    let nb = a.k / BLOCK;
    let gb = group_block_bytes(qtype(T));
    for (j, b) in blocks.enumerate() {
        // SAFETY: b < nb (block inside the group); rows r0 + r < a.m.
        unsafe {
            let blk = wg.add(b * gb);
            let d8 = _mm256_cvtph_ps(_mm_loadu_si128(blk as *const __m128i));
            let m8 = if T == 1 {
                _mm256_cvtph_ps(_mm_loadu_si128(blk.add(2 * GROUP) as *const __m128i))
            } else {
                _mm256_setzero_ps()
            };
            for (r, msum) in msum.iter_mut().enumerate() {
                let at = (r0 + r) * nb + b;
                let sd = _mm256_mul_ps(d8, _mm256_set1_ps(*a.d.get_unchecked(at)));
                _mm256_storeu_ps(sc[j * R + r].as_mut_ptr(), sd);
                if T == 1 {
                    *msum = _mm256_fmadd_ps(m8, _mm256_set1_ps(*a.s.get_unchecked(at)), *msum);
                }
            }
        }
    }
}

/// Q8_0: one column at a time, its block loaded and made unsigned-absolute
/// once for all rows.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_chunk<const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
    blocks: std::ops::Range<usize>,
    sc: &[[f32; GROUP]],
    acc: &mut [[__m256; GROUP]; R],
) {
    let gb = group_block_bytes(QType::Q8_0);
    let off = payload_offset(QType::Q8_0);
    let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(-128));
    #[allow(clippy::needless_range_loop)] // `c` indexes two arrays and a pointer
    for c in 0..GROUP {
        let mut v: [__m256; R] = std::array::from_fn(|r| acc[r][c]);
        for (j, b) in blocks.clone().enumerate() {
            // SAFETY: block b and rows r0 + r are in bounds (caller).
            unsafe {
                let u = _mm256_loadu_si256(wg.add(b * gb + off + 32 * c) as *const __m256i);
                let q = _mm256_xor_si256(u, flip);
                let aq = _mm256_sign_epi8(q, q);
                for (r, v) in v.iter_mut().enumerate() {
                    let xq = _mm256_loadu_si256(
                        a.q.as_ptr().add((r0 + r) * a.k + b * BLOCK) as *const __m256i
                    );
                    // |q| times x carrying q's sign: |pair| <= 2·128·127.
                    let p = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(xq, q));
                    let lane = _mm256_madd_epi16(p, ones);
                    let s = _mm256_broadcast_ss(sc.get_unchecked(j * R + r).get_unchecked(c));
                    *v = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(lane), *v);
                }
            }
        }
        for (r, v) in v.iter().enumerate() {
            acc[r][c] = *v;
        }
    }
}

/// Q4_0 / Q4_1: one column pair at a time (one 32-byte load holds both),
/// each activation block loaded once for the pair.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_chunk<const T: u8, const R: usize>(
    wg: *const u8,
    a: &QActs,
    r0: usize,
    blocks: std::ops::Range<usize>,
    sc: &[[f32; GROUP]],
    acc: &mut [[__m256; GROUP]; R],
) {
    let nb = a.k / BLOCK;
    let gb = group_block_bytes(qtype(T));
    let off = payload_offset(qtype(T));
    let (mask, ones) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi16(1));
    for p in 0..GROUP / 2 {
        let (c0, c1) = (2 * p, 2 * p + 1);
        let mut lo: [__m256; R] = std::array::from_fn(|r| acc[r][c0]);
        let mut hi: [__m256; R] = std::array::from_fn(|r| acc[r][c1]);
        for (j, b) in blocks.clone().enumerate() {
            // SAFETY: block b and rows r0 + r are in bounds (caller).
            unsafe {
                let raw = _mm256_loadu_si256(wg.add(b * gb + off + 32 * p) as *const __m256i);
                let n0 = _mm256_and_si256(raw, mask);
                let n1 = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), mask);
                for r in 0..R {
                    let at = (r0 + r) * nb + b;
                    let xq = _mm256_loadu_si256(
                        a.q.as_ptr().add((r0 + r) * a.k + b * BLOCK) as *const __m256i
                    );
                    // Unsigned nibbles times signed bytes: |pair| <= 2·15·127.
                    let mut l0 = _mm256_madd_epi16(_mm256_maddubs_epi16(n0, xq), ones);
                    let mut l1 = _mm256_madd_epi16(_mm256_maddubs_epi16(n1, xq), ones);
                    if T == 0 {
                        let ls = _mm256_loadu_si256(a.ls.as_ptr().add(at * 8) as *const __m256i);
                        let ls8 = _mm256_slli_epi32::<3>(ls);
                        l0 = _mm256_sub_epi32(l0, ls8);
                        l1 = _mm256_sub_epi32(l1, ls8);
                    }
                    let row = sc.get_unchecked(j * R + r);
                    let s0 = _mm256_broadcast_ss(row.get_unchecked(c0));
                    let s1 = _mm256_broadcast_ss(row.get_unchecked(c1));
                    lo[r] = _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(l0), lo[r]);
                    hi[r] = _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(l1), hi[r]);
                }
            }
        }
        for r in 0..R {
            acc[r][c0] = lo[r];
            acc[r][c1] = hi[r];
        }
    }
}
