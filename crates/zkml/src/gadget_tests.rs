//! Gadget soundness tests: every non-linear gadget accepts its honest
//! witness and rejects a dishonest one built to pass every other check.

use ark_bn254::Fr;
use ark_ff::{One, Zero};
use ark_relations::gr1cs::{ConstraintSystem, ConstraintSystemRef, LinearCombination, Variable};

use super::*;
use crate::fixed::Requant;

fn cs() -> ConstraintSystemRef<Fr> {
    ConstraintSystem::<Fr>::new_ref()
}

/// Builds `t` as a witness variable and applies the requant gadget.
fn requant_cs(g: &RequantGadget, t: i128, w: &RequantWitness) -> bool {
    let cs = cs();
    let tv = cs.new_witness_variable(|| Ok(fe(t))).unwrap();
    match g.enforce(&cs, lc1(Fr::one(), tv), w) {
        Ok(_) => cs.is_satisfied().unwrap(),
        Err(_) => false,
    }
}

fn gadget(relu: bool) -> (Requant, RequantGadget) {
    let r = Requant {
        multiplier: 5,
        shift: 3,
        relu,
    };
    (r, RequantGadget::new(&r, 2000))
}

#[test]
fn range_check_accepts_in_range_and_rejects_non_boolean_bits() {
    let c = cs();
    let v = c.new_witness_variable(|| Ok(Fr::from(200u64))).unwrap();
    enforce_bits(&c, lc1(Fr::one(), v), &bits_of(200, 8)).unwrap();
    assert!(c.is_satisfied().unwrap());
    // 300 does not fit 8 bits: its low 8 bits do not sum back to it...
    let c = cs();
    let v = c.new_witness_variable(|| Ok(Fr::from(300u64))).unwrap();
    enforce_bits(&c, lc1(Fr::one(), v), &bits_of(300, 8)).unwrap();
    assert!(!c.is_satisfied().unwrap());
    // ...and a "bit" of value 2 that makes the sum right is not boolean.
    let c = cs();
    let v = c.new_witness_variable(|| Ok(Fr::from(300u64))).unwrap();
    let mut bits = bits_of(300 - 256, 8);
    bits[7] += Fr::from(2u64); // 2·128 = 256
    enforce_bits(&c, lc1(Fr::one(), v), &bits).unwrap();
    assert!(!c.is_satisfied().unwrap());
    // A negative value (p - 1) has no 8-bit decomposition either.
    let c = cs();
    let v = c.new_witness_variable(|| Ok(-Fr::one())).unwrap();
    enforce_bits(&c, lc1(Fr::one(), v), &bits_of(-1, 8)).unwrap();
    assert!(!c.is_satisfied().unwrap());
}

#[test]
fn requant_honest_witness_matches_evaluator_everywhere() {
    for relu in [false, true] {
        let (r, g) = gadget(relu);
        for acc in -2000i64..=2000 {
            let t = r.pre_shift(acc);
            let (w, y) = g.witness(t);
            assert_eq!(y, i64::from(r.apply(acc)), "acc {acc} relu {relu}");
            if acc % 37 == 0 || (-300..300).contains(&acc) && acc % 5 == 0 {
                assert!(requant_cs(&g, t, &w), "acc {acc} relu {relu}");
            }
        }
    }
}

#[test]
fn requant_rejects_wrong_output_value() {
    let (r, g) = gadget(false);
    let t = r.pre_shift(37); // 37·5/8 = 23.1 -> 23
    let (mut w, y) = g.witness(t);
    assert_eq!(y, 23);
    assert!(requant_cs(&g, t, &w));
    w.y = fe(24);
    assert!(!requant_cs(&g, t, &w));
}

#[test]
fn requant_rejects_wrong_rounding_remainder() {
    // Claim q + 1 by borrowing 2^s from the remainder: the sum still holds
    // but a remainder bit is no longer boolean.
    let (r, g) = gadget(false);
    let t = r.pre_shift(35); // 22.3 -> 22; v = 150 is even
    let (honest, y) = g.witness(t);
    let s = g.s as usize;
    let mut w = honest.clone();
    assert!(w.bits[s].is_zero(), "test needs bit s clear");
    w.bits[s] = Fr::one();
    w.bits[s - 1] -= Fr::from(2u64); // -2·2^(s-1) = -2^s
    w.y = fe(i128::from(y) + 1);
    assert!(!requant_cs(&g, t, &w));
    // The same lie with the remainder left alone breaks the sum instead.
    let mut w2 = honest;
    w2.bits[s] = Fr::one();
    w2.y = fe(i128::from(y) + 1);
    assert!(!requant_cs(&g, t, &w2));
}

#[test]
fn requant_rejects_unclamped_output_outside_int8() {
    let (r, g) = gadget(false);
    let t = r.pre_shift(1600); // 1000 before the clamp
    let (honest, y) = g.witness(t);
    assert_eq!(y, 127);
    assert!(requant_cs(&g, t, &honest));
    // Claim "no overflow" and y = 1000 - 896: the low bits of v + 128.
    for (z, inv, yv) in [
        (Fr::zero(), Fr::zero(), 1000),
        (Fr::zero(), Fr::zero(), 200),
        (Fr::one(), honest.inv, 128),
    ] {
        let w = RequantWitness {
            z,
            inv,
            y: fe(yv),
            ..honest.clone()
        };
        assert!(!requant_cs(&g, t, &w), "z {z} y {yv}");
    }
}

#[test]
fn relu_rejects_negative_output() {
    let (r, g) = gadget(true);
    let t = r.pre_shift(-40); // -25 before the ReLU
    let (honest, y) = g.witness(t);
    assert_eq!(y, 0);
    assert!(requant_cs(&g, t, &honest));
    for yv in [-25, -1, 1] {
        let w = RequantWitness {
            y: fe(yv),
            ..honest.clone()
        };
        assert!(!requant_cs(&g, t, &w), "y {yv}");
    }
    // Flipping the sign bit to pass a negative value as positive breaks the sum.
    let mut w = honest;
    let top = w.bits.len() - 1;
    w.bits[top] = Fr::one() - w.bits[top];
    assert!(!requant_cs(&g, t, &w));
}

#[test]
fn requant_rejects_lying_overflow_flag() {
    let (r, g) = gadget(true);
    let t = r.pre_shift(10);
    let (honest, _) = g.witness(t);
    let w = RequantWitness {
        z: Fr::one(),
        inv: Fr::one(),
        y: fe(127),
        ..honest
    };
    assert!(!requant_cs(&g, t, &w));
}

fn argmax_cs(y: &[i64], class: u32, w: &ArgmaxWitness) -> bool {
    let cs = cs();
    let vals: Vec<Fr> = y.iter().map(|&v| fe(i128::from(v))).collect();
    let vars: Vec<Variable> = vals
        .iter()
        .map(|&v| cs.new_witness_variable(|| Ok(v)).unwrap())
        .collect();
    let c = cs
        .new_input_variable(|| Ok(Fr::from(u64::from(class))))
        .unwrap();
    match enforce_argmax(&cs, &vars, &vals, LinearCombination::from(c), w) {
        Ok(()) => cs.is_satisfied().unwrap(),
        Err(_) => false,
    }
}

#[test]
fn argmax_accepts_first_maximum_only() {
    let y = [-128, 5, 127, 3, 127, -7];
    assert!(argmax_cs(&y, 2, &argmax_witness(&y, 2)));
    // A later tied maximum, or a non-maximum, is rejected.
    for c in [0, 1, 3, 4, 5] {
        assert!(!argmax_cs(&y, c, &argmax_witness(&y, c)), "class {c}");
    }
    // Out of range class.
    assert!(!argmax_cs(&y, 6, &argmax_witness(&y, 6)));
    let extremes = [-128, 127];
    assert!(argmax_cs(&extremes, 1, &argmax_witness(&extremes, 1)));
    assert!(!argmax_cs(&extremes, 0, &argmax_witness(&extremes, 0)));
}

#[test]
fn argmax_rejects_non_one_hot_selector() {
    let y = [1, 9, 4];
    let honest = argmax_witness(&y, 1);
    // Selector (2, -1, 0) sums to 1 and "selects" 2·1 - 9 ... not boolean.
    let mut w = honest.clone();
    w.onehot = vec![Fr::from(2u64), -Fr::one(), Fr::zero()];
    assert!(!argmax_cs(&y, 1, &w));
    // Two selected entries.
    let mut w = honest;
    w.onehot = vec![Fr::one(), Fr::one(), Fr::zero()];
    assert!(!argmax_cs(&y, 1, &w));
}

#[test]
fn avgpool_rounding_is_enforced() {
    // A 2×2 average pool with equal scales: m / 2^s = 1/4 (m = 128, s = 9).
    use crate::layer::{Op, Pool2d};
    use crate::model::Layer;
    let op = Op::AvgPool2d(Pool2d {
        channels: 1,
        in_h: 2,
        in_w: 2,
        kernel: 2,
        stride: 2,
    });
    let r = Requant {
        multiplier: 128,
        shift: 9,
        relu: true,
    };
    let layer = Layer {
        op,
        weights: vec![],
        bias: vec![],
        requant: r,
    };
    assert_eq!(layer.accumulate(&[3, 4, 0, 1]), vec![8]);
    let g = RequantGadget::new(&r, layer.acc_bound(0));
    for sum in 0..=508i64 {
        let t = r.pre_shift(sum);
        let (w, y) = g.witness(t);
        assert_eq!(y, (sum + 2).div_euclid(4), "round half up of {sum}/4");
        if sum % 7 == 0 {
            assert!(requant_cs(&g, t, &w), "sum {sum}");
        }
        if sum % 4 >= 2 {
            // A truncating average: the honest witness of t without the
            // rounding constant does not decompose t...
            let (trunc, ty) = g.witness(t - r.rounding());
            assert_eq!(ty, sum / 4);
            assert!(!requant_cs(&g, t, &trunc), "sum {sum}");
            // ...and the truncated value on the right bits is no better.
            let lie = RequantWitness {
                y: fe(i128::from(sum / 4)),
                ..w.clone()
            };
            assert!(!requant_cs(&g, t, &lie), "sum {sum}");
        }
    }
}
