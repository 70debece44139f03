//! Score components, each mapped to `[0, 1]` by a fixed monotone function (no
//! normalisation over the candidate set, so a score is a property of one
//! provider and one request; that is what lets the search prune with upper
//! bounds and keeps placement deterministic):
//!
//! - cost: `ref / (ref + price)`, price per 1M tokens blended 3:1
//!   input:output (Artificial Analysis's convention), or per hour for
//!   fine-tune;
//! - latency: `ref / (ref + ttft)`, ref = the SLO (interactive) or
//!   `latency_ref_ms`;
//! - reputation: basis points / 10,000;
//! - load: `1 - (active + queued) / (max_concurrency × queue_factor)`;
//! - tier fit: capex of the cheapest known GPU box that holds the model,
//!   divided by the capex of the GPUs the model would occupy here (1 = no
//!   bigger than needed; an H100 serving a 135M model scores ~0.05).
//!
//! The weighted total splits into a *static* part (cost, reputation, tier,
//! cold-load penalty: fixed between registry updates, so the index pre-sorts
//! by it) and a *dynamic* part (latency, load: bounded above per bucket).

use serde::Serialize;

use crate::config::Weights;
use crate::gpu::{Architecture, GPU_TABLE};

/// Cost score of a price against a reference price (both micro-USD).
pub fn cost_score(price_micros: u64, reference_micros: u64) -> f64 {
    let r = reference_micros as f64;
    r / (r + price_micros as f64)
}

/// Price per 1M tokens blended 3:1 input:output.
pub fn blended_per_mtok(input_micros: u64, output_micros: u64) -> u64 {
    (3 * input_micros + output_micros) / 4
}

/// Latency score of a TTFT against a reference.
pub fn latency_score(ttft_ms: f64, reference_ms: f64) -> f64 {
    reference_ms / (reference_ms + ttft_ms.max(0.0))
}

/// Load score: the free fraction of the provider's admission limit.
pub fn load_score(active: u32, queued: u32, max_concurrency: u32, queue_factor: u32) -> f64 {
    let limit = f64::from(max_concurrency.max(1)) * f64::from(queue_factor.max(1));
    let used = f64::from(active) + f64::from(queued);
    (1.0 - used / limit).clamp(0.0, 1.0)
}

/// Reputation score.
pub fn reputation_score(bp: u16) -> f64 {
    f64::from(bp.min(10_000)) / 10_000.0
}

/// Most GPUs a reference box may have.
const MAX_REFERENCE_GPUS: u64 = 8;

/// Capex (USD) of the cheapest known GPU box that holds `need_mib`: one GPU,
/// or up to 8 data-centre GPUs of one model (NVLink-capable). CPUs are not a
/// reference (they hold anything in RAM, which would make every GPU look
/// wasted). `None` if nothing does.
pub fn reference_capex_usd(need_mib: u64) -> Option<u64> {
    GPU_TABLE
        .iter()
        .filter(|s| s.architecture != Architecture::Cpu)
        .filter_map(|s| {
            let gpus = need_mib.div_ceil(u64::from(s.vram_gib) * 1024).max(1);
            let ok = gpus == 1 || (s.datacenter && gpus <= MAX_REFERENCE_GPUS);
            ok.then_some(s.capex_usd * gpus)
        })
        .min()
}

/// Tier-fit score: reference capex over occupied capex, at most 1.
pub fn tier_score(reference_capex_usd: Option<u64>, occupied_capex_usd: u64) -> f64 {
    match reference_capex_usd {
        Some(r) if occupied_capex_usd > 0 => (r as f64 / occupied_capex_usd as f64).min(1.0),
        _ => 1.0,
    }
}

/// The static part of a weighted score.
pub fn static_part(w: &Weights, cost: f64, reputation: f64, tier: f64, cold_penalty: f64) -> f64 {
    w.cost * cost + w.reputation * reputation + w.tier * tier - cold_penalty
}

/// The dynamic part of a weighted score.
pub fn dynamic_part(w: &Weights, latency: f64, load: f64) -> f64 {
    w.latency * latency + w.load * load
}

/// A score and its parts, for explanations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoreBreakdown {
    /// Cost component, 0..1.
    pub cost: f64,
    /// Latency component, 0..1.
    pub latency: f64,
    /// Reputation component, 0..1.
    pub reputation: f64,
    /// Load component, 0..1.
    pub load: f64,
    /// Tier-fit component, 0..1.
    pub tier: f64,
    /// Points subtracted for a cold load.
    pub cold_penalty: f64,
    /// The weights applied.
    pub weights: Weights,
    /// Weighted total (static + dynamic).
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuModel;

    #[test]
    fn components_are_monotone_and_bounded() {
        assert!(cost_score(100, 200) > cost_score(300, 200));
        assert_eq!(cost_score(200, 200), 0.5);
        assert!(latency_score(100.0, 500.0) > latency_score(400.0, 500.0));
        assert_eq!(latency_score(500.0, 500.0), 0.5);
        assert_eq!(load_score(0, 0, 2, 4), 1.0);
        assert_eq!(load_score(4, 0, 2, 4), 0.5);
        assert_eq!(load_score(100, 100, 2, 4), 0.0);
        assert_eq!(reputation_score(20_000), 1.0);
        assert_eq!(blended_per_mtok(100, 500), 200);
    }

    #[test]
    fn tier_fit_prefers_the_smallest_sufficient_chip() {
        // A 500 MiB model: the cheapest box that holds it is one RTX 3090.
        let r = reference_capex_usd(500);
        assert_eq!(r, Some(GpuModel::Rtx3090.spec().capex_usd));
        let h100 = tier_score(r, GpuModel::H100.spec().capex_usd);
        let t4 = tier_score(r, GpuModel::T4.spec().capex_usd);
        assert!(h100 < 0.1 && t4 > h100, "{h100} {t4}");
        // A 140 GiB model needs several data-centre GPUs (consumer cards
        // cannot be NVLinked): the cheapest such box is dearer than any
        // single consumer card and no dearer than one B200.
        let big = reference_capex_usd(140 * 1024).unwrap();
        assert!(big > GpuModel::Rtx5090.spec().capex_usd * 6);
        assert!(big <= GpuModel::B200.spec().capex_usd);
        assert_eq!(tier_score(None, 5), 1.0);
        assert_eq!(reference_capex_usd(u64::MAX / 2), None);
    }
}
