//! `plan`: tiered routing saves against all-H100, colocated at verified
//! on-demand prices costs more than decentralized, figures are consistent
//! and deterministic, and bad inputs are named errors.

use proofmesh_placement::economics::{price_floor, FloorConfig};
use proofmesh_placement::plan::{
    default_fleet, default_mix, plan, PlanConfig, PlanReport, ScenarioReport,
};
use proofmesh_placement::{GpuModel, PlanError, WorkloadClass};

fn small() -> PlanConfig {
    PlanConfig {
        requests: 1_500,
        ..PlanConfig::default()
    }
}

fn consistent(s: &ScenarioReport, requests: u32) {
    assert_eq!(s.placed + s.unplaced, requests, "{}", s.name);
    assert!(s.slo_met <= s.slo_requests);
    assert_eq!(
        s.slo_attainment_bp,
        s.slo_met * 10_000 / s.slo_requests.max(1)
    );
    assert_eq!(s.jobs_by_gpu.values().sum::<u32>(), s.placed);
    if s.tokens > 0 {
        let want = (u128::from(s.inference_cost_micros) * 1_000_000).div_ceil(u128::from(s.tokens));
        assert_eq!(u128::from(s.cost_per_mtok_micros), want);
    }
    assert!(s.interactive_p50_ttft_ms <= s.interactive_p99_ttft_ms);
}

#[test]
fn default_plan_shows_tier_savings_and_colocation_premium() {
    let cfg = small();
    let r: PlanReport = plan(&default_fleet(), &default_mix(), &cfg).unwrap();
    for s in [&r.decentralized, &r.all_h100, &r.colocated] {
        consistent(s, cfg.requests);
    }
    let (d, h, c) = (
        r.decentralized.cost_per_mtok_micros as i64,
        r.all_h100.cost_per_mtok_micros as i64,
        r.colocated.cost_per_mtok_micros as i64,
    );
    assert!(d < h, "tiered {d} should undercut all-H100 {h}");
    assert_eq!(r.tier_saving_per_mtok_micros, h - d);
    assert_eq!(r.tier_saving_bp, (h - d) * 10_000 / h);
    assert!(
        c > d,
        "colocated {c} should cost more than decentralized {d}"
    );
    assert_eq!(r.colocated_to_decentralized_cost_bp, c * 10_000 / d);
    // Tiered routing actually uses older chips.
    let older = ["RTX 3090", "T4", "A10", "V100"];
    assert!(r
        .decentralized
        .jobs_by_gpu
        .keys()
        .any(|g| older.contains(&g.as_str())));
    assert_eq!(
        r.all_h100.jobs_by_gpu.keys().collect::<Vec<_>>(),
        vec!["H100"]
    );
    assert_eq!(
        r.h100_floor_per_gpu_hour_micros,
        price_floor(GpuModel::H100, &cfg.floor).total_micros
    );
}

#[test]
fn plan_is_deterministic_and_life_moves_the_floor() {
    let cfg = PlanConfig {
        requests: 400,
        ..PlanConfig::default()
    };
    let a = plan(&default_fleet(), &default_mix(), &cfg).unwrap();
    let b = plan(&default_fleet(), &default_mix(), &cfg).unwrap();
    assert_eq!(a, b);
    let six = PlanConfig {
        floor: FloorConfig {
            useful_life_years: 6,
            ..cfg.floor
        },
        ..cfg.clone()
    };
    let c = plan(&default_fleet(), &default_mix(), &six).unwrap();
    assert!(c.h100_floor_per_gpu_hour_micros < a.h100_floor_per_gpu_hour_micros);
}

#[test]
fn big_models_only_land_where_they_fit() {
    let mix: Vec<_> = default_mix()
        .into_iter()
        .filter(|m| m.name == "chat-70b")
        .collect();
    let need = mix[0].model.vram_mib;
    let fleet = default_fleet();
    let r = plan(
        &fleet,
        &mix,
        &PlanConfig {
            requests: 200,
            ..PlanConfig::default()
        },
    )
    .unwrap();
    assert!(r.decentralized.placed > 0);
    for gpu in r.decentralized.jobs_by_gpu.keys() {
        let e = fleet.iter().find(|e| e.gpu.to_string() == *gpu).unwrap();
        let per = u64::from(e.gpu.spec().vram_gib) * 1024;
        assert!(
            per >= need || per * u64::from(e.gpus_per_box) >= need && e.interconnect.is_fast(),
            "{gpu}"
        );
    }
}

#[test]
fn empty_inputs_are_named_errors() {
    let cfg = PlanConfig {
        requests: 10,
        ..PlanConfig::default()
    };
    assert_eq!(plan(&[], &default_mix(), &cfg), Err(PlanError::EmptyFleet));
    let mut mix = default_mix();
    for m in &mut mix {
        m.share = 0;
    }
    assert_eq!(plan(&default_fleet(), &mix, &cfg), Err(PlanError::EmptyMix));
    let ft: Vec<_> = default_mix()
        .into_iter()
        .filter(|m| matches!(m.class, WorkloadClass::FineTune { .. }))
        .collect();
    let r = plan(&default_fleet(), &ft, &cfg).unwrap();
    assert_eq!(r.decentralized.tokens, 0);
    assert!(r.decentralized.fine_tune_cost_micros > 0);
}
