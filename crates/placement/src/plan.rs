//! `proofmesh plan`: simulate a workload mix on a fleet and report cost per
//! 1M tokens, SLO attainment, the saving from routing simple work to older
//! chips (against the same fleet with every GPU an H100), and colocated
//! (one site, verified on-demand prices) against decentralized placement.
//!
//! Prices: each GPU's hourly price is its price floor
//! ([`crate::economics::price_floor`]) scaled so an H100 costs the scenario's
//! market figure ($1.48/h decentralized, the $3.35 midpoint of $2.40–$4.30
//! verified on-demand for colocated), unless the fleet entry names one.
//! Per-token offers are cost-based: the hourly price of the GPUs a model
//! occupies over the roofline throughput (prefill for input, batched decode
//! for output). Requests arrive as a seeded Poisson stream; each placed job
//! occupies a slot until its estimated completion, so load builds up and
//! queueing shows in TTFT. SLO attainment is on estimates (modelled), not
//! measured runs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::config::{PlacementConfig, Topology};
use crate::economics::{
    cost_per_mtok_micros, figures, modelled_prefill_tps, modelled_serving_tps, price_floor,
    FloorConfig,
};
use crate::error::PlanError;
use crate::gpu::GpuModel;
use crate::latency::GeoPoint;
use crate::provider::{
    AttestationLevel, Fit, Hardware, Interconnect, OfferClaim, ProviderClaims, ProviderId,
};
use crate::registry::Registry;
use crate::synthetic::Rng;
use crate::workload::{ClientInfo, ModelSpec, Request, WorkloadClass};

/// Boxes of one kind at one site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetEntry {
    /// GPU model.
    pub gpu: GpuModel,
    /// GPUs per box.
    pub gpus_per_box: u32,
    /// Interconnect inside a box.
    pub interconnect: Interconnect,
    /// Region label.
    pub region: String,
    /// Site coordinates.
    pub location: GeoPoint,
    /// How many boxes.
    pub boxes: u32,
    /// Price per GPU-hour, micro-USD; `None` = floor scaled to the market.
    #[serde(default)]
    pub price_per_gpu_hour_micros: Option<u64>,
}

/// One kind of request in the mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixItem {
    /// Label.
    pub name: String,
    /// Workload class.
    pub class: WorkloadClass,
    /// Model.
    pub model: ModelSpec,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Relative share of requests.
    pub share: u32,
}

/// Plan settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanConfig {
    /// Requests simulated per scenario.
    pub requests: u32,
    /// Arrival rate, requests/s.
    pub arrivals_per_s: f64,
    /// Seed.
    pub seed: u64,
    /// Price-floor inputs.
    pub floor: FloorConfig,
    /// H100 price on decentralized markets, micro-USD/GPU-h.
    pub decentralized_h100_per_gpu_hour_micros: u64,
    /// H100 price colocated (verified on-demand), micro-USD/GPU-h.
    pub colocated_h100_per_gpu_hour_micros: u64,
    /// The colocated site.
    pub colocated_site: GeoPoint,
    /// Where clients are (picked uniformly per request).
    pub client_sites: Vec<GeoPoint>,
    /// Placement settings (default: direct topology, so client distance counts).
    pub placement: PlacementConfig,
}

impl Default for PlanConfig {
    fn default() -> Self {
        let placement = PlacementConfig {
            topology: Topology::Direct,
            ..PlacementConfig::default()
        };
        PlanConfig {
            requests: 5_000,
            arrivals_per_s: 50.0,
            seed: 1,
            floor: FloorConfig::default(),
            decentralized_h100_per_gpu_hour_micros: figures::H100_DECENTRALIZED_PER_GPU_HOUR_MICROS,
            colocated_h100_per_gpu_hour_micros: (figures::VERIFIED_ON_DEMAND_LOW_PER_GPU_HOUR_MICROS
                + figures::VERIFIED_ON_DEMAND_HIGH_PER_GPU_HOUR_MICROS)
                / 2,
            colocated_site: placement.coordinator,
            client_sites: crate::synthetic::SITES.iter().map(|s| s.point).collect(),
            placement,
        }
    }
}

/// The outcome of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Providers (boxes).
    pub providers: usize,
    /// Requests placed.
    pub placed: u32,
    /// Requests with no feasible provider.
    pub unplaced: u32,
    /// Tokens of placed inference jobs.
    pub tokens: u64,
    /// Cost of placed inference jobs, micro-USD.
    pub inference_cost_micros: u64,
    /// Cost per 1M tokens, micro-USD.
    pub cost_per_mtok_micros: u64,
    /// Cost of fine-tune jobs, micro-USD.
    pub fine_tune_cost_micros: u64,
    /// Requests with an SLO or deadline.
    pub slo_requests: u32,
    /// Of those, met (estimated); unplaced ones count as missed.
    pub slo_met: u32,
    /// slo_met / slo_requests, basis points.
    pub slo_attainment_bp: u32,
    /// Median estimated TTFT of placed interactive jobs, ms.
    pub interactive_p50_ttft_ms: f64,
    /// 99th percentile, ms.
    pub interactive_p99_ttft_ms: f64,
    /// Placed jobs per GPU model.
    pub jobs_by_gpu: BTreeMap<String, u32>,
}

/// The plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    /// Requests per scenario.
    pub requests: u32,
    /// The fleet as given, decentralized, tiered routing.
    pub decentralized: ScenarioReport,
    /// The same boxes with every GPU an H100.
    pub all_h100: ScenarioReport,
    /// The fleet's boxes all at one site at verified on-demand prices.
    pub colocated: ScenarioReport,
    /// Saving per 1M tokens of tiered routing over all-H100, micro-USD.
    pub tier_saving_per_mtok_micros: i64,
    /// The same as a share of the all-H100 cost, basis points.
    pub tier_saving_bp: i64,
    /// Colocated cost per 1M tokens over decentralized, basis points.
    pub colocated_to_decentralized_cost_bp: i64,
    /// Price floor of an H100 under `floor`, micro-USD/GPU-h.
    pub h100_floor_per_gpu_hour_micros: u64,
    /// The old AWS p5 list price per H100-hour, for reference.
    pub aws_p5_list_per_gpu_hour_micros: u64,
}

/// Hourly price per GPU for `gpu` when an H100 costs `h100_price`.
fn market_price(gpu: GpuModel, floor: &FloorConfig, h100_price: u64) -> u64 {
    let f = u128::from(price_floor(gpu, floor).total_micros);
    let h = u128::from(price_floor(GpuModel::H100, floor).total_micros).max(1);
    u64::try_from(f * u128::from(h100_price) / h)
        .unwrap_or(u64::MAX)
        .max(1)
}

fn offers_for(hw: &Hardware, gpu_price: u64, mix: &[MixItem]) -> Vec<OfferClaim> {
    let mut out: Vec<OfferClaim> = Vec::new();
    for item in mix {
        let m = &item.model;
        if out.iter().any(|o| o.model == m.id)
            || matches!(item.class, WorkloadClass::FineTune { .. })
        {
            continue;
        }
        let Fit::Fits { gpus } = hw.fit(m.vram_mib) else {
            continue;
        };
        let used = gpu_price * u64::from(gpus);
        let clamp =
            |v: u64| v.clamp(1, crate::provider::limits::MAX_PRICE_PER_MTOK_MICROS as u64) as i64;
        out.push(OfferClaim {
            model: m.id.clone(),
            params: m.params as i64,
            size_bytes: m.size_bytes as i64,
            vram_mib: m.vram_mib as i64,
            input_per_mtok_micros: clamp(cost_per_mtok_micros(
                used,
                modelled_prefill_tps(hw.gpu, gpus, m.params),
            )),
            output_per_mtok_micros: clamp(cost_per_mtok_micros(
                used,
                modelled_serving_tps(hw.gpu, gpus, m.params, m.size_bytes),
            )),
            loaded: true,
            prefill_tps: None,
            decode_tps: None,
        });
    }
    out
}

/// Builds a registry for a scenario: `map` rewrites each entry.
fn build(
    name: &str,
    fleet: &[FleetEntry],
    mix: &[MixItem],
    cfg: &PlanConfig,
    h100_price: u64,
    map: impl Fn(&FleetEntry) -> FleetEntry,
) -> Result<Registry, PlanError> {
    let mut reg = Registry::new(cfg.placement.clone())?;
    for item in mix {
        reg.register_model(item.model.clone());
    }
    let mut n = 0;
    for (index, e) in fleet.iter().map(map).enumerate() {
        let vram = u64::from(e.gpu.spec().vram_gib) * 1024;
        let hw = Hardware {
            gpu: e.gpu,
            gpu_count: e.gpus_per_box,
            vram_mib_per_gpu: vram,
            interconnect: e.interconnect,
        };
        let gpu_price = e
            .price_per_gpu_hour_micros
            .unwrap_or_else(|| market_price(e.gpu, &cfg.floor, h100_price));
        for _ in 0..e.boxes {
            let id = ProviderId(format!("{name}-{n:05}"));
            n += 1;
            let claims = ProviderClaims {
                id: id.clone(),
                gpu: e.gpu.spec().name.to_string(),
                gpu_count: i64::from(e.gpus_per_box),
                vram_mib_per_gpu: vram as i64,
                interconnect: e.interconnect,
                region: e.region.clone(),
                lat: e.location.lat,
                lon: e.location.lon,
                price_per_hour_micros: (gpu_price * u64::from(e.gpus_per_box)) as i64,
                max_concurrency: i64::from(4 * e.gpus_per_box),
                attestation: AttestationLevel::None,
                offers: offers_for(&hw, gpu_price, mix),
            };
            let fail = |source| PlanError::Fleet { index, source };
            reg.upsert(&id, &claims, 0).map_err(fail)?;
            reg.set_reputation(&id, 9_500).map_err(fail)?;
            reg.set_uptime(&id, 9_950).map_err(fail)?;
        }
    }
    Ok(reg)
}

/// Running totals of one scenario.
#[derive(Default)]
struct Tally {
    placed: u32,
    unplaced: u32,
    tokens: u64,
    cost: u64,
    ft_cost: u64,
    slo_requests: u32,
    slo_met: u32,
    ttfts: Vec<f64>,
    by_gpu: BTreeMap<String, u32>,
}

impl Tally {
    fn record(&mut self, item: &MixItem, outcome: Option<&crate::Choice>) {
        let has_slo = !matches!(item.class, WorkloadClass::FineTune { .. });
        self.slo_requests += u32::from(has_slo);
        let Some(c) = outcome else {
            self.unplaced += 1;
            return;
        };
        self.placed += 1;
        *self.by_gpu.entry(c.gpu.to_string()).or_default() += 1;
        match item.class {
            WorkloadClass::FineTune { .. } => {
                self.ft_cost = self.ft_cost.saturating_add(c.estimate.cost_micros)
            }
            WorkloadClass::Interactive { ttft_slo_ms } => {
                self.ttfts.push(c.estimate.ttft_ms);
                self.slo_met += u32::from(c.estimate.ttft_ms <= f64::from(ttft_slo_ms));
            }
            WorkloadClass::Batch { deadline_ms } => {
                self.slo_met += u32::from(c.estimate.completion_ms <= deadline_ms as f64);
            }
        }
        if has_slo {
            self.tokens += u64::from(item.prompt_tokens) + u64::from(item.output_tokens);
            self.cost = self.cost.saturating_add(c.estimate.cost_micros);
        }
    }
}

/// Places the mix on `reg` as a Poisson stream with slot occupancy.
fn simulate(name: &str, mut reg: Registry, mix: &[MixItem], cfg: &PlanConfig) -> ScenarioReport {
    let mut rng = Rng::new(cfg.seed);
    let weights: Vec<(usize, u32)> = mix.iter().enumerate().map(|(i, m)| (i, m.share)).collect();
    let mut busy: BinaryHeap<Reverse<(u64, ProviderId)>> = BinaryHeap::new();
    let mut active: BTreeMap<ProviderId, u32> = BTreeMap::new();
    let mut now_ms = 0u64;
    let mut t = Tally::default();
    for _ in 0..cfg.requests {
        now_ms += (-(1.0 - rng.unit()).ln() / cfg.arrivals_per_s.max(1e-6) * 1e3) as u64;
        while busy.peek().is_some_and(|Reverse((end, _))| *end <= now_ms) {
            let Reverse((_, id)) = busy.pop().expect("peeked");
            let a = active.entry(id.clone()).or_default();
            *a = a.saturating_sub(1);
            let _ = reg.set_load(&id, *a, 0);
        }
        let item = &mix[rng.weighted(&weights)];
        let mut req = Request::new(
            &item.model.id,
            item.class,
            item.prompt_tokens,
            item.output_tokens,
            now_ms,
        );
        let site = cfg.client_sites[rng.below(cfg.client_sites.len() as u64) as usize];
        req.client = ClientInfo {
            location: Some(site),
            region: None,
            rtt_to_coordinator_ms: None,
        };
        let choice = reg.place(&req).ok().map(|p| p.chosen);
        t.record(item, choice.as_ref());
        if let Some(c) = choice {
            let hold_ms = match item.class {
                WorkloadClass::FineTune { hours, .. } => u64::from(hours) * 3_600_000,
                _ => c.estimate.completion_ms.ceil() as u64,
            };
            let a = active.entry(c.provider.clone()).or_default();
            *a += 1;
            let _ = reg.set_load(&c.provider, *a, 0);
            busy.push(Reverse((now_ms + hold_ms, c.provider)));
        }
    }
    finish(name, reg.len(), t)
}

fn finish(name: &str, providers: usize, mut t: Tally) -> ScenarioReport {
    t.ttfts.sort_by(f64::total_cmp);
    let pct = |p: usize| match t.ttfts.len() {
        0 => 0.0,
        n => t.ttfts[(p * n).div_ceil(100).max(1) - 1],
    };
    let cost_per_mtok = match t.tokens {
        0 => 0,
        n => u64::try_from((u128::from(t.cost) * 1_000_000).div_ceil(u128::from(n)))
            .unwrap_or(u64::MAX),
    };
    ScenarioReport {
        name: name.to_string(),
        providers,
        placed: t.placed,
        unplaced: t.unplaced,
        tokens: t.tokens,
        inference_cost_micros: t.cost,
        cost_per_mtok_micros: cost_per_mtok,
        fine_tune_cost_micros: t.ft_cost,
        slo_requests: t.slo_requests,
        slo_met: t.slo_met,
        slo_attainment_bp: (t.slo_met * 10_000)
            .checked_div(t.slo_requests)
            .unwrap_or(10_000),
        interactive_p50_ttft_ms: pct(50),
        interactive_p99_ttft_ms: pct(99),
        jobs_by_gpu: t.by_gpu,
    }
}

/// Simulates the mix on the fleet in three scenarios and compares them.
pub fn plan(
    fleet: &[FleetEntry],
    mix: &[MixItem],
    cfg: &PlanConfig,
) -> Result<PlanReport, PlanError> {
    if fleet.iter().all(|e| e.boxes == 0) {
        return Err(PlanError::EmptyFleet);
    }
    if mix.iter().all(|m| m.share == 0) || cfg.client_sites.is_empty() {
        return Err(PlanError::EmptyMix);
    }
    let dec = cfg.decentralized_h100_per_gpu_hour_micros;
    let colo = cfg.colocated_h100_per_gpu_hour_micros;
    let same = |e: &FleetEntry| e.clone();
    let h100 = |e: &FleetEntry| FleetEntry {
        gpu: GpuModel::H100,
        interconnect: if e.gpus_per_box > 1 {
            Interconnect::Nvlink
        } else {
            e.interconnect
        },
        price_per_gpu_hour_micros: None,
        ..e.clone()
    };
    let site = cfg.colocated_site;
    let colocate = |e: &FleetEntry| FleetEntry {
        region: "colocated".into(),
        location: site,
        price_per_gpu_hour_micros: None,
        ..e.clone()
    };
    let decentralized = simulate(
        "decentralized",
        build("dec", fleet, mix, cfg, dec, same)?,
        mix,
        cfg,
    );
    let all_h100 = simulate(
        "all-h100",
        build("h100", fleet, mix, cfg, dec, h100)?,
        mix,
        cfg,
    );
    let colocated = simulate(
        "colocated",
        build("colo", fleet, mix, cfg, colo, colocate)?,
        mix,
        cfg,
    );
    let (d, h, c) = (
        decentralized.cost_per_mtok_micros as i64,
        all_h100.cost_per_mtok_micros as i64,
        colocated.cost_per_mtok_micros as i64,
    );
    Ok(PlanReport {
        requests: cfg.requests,
        tier_saving_per_mtok_micros: h - d,
        tier_saving_bp: if h == 0 { 0 } else { (h - d) * 10_000 / h },
        colocated_to_decentralized_cost_bp: if d == 0 { 0 } else { c * 10_000 / d },
        h100_floor_per_gpu_hour_micros: price_floor(GpuModel::H100, &cfg.floor).total_micros,
        aws_p5_list_per_gpu_hour_micros: figures::AWS_P5_LIST_PER_GPU_HOUR_MICROS,
        decentralized,
        all_h100,
        colocated,
    })
}

/// A default fleet: a decentralized spread of old and new chips.
pub fn default_fleet() -> Vec<FleetEntry> {
    use crate::synthetic::SITES;
    let e = |gpu, gpus_per_box, interconnect, site: usize, boxes| FleetEntry {
        gpu,
        gpus_per_box,
        interconnect,
        region: SITES[site].region.to_string(),
        location: SITES[site].point,
        boxes,
        price_per_gpu_hour_micros: None,
    };
    vec![
        e(GpuModel::H100, 8, Interconnect::Nvlink, 0, 3),
        e(GpuModel::A100_80, 4, Interconnect::Nvlink, 6, 4),
        e(GpuModel::L40S, 2, Interconnect::Pcie, 5, 6),
        e(GpuModel::Rtx4090, 1, Interconnect::Pcie, 2, 20),
        e(GpuModel::Rtx4090, 1, Interconnect::Pcie, 11, 15),
        e(GpuModel::Rtx3090, 1, Interconnect::Pcie, 1, 20),
        e(GpuModel::Rtx3090, 1, Interconnect::Pcie, 6, 15),
        e(GpuModel::T4, 1, Interconnect::Pcie, 10, 10),
        e(GpuModel::A10, 1, Interconnect::Pcie, 4, 8),
        e(GpuModel::V100, 1, Interconnect::Pcie, 9, 6),
    ]
}

/// A default mix: mostly small interactive chat, some 8B and 70B chat,
/// batch summarisation, the odd fine-tune.
pub fn default_mix() -> Vec<MixItem> {
    let spec = |id: &str| {
        let m = crate::synthetic::CATALOG
            .iter()
            .find(|m| m.id == id)
            .expect("catalog model");
        ModelSpec::from_size(m.id, m.params, m.size_bytes)
    };
    let item = |name: &str, class, model: &str, prompt_tokens, output_tokens, share| MixItem {
        name: name.to_string(),
        class,
        model: spec(model),
        prompt_tokens,
        output_tokens,
        share,
    };
    vec![
        item(
            "chat-small",
            WorkloadClass::INTERACTIVE,
            "llama-3.2-1b",
            400,
            200,
            50,
        ),
        item(
            "chat-8b",
            WorkloadClass::INTERACTIVE,
            "llama-3.1-8b",
            800,
            300,
            25,
        ),
        item(
            "chat-70b",
            WorkloadClass::INTERACTIVE,
            "llama-3.3-70b",
            1_000,
            300,
            5,
        ),
        item(
            "summarise-8b",
            WorkloadClass::Batch {
                deadline_ms: 6 * 3_600_000,
            },
            "llama-3.1-8b",
            4_000,
            400,
            19,
        ),
        item(
            "lora",
            WorkloadClass::FineTune {
                hours: 4,
                min_vram_gib: 48,
            },
            "llama-3.1-8b",
            0,
            0,
            1,
        ),
    ]
}
