//! Logit fingerprints: what a provider commits to about the logits behind
//! every token it generated, in 8 bytes per token, so a verifier's one-pass
//! recomputation can be compared position by position.
//!
//! Encoding (version 1): `"PMFP" ‖ version u8 ‖ mode u8 ‖ k u8 ‖ reserved u8
//! (0) ‖ count u32 LE ‖ count × 8-byte entries`. `count` is at most
//! [`MAX_POSITIONS`]; no trailing bytes.
//!
//! * [`FingerprintMode::Exact`] (mode 0, k ≥ 1): entry = first 8 bytes of
//!   SHA-256(`"proofmesh/fp/exact/v1"` ‖ u32 LE n ‖ n × (u32 LE id ‖ u32 LE
//!   f32 bits)) over the top-k logits (value descending, ties by id ascending;
//!   n = min(k, vocab)). For our bit-exact engine: the verifier's recomputation
//!   must match byte for byte. TOPLOC commits 258 bytes per 32 tokens (~8.1
//!   B/token) to approximate top-k values; this commits 8 B/token to the exact
//!   bits of k values, so any numeric deviation at all is caught with
//!   probability 1 − 2⁻⁶⁴ per position.
//! * [`FingerprintMode::Tolerant`] (mode 1, k = 2): entry = top-1 id (24 bits
//!   LE) ‖ top-1 log-probability as binary16 (LE) ‖ top-2 id (24 bits LE;
//!   `0xFFFFFF` if the vocabulary has one token). Log-probabilities are
//!   `log_softmax` of the full logits in f64. For engines that are not ours
//!   (vLLM / llama.cpp `top_logprobs`): accepted within
//!   [`DEFAULT_LOGPROB_TOLERANCE`] (see its docs for the calibration).

use proofmesh_engine::TopKLogits;
use proofmesh_receipt::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::f16::{f16_bits_to_f32, f16_ulp, f32_to_f16_bits};
use crate::VerifyError;

pub use proofmesh_receipt::digest::fingerprint_format::{ENTRY_LEN, HEADER_LEN, MAGIC, VERSION};
/// Hard bound on the number of positions a fingerprint may declare.
pub const MAX_POSITIONS: u32 = 1 << 20;
/// The `k` providers should use for exact fingerprints.
pub const DEFAULT_EXACT_K: u8 = 8;
/// Tolerant fingerprints always carry the top 2 ids.
pub const TOLERANT_K: u8 = 2;
/// Default tolerance of tolerant fingerprints, in nats of log-probability.
///
/// Calibrated with `examples/calibrate_tolerance.rs`: honest providers on a
/// foreign engine are simulated by perturbing our logits before sampling and
/// fingerprinting — binary16 output rounding, and binary16 plus ±1e-3
/// relative per-logit noise (the order of accumulation-order differences
/// between fp16 kernels). Share of jobs failing, by tolerance:
///
/// | scenario (jobs × 32 tokens)      | 0.01 | 0.02 | **0.05** | 0.1  |
/// |----------------------------------|------|------|----------|------|
/// | tiny, fp16 logits (200)          | 0    | 0    | **0**    | 0    |
/// | tiny, fp16 + 1e-3 noise (200)    | 0    | 0    | **0**    | 0    |
/// | tiny, Q4_1→Q8_0 weights (200)    | 1.00 | 1.00 | **0.96** | 0.20 |
/// | tiny, other weights (200)        | 1.00 | 1.00 | **1.00** | 1.00 |
/// | SmolLM2, fp16 logits (8)         | 0.25 | 0    | **0**    | 0    |
/// | SmolLM2, fp16 + 1e-3 noise (8)   | 0.88 | 0.25 | **0**    | 0    |
/// | SmolLM2, Q4_1→Q8_0 weights (8)   | 1.00 | 1.00 | **1.00** | 0.88 |
///
/// 0.05 is the smallest tolerance with no false positive in any honest row,
/// and it still flags requantized weights. A 1e-2 relative perturbation
/// (not a plausible honest engine) needs 0.5 on SmolLM2.
pub const DEFAULT_LOGPROB_TOLERANCE: f64 = 0.05;

const EXACT_DOMAIN: &[u8] = b"proofmesh/fp/exact/v1";
/// Top-2 id of a one-token vocabulary.
const NO_TOKEN: u32 = 0x00ff_ffff;

/// How entries are computed and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FingerprintMode {
    /// Hash of the exact top-k logit bits (our bit-exact engine).
    Exact,
    /// Top-2 ids and the top-1 log-probability (other engines).
    Tolerant,
}

impl FingerprintMode {
    /// The header byte.
    pub fn as_byte(self) -> u8 {
        match self {
            FingerprintMode::Exact => 0,
            FingerprintMode::Tolerant => 1,
        }
    }

    /// `"exact"` / `"tolerant"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FingerprintMode::Exact => "exact",
            FingerprintMode::Tolerant => "tolerant",
        }
    }

    fn from_byte(mode: u8) -> Result<Self, VerifyError> {
        match mode {
            0 => Ok(FingerprintMode::Exact),
            1 => Ok(FingerprintMode::Tolerant),
            _ => Err(VerifyError::BadMode { mode }),
        }
    }

    fn check_k(self, k: u8) -> Result<(), VerifyError> {
        let bad = |reason| VerifyError::BadK {
            mode: self.as_str(),
            k,
            reason,
        };
        match self {
            FingerprintMode::Exact if k == 0 => Err(bad("exact mode needs k >= 1")),
            FingerprintMode::Tolerant if k != TOLERANT_K => Err(bad("tolerant mode has k = 2")),
            _ => Ok(()),
        }
    }
}

/// A decoded fingerprint: one 8-byte entry per generated token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub mode: FingerprintMode,
    pub k: u8,
    pub entries: Vec<[u8; ENTRY_LEN]>,
}

impl Fingerprint {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no positions.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The versioned binary encoding.
    pub fn encode(&self) -> Result<Vec<u8>, VerifyError> {
        self.mode.check_k(self.k)?;
        let count = u32::try_from(self.entries.len())
            .ok()
            .filter(|&c| c <= MAX_POSITIONS)
            .ok_or(VerifyError::TooManyPositions {
                count: self.entries.len() as u64,
                max: MAX_POSITIONS,
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.entries.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, self.mode.as_byte(), self.k, 0]);
        out.extend_from_slice(&count.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(e);
        }
        Ok(out)
    }

    /// Parse an encoding; every malformation is a named error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, VerifyError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(VerifyError::Truncated {
                needed: HEADER_LEN,
                actual: bytes.len(),
            })?;
        let magic = [header[0], header[1], header[2], header[3]];
        if magic != MAGIC {
            return Err(VerifyError::BadMagic { found: magic });
        }
        if header[4] != VERSION {
            return Err(VerifyError::BadVersion {
                version: header[4],
                expected: VERSION,
            });
        }
        let mode = FingerprintMode::from_byte(header[5])?;
        let k = header[6];
        mode.check_k(k)?;
        if header[7] != 0 {
            return Err(VerifyError::BadReserved { value: header[7] });
        }
        let count = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if count > MAX_POSITIONS {
            return Err(VerifyError::TooManyPositions {
                count: count as u64,
                max: MAX_POSITIONS,
            });
        }
        let body = &bytes[HEADER_LEN..];
        let needed = count as usize * ENTRY_LEN;
        if body.len() < needed {
            return Err(VerifyError::Truncated {
                needed: HEADER_LEN + needed,
                actual: bytes.len(),
            });
        }
        if body.len() > needed {
            return Err(VerifyError::TrailingBytes {
                count,
                extra: body.len() - needed,
            });
        }
        let entries = body
            .chunks_exact(ENTRY_LEN)
            .map(|c| {
                let mut e = [0u8; ENTRY_LEN];
                e.copy_from_slice(c);
                e
            })
            .collect();
        Ok(Fingerprint { mode, k, entries })
    }
}

/// The digest a receipt's `logits_digest` carries: `Digest::of(encoded)`.
pub fn fingerprint_digest(encoded: &[u8]) -> Digest {
    Digest::of(encoded)
}

/// Fingerprint the logits a sampler used, one full logits vector per
/// generated token. `k` is ignored in tolerant mode (always 2).
pub fn fingerprint_from_logits<L: AsRef<[f32]>>(
    mode: FingerprintMode,
    k: u8,
    logits: &[L],
) -> Result<Fingerprint, VerifyError> {
    let k = match mode {
        FingerprintMode::Exact => k,
        FingerprintMode::Tolerant => TOLERANT_K,
    };
    mode.check_k(k)?;
    check_count(logits.len())?;
    let mut entries = Vec::with_capacity(logits.len());
    for (position, l) in logits.iter().enumerate() {
        let l = l.as_ref();
        if l.is_empty() {
            return Err(VerifyError::EmptyLogits { position });
        }
        entries.push(match mode {
            FingerprintMode::Exact => exact_entry(&TopKLogits::from_logits(l, k as usize)),
            FingerprintMode::Tolerant => TolerantEntry::from_logits(l)?.pack(),
        });
    }
    Ok(Fingerprint { mode, k, entries })
}

/// Exact fingerprint from the top-k a generation recorded
/// (`SamplingParams::top_k_logits = k`), no full logits needed. Each entry
/// must hold `min(k, vocab)` values, as `TopKLogits::from_logits` produces.
pub fn exact_fingerprint_from_top_k(k: u8, top: &[TopKLogits]) -> Result<Fingerprint, VerifyError> {
    FingerprintMode::Exact.check_k(k)?;
    check_count(top.len())?;
    Ok(Fingerprint {
        mode: FingerprintMode::Exact,
        k,
        entries: top.iter().map(exact_entry).collect(),
    })
}

fn check_count(n: usize) -> Result<(), VerifyError> {
    if n > MAX_POSITIONS as usize {
        return Err(VerifyError::TooManyPositions {
            count: n as u64,
            max: MAX_POSITIONS,
        });
    }
    Ok(())
}

/// One exact entry: the first 8 bytes of the domain-separated SHA-256 of
/// the top-k (ids, f32 bits).
pub fn exact_entry(top: &TopKLogits) -> [u8; ENTRY_LEN] {
    let n = top.ids.len().min(top.values.len());
    let mut h = Sha256::new();
    h.update(EXACT_DOMAIN);
    h.update((n as u32).to_le_bytes());
    for (id, v) in top.ids.iter().zip(&top.values) {
        h.update(id.to_le_bytes());
        h.update(v.to_bits().to_le_bytes());
    }
    let d = h.finalize();
    let mut e = [0u8; ENTRY_LEN];
    e.copy_from_slice(&d[..ENTRY_LEN]);
    e
}

/// `log Σ exp(l)` in f64; NaN logits count as −∞ (as in the sampler).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let val = |l: f32| {
        if l.is_nan() {
            f64::NEG_INFINITY
        } else {
            l as f64
        }
    };
    let max = logits
        .iter()
        .map(|&l| val(l))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| (val(l) - max).exp()).sum();
    max + sum.ln()
}

/// A tolerant entry, unpacked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TolerantEntry {
    pub top1: u32,
    /// The top-1 log-probability as carried (already rounded to binary16).
    pub top1_logprob: f32,
    /// `None` when the vocabulary has a single token.
    pub top2: Option<u32>,
}

impl TolerantEntry {
    /// Compute from full logits (ids must fit 24 bits).
    pub fn from_logits(logits: &[f32]) -> Result<Self, VerifyError> {
        let top = TopKLogits::from_logits(logits, 2);
        let (Some(&top1), Some(&v1)) = (top.ids.first(), top.values.first()) else {
            return Err(VerifyError::EmptyLogits { position: 0 });
        };
        for &id in &top.ids {
            if id >= NO_TOKEN {
                return Err(VerifyError::IdTooLarge { id });
            }
        }
        let lp = (v1 as f64 - log_sum_exp(logits)) as f32;
        Ok(TolerantEntry {
            top1,
            top1_logprob: f16_bits_to_f32(f32_to_f16_bits(lp)),
            top2: top.ids.get(1).copied(),
        })
    }

    /// The 8-byte wire form.
    pub fn pack(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[..3].copy_from_slice(&self.top1.to_le_bytes()[..3]);
        e[3..5].copy_from_slice(&f32_to_f16_bits(self.top1_logprob).to_le_bytes());
        e[5..].copy_from_slice(&self.top2.unwrap_or(NO_TOKEN).to_le_bytes()[..3]);
        e
    }

    /// Parse the 8-byte wire form (every bit pattern is a valid entry).
    pub fn unpack(e: &[u8; ENTRY_LEN]) -> Self {
        let top2 = u32::from_le_bytes([e[5], e[6], e[7], 0]);
        TolerantEntry {
            top1: u32::from_le_bytes([e[0], e[1], e[2], 0]),
            top1_logprob: f16_bits_to_f32(u16::from_le_bytes([e[3], e[4]])),
            top2: (top2 != NO_TOKEN).then_some(top2),
        }
    }

    /// Compare against the verifier's own logits. Accepts when the claimed
    /// top-1 (top-2) id is within `2 × tolerance` nats of the recomputed
    /// top-1 (top-2) log-probability — which allows a swap only when the
    /// recomputed margin is below that — and the carried top-1
    /// log-probability is within `tolerance` (+ one binary16 ulp) of the
    /// recomputed log-probability of that id. `Err` says what differed.
    pub fn check(&self, logits: &[f32], tolerance: f64) -> Result<(), String> {
        let lse = log_sum_exp(logits);
        let top = TopKLogits::from_logits(logits, 2);
        let lp = |id: u32| logits.get(id as usize).map(|&l| l as f64 - lse);
        let rank_lp = |i: usize| top.values.get(i).map(|&v| v as f64 - lse);
        let (Some(r1), Some(c1)) = (rank_lp(0), lp(self.top1)) else {
            return Err(format!("top-1 id {} is outside the vocabulary", self.top1));
        };
        if c1 < r1 - 2.0 * tolerance || c1.is_nan() {
            return Err(format!(
                "claimed top-1 id {} has log-prob {c1:.4}, recomputed top-1 id {} has {r1:.4}",
                self.top1, top.ids[0]
            ));
        }
        let drift = (self.top1_logprob as f64 - c1).abs();
        if drift.is_nan() || drift > tolerance + f16_ulp(c1) {
            return Err(format!(
                "top-1 log-prob {} differs from recomputed {c1:.4} by {drift:.4} (tolerance {tolerance})",
                self.top1_logprob
            ));
        }
        self.check_top2(&lp, rank_lp(1), c1, tolerance)
    }

    fn check_top2(
        &self,
        lp: &dyn Fn(u32) -> Option<f64>,
        r2: Option<f64>,
        c1: f64,
        tolerance: f64,
    ) -> Result<(), String> {
        match (self.top2, r2) {
            (None, None) => Ok(()),
            (Some(id), Some(r2)) if id != self.top1 => match lp(id) {
                Some(c2) if c2 >= r2 - 2.0 * tolerance && c2 <= c1 + 2.0 * tolerance => Ok(()),
                Some(c2) => Err(format!(
                    "claimed top-2 id {id} has log-prob {c2:.4}, recomputed top-2 has {r2:.4}"
                )),
                None => Err(format!("top-2 id {id} is outside the vocabulary")),
            },
            (claimed, _) => Err(format!("top-2 id {claimed:?} is not a valid second choice")),
        }
    }
}

#[cfg(test)]
mod tests;
