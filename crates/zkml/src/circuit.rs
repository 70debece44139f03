//! The inference circuit: the model's weights are constants of the
//! constraint system, and the public inputs are the input, the output and
//! the job nonce. Every layer (dense, conv2d, avgpool2d) is the same two
//! steps: a linear combination of the previous layer's outputs over the
//! layer's taps (free: the weights are constants), then one
//! [`RequantGadget`] per output, so convolution and pooling need no gadget of
//! their own beyond the rounding one.
//!
//! Public input layout (after the constant 1), all small non-negative field
//! elements so the verifier's input MSM stays cheap:
//!
//! | index              | value                                       |
//! |--------------------|---------------------------------------------|
//! | `0 .. n_in`        | `x_i + 128` for each int8 input             |
//! | `n_in .. +n_out`   | `y_j + 128` for each int8 logit             |
//! | next               | the class (argmax)                          |
//! | next two           | nonce bytes `0..16`, `16..32`, each read as a big-endian u128 |
//!
//! Offsetting by 128 costs nothing (the circuit subtracts a constant) and
//! keeps every scalar below 2^8. Inputs are not range-checked in the
//! circuit: the verifier supplies them, and [`public_inputs`] can only encode
//! int8 values.

use ark_bn254::Fr;
use ark_ff::One;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};

use crate::gadgets::{argmax_witness, enforce_argmax, fe, lc1, RequantGadget};
use crate::model::{Output, QuantModel};

/// The two field elements a 32-byte nonce maps to: bytes `0..16` and
/// `16..32`, each a big-endian u128 (injective, each below the modulus).
pub fn nonce_fields(nonce: &[u8; 32]) -> [Fr; 2] {
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 16];
    hi.copy_from_slice(&nonce[..16]);
    lo.copy_from_slice(&nonce[16..]);
    [
        Fr::from(u128::from_be_bytes(hi)),
        Fr::from(u128::from_be_bytes(lo)),
    ]
}

/// The public input vector for a statement (see the module docs).
pub fn public_inputs(input: &[i8], out: &Output, nonce: &[u8; 32]) -> Vec<Fr> {
    let mut v: Vec<Fr> = input
        .iter()
        .chain(&out.logits)
        .map(|&x| Fr::from((i16::from(x) + 128) as u64))
        .collect();
    v.push(Fr::from(u64::from(out.class)));
    v.extend(nonce_fields(nonce));
    v
}

/// Number of public inputs for a model.
pub fn num_public_inputs(model: &QuantModel) -> usize {
    model.input_len() + model.output_len() + 3
}

/// Requantization gadgets of every output, layer by layer. The bound on the
/// accumulator assumes int8 inputs (`|x| ≤ 128`) to each layer.
pub fn layer_gadgets(model: &QuantModel) -> Vec<Vec<RequantGadget>> {
    model
        .layers
        .iter()
        .map(|l| {
            (0..l.out_len())
                .map(|j| RequantGadget::new(&l.requant, l.acc_bound(j)))
                .collect()
        })
        .collect()
}

/// One proof statement: `claimed = model(input)` for job `nonce`.
#[derive(Clone, Debug)]
pub struct InferenceCircuit<'a> {
    /// The model, fixed into the constraints.
    pub model: &'a QuantModel,
    /// The int8 input (public).
    pub input: Vec<i8>,
    /// The claimed output (public).
    pub claimed: Output,
    /// The job nonce (public).
    pub nonce: [u8; 32],
}

impl<'a> InferenceCircuit<'a> {
    /// A circuit with all-zero values, for the setup (only the shape matters).
    pub fn blank(model: &'a QuantModel) -> Self {
        InferenceCircuit {
            model,
            input: vec![0; model.input_len()],
            claimed: Output {
                logits: vec![0; model.output_len()],
                class: 0,
            },
            nonce: [0; 32],
        }
    }
}

impl ConstraintSynthesizer<Fr> for InferenceCircuit<'_> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let m = self.model;
        if self.input.len() != m.input_len() || self.claimed.logits.len() != m.output_len() {
            return Err(SynthesisError::Unsatisfiable);
        }
        let publics = public_inputs(&self.input, &self.claimed, &self.nonce);
        let mut inst = Vec::with_capacity(publics.len());
        for p in publics {
            inst.push(cs.new_input_variable(|| Ok(p))?);
        }
        let (n_in, n_out) = (m.input_len(), m.output_len());
        // Nonce binding: a real constraint over both nonce inputs (see ZK.md).
        let (nl, nh) = (inst[n_in + n_out + 1], inst[n_in + n_out + 2]);
        let prod = {
            let [a, b] = nonce_fields(&self.nonce);
            a * b
        };
        let p = cs.new_witness_variable(|| Ok(prod))?;
        cs.enforce_r1cs_constraint(
            || lc1(Fr::one(), nl),
            || lc1(Fr::one(), nh),
            || lc1(Fr::one(), p),
        )?;

        // Layer activations as (linear combination, integer value).
        let mut acts: Vec<(LinearCombination<Fr>, i64)> = self
            .input
            .iter()
            .zip(&inst)
            .map(|(&x, &v)| {
                let lc = LinearCombination(vec![(Fr::one(), v), (fe(-128), Variable::One)]);
                (lc, i64::from(x))
            })
            .collect();
        let gadgets = layer_gadgets(m);
        let mut y_vars = Vec::new();
        for (layer, gs) in m.layers.iter().zip(&gadgets) {
            let mut next = Vec::with_capacity(layer.out_len());
            y_vars.clear();
            for (j, g) in gs.iter().enumerate() {
                let r = layer.requant;
                let bias = layer.bias_of(j);
                let mut acc_val = bias;
                let mut t = lc1(
                    fe(i128::from(bias) * i128::from(r.multiplier) + r.rounding()),
                    Variable::One,
                );
                layer.op.for_each_tap(j, |tap| {
                    let w = layer.tap_weight(tap);
                    if w != 0 {
                        let (lc, v) = &acts[tap.input];
                        acc_val += w * v;
                        t = std::mem::take(&mut t)
                            + (fe(i128::from(w) * i128::from(r.multiplier)), lc);
                    }
                });
                t.compactify();
                let (wit, y) = g.witness(r.pre_shift(acc_val));
                let yv = g.enforce(&cs, t, &wit)?;
                y_vars.push(yv);
                next.push((lc1(Fr::one(), yv), y));
            }
            acts = next;
        }
        // The claimed logits are the last layer's outputs.
        for (j, &yv) in y_vars.iter().enumerate() {
            let diff = LinearCombination(vec![
                (Fr::one(), yv),
                (-Fr::one(), inst[n_in + j]),
                (fe(128), Variable::One),
            ]);
            cs.enforce_r1cs_constraint(
                || diff,
                || lc1(Fr::one(), Variable::One),
                LinearCombination::zero,
            )?;
        }
        let y_vals: Vec<i64> = acts.iter().map(|(_, v)| *v).collect();
        let y_fe: Vec<Fr> = y_vals.iter().map(|&v| fe(i128::from(v))).collect();
        let aw = argmax_witness(&y_vals, self.claimed.class);
        enforce_argmax(&cs, &y_vars, &y_fe, lc1(Fr::one(), inst[n_in + n_out]), &aw)?;
        Ok(())
    }
}

/// How big a model's circuit is: what the setup and every proof pay for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitSize {
    /// R1CS constraints.
    pub constraints: usize,
    /// Witness variables.
    pub witness_variables: usize,
    /// Public inputs (without the constant 1), [`num_public_inputs`].
    pub public_inputs: usize,
}

/// Synthesizes the blank circuit of `model` in a fresh constraint system
/// and counts it.
pub fn size(model: &QuantModel) -> Result<CircuitSize, SynthesisError> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    InferenceCircuit::blank(model).generate_constraints(cs.clone())?;
    Ok(CircuitSize {
        constraints: cs.num_constraints(),
        witness_variables: cs.num_witness_variables(),
        public_inputs: num_public_inputs(model),
    })
}

/// Synthesizes `c` in a fresh constraint system and returns whether the
/// witness satisfies it, with the public inputs it holds (without the
/// leading 1) and the constraint count.
pub fn check(c: InferenceCircuit<'_>) -> Result<(bool, Vec<Fr>, usize), SynthesisError> {
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    c.generate_constraints(cs.clone())?;
    let ok = cs.is_satisfied()?;
    let inst = cs.instance_assignment()?;
    Ok((
        ok,
        inst.get(1..).map(<[Fr]>::to_vec).unwrap_or_default(),
        cs.num_constraints(),
    ))
}
