//! Properties of placement over random fleets, random updates and random
//! requests: the fast path (pruned search) agrees with the explain path
//! (full scan); the chosen provider passes every filter, checked
//! independently of the crate's own filter code; placement is
//! deterministic; interactive placement meets the SLO whenever any provider
//! can; batch (cheapest-first) picks the cheapest feasible provider and
//! score-ranked classes the best score.

use proofmesh_placement::synthetic::{fleet, request, Rng};
use proofmesh_placement::{
    FailureKind, Interconnect, PlacementConfig, PlacementError, ProviderId, Ranking, Registry,
    Request, Topology, WorkloadClass,
};
use proptest::prelude::*;

const NOW: u64 = 1_000_000;

/// 48 cases by default; `PROPTEST_CASES` raises it for a soak run.
fn cases() -> u32 {
    proofmesh_ambient::env::parse("PROPTEST_CASES").unwrap_or(48)
}

fn config(direct: bool, alternates: usize, swap_rankings: bool) -> PlacementConfig {
    let mut cfg = PlacementConfig {
        topology: if direct {
            Topology::Direct
        } else {
            Topology::Relay
        },
        alternates,
        ..PlacementConfig::default()
    };
    if swap_rankings {
        // Exercise the other search of each class.
        cfg.classes[0].ranking = Ranking::CheapestFirst;
        cfg.classes[1].ranking = Ranking::Score;
        cfg.classes[2].ranking = Ranking::CheapestFirst;
    }
    cfg
}

/// Random updates of the kinds the coordinator makes.
fn churn(reg: &mut Registry, rng: &mut Rng, n: usize, ops: usize) {
    for _ in 0..ops {
        let id = ProviderId(format!("p{:06}", rng.below(n.max(1) as u64)));
        if reg.get(&id).is_none() {
            continue;
        }
        match rng.below(7) {
            0 => reg
                .set_load(&id, rng.below(40) as u32, rng.below(10) as u32)
                .unwrap(),
            1 => reg.set_reputation(&id, rng.below(10_001) as u16).unwrap(),
            2 => drop(
                reg.report_failure(&id, FailureKind::Error, NOW - rng.below(20_000))
                    .unwrap(),
            ),
            3 => drop(reg.remove(&id)),
            4 => drop(reg.record_rtt(&id, 1 + rng.below(300_000) as u32).unwrap()),
            5 => {
                let models: Vec<(String, bool)> = reg
                    .get(&id)
                    .unwrap()
                    .offers
                    .iter()
                    .map(|o| (o.model.clone(), o.loaded))
                    .collect();
                if let Some((m, loaded)) = models.first() {
                    reg.set_model_loaded(&id, m, !loaded).unwrap();
                }
            }
            _ => reg.set_uptime(&id, rng.below(10_001) as u16).unwrap(),
        }
    }
}

/// Independent re-check of every filter for the chosen provider.
fn check_filters(reg: &Registry, req: &Request, id: &ProviderId, ttft_ms: f64, completion_ms: f64) {
    let rec = reg.get(id).expect("chosen provider exists");
    assert!(!rec.banned, "banned provider chosen");
    assert!(
        rec.cooldown.until_ms <= req.now_ms,
        "provider in cooldown chosen"
    );
    assert!(!req.exclude.contains(id), "excluded provider chosen");
    assert!(rec.effective_attestation() >= req.min_attestation);
    assert!(rec.reputation_bp >= req.min_reputation_bp);
    let hw = rec.hardware.value;
    let need_mib = match req.class {
        WorkloadClass::FineTune { min_vram_gib, .. } => u64::from(min_vram_gib) * 1024,
        _ => reg.model_spec(&req.model).unwrap().vram_mib,
    };
    let one_gpu = need_mib <= hw.vram_mib_per_gpu;
    let linked = hw.interconnect != Interconnect::Pcie
        && need_mib <= hw.vram_mib_per_gpu * u64::from(hw.gpu_count);
    assert!(
        one_gpu || linked,
        "model of {need_mib} MiB placed on {hw:?}"
    );
    let load = rec.load;
    assert!(load.active + load.queued < load.max_concurrency * reg.config().queue_factor);
    if let Some(offer) = (!matches!(req.class, WorkloadClass::FineTune { .. }))
        .then(|| rec.offer(&req.model).unwrap())
    {
        let cap = req.price_cap;
        assert!(cap
            .input_per_mtok_micros
            .is_none_or(|c| offer.input_per_mtok_micros <= c));
        assert!(cap
            .output_per_mtok_micros
            .is_none_or(|c| offer.output_per_mtok_micros <= c));
    }
    match req.class {
        WorkloadClass::Interactive { ttft_slo_ms } => assert!(ttft_ms <= f64::from(ttft_slo_ms)),
        WorkloadClass::Batch { deadline_ms } => assert!(completion_ms <= deadline_ms as f64),
        WorkloadClass::FineTune { .. } => {}
    }
}

fn check_request(reg: &Registry, req: &Request) {
    let fast = reg.place(req);
    let again = reg.place(req);
    assert_eq!(fast, again, "placement is not deterministic");
    let exp = reg.explain(req).expect("known model");
    match &fast {
        Ok(p) => {
            let slow = reg.place_explained(req).unwrap();
            assert_eq!(p.chosen, slow.chosen, "fast and explain paths disagree");
            assert_eq!(p.alternates, slow.alternates);
            let v = exp
                .verdicts
                .iter()
                .find(|v| v.provider == p.chosen.provider)
                .unwrap();
            assert!(
                v.rejections.is_empty(),
                "chosen provider has rejections {:?}",
                v.rejections
            );
            check_filters(
                reg,
                req,
                &p.chosen.provider,
                p.chosen.estimate.ttft_ms,
                p.chosen.estimate.completion_ms,
            );
            let feasible: Vec<_> = exp
                .verdicts
                .iter()
                .filter(|v| v.rejections.is_empty() && v.score.is_some())
                .collect();
            assert_eq!(feasible.len(), exp.feasible);
            match reg.config().policy(req.class.kind()).ranking {
                Ranking::CheapestFirst => {
                    let min = feasible
                        .iter()
                        .map(|v| v.estimate.unwrap().cost_micros)
                        .min()
                        .unwrap();
                    assert_eq!(
                        p.chosen.estimate.cost_micros, min,
                        "cheapest-first did not pick the cheapest"
                    );
                }
                _ => {
                    let best = feasible
                        .iter()
                        .map(|v| v.score.unwrap().total)
                        .fold(f64::MIN, f64::max);
                    assert_eq!(p.chosen.score.total, best);
                }
            }
        }
        Err(PlacementError::NoFeasibleProvider { .. }) => {
            assert_eq!(
                exp.feasible, 0,
                "a feasible provider exists but placement failed"
            );
            assert!(exp.chosen.is_none());
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fast_path_agrees_with_full_scan_and_respects_filters(
        n in 1usize..160,
        seed in any::<u64>(),
        direct in any::<bool>(),
        alternates in 0usize..5,
        ops in 0usize..60,
        swap in any::<bool>(),
    ) {
        let mut reg = fleet(n, seed, config(direct, alternates, swap), NOW);
        let mut rng = Rng::new(seed ^ 0xABCD);
        churn(&mut reg, &mut rng, n, ops);
        for _ in 0..24 {
            let req = request(&mut rng, n, NOW);
            check_request(&reg, &req);
        }
    }

    #[test]
    fn same_inputs_same_placement(n in 1usize..80, seed in any::<u64>()) {
        let a = fleet(n, seed, PlacementConfig::default(), NOW);
        let b = fleet(n, seed, PlacementConfig::default(), NOW);
        let mut rng = Rng::new(seed);
        for _ in 0..16 {
            let req = request(&mut rng, n, NOW);
            prop_assert_eq!(a.place(&req), b.place(&req));
        }
    }

    #[test]
    fn interactive_meets_the_slo_whenever_anyone_can(n in 1usize..120, seed in any::<u64>(), slo in 50u32..2_000) {
        let reg = fleet(n, seed, PlacementConfig::default(), NOW);
        let mut rng = Rng::new(seed ^ 7);
        for _ in 0..16 {
            let mut req = request(&mut rng, n, NOW);
            if matches!(req.class, WorkloadClass::FineTune { .. }) {
                continue;
            }
            req.class = WorkloadClass::Interactive { ttft_slo_ms: slo };
            let exp = reg.explain(&req).unwrap();
            match reg.place(&req) {
                Ok(p) => prop_assert!(p.chosen.estimate.ttft_ms <= f64::from(slo)),
                Err(_) => prop_assert_eq!(exp.feasible, 0),
            }
        }
    }
}
