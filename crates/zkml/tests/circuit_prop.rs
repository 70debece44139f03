//! Property tests: the plain evaluator and the circuit agree on random small
//! models (MLPs, and CNNs of conv2d → avgpool2d → dense) and inputs, and the
//! circuit rejects any other claimed output.

use proofmesh_zkml::circuit::{check, public_inputs, InferenceCircuit};
use proofmesh_zkml::fixed::Requant;
use proofmesh_zkml::layer::{Conv2d, Op, Pool2d};
use proofmesh_zkml::model::{Layer, Output, QuantModel};
use proptest::prelude::*;

fn layer(in_dim: usize, out_dim: usize, relu: bool) -> impl Strategy<Value = Layer> {
    (
        prop::collection::vec(any::<i8>(), in_dim * out_dim),
        prop::collection::vec(-5000i32..5000, out_dim),
        1u32..2000,
        0u32..16,
    )
        .prop_map(move |(weights, bias, multiplier, shift)| {
            Layer::dense(
                in_dim,
                out_dim,
                weights,
                bias,
                Requant {
                    multiplier,
                    shift,
                    relu,
                },
            )
        })
}

fn model_and_input() -> impl Strategy<Value = (QuantModel, Vec<i8>)> {
    (1usize..6, 1usize..5, 1usize..5, any::<bool>())
        .prop_flat_map(|(i, h, o, last_relu)| {
            (
                layer(i, h, true),
                layer(h, o, last_relu),
                prop::collection::vec(any::<i8>(), i),
            )
        })
        .prop_map(|(a, b, x)| (QuantModel { layers: vec![a, b] }, x))
}

fn requant(relu: bool) -> impl Strategy<Value = Requant> {
    (1u32..2000, 0u32..16).prop_map(move |(multiplier, shift)| Requant {
        multiplier,
        shift,
        relu,
    })
}

/// A random geometry: conv (1-2 input channels, 3-5 sides, kernel 1-3,
/// stride 1-2, padding below the kernel), a pool that fits, a dense head.
fn cnn_ops() -> impl Strategy<Value = (Conv2d, Pool2d, usize)> {
    (
        1usize..3,
        3usize..6,
        3usize..6,
        1usize..3,
        1usize..4,
        1usize..3,
    )
        .prop_flat_map(|(in_c, in_h, in_w, out_c, kernel, stride)| {
            (0..kernel, 1usize..3, 1usize..4).prop_map(move |(padding, pk, classes)| {
                let conv = Conv2d {
                    in_c,
                    in_h,
                    in_w,
                    out_c,
                    kernel,
                    stride: stride.min(kernel),
                    padding,
                };
                let (h, w) = conv.out_hw();
                let pk = pk.min(h).min(w);
                let pool = Pool2d {
                    channels: out_c,
                    in_h: h,
                    in_w: w,
                    kernel: pk,
                    stride: pk,
                };
                (conv, pool, classes)
            })
        })
}

fn cnn_and_input() -> impl Strategy<Value = (QuantModel, Vec<i8>)> {
    (cnn_ops(), any::<bool>()).prop_flat_map(|((conv, pool, classes), last_relu)| {
        let (c, p) = (Op::Conv2d(conv), Op::AvgPool2d(pool));
        let head = Op::Dense {
            in_dim: p.out_len(),
            out_dim: classes,
        };
        let params = |op: Op| {
            (
                prop::collection::vec(any::<i8>(), op.weight_len()),
                prop::collection::vec(-5000i32..5000, op.bias_len()),
            )
        };
        (
            params(c),
            requant(true),
            requant(true),
            params(head),
            requant(last_relu),
            prop::collection::vec(any::<i8>(), c.in_len()),
        )
            .prop_map(move |((cw, cb), cr, pr, (hw, hb), hr, x)| {
                let layers = vec![
                    Layer {
                        op: c,
                        weights: cw,
                        bias: cb,
                        requant: cr,
                    },
                    Layer {
                        op: p,
                        weights: vec![],
                        bias: vec![],
                        requant: pr,
                    },
                    Layer {
                        op: head,
                        weights: hw,
                        bias: hb,
                        requant: hr,
                    },
                ];
                (QuantModel { layers }, x)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn circuit_agrees_with_evaluator((model, input) in model_and_input(), nonce in any::<[u8; 32]>()) {
        model.validate().unwrap();
        let out = model.evaluate(&input).unwrap();
        let c = InferenceCircuit { model: &model, input: input.clone(), claimed: out.clone(), nonce };
        let (ok, publics, _) = check(c).unwrap();
        prop_assert!(ok);
        prop_assert_eq!(publics, public_inputs(&input, &out, &nonce));
    }

    #[test]
    fn circuit_rejects_other_outputs((model, input) in model_and_input(), j in 0usize..8, delta in 1i16..255, class in 0u32..6) {
        let out = model.evaluate(&input).unwrap();
        let mut logits = out.logits.clone();
        let j = j % logits.len();
        logits[j] = (i16::from(logits[j]) + delta).rem_euclid(256).wrapping_sub(128) as i8;
        if logits[j] != out.logits[j] {
            let c = InferenceCircuit { model: &model, input: input.clone(), claimed: Output { logits, class: out.class }, nonce: [1; 32] };
            prop_assert!(!check(c).unwrap().0);
        }
        if class != out.class {
            let c = InferenceCircuit { model: &model, input, claimed: Output { logits: out.logits, class }, nonce: [1; 32] };
            prop_assert!(!check(c).unwrap().0);
        }
    }

    #[test]
    fn cnn_circuit_agrees_with_evaluator((model, input) in cnn_and_input(), nonce in any::<[u8; 32]>(), j in 0usize..4, delta in 1i16..255) {
        model.validate().unwrap();
        let out = model.evaluate(&input).unwrap();
        let c = InferenceCircuit { model: &model, input: input.clone(), claimed: out.clone(), nonce };
        let (ok, publics, _) = check(c).unwrap();
        prop_assert!(ok);
        prop_assert_eq!(publics, public_inputs(&input, &out, &nonce));
        let mut logits = out.logits.clone();
        let j = j % logits.len();
        logits[j] = (i16::from(logits[j]) + delta).rem_euclid(256).wrapping_sub(128) as i8;
        // (x + delta) mod 256 - 128 maps x to itself for one delta.
        if logits[j] != out.logits[j] {
            let c = InferenceCircuit { model: &model, input, claimed: Output { logits, class: out.class }, nonce };
            prop_assert!(!check(c).unwrap().0);
        }
    }
}
