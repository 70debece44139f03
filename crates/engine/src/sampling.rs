//! Token selection and logit summaries whose every step is specified, so a
//! verifier holding the same logits can recompute the chosen token and the
//! logits digest exactly. Randomness comes only from the request seed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::EngineError;

/// Domain separator for the per-position sampling draw.
const SAMPLE_DOMAIN: &[u8] = b"proofmesh/sample/v1";
/// Up to this `k`, [`TopKLogits::from_logits`] streams (same result as the sort).
const SMALL_K: usize = 64;
/// Domain separator for [`logits_digest`].
const LOGITS_DOMAIN: &[u8] = b"proofmesh/logits/v1";

/// How to pick tokens and when to stop.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy; otherwise the softmax temperature.
    pub temperature: f32,
    /// Nucleus mass in (0, 1].
    pub top_p: f32,
    /// Seed for the deterministic draw (see [`sample_token`]).
    pub seed: u64,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Stop strings; the first match ends generation and is cut from the text.
    pub stop: Vec<String>,
    /// How many top logits to record per generated token (0 = none).
    pub top_k_logits: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            max_tokens: 256,
            stop: Vec::new(),
            top_k_logits: 0,
        }
    }
}

impl SamplingParams {
    /// Reject values [`sample_token`] would otherwise silently reinterpret.
    pub fn validate(&self) -> Result<(), EngineError> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(EngineError::InvalidSampling {
                param: "temperature",
                reason: format!("{} is not a finite value >= 0", self.temperature),
            });
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::InvalidSampling {
                param: "top_p",
                reason: format!("{} is not in (0, 1]", self.top_p),
            });
        }
        Ok(())
    }
}

/// The `k` largest logits of one position: sorted by value descending, ties
/// by id ascending (`f32::total_cmp` order, so the result is always defined).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopKLogits {
    pub ids: Vec<u32>,
    pub values: Vec<f32>,
}

impl TopKLogits {
    /// Top-`k` of a full logits vector (`k = 0` gives empty vectors).
    pub fn from_logits(logits: &[f32], k: usize) -> Self {
        let k = k.min(logits.len());
        if k == 0 {
            return Self {
                ids: Vec::new(),
                values: Vec::new(),
            };
        }
        if k <= SMALL_K {
            let mut top = crate::topk::Running::new(k);
            top.offer_all(0, logits);
            let (ids, values) = top.into_parts();
            return Self { ids, values };
        }
        let order = |a: &u32, b: &u32| {
            logits[*b as usize]
                .total_cmp(&logits[*a as usize])
                .then(a.cmp(b))
        };
        let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
        if k < ids.len() {
            ids.select_nth_unstable_by(k - 1, order);
            ids.truncate(k);
        }
        ids.sort_unstable_by(order);
        let values = ids.iter().map(|&i| logits[i as usize]).collect();
        Self { ids, values }
    }
}

/// A bit-exact digest of top-k logits, for comparing runs (tests, thread
/// counts). Not the receipt's commitment: receipts commit to the 8-byte-per-token
/// fingerprint of `proofmesh-verify`. `"sha256:<hex>"` over the encoding: `b"proofmesh/logits/v1"`,
/// u32 LE position count, then per position u32 LE `k` followed by `k` pairs
/// of (u32 LE id, u32 LE `f32::to_bits(value)`). `k` is
/// `min(ids.len(), values.len())`.
pub fn logits_digest(logits: &[TopKLogits]) -> String {
    let mut h = Sha256::new();
    h.update(LOGITS_DOMAIN);
    h.update((logits.len() as u32).to_le_bytes());
    for pos in logits {
        let k = pos.ids.len().min(pos.values.len());
        h.update((k as u32).to_le_bytes());
        for (id, v) in pos.ids.iter().zip(&pos.values) {
            h.update(id.to_le_bytes());
            h.update(v.to_bits().to_le_bytes());
        }
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Greedy choice: the largest logit, NaN counted as -inf, ties to the lowest id.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_nan() && v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

/// The uniform draw in [0, 1) for one generated position: the first 8 bytes
/// (LE) of SHA-256(`b"proofmesh/sample/v1"` ‖ seed u64 LE ‖ position u64 LE),
/// shifted right by 11, times 2^-53.
pub fn sample_uniform(seed: u64, position: u64) -> f64 {
    let mut h = Sha256::new();
    h.update(SAMPLE_DOMAIN);
    h.update(seed.to_le_bytes());
    h.update(position.to_le_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(first) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Pick the token for generated position `position` (0-based).
///
/// `temperature <= 0` (or non-finite) → [`argmax`]. Otherwise, in f64:
/// `z_i = logit_i / T` (NaN logits count as -inf), `e_i = exp(z_i - max z)`,
/// `sum` = Σ e_i in id order, `p_i = e_i / sum`. Candidates with `p_i > 0`
/// are sorted by `p` descending, ties by id ascending; the kept set is the
/// shortest prefix whose running sum reaches `top_p` (all of them if rounding
/// never reaches it). With `u` = [`sample_uniform`]`(seed, position)`, the
/// result is the first kept token whose running sum exceeds `u * kept_mass`.
pub fn sample_token(logits: &[f32], temperature: f32, top_p: f32, seed: u64, position: u64) -> u32 {
    let Some(p) = probabilities(logits, temperature) else {
        return argmax(logits);
    };
    let mut cand = candidates(&p);
    let (kept, kept_mass) = kept_prefix(&mut cand, &p, top_p as f64);
    let cand = &cand[..kept];
    let target = sample_uniform(seed, position) * kept_mass;
    let mut cum = 0.0;
    for &id in cand {
        cum += p[id as usize];
        if cum > target {
            return id;
        }
    }
    cand.last().copied().unwrap_or_else(|| argmax(logits))
}

/// `p_i` of [`sample_token`]'s definition, or `None` where it is greedy
/// (temperature not positive and finite, or no finite logit).
fn probabilities(logits: &[f32], temperature: f32) -> Option<Vec<f64>> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return None;
    }
    let t = temperature as f64;
    let z: Vec<f64> = logits
        .iter()
        .map(|&l| {
            if l.is_nan() {
                f64::NEG_INFINITY
            } else {
                l as f64 / t
            }
        })
        .collect();
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return None;
    }
    let e: Vec<f64> = z.iter().map(|&v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    Some(e.iter().map(|&v| v / sum).collect())
}

/// Ids with `p_i > 0`, in id order.
fn candidates(p: &[f64]) -> Vec<u32> {
    (0..p.len() as u32)
        .filter(|&i| p[i as usize] > 0.0)
        .collect()
}

/// Candidates sorted so far: the first this many are sorted first, and the
/// rest only if the running sum has not reached `top_p` by then.
const FIRST_SORTED: usize = 64;

/// Put the kept prefix of `cand` in the defined order (`p` descending, ties
/// by id ascending) and return its length and mass: the shortest prefix whose
/// running sum (in that order) reaches `top_p`, or all candidates. With
/// `top_p < 1` that prefix is usually short, so only the `n` most likely
/// candidates are selected and sorted (`select_nth` + sort yields exactly the
/// full order's first `n`), and `n` grows only if their sum falls short; the
/// result is the full sort's, bit for bit, without sorting the vocabulary.
fn kept_prefix(cand: &mut [u32], p: &[f64], top_p: f64) -> (usize, f64) {
    let order = |a: &u32, b: &u32| p[*b as usize].total_cmp(&p[*a as usize]).then(a.cmp(b));
    let mut n = if top_p < 1.0 {
        FIRST_SORTED.min(cand.len())
    } else {
        cand.len()
    };
    loop {
        if n == 0 {
            return (0, 0.0);
        }
        if n < cand.len() {
            cand.select_nth_unstable_by(n - 1, order);
        }
        cand[..n].sort_unstable_by(order);
        let mut mass = 0.0;
        for (i, &id) in cand[..n].iter().enumerate() {
            mass += p[id as usize];
            if mass >= top_p {
                return (i + 1, mass);
            }
        }
        if n == cand.len() {
            return (n, mass);
        }
        n = (n * 16).min(cand.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, written with a full sort (what `kept_prefix` avoids).
    fn sample_token_full_sort(
        logits: &[f32],
        temperature: f32,
        top_p: f32,
        seed: u64,
        pos: u64,
    ) -> u32 {
        let Some(p) = probabilities(logits, temperature) else {
            return argmax(logits);
        };
        let mut cand = candidates(&p);
        cand.sort_unstable_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
        let (mut kept, mut mass) = (cand.len(), 0.0);
        for (i, &id) in cand.iter().enumerate() {
            mass += p[id as usize];
            if mass >= top_p as f64 {
                kept = i + 1;
                break;
            }
        }
        let target = sample_uniform(seed, pos) * mass;
        let mut cum = 0.0;
        for &id in &cand[..kept] {
            cum += p[id as usize];
            if cum > target {
                return id;
            }
        }
        cand[..kept]
            .last()
            .copied()
            .unwrap_or_else(|| argmax(logits))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn partial_sort_picks_what_the_full_sort_picks(
            logits in prop::collection::vec(-20f32..20.0, 1..3000),
            ties in 0usize..4,
            temperature in 0.05f32..3.0,
            top_p in prop::sample::select(vec![1e-6f32, 0.1, 0.5, 0.9, 0.95, 0.999, 1.0]),
            seed in any::<u64>(),
        ) {
            let mut logits = logits;
            // Repeated values exercise the id tie-break.
            for i in 0..logits.len().min(ties * 50) {
                logits[i] = logits[i].round();
            }
            for pos in 0..4 {
                prop_assert_eq!(
                    sample_token(&logits, temperature, top_p, seed, pos),
                    sample_token_full_sort(&logits, temperature, top_p, seed, pos)
                );
            }
        }
    }

    #[test]
    fn partial_sort_matches_on_a_vocabulary_sized_flat_distribution() {
        // Nearly flat logits: the nucleus needs far more than FIRST_SORTED
        // candidates, so the growth path runs.
        let logits: Vec<f32> = (0..49_152u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 20) % 97) as f32 / 400.0)
            .collect();
        for (seed, top_p) in [(1, 0.9), (2, 0.5), (3, 1.0), (4, 0.999)] {
            assert_eq!(
                sample_token(&logits, 1.0, top_p, seed, 7),
                sample_token_full_sort(&logits, 1.0, top_p, seed, 7),
                "top_p {top_p}"
            );
        }
    }

    #[test]
    fn greedy_picks_max_and_breaks_ties_low() {
        assert_eq!(argmax(&[0.1, 3.0, -1.0, 3.0]), 1);
        assert_eq!(sample_token(&[0.1, 3.0, -1.0, 3.0], 0.0, 1.0, 7, 0), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0]), 1);
    }

    #[test]
    fn top_k_sorts_by_value_then_id() {
        let t = TopKLogits::from_logits(&[1.0, 5.0, 5.0, -2.0, 4.0], 3);
        assert_eq!(t.ids, vec![1, 2, 4]);
        assert_eq!(t.values, vec![5.0, 5.0, 4.0]);
        assert!(TopKLogits::from_logits(&[1.0], 0).ids.is_empty());
        assert_eq!(TopKLogits::from_logits(&[1.0, 2.0], 10).ids, vec![1, 0]);
    }

    #[test]
    fn uniform_draw_is_in_range_and_seed_dependent() {
        let a = sample_uniform(1, 0);
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, sample_uniform(2, 0));
        assert_ne!(a, sample_uniform(1, 1));
        assert_eq!(a, sample_uniform(1, 0));
    }

    #[test]
    fn tiny_top_p_reduces_to_greedy() {
        let logits = [0.5, 2.0, 1.9, -3.0];
        for seed in 0..50 {
            assert_eq!(sample_token(&logits, 1.0, 1e-6, seed, 3), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // p = softmax([0, ln 3]) = [0.25, 0.75]
        let logits = [0.0, 3f32.ln()];
        let ones = (0..4000u64)
            .filter(|&pos| sample_token(&logits, 1.0, 1.0, 42, pos) == 1)
            .count();
        assert!((2800..3200).contains(&ones), "{ones}");
    }

    #[test]
    fn digest_changes_with_any_bit() {
        let a = vec![TopKLogits {
            ids: vec![1, 2],
            values: vec![0.5, 0.25],
        }];
        let mut b = a.clone();
        b[0].values[1] = f32::from_bits(0.25f32.to_bits() + 1);
        assert_ne!(logits_digest(&a), logits_digest(&b));
        assert_eq!(logits_digest(&a), logits_digest(&a.clone()));
        assert!(logits_digest(&[]).starts_with("sha256:"));
        assert_eq!(logits_digest(&[]).len(), 7 + 64);
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let ok = SamplingParams::default();
        assert!(ok.validate().is_ok());
        for (t, p) in [(-1.0, 1.0), (f32::NAN, 1.0), (1.0, 0.0), (1.0, 1.5)] {
            let bad = SamplingParams {
                temperature: t,
                top_p: p,
                ..ok.clone()
            };
            assert!(matches!(
                bad.validate(),
                Err(EngineError::InvalidSampling { .. })
            ));
        }
    }
}
