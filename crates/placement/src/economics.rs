//! The economics of tiers: the public price figures (one table, with
//! sources), a provider's price floor per GPU-hour (capex amortised over the
//! useful life, plus power, plus optional hosting and margin), roofline
//! throughput models, and cost per 1M tokens from throughput. Money is
//! integer micro-USD throughout; only throughput is a float.

use serde::{Deserialize, Serialize};

use crate::gpu::GpuModel;

/// Public price figures, micro-USD. Each names its source.
pub mod figures {
    /// H100 per GPU-hour on decentralized markets: ~$1.48 (the issue's
    /// figure; Vast.ai / io.net style listings, 2024–25).
    pub const H100_DECENTRALIZED_PER_GPU_HOUR_MICROS: u64 = 1_480_000;
    /// AWS p5.48xlarge on-demand list before the June 2025 cut: $98.32/h for
    /// 8 H100s, ≈ $12.29 (~$12.30) per GPU-hour.
    pub const AWS_P5_LIST_PER_GPU_HOUR_MICROS: u64 = 12_290_000;
    /// Verified on-demand H100 (Lambda, CoreWeave, RunPod secure cloud and
    /// the like): $2.40–$4.30 per GPU-hour. Low end.
    pub const VERIFIED_ON_DEMAND_LOW_PER_GPU_HOUR_MICROS: u64 = 2_400_000;
    /// High end of the verified on-demand range.
    pub const VERIFIED_ON_DEMAND_HIGH_PER_GPU_HOUR_MICROS: u64 = 4_300_000;
    /// Useful life, years. 3 is the conservative case; hyperscalers
    /// depreciate servers over 5–6 years (Microsoft, Alphabet: 6; Amazon cut
    /// to 5 in 2025) — the 3-vs-4–6 debate that moves the cost curve.
    pub const DEFAULT_USEFUL_LIFE_YEARS: u32 = 3;
    /// Electricity, $/kWh: $0.12 (US commercial average ~$0.13, industrial
    /// ~$0.08, EIA 2024).
    pub const DEFAULT_POWER_PER_KWH_MICROS: u64 = 120_000;
    /// Power usage effectiveness, basis points: 1.3 (Uptime Institute's
    /// survey average is ~1.56; hyperscale sites ~1.1).
    pub const DEFAULT_PUE_BP: u32 = 13_000;
    /// Model FLOPs utilisation assumed for prefill (typical 30–50%).
    pub const PREFILL_MFU: f64 = 0.4;
    /// Memory-bandwidth utilisation assumed for decode (typical 50–70%).
    pub const DECODE_MBU: f64 = 0.6;
    /// Concurrent sequences assumed when serving at saturation.
    pub const SERVING_BATCH: f64 = 32.0;
}

/// Inputs of the price floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorConfig {
    /// Useful life, years (1..=10).
    pub useful_life_years: u32,
    /// Electricity price per kWh, micro-USD.
    pub power_per_kwh_micros: u64,
    /// PUE, basis points (10,000 = 1.0).
    pub pue_bp: u32,
    /// Utilisation the capex is spread over, basis points (10,000 = every
    /// hour sold; the floor is lowest there).
    pub utilization_bp: u32,
    /// Hosting (space, network, staff) per GPU-hour, micro-USD.
    pub hosting_per_gpu_hour_micros: u64,
    /// Margin on top, basis points.
    pub margin_bp: u32,
}

impl Default for FloorConfig {
    fn default() -> Self {
        FloorConfig {
            useful_life_years: figures::DEFAULT_USEFUL_LIFE_YEARS,
            power_per_kwh_micros: figures::DEFAULT_POWER_PER_KWH_MICROS,
            pue_bp: figures::DEFAULT_PUE_BP,
            utilization_bp: 10_000,
            hosting_per_gpu_hour_micros: 0,
            margin_bp: 0,
        }
    }
}

/// A price floor and its parts, micro-USD per GPU-hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PriceFloor {
    /// Capex amortisation.
    pub capex_micros: u64,
    /// Power including PUE.
    pub power_micros: u64,
    /// Hosting.
    pub hosting_micros: u64,
    /// Margin.
    pub margin_micros: u64,
    /// Sum.
    pub total_micros: u64,
}

const HOURS_PER_YEAR: u128 = 8_760;

/// Price floor per GPU-hour (rounded up). Life and utilisation are clamped
/// to at least 1 year and 1 bp.
pub fn price_floor(gpu: GpuModel, cfg: &FloorConfig) -> PriceFloor {
    let spec = gpu.spec();
    let years = u128::from(cfg.useful_life_years.max(1));
    let util = u128::from(cfg.utilization_bp.clamp(1, 10_000));
    let capex =
        (u128::from(spec.capex_usd) * 1_000_000 * 10_000).div_ceil(years * HOURS_PER_YEAR * util);
    // W × PUE × $/kWh: watts/1000 kW × micro-USD per kWh.
    let power =
        (u128::from(spec.tdp_w) * u128::from(cfg.pue_bp) * u128::from(cfg.power_per_kwh_micros))
            .div_ceil(1_000 * 10_000);
    let hosting = u128::from(cfg.hosting_per_gpu_hour_micros);
    let margin = ((capex + power + hosting) * u128::from(cfg.margin_bp)).div_ceil(10_000);
    let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    PriceFloor {
        capex_micros: sat(capex),
        power_micros: sat(power),
        hosting_micros: sat(hosting),
        margin_micros: sat(margin),
        total_micros: sat(capex + power + hosting + margin),
    }
}

/// Cost per 1M tokens at `price_per_hour_micros` and `tokens_per_s`
/// (rounded up; `u64::MAX` when the throughput is not positive).
pub fn cost_per_mtok_micros(price_per_hour_micros: u64, tokens_per_s: f64) -> u64 {
    let per_hour = (tokens_per_s * 3_600.0).floor();
    if per_hour.is_nan() || per_hour < 1.0 {
        return u64::MAX;
    }
    let n = u128::from(price_per_hour_micros) * 1_000_000;
    u64::try_from(n.div_ceil(per_hour as u128)).unwrap_or(u64::MAX)
}

/// Roofline prefill throughput, tok/s: `gpus × dense FLOPS × MFU / (2 ×
/// params)` (a forward pass costs ~2 FLOPs per parameter per token).
pub fn modelled_prefill_tps(gpu: GpuModel, gpus: u32, params: u64) -> f64 {
    let s = gpu.spec();
    f64::from(gpus.max(1)) * s.dense_tflops * 1e12 * figures::PREFILL_MFU
        / (2.0 * params.max(1) as f64)
}

/// Roofline single-stream decode throughput, tok/s: every token reads all
/// weights once, `gpus × bandwidth × MBU / weight bytes`.
pub fn modelled_decode_tps(gpu: GpuModel, gpus: u32, size_bytes: u64) -> f64 {
    let s = gpu.spec();
    f64::from(gpus.max(1)) * s.mem_bw_gbps * 1e9 * figures::DECODE_MBU / size_bytes.max(1) as f64
}

/// Aggregate serving throughput at saturation, tok/s: a batch of
/// [`figures::SERVING_BATCH`] streams, capped by compute.
pub fn modelled_serving_tps(gpu: GpuModel, gpus: u32, params: u64, size_bytes: u64) -> f64 {
    let decode = modelled_decode_tps(gpu, gpus, size_bytes) * figures::SERVING_BATCH;
    decode.min(modelled_prefill_tps(gpu, gpus, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_parts_add_up_and_life_lowers_it() {
        let cfg = FloorConfig::default();
        let f = price_floor(GpuModel::H100, &cfg);
        assert_eq!(
            f.total_micros,
            f.capex_micros + f.power_micros + f.hosting_micros + f.margin_micros
        );
        // $30,000 / (3 × 8,760 h) = $1.1416/h, rounded up in micro-USD.
        let want_capex = (30_000u64 * 1_000_000).div_ceil(3 * 8_760);
        assert_eq!(f.capex_micros, want_capex);
        // 700 W × 1.3 × $0.12/kWh = $0.1092/h.
        assert_eq!(f.power_micros, 109_200);
        let six = price_floor(
            GpuModel::H100,
            &FloorConfig {
                useful_life_years: 6,
                ..cfg
            },
        );
        assert!(six.total_micros < f.total_micros);
        assert_eq!(six.power_micros, f.power_micros);
        let half = price_floor(
            GpuModel::H100,
            &FloorConfig {
                utilization_bp: 5_000,
                ..cfg
            },
        );
        assert!(half.capex_micros >= 2 * f.capex_micros - 1);
        let m = price_floor(
            GpuModel::H100,
            &FloorConfig {
                margin_bp: 1_000,
                ..cfg
            },
        );
        assert_eq!(m.margin_micros, (f.total_micros * 1_000).div_ceil(10_000));
        // Older, cheaper chips have lower floors.
        assert!(price_floor(GpuModel::T4, &cfg).total_micros < f.total_micros);
    }

    #[test]
    fn cost_per_mtok_from_throughput() {
        // $3.60/h at 1,000 tok/s = 3.6M tok/h → $1 per 1M tokens.
        assert_eq!(cost_per_mtok_micros(3_600_000, 1_000.0), 1_000_000);
        assert!(cost_per_mtok_micros(3_600_000, 2_000.0) < 1_000_000);
        assert_eq!(cost_per_mtok_micros(1, 0.0), u64::MAX);
        assert_eq!(cost_per_mtok_micros(1, f64::NAN), u64::MAX);
    }

    #[test]
    fn roofline_scales_with_hardware_and_model() {
        let p8 = 8_000_000_000;
        let b8 = 16_000_000_000;
        assert!(
            modelled_prefill_tps(GpuModel::H100, 1, p8) > modelled_prefill_tps(GpuModel::T4, 1, p8)
        );
        assert!(
            modelled_decode_tps(GpuModel::H100, 2, b8) > modelled_decode_tps(GpuModel::H100, 1, b8)
        );
        assert!(
            modelled_decode_tps(GpuModel::H100, 1, b8 / 10)
                > modelled_decode_tps(GpuModel::H100, 1, b8)
        );
        // H100 decode of a 16 GB model: 3,350 GB/s × 0.6 / 16 GB ≈ 126 tok/s.
        let d = modelled_decode_tps(GpuModel::H100, 1, b8);
        assert!((d - 125.6).abs() < 0.1, "{d}");
        let s = modelled_serving_tps(GpuModel::H100, 1, p8, b8);
        assert!(s <= modelled_prefill_tps(GpuModel::H100, 1, p8) && s > d);
    }
}
