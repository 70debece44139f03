//! Property tests: the plain evaluator and the circuit agree on random small
//! models and inputs, and the circuit rejects any other claimed output.

use proofmesh_zkml::circuit::{check, public_inputs, InferenceCircuit};
use proofmesh_zkml::fixed::Requant;
use proofmesh_zkml::model::{Dense, Output, QuantModel};
use proptest::prelude::*;

fn layer(in_dim: usize, out_dim: usize, relu: bool) -> impl Strategy<Value = Dense> {
    (
        prop::collection::vec(any::<i8>(), in_dim * out_dim),
        prop::collection::vec(-5000i32..5000, out_dim),
        1u32..2000,
        0u32..16,
    )
        .prop_map(move |(weights, bias, multiplier, shift)| Dense {
            in_dim,
            out_dim,
            weights,
            bias,
            requant: Requant {
                multiplier,
                shift,
                relu,
            },
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
}
