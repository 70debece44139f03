//! The committed model file, its digest, the safetensors round trips and
//! the quantization step.

use proofmesh_zkml::digits::INPUT_SCALE;
use proofmesh_zkml::quantize::{multiplier_shift, quantize, FloatLayer, FloatModel};
use proofmesh_zkml::{digits_model, QuantModel};

/// Digest of `models/digits-mlp.safetensors` (changes only on retraining).
const DIGITS_DIGEST: &str = "eee99aeeaa06b3f46d044210c31d6605c0be244749da5f25273b6be4896b2b54";

#[test]
fn committed_model_loads_with_pinned_digest() {
    let m = digits_model().unwrap();
    assert_eq!(m.digest_hex(), DIGITS_DIGEST);
    assert_eq!((m.input_len(), m.output_len(), m.layers.len()), (64, 10, 2));
    let bytes = m.to_safetensors().unwrap();
    assert_eq!(QuantModel::from_safetensors(&bytes).unwrap(), m);
    assert_eq!(
        m.evaluate(&proofmesh_zkml::bench::SAMPLE_ZERO)
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
    m.layers[1].in_dim = 31;
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
            FloatLayer {
                in_dim: 2,
                out_dim: 3,
                weight: vec![0.5, -0.25, 1.0, 0.75, -0.5, 0.1],
                bias: vec![0.1, 0.0, -0.2],
                relu: true,
            },
            FloatLayer {
                in_dim: 3,
                out_dim: 2,
                weight: vec![1.0, -1.0, 0.5, -0.3, 0.8, 0.2],
                bias: vec![0.0, 0.05],
                relu: false,
            },
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
    let st = safetensors_of(&fm);
    assert_eq!(FloatModel::from_safetensors(&st).unwrap(), fm);
}

fn safetensors_of(fm: &FloatModel) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(Vec<u8>, Vec<u8>)> = fm
        .layers
        .iter()
        .map(|l| {
            (
                l.weight.iter().flat_map(|v| v.to_le_bytes()).collect(),
                l.bias.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let mut views = Vec::new();
    for (i, (l, (w, b))) in fm.layers.iter().zip(&bytes).enumerate() {
        views.push((
            format!("layers.{i}.weight"),
            TensorView::new(Dtype::F32, vec![l.out_dim, l.in_dim], w).unwrap(),
        ));
        views.push((
            format!("layers.{i}.bias"),
            TensorView::new(Dtype::F32, vec![l.out_dim], b).unwrap(),
        ));
    }
    safetensors::serialize(views, None).unwrap()
}
