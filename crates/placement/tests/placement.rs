//! Placement scenarios: SLO-aware interactive placement, cheapest-first
//! batch, tier fit, the never-split-over-WAN rule, trust, price caps, cold
//! loads, measured vs modelled RTT, failover, topology, explanations.

mod common;

use common::*;
use proofmesh_placement::latency::{fiber_floor_rtt_ms, haversine_km, DEFAULT_PATH_STRETCH};
use proofmesh_placement::{
    next_candidate, Attempts, AttestationLevel, FailureKind, GeoPoint, Interconnect, LocationCheck,
    ModelSpec, PlacementConfig, PlacementError, PriceCap, Provenance, Registry, Rejection,
    RejectionKind, Request, RttSource, Topology, WorkloadClass,
};

fn interactive(slo: u32) -> WorkloadClass {
    WorkloadClass::Interactive { ttft_slo_ms: slo }
}

fn batch() -> WorkloadClass {
    WorkloadClass::Batch {
        deadline_ms: 24 * 3_600_000,
    }
}

fn coordinator() -> GeoPoint {
    PlacementConfig::default().coordinator
}

fn modelled_rtt_from_coordinator(at: (f64, f64)) -> f64 {
    fiber_floor_rtt_ms(haversine_km(coordinator(), GeoPoint::new(at.0, at.1)))
        * DEFAULT_PATH_STRETCH
}

fn near_and_far() -> Registry {
    let mut reg = registry();
    add(
        &mut reg,
        &claims(
            "near",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            ASHBURN,
            600_000,
            vec![offer("m", 2.0, 200, 400, true)],
        ),
    );
    add(
        &mut reg,
        &claims(
            "far",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            SYDNEY,
            300_000,
            vec![offer("m", 2.0, 50, 100, true)],
        ),
    );
    reg
}

#[test]
fn interactive_lands_within_slo_and_far_providers_are_named() {
    let reg = near_and_far();
    let req = Request::new("m", interactive(300), 1_000, 100, 0);
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("near"));
    assert!(p.chosen.estimate.ttft_ms <= 300.0);
    let exp = reg.explain(&req).unwrap();
    let far = exp
        .verdicts
        .iter()
        .find(|v| v.provider == pid("far"))
        .unwrap();
    // TTFT = modelled RTT (fiber floor × stretch) + prefill (1,000 tok at 5,000 tok/s).
    let want = modelled_rtt_from_coordinator(SYDNEY) + 1_000.0 * 1e3 / 5_000.0;
    let est = far.estimate.unwrap();
    assert!(
        (est.ttft_ms - want).abs() < 1e-9,
        "{} vs {want}",
        est.ttft_ms
    );
    assert_eq!(est.provider_rtt_source, RttSource::Modelled);
    assert_eq!(
        far.rejections,
        vec![Rejection::SloInfeasible {
            ttft_ms: est.ttft_ms,
            slo_ms: 300
        }]
    );
}

#[test]
fn batch_goes_to_the_cheapest_anywhere() {
    let reg = near_and_far();
    let req = Request::new("m", batch(), 1_000, 100, 0);
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("far"));
    // 1,000 input at 50/Mtok + 100 output at 100/Mtok = 0.06 micro-USD → 1 (rounded up).
    let want = (50u128 * 1_000 + 100 * 100).div_ceil(1_000_000) as u64;
    assert_eq!(p.chosen.estimate.cost_micros, want);
    assert_eq!(p.alternates[0].provider, pid("near"));
}

#[test]
fn small_models_go_to_older_chips_when_they_meet_the_slo() {
    let mut reg = registry();
    for (id, gpu) in [("h100", "H100"), ("t4", "T4"), ("rtx", "RTX 4090")] {
        add(
            &mut reg,
            &claims(
                id,
                gpu,
                1,
                Interconnect::Pcie,
                ASHBURN,
                1_000_000,
                vec![offer("tiny", 0.3, 100, 200, true)],
            ),
        );
    }
    let req = Request::new("tiny", interactive(500), 200, 50, 0);
    let p = reg.place(&req).unwrap();
    assert_ne!(p.chosen.provider, pid("h100"));
    let exp = reg.explain(&req).unwrap();
    let tier = |id: &str| {
        exp.verdicts
            .iter()
            .find(|v| v.provider == pid(id))
            .unwrap()
            .score
            .unwrap()
            .tier
    };
    assert!(tier("h100") < tier("t4") && tier("h100") < tier("rtx"));
    assert_eq!(exp.ranked.last().unwrap(), &pid("h100"));
}

#[test]
fn multi_gpu_models_need_one_provider_with_nvlink() {
    let mut reg = registry();
    // The coordinator knows the model needs ~114 GiB, whatever offers claim.
    let spec = ModelSpec::from_size("big", 50_000_000_000, 100_000_000_000);
    reg.register_model(spec.clone());
    let mut lying = offer("big", 10.0, 100, 200, true);
    lying.vram_mib = 20_000;
    add(
        &mut reg,
        &claims(
            "pcie8",
            "RTX 4090",
            8,
            Interconnect::Pcie,
            ASHBURN,
            4_000_000,
            vec![lying.clone()],
        ),
    );
    add(
        &mut reg,
        &claims(
            "one-a100",
            "A100 80GB",
            1,
            Interconnect::Nvlink,
            ASHBURN,
            1_000_000,
            vec![lying],
        ),
    );
    add(
        &mut reg,
        &claims(
            "nv",
            "H100",
            2,
            Interconnect::Nvlink,
            ASHBURN,
            6_000_000,
            vec![offer("big", 100.0, 300, 600, true)],
        ),
    );
    let req = Request::new("big", batch(), 100, 100, 0);
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("nv"));
    assert!(p.alternates.is_empty());
    let exp = reg.explain(&req).unwrap();
    let reasons = |id: &str| {
        exp.verdicts
            .iter()
            .find(|v| v.provider == pid(id))
            .unwrap()
            .rejections
            .clone()
    };
    let gpus_needed = spec.vram_mib.div_ceil(24 * 1024) as u32;
    assert!(
        reasons("pcie8").contains(&Rejection::NeedsFastInterconnect {
            gpus: gpus_needed,
            interconnect: Interconnect::Pcie
        })
    );
    assert!(reasons("one-a100").contains(&Rejection::InsufficientVram {
        need_mib: spec.vram_mib,
        have_mib: 80 * 1024
    }));
}

#[test]
fn trust_requires_attested_not_declared_levels() {
    let mut reg = registry();
    let mut declared = claims(
        "declared",
        "H100",
        1,
        Interconnect::Pcie,
        ASHBURN,
        500_000,
        vec![offer("m", 2.0, 10, 20, true)],
    );
    declared.attestation = AttestationLevel::TeeGpu;
    add(&mut reg, &declared);
    add(
        &mut reg,
        &claims(
            "attested",
            "H100",
            1,
            Interconnect::Pcie,
            ASHBURN,
            900_000,
            vec![offer("m", 2.0, 90, 180, true)],
        ),
    );
    reg.set_attestation(
        &pid("attested"),
        AttestationLevel::Tee,
        Provenance::Attested,
    )
    .unwrap();
    let mut req = Request::new("m", batch(), 100, 100, 0);
    assert_eq!(reg.place(&req).unwrap().chosen.provider, pid("declared"));
    req.min_attestation = AttestationLevel::Tee;
    assert_eq!(reg.place(&req).unwrap().chosen.provider, pid("attested"));
    let exp = reg.explain(&req).unwrap();
    let d = exp
        .verdicts
        .iter()
        .find(|v| v.provider == pid("declared"))
        .unwrap();
    assert_eq!(
        d.rejections,
        vec![Rejection::AttestationTooLow {
            need: AttestationLevel::Tee,
            have: AttestationLevel::None
        }]
    );
    req.min_attestation = AttestationLevel::TeeGpu;
    assert!(matches!(
        reg.place(&req),
        Err(PlacementError::NoFeasibleProvider { .. })
    ));
}

#[test]
fn price_caps_filter_and_are_explained() {
    let reg = near_and_far();
    let mut req = Request::new("m", interactive(1_000), 100, 100, 0);
    req.price_cap = PriceCap {
        output_per_mtok_micros: Some(150),
        ..PriceCap::default()
    };
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("far"));
    let exp = reg.explain(&req).unwrap();
    let near = exp
        .verdicts
        .iter()
        .find(|v| v.provider == pid("near"))
        .unwrap();
    assert!(near.rejections.iter().any(|r| matches!(
        r,
        Rejection::PriceAboveCap {
            price_micros: 400,
            cap_micros: 150,
            ..
        }
    )));
}

#[test]
fn cold_loads_miss_interactive_slos_but_serve_batch() {
    let mut reg = registry();
    add(
        &mut reg,
        &claims(
            "cold",
            "A100 80GB",
            1,
            Interconnect::Pcie,
            ASHBURN,
            1_000_000,
            vec![offer("m20", 20.0, 100, 200, false)],
        ),
    );
    let req = Request::new("m20", interactive(500), 100, 100, 0);
    let exp = reg.explain(&req).unwrap();
    let v = &exp.verdicts[0];
    let est = v.estimate.unwrap();
    let want_load = 20e9 / (PlacementConfig::default().latency.cold_load_mb_per_s * 1e3);
    assert!((est.cold_load_ms - want_load).abs() < 1e-6);
    assert!(matches!(
        v.rejections[..],
        [Rejection::SloInfeasible { .. }]
    ));
    let b = reg
        .place(&Request::new("m20", batch(), 100, 100, 0))
        .unwrap();
    assert!(!b.chosen.model_loaded);
    // A warm provider at the same price wins the tie on score.
    add(
        &mut reg,
        &claims(
            "warm",
            "A100 80GB",
            1,
            Interconnect::Pcie,
            ASHBURN,
            1_000_000,
            vec![offer("m20", 20.0, 100, 200, true)],
        ),
    );
    assert_eq!(
        reg.place(&Request::new("m20", batch(), 100, 100, 0))
            .unwrap()
            .chosen
            .provider,
        pid("warm")
    );
    // A class that forbids cold loads names the reason.
    let mut cfg = PlacementConfig::default();
    cfg.classes[1].allow_cold_load = false;
    let mut strict = Registry::new(cfg).unwrap();
    add(
        &mut strict,
        &claims(
            "cold",
            "A100 80GB",
            1,
            Interconnect::Pcie,
            ASHBURN,
            1_000_000,
            vec![offer("m20", 20.0, 100, 200, false)],
        ),
    );
    let e = strict
        .place(&Request::new("m20", batch(), 100, 100, 0))
        .unwrap_err();
    match e {
        PlacementError::NoFeasibleProvider { rejections, .. } => {
            assert_eq!(rejections.get(RejectionKind::ColdLoadNotAllowed), 1)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn measured_rtt_replaces_the_model_but_never_beats_physics() {
    let mut reg = registry();
    add(
        &mut reg,
        &claims(
            "fra",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            FRANKFURT,
            500_000,
            vec![offer("m", 2.0, 10, 20, true)],
        ),
    );
    let req = Request::new("m", interactive(2_000), 0, 10, 0);
    let est = |reg: &Registry| reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(est(&reg).provider_rtt_source, RttSource::Modelled);
    assert!((est(&reg).provider_rtt_ms - modelled_rtt_from_coordinator(FRANKFURT)).abs() < 1e-9);
    for ms in [110, 120, 130] {
        reg.record_rtt(&pid("fra"), ms * 1_000).unwrap();
    }
    assert_eq!(est(&reg).provider_rtt_source, RttSource::Measured);
    assert_eq!(est(&reg).provider_rtt_ms, 120.0);
    assert_eq!(
        reg.get(&pid("fra")).unwrap().location_check,
        LocationCheck::Consistent
    );
    // 10 ms from Virginia to Frankfurt is faster than light in fiber.
    for _ in 0..32 {
        reg.record_rtt(&pid("fra"), 10_000).unwrap();
    }
    let floor = fiber_floor_rtt_ms(haversine_km(
        coordinator(),
        GeoPoint::new(FRANKFURT.0, FRANKFURT.1),
    ));
    assert!(matches!(
        reg.get(&pid("fra")).unwrap().location_check,
        LocationCheck::Contradicted { .. }
    ));
    assert!((est(&reg).provider_rtt_ms - floor).abs() < 1e-9);
}

#[test]
fn failures_cool_down_and_failover_moves_on() {
    let reg0 = near_and_far();
    let mut reg = reg0.clone();
    let req = |now| Request::new("m", batch(), 100, 100, now);
    assert_eq!(reg.place(&req(1_000)).unwrap().chosen.provider, pid("far"));
    let until = reg
        .report_failure(&pid("far"), FailureKind::Timeout, 1_000)
        .unwrap();
    assert_eq!(until, 1_000 + PlacementConfig::default().cooldown.base_ms);
    assert_eq!(reg.place(&req(1_000)).unwrap().chosen.provider, pid("near"));
    let exp = reg.explain(&req(1_000)).unwrap();
    let far = exp
        .verdicts
        .iter()
        .find(|v| v.provider == pid("far"))
        .unwrap();
    assert_eq!(
        far.rejections,
        vec![Rejection::Cooldown { until_ms: until }]
    );
    assert_eq!(reg.place(&req(until)).unwrap().chosen.provider, pid("far"));
    // A second failure doubles the cooldown.
    let until2 = reg
        .report_failure(&pid("far"), FailureKind::Error, until)
        .unwrap();
    assert_eq!(
        until2 - until,
        2 * PlacementConfig::default().cooldown.base_ms
    );
    // Failover excludes tried providers and respects the attempt limit.
    let mut attempts = Attempts::new(2);
    attempts.record(pid("far"));
    assert_eq!(
        next_candidate(&reg0, &req(0), &attempts).unwrap().provider,
        pid("near")
    );
    attempts.record(pid("near"));
    assert!(matches!(
        next_candidate(&reg0, &req(0), &attempts),
        Err(PlacementError::AttemptsExhausted { .. })
    ));
    let mut three = Attempts::new(3);
    three.tried = attempts.tried.clone();
    match next_candidate(&reg0, &req(0), &three) {
        Err(PlacementError::NoFeasibleProvider { rejections, .. }) => {
            assert_eq!(rejections.get(RejectionKind::AlreadyTried), 2)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn direct_topology_follows_the_client_relay_follows_the_coordinator() {
    let build = |topology| {
        let mut reg = Registry::new(PlacementConfig {
            topology,
            ..PlacementConfig::default()
        })
        .unwrap();
        for (id, at) in [("ash", ASHBURN), ("tyo", TOKYO)] {
            add(
                &mut reg,
                &claims(
                    id,
                    "RTX 4090",
                    1,
                    Interconnect::Pcie,
                    at,
                    500_000,
                    vec![offer("m", 2.0, 10, 20, true)],
                ),
            );
        }
        reg
    };
    let mut req = Request::new("m", interactive(500), 100, 10, 0);
    req.client.location = Some(GeoPoint::new(TOKYO.0 + 0.5, TOKYO.1));
    let direct = build(Topology::Direct).place(&req).unwrap();
    assert_eq!(direct.chosen.provider, pid("tyo"));
    let relay = build(Topology::Relay).place(&req).unwrap();
    assert_eq!(relay.chosen.provider, pid("ash"));
    // The relay estimate carries the client leg, modelled from coordinates.
    let leg = fiber_floor_rtt_ms(haversine_km(req.client.location.unwrap(), coordinator()))
        * DEFAULT_PATH_STRETCH;
    assert!((relay.chosen.estimate.client_rtt_ms - leg).abs() < 1e-9);
    assert_eq!(relay.chosen.estimate.client_rtt_source, RttSource::Modelled);
}

#[test]
fn queue_wait_and_load_steer_away_from_busy_providers() {
    let mut reg = registry();
    for id in ["a", "b"] {
        add(
            &mut reg,
            &claims(
                id,
                "RTX 4090",
                1,
                Interconnect::Pcie,
                ASHBURN,
                500_000,
                vec![offer("m", 2.0, 10, 20, true)],
            ),
        );
    }
    reg.set_load(&pid("a"), 4, 2).unwrap();
    let req = Request::new("m", interactive(5_000), 500, 50, 0);
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("b"));
    let a = &p.alternates[0];
    assert_eq!(a.provider, pid("a"));
    // Two queued + one = three jobs over four slots: one service round.
    let service = 500.0 * 1e3 / 5_000.0 + 50.0 * 1e3 / 50.0;
    assert!((a.estimate.queue_ms - service).abs() < 1e-9);
    reg.record_service_time(&pid("a"), 40.0).unwrap();
    let a2 = reg.place(&req).unwrap().alternates[0].estimate;
    assert!((a2.queue_ms - 40.0).abs() < 1e-9);
    reg.set_load(&pid("a"), 4, 12).unwrap();
    let exp = reg.explain(&req).unwrap();
    assert!(exp.verdicts.iter().any(|v| matches!(
        v.rejections[..],
        [Rejection::NoCapacity {
            active: 4,
            queued: 12,
            limit: 16
        }]
    )));
}

#[test]
fn fine_tune_needs_vram_reliability_and_no_model() {
    let mut reg = registry();
    add(
        &mut reg,
        &claims(
            "a100x2",
            "A100 80GB",
            2,
            Interconnect::Nvlink,
            ASHBURN,
            3_000_000,
            vec![],
        ),
    );
    add(
        &mut reg,
        &claims(
            "h100x2",
            "H100",
            2,
            Interconnect::Nvlink,
            SYDNEY,
            4_000_000,
            vec![],
        ),
    );
    add(
        &mut reg,
        &claims(
            "rtx",
            "RTX 4090",
            8,
            Interconnect::Pcie,
            ASHBURN,
            1_000_000,
            vec![],
        ),
    );
    let req = Request::new(
        "base",
        WorkloadClass::FineTune {
            hours: 6,
            min_vram_gib: 100,
        },
        0,
        0,
        0,
    );
    // Nobody has proven reliability yet (uptime 0, reputation 5,000).
    assert!(matches!(
        reg.place(&req),
        Err(PlacementError::NoFeasibleProvider { .. })
    ));
    for id in ["a100x2", "h100x2", "rtx"] {
        reg.set_reputation(&pid(id), 9_900).unwrap();
        reg.set_uptime(&pid(id), 9_990).unwrap();
    }
    let p = reg.place(&req).unwrap();
    assert_eq!(p.chosen.provider, pid("a100x2"));
    assert_eq!(p.chosen.estimate.cost_micros, 6 * 3_000_000);
    assert_eq!(
        p.alternates
            .iter()
            .map(|c| c.provider.clone())
            .collect::<Vec<_>>(),
        vec![pid("h100x2")]
    );
    let exp = reg.explain(&req).unwrap();
    let rtx = exp
        .verdicts
        .iter()
        .find(|v| v.provider == pid("rtx"))
        .unwrap();
    assert!(matches!(
        rtx.rejections[..],
        [Rejection::NeedsFastInterconnect { gpus: 5, .. }]
    ));
}

#[test]
fn explanation_is_complete_json_and_agrees_with_the_fast_path() {
    let mut reg = near_and_far();
    add(
        &mut reg,
        &claims(
            "other",
            "T4",
            1,
            Interconnect::Pcie,
            ASHBURN,
            300_000,
            vec![offer("x", 1.0, 1, 1, true)],
        ),
    );
    let req = Request::new("m", interactive(300), 1_000, 100, 0);
    let fast = reg.place(&req).unwrap();
    let slow = reg.place_explained(&req).unwrap();
    assert_eq!(fast.chosen, slow.chosen);
    assert_eq!(fast.alternates, slow.alternates);
    let exp = slow.explanation.unwrap();
    assert_eq!(exp.verdicts.len(), reg.len());
    assert_eq!(exp.chosen.as_ref(), Some(&fast.chosen.provider));
    let json = serde_json::to_string(&exp).unwrap();
    for needle in [
        "\"slo_infeasible\"",
        "\"model_not_offered\"",
        "\"near\"",
        "\"score\"",
        "\"ttft_ms\"",
    ] {
        assert!(json.contains(needle), "{needle} missing from {json}");
    }
}

#[test]
fn unknown_models_and_empty_registries_are_errors() {
    let reg = near_and_far();
    assert!(matches!(
        reg.place(&Request::new("nope", batch(), 1, 1, 0)),
        Err(PlacementError::UnknownModel { .. })
    ));
    let mut empty = registry();
    empty.register_model(ModelSpec::from_size("m", 1, 1));
    match empty.place(&Request::new("m", batch(), 1, 1, 0)) {
        Err(PlacementError::NoFeasibleProvider { candidates: 0, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn updates_keep_measurements_and_move_models_between_warm_and_cold() {
    let mut reg = near_and_far();
    reg.set_reputation(&pid("near"), 9_000).unwrap();
    for _ in 0..3 {
        reg.record_rtt(&pid("near"), 2_000).unwrap();
    }
    reg.record_throughput(&pid("near"), "m", Some(9_000.0), None)
        .unwrap();
    let mut c = claims(
        "near",
        "RTX 4090",
        1,
        Interconnect::Pcie,
        ASHBURN,
        700_000,
        vec![offer("m", 2.0, 200, 400, false)],
    );
    c.max_concurrency = 8;
    reg.upsert(&pid("near"), &c, 5).unwrap();
    let rec = reg.get(&pid("near")).unwrap();
    assert_eq!(
        (rec.reputation_bp, rec.rtt.len(), rec.load.max_concurrency),
        (9_000, 3, 8)
    );
    assert_eq!(
        rec.offers[0].prefill_tps.unwrap().provenance,
        Provenance::Measured
    );
    let req = Request::new("m", interactive(2_000), 900, 10, 0);
    let mut only_near = req.clone();
    only_near.exclude = vec![pid("far")];
    assert!(!reg.place(&only_near).unwrap().chosen.model_loaded);
    reg.set_model_loaded(&pid("near"), "m", true).unwrap();
    let ch = reg.place(&only_near).unwrap().chosen;
    assert!(ch.model_loaded);
    assert_eq!(ch.estimate.prefill_ms, 900.0 * 1e3 / 9_000.0);
    assert_eq!(ch.estimate.throughput_source, Provenance::SelfDeclared);
    assert!(reg.remove(&pid("near")).is_some());
    assert!(reg.place(&only_near).is_err());
    assert_eq!(reg.len(), 1);
}

#[test]
fn direct_topology_uses_measured_client_rtt_per_region() {
    let cfg = PlacementConfig {
        topology: Topology::Direct,
        ..PlacementConfig::default()
    };
    let mut reg = Registry::new(cfg).unwrap();
    add(
        &mut reg,
        &claims(
            "tyo",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            TOKYO,
            500_000,
            vec![offer("m", 2.0, 10, 20, true)],
        ),
    );
    let mut req = Request::new("m", interactive(500), 0, 10, 0);
    req.client.location = Some(GeoPoint::new(SYDNEY.0, SYDNEY.1));
    req.client.region = Some("au".into());
    let modelled = reg.place(&req).unwrap().chosen.estimate;
    let floor = fiber_floor_rtt_ms(haversine_km(
        GeoPoint::new(SYDNEY.0, SYDNEY.1),
        GeoPoint::new(TOKYO.0, TOKYO.1),
    ));
    assert_eq!(modelled.provider_rtt_source, RttSource::Modelled);
    assert!((modelled.provider_rtt_ms - floor * DEFAULT_PATH_STRETCH).abs() < 1e-9);
    let measured_ms = (floor * 1.3).ceil() as u32;
    for _ in 0..3 {
        reg.record_client_rtt(&pid("tyo"), "au", measured_ms * 1_000)
            .unwrap();
    }
    let m = reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(m.provider_rtt_source, RttSource::Measured);
    assert_eq!(m.provider_rtt_ms, f64::from(measured_ms));
    // Another client region has no measurement yet.
    req.client.region = Some("nz".into());
    assert_eq!(
        reg.place(&req).unwrap().chosen.estimate.provider_rtt_source,
        RttSource::Modelled
    );
}
