//! Seeded synthetic data: a realistic provider fleet (regions, GPU mix,
//! models that fit, prices derived from price floors and throughput, loads,
//! RTT samples, attestation, cooldowns) and a realistic request mix. Used by
//! the bench, `plan`'s defaults and the tests. Deterministic for a seed
//! (SplitMix64, no external RNG, so figures do not move with a dependency).

use crate::economics::{
    cost_per_mtok_micros, modelled_prefill_tps, modelled_serving_tps, price_floor, FloorConfig,
};
use crate::failover::FailureKind;
use crate::gpu::GpuModel;
use crate::latency::{fiber_floor_rtt_ms, haversine_km, GeoPoint};
use crate::provider::{
    limits, AttestationLevel, Fit, Hardware, Interconnect, OfferClaim, Provenance, ProviderClaims,
    ProviderId,
};
use crate::registry::Registry;
use crate::workload::{ClientInfo, ModelSpec, PriceCap, Request, WorkloadClass};
use crate::PlacementConfig;

/// The fixed "now" of the synthetic world, unix ms (benches and tests).
pub const NOW_MS: u64 = 1_750_000_000_000;

/// SplitMix64: a tiny, fast, well-mixed deterministic generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Picks by integer weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut x = self.below(total);
        for &(t, w) in items {
            if x < u64::from(w) {
                return t;
            }
            x -= u64::from(w);
        }
        items[items.len() - 1].0
    }
}

/// A region: label, coordinates, and its share of clients and providers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Site {
    /// Label.
    pub region: &'static str,
    /// Coordinates.
    pub point: GeoPoint,
    /// Relative weight.
    pub weight: u32,
}

const fn site(region: &'static str, lat: f64, lon: f64, weight: u32) -> Site {
    Site {
        region,
        point: GeoPoint::new(lat, lon),
        weight,
    }
}

/// Cloud-style regions at their usual cities.
pub const SITES: [Site; 14] = [
    site("us-east", 39.04, -77.49, 16),
    site("us-central", 41.26, -95.86, 8),
    site("us-west", 45.60, -121.18, 10),
    site("ca-central", 45.50, -73.57, 4),
    site("sa-east", -23.55, -46.63, 5),
    site("eu-west", 53.35, -6.26, 10),
    site("eu-central", 50.11, 8.68, 12),
    site("eu-north", 59.33, 18.07, 5),
    site("me-central", 25.20, 55.27, 3),
    site("ap-south", 19.08, 72.88, 6),
    site("ap-southeast", 1.35, 103.82, 7),
    site("ap-northeast", 35.68, 139.65, 8),
    site("au-southeast", -33.87, 151.21, 4),
    site("af-south", -33.92, 18.42, 2),
];

/// A catalog model: id, parameters, weight bytes, request popularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogModel {
    /// Id.
    pub id: &'static str,
    /// Parameters.
    pub params: u64,
    /// Weight bytes (BF16 up to 32B, FP8 above).
    pub size_bytes: u64,
    /// Relative request share.
    pub popularity: u32,
}

const B: u64 = 1_000_000_000;
const M: u64 = 1_000_000;

const fn cm(id: &'static str, params: u64, size_bytes: u64, popularity: u32) -> CatalogModel {
    CatalogModel {
        id,
        params,
        size_bytes,
        popularity,
    }
}

/// Open-weight models a network like this serves.
pub const CATALOG: [CatalogModel; 17] = [
    cm("smollm2-135m", 135 * M, 270 * M, 6),
    cm("qwen2.5-0.5b", 500 * M, B, 6),
    cm("llama-3.2-1b", 1_240 * M, 2_480 * M, 8),
    cm("llama-3.2-3b", 3_210 * M, 6_420 * M, 8),
    cm("phi-3.5-mini", 3_820 * M, 7_640 * M, 5),
    cm("mistral-7b", 7_250 * M, 14_500 * M, 8),
    cm("llama-3.1-8b", 8_030 * M, 16_060 * M, 20),
    cm("qwen2.5-7b", 7_620 * M, 15_240 * M, 8),
    cm("gemma-2-9b", 9_240 * M, 18_480 * M, 4),
    cm("qwen2.5-14b", 14_770 * M, 29_540 * M, 5),
    cm("mistral-small-24b", 23_600 * M, 47_200 * M, 3),
    cm("qwen2.5-32b", 32_760 * M, 65_520 * M, 4),
    cm("mixtral-8x7b", 46_700 * M, 46_700 * M, 3),
    cm("llama-3.3-70b", 70_600 * M, 70_600 * M, 8),
    cm("qwen2.5-72b", 72_700 * M, 72_700 * M, 3),
    cm("llama-3.1-405b", 405 * B, 405 * B, 1),
    cm("deepseek-v3", 671 * B, 671 * B, 2),
];

/// The catalog as model specs.
pub fn catalog_specs() -> Vec<ModelSpec> {
    CATALOG
        .iter()
        .map(|m| ModelSpec::from_size(m.id, m.params, m.size_bytes))
        .collect()
}

/// The GPU mix of a decentralized fleet (consumer-heavy).
pub const GPU_MIX: [(GpuModel, u32); 14] = [
    (GpuModel::Rtx4090, 24),
    (GpuModel::Rtx3090, 18),
    (GpuModel::Rtx5090, 3),
    (GpuModel::A100_80, 8),
    (GpuModel::A100_40, 4),
    (GpuModel::H100, 12),
    (GpuModel::H100Pcie, 3),
    (GpuModel::H200, 3),
    (GpuModel::B200, 1),
    (GpuModel::L40S, 7),
    (GpuModel::A10, 5),
    (GpuModel::L4, 4),
    (GpuModel::T4, 5),
    (GpuModel::V100, 3),
];

fn hardware(rng: &mut Rng) -> Hardware {
    let gpu = rng.weighted(&GPU_MIX);
    let dc = gpu.spec().datacenter;
    let count = if dc {
        rng.weighted(&[(1, 30), (2, 10), (4, 20), (8, 40)])
    } else {
        rng.weighted(&[(1, 60), (2, 25), (4, 10), (8, 5)])
    };
    let interconnect = if dc && count > 1 && rng.chance(0.85) {
        if count == 8 && rng.chance(0.3) {
            Interconnect::Infiniband
        } else {
            Interconnect::Nvlink
        }
    } else {
        Interconnect::Pcie
    };
    let vram = u64::from(gpu.spec().vram_gib) * 1024;
    Hardware {
        gpu,
        gpu_count: count,
        vram_mib_per_gpu: vram - vram / 50,
        interconnect,
    }
}

/// An offer for `m` on `hw`, priced from the box's hourly price and the
/// roofline throughput, with a markup.
fn offer(rng: &mut Rng, m: &CatalogModel, hw: &Hardware, hourly: u64, loaded: bool) -> OfferClaim {
    let spec = ModelSpec::from_size(m.id, m.params, m.size_bytes);
    let gpus = match hw.fit(spec.vram_mib) {
        Fit::Fits { gpus } => gpus,
        _ => hw.gpu_count,
    };
    let used_hourly = hourly / u64::from(hw.gpu_count) * u64::from(gpus);
    let serve = modelled_serving_tps(hw.gpu, gpus, m.params, m.size_bytes);
    let markup = rng.range(1.0, 1.6);
    let clamp =
        |v: f64| (v as i64).clamp(limits::MIN_PRICE_MICROS, limits::MAX_PRICE_PER_MTOK_MICROS);
    let out = cost_per_mtok_micros(used_hourly, serve) as f64 * markup;
    let inp = cost_per_mtok_micros(used_hourly, modelled_prefill_tps(hw.gpu, gpus, m.params))
        as f64
        * markup;
    let claim = rng.chance(0.6);
    OfferClaim {
        model: m.id.to_string(),
        params: m.params as i64,
        size_bytes: m.size_bytes as i64,
        vram_mib: spec.vram_mib as i64,
        input_per_mtok_micros: clamp(inp.max(out / 8.0)),
        output_per_mtok_micros: clamp(out),
        loaded,
        prefill_tps: claim
            .then(|| modelled_prefill_tps(hw.gpu, gpus, m.params) * rng.range(0.7, 1.1)),
        decode_tps: claim.then(|| {
            crate::economics::modelled_decode_tps(hw.gpu, gpus, m.size_bytes) * rng.range(0.7, 1.1)
        }),
    }
}

/// Claims of synthetic provider `i`.
pub fn provider_claims(rng: &mut Rng, i: usize) -> ProviderClaims {
    let hw = hardware(rng);
    let s = rng.weighted(&SITES.map(|s| (s, s.weight)));
    let lat = (s.point.lat + rng.range(-3.0, 3.0)).clamp(-89.0, 89.0);
    let lon = (s.point.lon + rng.range(-3.0, 3.0)).clamp(-179.0, 179.0);
    let floor = price_floor(hw.gpu, &FloorConfig::default()).total_micros;
    let hourly = ((floor * u64::from(hw.gpu_count)) as f64 * rng.range(1.1, 2.0)) as u64;
    let fitting: Vec<(usize, u32)> = CATALOG
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            matches!(
                hw.fit(ModelSpec::from_size(m.id, m.params, m.size_bytes).vram_mib),
                Fit::Fits { .. }
            )
        })
        .map(|(j, m)| (j, m.popularity))
        .collect();
    let mut offers: Vec<OfferClaim> = Vec::new();
    let n_loaded = 1 + rng.below(3);
    let n_cold = rng.below(3);
    for k in 0..(n_loaded + n_cold) {
        let j = rng.weighted(&fitting);
        if offers.iter().any(|o| o.model == CATALOG[j].id) {
            continue;
        }
        offers.push(offer(rng, &CATALOG[j], &hw, hourly, k < n_loaded));
    }
    ProviderClaims {
        id: ProviderId(format!("p{i:06}")),
        gpu: hw.gpu.spec().name.to_string(),
        gpu_count: i64::from(hw.gpu_count),
        vram_mib_per_gpu: hw.vram_mib_per_gpu as i64,
        interconnect: hw.interconnect,
        region: s.region.to_string(),
        lat,
        lon,
        price_per_hour_micros: hourly as i64,
        max_concurrency: i64::from(4 * hw.gpu_count),
        attestation: AttestationLevel::None,
        offers,
    }
}

/// Measured state for a synthetic provider: RTT samples (80%), load,
/// reputation, uptime, attestation, the odd cooldown or ban.
fn measure(reg: &mut Registry, rng: &mut Rng, c: &ProviderClaims, now_ms: u64) {
    let id = &c.id;
    let coord = reg.config().coordinator;
    let floor = fiber_floor_rtt_ms(haversine_km(coord, GeoPoint::new(c.lat, c.lon)));
    let ok = "synthetic provider is registered";
    if rng.chance(0.8) {
        let base = floor * rng.range(1.2, 2.5) + rng.range(1.0, 10.0);
        for _ in 0..5 {
            let us = (base * rng.range(0.95, 1.2) * 1e3) as u32;
            reg.record_rtt(id, us.max(1)).expect(ok);
        }
    }
    let max = (c.max_concurrency as u32).max(1);
    let active = rng.below(u64::from(max) + 1) as u32;
    let queued = if rng.chance(0.2) {
        rng.below(u64::from(max) * 2) as u32
    } else {
        0
    };
    reg.set_load(id, active, queued).expect(ok);
    reg.set_reputation(id, 4_000 + rng.below(6_001) as u16)
        .expect(ok);
    reg.set_uptime(id, 9_000 + rng.below(1_001) as u16)
        .expect(ok);
    let dc = GpuModel::parse(&c.gpu).is_some_and(|g| g.spec().datacenter);
    let att = rng.unit();
    if att < 0.2 {
        reg.set_attestation(id, AttestationLevel::Tee, Provenance::Attested)
            .expect(ok);
    } else if att < 0.3 && dc {
        reg.set_attestation(id, AttestationLevel::TeeGpu, Provenance::Attested)
            .expect(ok);
    }
    if rng.chance(0.02) {
        reg.report_failure(id, FailureKind::Timeout, now_ms)
            .expect(ok);
    }
    if rng.chance(0.005) {
        reg.set_banned(id, true).expect(ok);
    }
}

/// A registry of `n` synthetic providers with measurements at `now_ms`.
pub fn fleet(n: usize, seed: u64, cfg: PlacementConfig, now_ms: u64) -> Registry {
    let mut reg = Registry::new(cfg).expect("valid config");
    for spec in catalog_specs() {
        reg.register_model(spec);
    }
    let mut rng = Rng::new(seed);
    for i in 0..n {
        let c = provider_claims(&mut rng, i);
        reg.upsert(&c.id, &c, now_ms)
            .expect("synthetic claims are valid");
        measure(&mut reg, &mut rng, &c, now_ms);
    }
    reg
}

fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> u32 {
    (lo * (hi / lo).powf(rng.unit())) as u32
}

/// One synthetic request at `now_ms`: 70% interactive, 25% batch, 5%
/// fine-tune; some with trust or price limits, a few retries with
/// providers to exclude (ids `p000000..p{providers}`).
pub fn request(rng: &mut Rng, providers: usize, now_ms: u64) -> Request {
    let m = CATALOG[rng.weighted(
        &CATALOG
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.popularity))
            .collect::<Vec<_>>(),
    )];
    let r = rng.unit();
    let (class, prompt, output) = if r < 0.70 {
        let slo = rng.weighted(&[(500, 70), (300, 15), (1_000, 15)]);
        (
            WorkloadClass::Interactive { ttft_slo_ms: slo },
            log_uniform(rng, 50.0, 4_000.0),
            log_uniform(rng, 50.0, 1_000.0),
        )
    } else if r < 0.95 {
        let deadline_ms = rng.weighted(&[(3_600_000, 30), (6 * 3_600_000, 30), (86_400_000, 40)]);
        (
            WorkloadClass::Batch { deadline_ms },
            log_uniform(rng, 200.0, 8_000.0),
            log_uniform(rng, 100.0, 2_000.0),
        )
    } else {
        let min_vram_gib = rng.weighted(&[(24, 40), (48, 25), (80, 25), (160, 8), (640, 2)]);
        (
            WorkloadClass::FineTune {
                hours: 1 + rng.below(24) as u32,
                min_vram_gib,
            },
            0,
            0,
        )
    };
    let s = rng.weighted(&SITES.map(|s| (s, s.weight)));
    let mut req = Request::new(m.id, class, prompt, output, now_ms);
    req.client = ClientInfo {
        location: Some(GeoPoint::new(
            s.point.lat + rng.range(-2.0, 2.0),
            s.point.lon + rng.range(-2.0, 2.0),
        )),
        region: Some(s.region.to_string()),
        rtt_to_coordinator_ms: None,
    };
    if rng.chance(0.10) {
        req.min_attestation = AttestationLevel::Tee;
    }
    if rng.chance(0.20) {
        req.price_cap = PriceCap {
            output_per_mtok_micros: Some(rng.below(2_000_000) + 100_000),
            ..PriceCap::default()
        };
    }
    if rng.chance(0.05) && providers > 0 {
        req.exclude = (0..1 + rng.below(2))
            .map(|_| ProviderId(format!("p{:06}", rng.below(providers as u64))))
            .collect();
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_uniform_enough() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut r = Rng::new(1);
        let n = 20_000;
        let hits = (0..n).filter(|_| r.chance(0.25)).count();
        assert!((hits as f64 / n as f64 - 0.25).abs() < 0.02, "{hits}");
        assert!((0..1_000).all(|_| r.below(3) < 3));
    }

    #[test]
    fn synthetic_claims_validate() {
        let mut rng = Rng::new(3);
        for i in 0..300 {
            let c = provider_claims(&mut rng, i);
            assert!(c.validate().is_ok(), "{:?}: {:?}", c, c.validate());
        }
    }
}
