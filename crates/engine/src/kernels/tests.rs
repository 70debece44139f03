//! Tests of the quantized kernels against scalar references: format decoding
//! against candle's dequantizer, the scalar dot against an f64 dot of the
//! dequantized values, the SIMD kernels against the scalar kernel bit for
//! bit, and batched tiles against single rows bit for bit, on the packed
//! 16-column layout including the GGML-layout tail columns.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::*;

const TYPES: [(QType, GgmlDType); 3] = [
    (QType::Q4_0, GgmlDType::Q4_0),
    (QType::Q4_1, GgmlDType::Q4_1),
    (QType::Q8_0, GgmlDType::Q8_0),
];

fn values(n: usize, salt: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((((i + salt) * 2654435761) % 2001) as f32 / 1000.0 - 1.0) * scale)
        .collect()
}

/// Raw GGML bytes of `n` rows of `k` values quantized by candle.
fn quantized(t: GgmlDType, n: usize, k: usize, salt: usize) -> (Vec<u8>, Vec<f32>) {
    let x = values(n * k, salt, 0.7);
    let tensor = Tensor::from_vec(x, (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&tensor, t).unwrap();
    let deq = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (q.data().unwrap().into_owned(), deq)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn f16_conversion_is_exact_for_every_half() {
    for h in 0..=u16::MAX {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let (e, m) = (((h >> 10) & 0x1F) as i32, (h & 0x3FF) as f64);
        let want = match e {
            0 => sign * m * 2f64.powi(-24),
            0x1F if m == 0.0 => sign * f64::INFINITY,
            0x1F => f64::NAN,
            _ => sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
        };
        let got = f16_to_f32(h);
        if want.is_nan() {
            assert!(got.is_nan(), "{h:#x}");
        } else {
            assert_eq!(got.to_bits(), (want as f32).to_bits(), "{h:#x}");
        }
    }
}

#[test]
fn block_dequantization_matches_candle() {
    for (qt, gt) in TYPES {
        let (raw, deq) = quantized(gt, 3, 64, 1);
        let mut out = vec![0f32; 32];
        for (b, blk) in raw.chunks_exact(qt.block_bytes()).enumerate() {
            qt.dequantize_block(blk, &mut out);
            assert_eq!(
                bits(&out),
                bits(&deq[b * 32..(b + 1) * 32]),
                "{qt:?} block {b}"
            );
        }
    }
}

#[test]
fn fast_rounding_equals_round_ties_even() {
    for i in -1_280_000..=1_280_000 {
        let v = i as f32 / 10_000.0;
        // Compare as integers: -0.0 and 0.0 both become 0.
        assert_eq!(round_small(v) as i8, v.round_ties_even() as i8, "{v}");
    }
    for v in [
        0.5f32,
        1.5,
        2.5,
        -0.5,
        -1.5,
        126.5,
        127.49,
        -127.5,
        f32::NAN,
    ] {
        assert_eq!(round_small(v) as i8, v.round_ties_even() as i8, "{v}");
    }
}

#[test]
fn activation_quantization_round_trips_within_half_a_step() {
    let x = values(4 * 64, 7, 3.0);
    let a = QActs::quantize(&x, 4, 64);
    for (b, xb) in x.chunks_exact(32).enumerate() {
        let d = a.d[b];
        let sum: i32 = a.q[b * 32..(b + 1) * 32].iter().map(|&q| q as i32).sum();
        assert_eq!(a.s[b].to_bits(), (d * sum as f32).to_bits());
        for (i, &v) in xb.iter().enumerate() {
            let q = a.q[b * 32 + i];
            assert!(q > -128);
            assert!(
                (q as f32 * d - v).abs() <= d * 0.5 + 1e-6,
                "block {b} elem {i}"
            );
        }
    }
    let zero = QActs::quantize(&[0.0; 32], 1, 32);
    assert_eq!((zero.d[0], zero.s[0]), (0.0, 0.0));
    assert!(zero.q.iter().all(|&q| q == 0));
}

#[test]
fn scalar_dot_matches_f64_dot_of_dequantized_values() {
    let k = 256;
    for (qt, gt) in TYPES {
        let (raw, deq) = quantized(gt, 5, k, 3);
        let x = values(2 * k, 11, 2.0);
        let a = QActs::quantize(&x, 2, k);
        let row_bytes = k / 32 * qt.block_bytes();
        for j in 0..5 {
            for r in 0..2 {
                let got = dot_scalar(qt, &raw[j * row_bytes..(j + 1) * row_bytes], &a, r);
                let xr: Vec<f64> = (0..k)
                    .map(|i| a.q[r * k + i] as f64 * a.d[r * 8 + i / 32] as f64)
                    .collect();
                let want: f64 = (0..k).map(|i| deq[j * k + i] as f64 * xr[i]).sum();
                assert!(
                    (got as f64 - want).abs() < 1e-3,
                    "{qt:?} {j} {r}: {got} vs {want}"
                );
            }
        }
    }
}

/// Weights with hostile bytes too: Q8_0 −128, extreme scales.
fn random_weights(qt: QType, n: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let blocks = n * k / 32;
    let mut w = Vec::with_capacity(blocks * qt.block_bytes());
    for _ in 0..blocks {
        // Scales in a sane range (exponent 5..20 → 2^-10 .. 2^5), random sign.
        let half = |r: u32| ((r & 0x8000) | ((5 + r % 16) << 10) | (r >> 16 & 0x3FF)) as u16;
        w.extend_from_slice(&half(next()).to_le_bytes());
        if qt == QType::Q4_1 {
            w.extend_from_slice(&half(next()).to_le_bytes());
        }
        let payload = qt.block_bytes() - if qt == QType::Q4_1 { 4 } else { 2 };
        for i in 0..payload {
            w.push(if i == 3 { 0x80 } else { next() as u8 });
        }
    }
    w
}

/// GGML rows packed in place (the layout every kernel reads).
fn packed(qt: QType, raw: &[u8], n: usize, k: usize) -> Vec<u8> {
    let mut w = raw.to_vec();
    packed::pack_in_place(qt, &mut w, n, k);
    w
}

fn run(kernel: Kernel, qt: QType, w: &[u8], cols: usize, a: &QActs) -> Vec<f32> {
    let mut out = vec![0f32; a.m * cols];
    matmul_cols(kernel, qt, w, cols, a, 0..cols, &mut out, cols);
    out
}

/// The GGML-layout scalar reference, row by row.
fn reference(qt: QType, raw: &[u8], cols: usize, a: &QActs) -> Vec<f32> {
    let row_bytes = a.k / BLOCK * qt.block_bytes();
    let mut out = vec![0f32; a.m * cols];
    for j in 0..cols {
        for r in 0..a.m {
            out[r * cols + j] = dot_scalar(qt, &raw[j * row_bytes..][..row_bytes], a, r);
        }
    }
    out
}

#[test]
fn every_kernel_on_packed_weights_matches_the_ggml_reference_bit_for_bit() {
    let kernels = Kernel::available();
    assert!(kernels.len() >= 2 || !cfg!(target_arch = "x86_64"));
    for (qt, _) in TYPES {
        for (k, m, cols) in [
            (32, 1, 3),
            (64, 5, 8),
            (576, 9, 16),
            (1536, 4, 21),
            (96, 6, 70),
        ] {
            let raw = random_weights(qt, cols, k, k as u64 + m as u64);
            let w = packed(qt, &raw, cols, k);
            let x = values(m * k, k, 4.0);
            let a = QActs::quantize(&x, m, k);
            let want = reference(qt, &raw, cols, &a);
            for &kernel in &kernels {
                let got = run(kernel, qt, &w, cols, &a);
                assert_eq!(bits(&got), bits(&want), "{qt:?} k={k} m={m} {kernel:?}");
            }
        }
    }
}

#[test]
fn column_ranges_give_the_same_bits_as_the_whole() {
    let (k, m, n) = (128, 3, 45);
    for (qt, _) in TYPES {
        let raw = random_weights(qt, n, k, 5);
        let w = packed(qt, &raw, n, k);
        let a = QActs::quantize(&values(m * k, 3, 2.0), m, k);
        for &kernel in &Kernel::available() {
            let all = run(kernel, qt, &w, n, &a);
            for cols in [0..16, 16..32, 16..45, 32..45, 0..45] {
                let mut out = vec![0f32; m * cols.len()];
                matmul_cols(kernel, qt, &w, n, &a, cols.clone(), &mut out, cols.len());
                for r in 0..m {
                    assert_eq!(
                        bits(&out[r * cols.len()..][..cols.len()]),
                        bits(&all[r * n + cols.start..r * n + cols.end]),
                        "{qt:?} {kernel:?} {cols:?} row {r}"
                    );
                }
            }
        }
    }
}

#[test]
fn packed_rows_dequantize_like_ggml_rows() {
    let (n, k) = (21, 64);
    for (qt, _) in TYPES {
        let raw = random_weights(qt, n, k, 17);
        let w = packed(qt, &raw, n, k);
        let row_bytes = k / BLOCK * qt.block_bytes();
        for i in 0..n {
            let mut got = vec![0f32; k];
            packed::dequantize_row(qt, &w, n, k, i, &mut got);
            let mut want = vec![0f32; k];
            for (blk, o) in raw[i * row_bytes..][..row_bytes]
                .chunks_exact(qt.block_bytes())
                .zip(want.chunks_exact_mut(BLOCK))
            {
                qt.dequantize_block(blk, o);
            }
            assert_eq!(bits(&got), bits(&want), "{qt:?} row {i}");
        }
    }
}

#[test]
fn every_kernel_quantizes_activations_to_the_same_bytes() {
    let (m, k) = (5, 128);
    let mut x = values(m * k, 21, 6.0);
    // NaN, infinities, signed zeros, an all-zero block, huge and tiny values.
    x[3] = f32::NAN;
    x[40] = f32::INFINITY;
    x[41] = -3.0;
    x[70] = -0.0;
    x[128..160].iter_mut().for_each(|v| *v = 0.0);
    x[200] = 3.0e38;
    x[300] = 1.0e-39;
    let want = QActs::quantize_with(Kernel::Scalar, &x, m, k);
    for kernel in Kernel::available() {
        let got = QActs::quantize_with(kernel, &x, m, k);
        assert_eq!(got.q, want.q, "{kernel:?}");
        assert_eq!(bits(&got.d), bits(&want.d), "{kernel:?}");
        assert_eq!(bits(&got.s), bits(&want.s), "{kernel:?}");
        assert_eq!(got.xs, want.xs, "{kernel:?}");
    }
}

#[test]
fn activation_block_sums_are_exact() {
    let (m, k) = (3, 96);
    let a = QActs::quantize(&values(m * k, 9, 5.0), m, k);
    for (b, &s) in a.xs.iter().enumerate() {
        let want: i32 = a.q[32 * b..32 * b + 32].iter().map(|&q| q as i32).sum();
        assert_eq!(s, want, "block {b}");
    }
}

#[test]
fn batched_rows_equal_single_rows_bit_for_bit() {
    let (k, cols) = (576, 43);
    for &kernel in &Kernel::available() {
        for (qt, _) in TYPES {
            let w = packed(qt, &random_weights(qt, cols, k, 99), cols, k);
            for m in [2usize, 4, 6, 7, 13] {
                let x = values(m * k, m, 2.5);
                let all = run(kernel, qt, &w, cols, &QActs::quantize(&x, m, k));
                for r in 0..m {
                    let one = run(
                        kernel,
                        qt,
                        &w,
                        cols,
                        &QActs::quantize(&x[r * k..][..k], 1, k),
                    );
                    assert_eq!(
                        bits(&one),
                        bits(&all[r * cols..][..cols]),
                        "{qt:?} {kernel:?} m={m} row {r}"
                    );
                }
            }
        }
    }
}

#[test]
fn dot4_f16_equals_four_scalar_dots() {
    for n in [8, 64, 96, 100] {
        let a = values(n, 1, 3.0);
        let b: Vec<Vec<half::f16>> = (0..4)
            .map(|i| {
                values(n, 7 + i, 2.0)
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect()
            })
            .collect();
        let got = dot4_f16(&a, [&b[0], &b[1], &b[2], &b[3]]);
        for i in 0..4 {
            let wide: Vec<f32> = b[i].iter().map(|h| h.to_f32()).collect();
            let want = crate::ops::dot(&a, &wide);
            assert_eq!(got[i].to_bits(), want.to_bits(), "n={n} {i}");
            assert_eq!(crate::ops::dot_f16(&a, &b[i]).to_bits(), want.to_bits());
        }
    }
}

#[test]
fn axpy_f16_equals_the_scalar_loop() {
    for n in [8, 64, 70] {
        let v: Vec<half::f16> = values(n, 3, 4.0)
            .into_iter()
            .map(half::f16::from_f32)
            .collect();
        for w in [0.0, 0.37, -1.5e-3] {
            let (mut got, mut want) = (values(n, 5, 2.0), values(n, 5, 2.0));
            axpy_f16(&mut got, w, &v);
            axpy_f16_scalar(&mut want, w, &v);
            assert_eq!(bits(&got), bits(&want), "n={n} w={w}");
        }
    }
}

#[test]
fn every_tile_height_and_block_chunking_matches_the_reference() {
    // Heights 1..=11 cover full AVX-512 tiles (6 rows), the 2-row and 1-row
    // remainders and their mixes; k = 32 is a single block.
    for (qt, _) in TYPES {
        for k in [32, 544, 1536] {
            let cols = 24;
            let raw = random_weights(qt, cols, k, 7 + k as u64);
            let w = packed(qt, &raw, cols, k);
            for m in 1..=11 {
                let a = QActs::quantize(&values(m * k, m + k, 3.0), m, k);
                let want = reference(qt, &raw, cols, &a);
                for &kernel in &Kernel::available() {
                    let got = run(kernel, qt, &w, cols, &a);
                    assert_eq!(bits(&got), bits(&want), "{qt:?} k={k} m={m} {kernel:?}");
                }
            }
        }
    }
}
