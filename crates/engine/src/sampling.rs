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
    if !(temperature > 0.0 && temperature.is_finite()) {
        return argmax(logits);
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
        return argmax(logits);
    }
    let e: Vec<f64> = z.iter().map(|&v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|&v| v / sum).collect();
    let mut cand: Vec<u32> = (0..p.len() as u32)
        .filter(|&i| p[i as usize] > 0.0)
        .collect();
    cand.sort_unstable_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
    let top_p = top_p as f64;
    let mut kept = cand.len();
    let mut kept_mass = 0.0;
    for (i, &id) in cand.iter().enumerate() {
        kept_mass += p[id as usize];
        if kept_mass >= top_p {
            kept = i + 1;
            break;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
