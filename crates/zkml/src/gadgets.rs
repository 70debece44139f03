//! The circuit's non-linear gadgets — bit range checks, fused
//! requantization + ReLU + clamp, and argmax — each split into an honest
//! witness function and a constraint function that takes the witness as plain
//! field values, so tests can feed a dishonest witness and watch it fail.

use ark_bn254::Fr;
use ark_ff::{Field, One, Zero};
use ark_relations::gr1cs::{ConstraintSystemRef, LinearCombination, SynthesisError, Variable};

use crate::fixed::Requant;

/// A signed integer as a field element.
pub fn fe(v: i128) -> Fr {
    if v >= 0 {
        Fr::from(v as u128)
    } else {
        -Fr::from(v.unsigned_abs())
    }
}

/// `2^i` as a field element.
fn pow2(i: u32) -> Fr {
    Fr::from(2u64).pow([u64::from(i)])
}

/// A linear combination of one term.
pub fn lc1(coeff: Fr, v: Variable) -> LinearCombination<Fr> {
    LinearCombination(vec![(coeff, v)])
}

/// The bits of `v mod 2^n`, little-endian, as field values.
pub fn bits_of(v: i128, n: u32) -> Vec<Fr> {
    (0..n).map(|i| Fr::from(((v >> i) & 1) as u64)).collect()
}

/// Range check: allocates `bits.len()` witness bits, enforces each is
/// boolean and that `Σ bits_i·2^i = value`. Sound while `2^n` is far below
/// the field modulus (n ≤ 128 here), so `value ∈ [0, 2^n)` as an integer.
pub fn enforce_bits(
    cs: &ConstraintSystemRef<Fr>,
    value: LinearCombination<Fr>,
    bits: &[Fr],
) -> Result<Vec<Variable>, SynthesisError> {
    if bits.len() > 128 {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut vars = Vec::with_capacity(bits.len());
    let mut sum = LinearCombination::zero();
    for (i, &b) in bits.iter().enumerate() {
        let v = cs.new_witness_variable(|| Ok(b))?;
        // b · (b - 1) = 0
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), v),
            || LinearCombination(vec![(Fr::one(), v), (-Fr::one(), Variable::One)]),
            LinearCombination::zero,
        )?;
        sum += (pow2(i as u32), v);
        vars.push(v);
    }
    let mut diff = sum - value;
    diff.compactify();
    cs.enforce_r1cs_constraint(
        || diff,
        || lc1(Fr::one(), Variable::One),
        LinearCombination::zero,
    )?;
    Ok(vars)
}

/// Fused requantization of one neuron: from `t = acc·m + 2^(s-1)` to
/// `y = clamp(floor(t / 2^s), lo, 127)`.
///
/// With `c = 0, h = 7` (ReLU) or `c = 128, h = 8` (no ReLU), let
/// `v = floor(t / 2^s) + c`; then `y = clamp(v, 0, 2^h - 1) - c`. The gadget
/// decomposes `u = t + c·2^s + 2^(K+s)` into `N = s + K + 1` bits (so
/// `|v| < 2^K` is proved, and the low `s` bits are the rounding remainder,
/// range-checked to `[0, 2^s)`). The top bit `g` is `[v ≥ 0]`; `z` is 1 iff
/// any of the bits `h..K` of `v` is set (`v ≥ 2^h`), proved with an inverse;
/// `y + c = g·(low + z·(2^h - 1 - low))` where `low` is `v mod 2^h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantGadget {
    /// Shift.
    pub s: u32,
    /// Bits of `|v|` (`2^K > max |v|` over every int8 input).
    pub k: u32,
    /// Offset: 0 (ReLU) or 128.
    pub c: i128,
    /// Clamp width: 7 (ReLU) or 8.
    pub h: u32,
}

/// A requantization witness, as free field values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequantWitness {
    /// The `N` bits of `u`.
    pub bits: Vec<Fr>,
    /// Inverse of the overflow-bit sum (0 if it is 0).
    pub inv: Fr,
    /// Overflow flag.
    pub z: Fr,
    /// The int8 output.
    pub y: Fr,
}

impl RequantGadget {
    /// Gadget for requantization `r` of an accumulator with `|acc| ≤ acc_bound`.
    pub fn new(r: &Requant, acc_bound: i128) -> Self {
        let (c, h) = if r.relu { (0, 7) } else { (128, 8) };
        let tmax = acc_bound * i128::from(r.multiplier) + r.rounding();
        let vmax = (tmax >> r.shift) + 1 + c;
        let k = (128 - vmax.leading_zeros()).max(h + 1);
        RequantGadget {
            s: r.shift,
            k,
            c,
            h,
        }
    }

    /// Number of bits `N = s + K + 1`.
    pub fn n_bits(&self) -> u32 {
        self.s + self.k + 1
    }

    /// `u - t`.
    fn offset(&self) -> i128 {
        (self.c << self.s) + (1i128 << (self.k + self.s))
    }

    /// The honest witness for pre-shift value `t`, and the output value.
    pub fn witness(&self, t: i128) -> (RequantWitness, i64) {
        let u = t + self.offset();
        let bits = bits_of(u, self.n_bits());
        let v = (u >> self.s) - (1i128 << self.k);
        let top = (1i128 << self.h) - 1;
        let y = v.clamp(0, top) - self.c;
        let overflow_sum: u64 = (self.h..self.k)
            .map(|i| ((u >> (self.s + i)) & 1) as u64)
            .sum();
        let sf = Fr::from(overflow_sum);
        let w = RequantWitness {
            bits,
            inv: sf.inverse().unwrap_or(Fr::zero()),
            z: if overflow_sum > 0 {
                Fr::one()
            } else {
                Fr::zero()
            },
            y: fe(y),
        };
        (w, y as i64)
    }

    /// Enforces `y = requant(t)`; returns the variable holding `y`.
    pub fn enforce(
        &self,
        cs: &ConstraintSystemRef<Fr>,
        t: LinearCombination<Fr>,
        w: &RequantWitness,
    ) -> Result<Variable, SynthesisError> {
        if w.bits.len() != self.n_bits() as usize {
            return Err(SynthesisError::Unsatisfiable);
        }
        let shifted = t + (fe(self.offset()), Variable::One);
        let bits = enforce_bits(cs, shifted, &w.bits)?;
        let (s, h, k) = (self.s as usize, self.h as usize, self.k as usize);
        let g = bits[s + k];
        let mut low = LinearCombination::zero();
        let mut low_val = Fr::zero();
        for (i, (&b, &bv)) in bits[s..s + h].iter().zip(&w.bits[s..s + h]).enumerate() {
            low += (pow2(i as u32), b);
            low_val += pow2(i as u32) * bv;
        }
        let mut over = LinearCombination::zero();
        for &b in &bits[s + h..s + k] {
            over += (Fr::one(), b);
        }
        let inv = cs.new_witness_variable(|| Ok(w.inv))?;
        let z = cs.new_witness_variable(|| Ok(w.z))?;
        // over · inv = z ; over · (1 - z) = 0  ⇒  z = [over ≠ 0]
        cs.enforce_r1cs_constraint(
            || over.clone(),
            || lc1(Fr::one(), inv),
            || lc1(Fr::one(), z),
        )?;
        cs.enforce_r1cs_constraint(
            || over,
            || LinearCombination(vec![(Fr::one(), Variable::One), (-Fr::one(), z)]),
            LinearCombination::zero,
        )?;
        let gv = w.bits[s + k];
        let gz_val = gv * w.z;
        let top = pow2(self.h) - Fr::one();
        let gz = cs.new_witness_variable(|| Ok(gz_val))?;
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), g),
            || lc1(Fr::one(), z),
            || lc1(Fr::one(), gz),
        )?;
        let sat = cs.new_witness_variable(|| Ok(gz_val * (top - low_val)))?;
        let top_minus_low = lc1(top, Variable::One) - &low;
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), gz),
            || top_minus_low,
            || lc1(Fr::one(), sat),
        )?;
        let y = cs.new_witness_variable(|| Ok(w.y))?;
        // g · low = y + c - sat
        let rhs = LinearCombination(vec![
            (Fr::one(), y),
            (fe(self.c), Variable::One),
            (-Fr::one(), sat),
        ]);
        cs.enforce_r1cs_constraint(|| lc1(Fr::one(), g), || low, || rhs)?;
        Ok(y)
    }
}

/// An argmax witness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgmaxWitness {
    /// One-hot selector of the class.
    pub onehot: Vec<Fr>,
    /// For each `j`, 8 bits of `max - y_j - [j < class]`.
    pub diff_bits: Vec<Vec<Fr>>,
}

/// Honest argmax witness for logits `y` and claimed `class`.
pub fn argmax_witness(y: &[i64], class: u32) -> ArgmaxWitness {
    let c = class as usize;
    let mx = y.get(c).copied().unwrap_or(0);
    ArgmaxWitness {
        onehot: (0..y.len())
            .map(|i| if i == c { Fr::one() } else { Fr::zero() })
            .collect(),
        diff_bits: y
            .iter()
            .enumerate()
            .map(|(j, &yj)| bits_of(i128::from(mx - yj - i64::from(j < c)), 8))
            .collect(),
    }
}

/// Enforces that `class` is the first index of the maximum of the int8
/// values `y` (whose range the requantization gadget already proved): a
/// boolean one-hot selector summing to 1 picks `max = Σ sel_i·y_i` and
/// `class = Σ i·sel_i`, and every `max - y_j - [j < class]` is range-checked
/// to `[0, 256)` (`[j < class] = Σ_{i>j} sel_i`).
pub fn enforce_argmax(
    cs: &ConstraintSystemRef<Fr>,
    y: &[Variable],
    y_vals: &[Fr],
    class: LinearCombination<Fr>,
    w: &ArgmaxWitness,
) -> Result<(), SynthesisError> {
    let n = y.len();
    if w.onehot.len() != n || w.diff_bits.len() != n || y_vals.len() != n {
        return Err(SynthesisError::Unsatisfiable);
    }
    let mut sel = Vec::with_capacity(n);
    for &v in &w.onehot {
        let s = cs.new_witness_variable(|| Ok(v))?;
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), s),
            || LinearCombination(vec![(Fr::one(), s), (-Fr::one(), Variable::One)]),
            LinearCombination::zero,
        )?;
        sel.push(s);
    }
    let one = || lc1(Fr::one(), Variable::One);
    let mut sum = lc1(-Fr::one(), Variable::One);
    let mut idx = class.clone() * -Fr::one();
    for (i, &s) in sel.iter().enumerate() {
        sum += (Fr::one(), s);
        idx += (Fr::from(i as u64), s);
    }
    cs.enforce_r1cs_constraint(|| sum, one, LinearCombination::zero)?;
    idx.compactify();
    cs.enforce_r1cs_constraint(|| idx, one, LinearCombination::zero)?;
    let mut mx = LinearCombination::zero();
    for (((&s, &yv), &sv), &yval) in sel.iter().zip(y).zip(&w.onehot).zip(y_vals) {
        let p = cs.new_witness_variable(|| Ok(sv * yval))?;
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), s),
            || lc1(Fr::one(), yv),
            || lc1(Fr::one(), p),
        )?;
        mx += (Fr::one(), p);
    }
    for (j, (&yj, bits)) in y.iter().zip(&w.diff_bits).enumerate() {
        let mut d = mx.clone() - (Fr::one(), yj);
        for &s in &sel[j + 1..] {
            d += (-Fr::one(), s);
        }
        enforce_bits(cs, d, bits)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "gadget_tests.rs"]
mod tests;
