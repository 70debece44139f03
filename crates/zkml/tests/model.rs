//! The committed model file, its digest, the safetensors round trips and
//! the quantization step.

use proofmesh_zkml::digits::INPUT_SCALE;
use proofmesh_zkml::layer::{Conv2d, Op, Pool2d};
use proofmesh_zkml::quantize::{multiplier_shift, quantize, FloatLayer, FloatModel};
use proofmesh_zkml::{builtin_model, digits_cnn, digits_model, QuantModel};

/// Digest of `models/digits-mlp.safetensors` (changes only on retraining).
const DIGITS_DIGEST: &str = "eee99aeeaa06b3f46d044210c31d6605c0be244749da5f25273b6be4896b2b54";
/// Digest of `models/digits-cnn.safetensors`.
const CNN_DIGEST: &str = "eea95a4f2444bfb8a751a61d4b7a4b3e7d0d23919520ac481a104f8eccf50b2b";

#[test]
fn committed_model_loads_with_pinned_digest() {
    let m = digits_model().unwrap();
    assert_eq!(m.digest_hex(), DIGITS_DIGEST);
    assert_eq!((m.input_len(), m.output_len(), m.layers.len()), (64, 10, 2));
    let bytes = m.to_safetensors().unwrap();
    assert_eq!(QuantModel::from_safetensors(&bytes).unwrap(), m);
    assert_eq!(
        m.evaluate(&proofmesh_zkml::digits::SAMPLE_ZERO)
            .unwrap()
            .class,
        0
    );
}

#[test]
fn model_file_rejects_bad_parameters() {
    let mut m = digits_model().unwrap();
    m.layers[1].requant.multiplier = 0;
    assert!(m.validate().is_err());
    let mut m = digits_model().unwrap();
    m.layers[1].op = proofmesh_zkml::layer::Op::Dense {
        in_dim: 31,
        out_dim: 10,
    };
    assert!(m.validate().is_err());
    assert!(
        m.to_safetensors().is_err()
            || QuantModel::from_safetensors(&m.to_safetensors().unwrap()).is_err()
    );
    assert!(QuantModel::from_safetensors(b"not a model").is_err());
    assert!(digits_model().unwrap().evaluate(&[0; 63]).is_err());
}

#[test]
fn multiplier_has_eight_significant_bits() {
    for m in [0.0001, 0.013, 0.5, 1.0, 3.7] {
        let (q, s) = multiplier_shift(m);
        assert!((128..=256).contains(&q), "{m}: {q}");
        let approx = f64::from(q) / 2f64.powi(s as i32);
        assert!((approx / m - 1.0).abs() < 0.005, "{m} ~ {approx}");
    }
}

#[test]
fn quantized_model_tracks_float_model() {
    // A 2-3-2 float net quantizes to an int8 net that agrees on argmax.
    let fm = FloatModel {
        layers: vec![
            FloatLayer::dense(
                2,
                3,
                vec![0.5, -0.25, 1.0, 0.75, -0.5, 0.1],
                vec![0.1, 0.0, -0.2],
                true,
            ),
            FloatLayer::dense(
                3,
                2,
                vec![1.0, -1.0, 0.5, -0.3, 0.8, 0.2],
                vec![0.0, 0.05],
                false,
            ),
        ],
    };
    let calib: Vec<Vec<f32>> = (0..=16)
        .flat_map(|a| (0..=16).map(move |b| vec![a as f32 / 16.0, b as f32 / 16.0]))
        .collect();
    let qm = quantize(&fm, INPUT_SCALE, &calib).unwrap();
    let mut agree = 0;
    for x in &calib {
        let f = fm.forward(x);
        let fc = u32::from(f[1] > f[0]);
        let xq: Vec<i8> = x.iter().map(|v| (v * 16.0) as i8).collect();
        agree += u32::from(qm.evaluate(&xq).unwrap().class == fc);
    }
    assert!(
        agree as usize * 100 >= calib.len() * 95,
        "agree {agree}/{}",
        calib.len()
    );
    // Float safetensors import round trip.
    let st = fm.to_safetensors().unwrap();
    assert_eq!(FloatModel::from_safetensors(&st).unwrap(), fm);
}

#[test]
fn committed_cnn_loads_with_pinned_digest_and_round_trips() {
    let m = digits_cnn().unwrap();
    assert_eq!(m.digest_hex(), CNN_DIGEST);
    assert!(!m.is_mlp());
    let kinds: Vec<&str> = m.layers.iter().map(|l| l.op.kind()).collect();
    assert_eq!(kinds, ["conv2d", "avgpool2d", "dense"]);
    assert_eq!((m.input_len(), m.output_len()), (64, 10));
    assert_eq!(m.layers[0].out_len(), 8 * 6 * 6);
    assert_eq!(m.layers[1].out_len(), 8 * 3 * 3);
    let bytes = m.to_safetensors().unwrap();
    assert_eq!(QuantModel::from_safetensors(&bytes).unwrap(), m);
    assert_eq!(builtin_model("digits-cnn").unwrap(), m);
    assert!(builtin_model("digits-rnn").is_err());
    assert_eq!(
        m.evaluate(&proofmesh_zkml::digits::SAMPLE_ZERO)
            .unwrap()
            .class,
        0
    );
    // The v2 encoding commits to the geometry: a different stride is a
    // different model even when every weight is the same.
    let mut other = m.clone();
    if let Op::AvgPool2d(p) = &mut other.layers[1].op {
        p.stride = 1;
    }
    other.layers[2].op = Op::Dense {
        in_dim: 8 * 5 * 5,
        out_dim: 10,
    };
    other.layers[2].weights = vec![1; 8 * 5 * 5 * 10];
    other.validate().unwrap();
    assert_ne!(other.digest(), m.digest());
}

#[test]
fn conv_and_pool_files_reject_bad_geometry() {
    let m = digits_cnn().unwrap();
    // Kernel larger than the (padded) input, and pool windows that don't fit.
    let mut bad = m.clone();
    bad.layers[0].op = Op::Conv2d(Conv2d {
        in_c: 1,
        in_h: 2,
        in_w: 32,
        out_c: 8,
        kernel: 3,
        stride: 1,
        padding: 0,
    });
    assert!(bad.validate().is_err());
    let mut bad = m.clone();
    bad.layers[1].op = Op::AvgPool2d(Pool2d {
        channels: 8,
        in_h: 6,
        in_w: 6,
        kernel: 7,
        stride: 1,
    });
    assert!(bad.validate().is_err());
    // A pooling layer given weights, or a wrong weight count.
    let mut bad = m.clone();
    bad.layers[1].weights = vec![1; 4];
    assert!(bad.validate().is_err());
    let mut bad = m.clone();
    bad.layers[0].weights.pop();
    assert!(bad.validate().is_err());
    // Unknown kinds and broken metadata in the file itself.
    let good = m.to_safetensors().unwrap();
    for (from, to, why) in [
        ("\"conv2d\"", "\"conv3d\"", "unknown kind"),
        (
            "\"layers.0.padding\":\"0\"",
            "\"layers.0.padding\":\"x\"",
            "not a u32",
        ),
        (
            "\"layers.1.kernel\":\"2\"",
            "\"layers.1.kernel\":\"9\"",
            "larger than its input",
        ),
    ] {
        let (from, to) = (from.as_bytes(), to.as_bytes());
        let at = good
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| panic!("{} not in header", String::from_utf8_lossy(from)));
        let mut edited = good.clone();
        edited[at..at + to.len()].copy_from_slice(to);
        let err = QuantModel::from_safetensors(&edited)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn float_cnn_round_trips_and_quantizes() {
    let fm = proofmesh_zkml::quantize::FloatModel {
        layers: vec![
            FloatLayer {
                op: Op::Conv2d(Conv2d {
                    in_c: 1,
                    in_h: 4,
                    in_w: 4,
                    out_c: 2,
                    kernel: 3,
                    stride: 1,
                    padding: 1,
                }),
                weight: (0..18).map(|i| (i as f32 - 9.0) / 10.0).collect(),
                bias: vec![0.1, -0.1],
                relu: true,
            },
            FloatLayer {
                op: Op::AvgPool2d(Pool2d {
                    channels: 2,
                    in_h: 4,
                    in_w: 4,
                    kernel: 2,
                    stride: 2,
                }),
                weight: vec![],
                bias: vec![],
                relu: true,
            },
            FloatLayer::dense(
                8,
                3,
                (0..24).map(|i| (i % 5) as f32 - 2.0).collect(),
                vec![0.0; 3],
                false,
            ),
        ],
    };
    let st = fm.to_safetensors().unwrap();
    assert_eq!(FloatModel::from_safetensors(&st).unwrap(), fm);
    let calib: Vec<Vec<f32>> = (0..64)
        .map(|k| {
            (0..16)
                .map(|i| ((i * 7 + k * 3) % 17) as f32 / 16.0)
                .collect()
        })
        .collect();
    let qm = quantize(&fm, INPUT_SCALE, &calib).unwrap();
    assert_eq!(qm.layers[1].weights.len(), 0);
    let agree = calib
        .iter()
        .filter(|x| {
            let f = fm.forward(x);
            let fc = (0..3).fold(0, |b, i| if f[i] > f[b] { i } else { b });
            let xq: Vec<i8> = x.iter().map(|v| (v * 16.0) as i8).collect();
            qm.evaluate(&xq).unwrap().class as usize == fc
        })
        .count();
    assert!(
        agree * 100 >= calib.len() * 85,
        "agree {agree}/{}",
        calib.len()
    );
}
