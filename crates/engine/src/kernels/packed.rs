//! The packed weight layout the SIMD kernels read, its in-place conversion
//! from GGML rows, row lookup (the embedding) and the scalar kernel over it.
//!
//! Rows are packed in groups of [`GROUP`] (16) output columns; group `g`
//! takes exactly the bytes its sixteen GGML rows took, so packing is done in
//! place, one group at a time, with no second copy of the weights. Inside a
//! group, block `b` of all sixteen columns is contiguous (`16 · block_bytes`):
//!
//! ```text
//! Q4_1: d[16] f16 | m[16] f16 | 4 rows × 64 bytes | 320 = 16 · 20
//! Q4_0: d[16] f16 |             4 rows × 64 bytes | 288 = 16 · 18
//! Q8_0: d[16] f16 |             8 rows × 64 bytes | 544 = 16 · 34
//! ```
//!
//! The payload is organised by *quads*, elements `4q .. 4q+3` of a block:
//! byte `4c + i` of a 64-byte row belongs to column `c`, element `4q + i`,
//! so one row is sixteen columns' dwords, which is what `vpdpbusd` (and, by
//! halves, `vpmaddubsw`) multiplies against one broadcast activation dword.
//! Q8_0 row `q` is quad `q`, stored offset by 128 (`q ^ 0x80`) to be unsigned;
//! Q4 row `j` holds quad `j` in the low nibbles and quad `j + 4` in the high
//! ones (Q4_0 stored as `q + 8`). Kernels remove the offsets exactly with
//! [`QActs::xs`]. Rows past the last whole group stay in GGML layout. Only
//! the layout changes: every kernel computes the arithmetic defined in
//! `kernels/mod.rs`.

use super::{dot_with, f16_to_f32, QActs, QType, BLOCK};

/// Output columns per packed group.
pub(crate) const GROUP: usize = 16;

/// Bytes of one payload row (sixteen columns × four elements).
pub(crate) const ROW: usize = 4 * GROUP;

/// Offset of the quantized payload inside a packed group block.
pub(crate) const fn payload_offset(t: QType) -> usize {
    match t {
        QType::Q4_1 => 4 * GROUP,
        _ => 2 * GROUP,
    }
}

/// Bytes of one block of all [`GROUP`] columns.
pub(crate) const fn group_block_bytes(t: QType) -> usize {
    GROUP * t.block_bytes()
}

/// Pack the `n` GGML rows (`k` values each) in `data` in place.
pub(crate) fn pack_in_place(t: QType, data: &mut [u8], n: usize, k: usize) {
    let nb = k / BLOCK;
    let row_bytes = nb * t.block_bytes();
    let gb = group_block_bytes(t);
    let mut rows = vec![0u8; GROUP * row_bytes];
    for group in data[..n / GROUP * GROUP * row_bytes].chunks_exact_mut(GROUP * row_bytes) {
        rows.copy_from_slice(group);
        for (b, out) in group.chunks_exact_mut(gb).enumerate() {
            let blk = |c: usize| &rows[c * row_bytes + b * t.block_bytes()..][..t.block_bytes()];
            pack_block(t, blk, out);
        }
    }
}

fn pack_block<'a>(t: QType, blk: impl Fn(usize) -> &'a [u8], out: &mut [u8]) {
    let off = payload_offset(t);
    for c in 0..GROUP {
        out[2 * c..2 * c + 2].copy_from_slice(&blk(c)[..2]);
        if t == QType::Q4_1 {
            out[2 * (GROUP + c)..2 * (GROUP + c) + 2].copy_from_slice(&blk(c)[2..4]);
        }
    }
    let mut q = [[0i8; BLOCK]; GROUP];
    for (c, q) in q.iter_mut().enumerate() {
        t.block_ints(blk(c), q);
    }
    let payload = &mut out[off..];
    for (c, q) in q.iter().enumerate() {
        for (e, &v) in q.iter().enumerate() {
            let (quad, i) = (e / 4, e % 4);
            match t {
                QType::Q8_0 => payload[quad * ROW + 4 * c + i] = v as u8 ^ 0x80,
                QType::Q4_0 | QType::Q4_1 => {
                    let nib = (v + if t == QType::Q4_0 { 8 } else { 0 }) as u8;
                    let at = (quad % 4) * ROW + 4 * c + i;
                    if quad < 4 {
                        payload[at] = (payload[at] & 0xF0) | nib;
                    } else {
                        payload[at] = (payload[at] & 0x0F) | nib << 4;
                    }
                }
            }
        }
    }
}

/// Column `c` (0..GROUP) of one packed group block: its integer weights
/// (Q4_0 centred) and its scale and min.
pub(crate) fn column_ints(t: QType, gblk: &[u8], c: usize, q: &mut [i8; BLOCK]) -> (f32, f32) {
    let half = |i: usize| f16_to_f32(u16::from_le_bytes([gblk[2 * i], gblk[2 * i + 1]]));
    let payload = &gblk[payload_offset(t)..];
    for (e, o) in q.iter_mut().enumerate() {
        let (quad, i) = (e / 4, e % 4);
        *o = match t {
            QType::Q8_0 => (payload[quad * ROW + 4 * c + i] ^ 0x80) as i8,
            QType::Q4_0 | QType::Q4_1 => {
                let b = payload[(quad % 4) * ROW + 4 * c + i];
                let nib = if quad < 4 { b & 0x0F } else { b >> 4 } as i8;
                nib - if t == QType::Q4_0 { 8 } else { 0 }
            }
        };
    }
    let m = if t == QType::Q4_1 {
        half(GROUP + c)
    } else {
        0.0
    };
    (half(c), m)
}

/// Dequantize row `i` of a packed `[n][k]` weight into `out` (`k` floats).
pub(crate) fn dequantize_row(t: QType, w: &[u8], n: usize, k: usize, i: usize, out: &mut [f32]) {
    let row_bytes = k / BLOCK * t.block_bytes();
    if i >= n / GROUP * GROUP {
        let row = &w[i * row_bytes..(i + 1) * row_bytes];
        for (blk, o) in row
            .chunks_exact(t.block_bytes())
            .zip(out.chunks_exact_mut(BLOCK))
        {
            t.dequantize_block(blk, o);
        }
        return;
    }
    let gb = group_block_bytes(t);
    let group = &w[i / GROUP * GROUP * row_bytes..][..GROUP * row_bytes];
    let mut q = [0i8; BLOCK];
    for (gblk, o) in group.chunks_exact(gb).zip(out.chunks_exact_mut(BLOCK)) {
        let (d, m) = column_ints(t, gblk, i % GROUP, &mut q);
        for (o, &v) in o.iter_mut().zip(&q) {
            // Same expressions as `QType::dequantize_block`.
            *o = match t {
                QType::Q4_1 => d * v as f32 + m,
                _ => d * v as f32,
            };
        }
    }
}

/// Scalar kernel over `groups` packed groups: the reference the SIMD
/// kernels are tested against on this layout.
pub(crate) fn matmul_groups(
    t: QType,
    w: &[u8],
    groups: usize,
    a: &QActs,
    out: &mut [f32],
    ldo: usize,
) {
    let gb = group_block_bytes(t);
    let nb = a.blocks_per_row();
    for g in 0..groups {
        let group = &w[g * nb * gb..(g + 1) * nb * gb];
        for c in 0..GROUP {
            for r in 0..a.m {
                out[r * ldo + g * GROUP + c] = dot_with(t, a, r, |b, q| {
                    column_ints(t, &group[b * gb..(b + 1) * gb], c, q)
                });
            }
        }
    }
}
