//! Estimates from measurements (issue 17): RTT from pings with the
//! physical bound labelled as such, prefill and decode rates that decay
//! toward fresh measurements, stale-estimate probes, best-effort placement,
//! and the property that a provider whose real TTFT meets the objective is
//! never refused for it.

mod common;

use common::*;
use proofmesh_placement::{
    Interconnect, LocationCheck, PlacementError, Provenance, Registry, RejectionKind, Request,
    RttSource, WorkloadClass,
};
use proptest::prelude::*;

fn interactive(slo: u32) -> WorkloadClass {
    WorkloadClass::Interactive { ttft_slo_ms: slo }
}

/// One CPU provider at the coordinator's site, serving model "m".
fn local_cpu() -> Registry {
    let mut reg = registry();
    let mut o = offer("m", 0.1, 100, 200, true);
    o.prefill_tps = None;
    o.decode_tps = None;
    add(
        &mut reg,
        &claims("p", "cpu", 1, Interconnect::Pcie, ASHBURN, 1, vec![o]),
    );
    reg
}

#[test]
fn measured_rtt_is_used_and_a_contradicted_claim_is_labelled() {
    // Claims Sydney, answers pings in 1 ms from next door.
    let mut reg = registry();
    add(
        &mut reg,
        &claims(
            "liar",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            SYDNEY,
            1,
            vec![offer("m", 2.0, 10, 20, true)],
        ),
    );
    let req = Request::new("m", interactive(60_000), 10, 10, 0);
    let est = |reg: &Registry| reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(est(&reg).provider_rtt_source, RttSource::Modelled);
    for _ in 0..3 {
        reg.record_rtt(&pid("liar"), 1_000).unwrap();
    }
    let e = est(&reg);
    assert!(matches!(
        reg.get(&pid("liar")).unwrap().location_check,
        LocationCheck::Contradicted { .. }
    ));
    // The floor of the claimed location, and said so: never "measured".
    assert_eq!(e.provider_rtt_source, RttSource::ClaimedFloor);
    assert!(e.provider_rtt_ms > 50.0, "{e:?}");

    // An honest local provider: the measured median, labelled measured.
    let mut reg = local_cpu();
    for us in [300, 900, 500] {
        reg.record_rtt(&pid("p"), us).unwrap();
    }
    let e = reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(e.provider_rtt_source, RttSource::Measured);
    assert_eq!(e.provider_rtt_ms, 0.5);
}

#[test]
fn rates_are_measured_separately_and_decay_toward_fresh_measurements() {
    let mut reg = local_cpu();
    let req = Request::new("m", interactive(60_000), 100, 10, 0);
    let before = reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(before.throughput_source, Provenance::Modelled);

    reg.record_measurement(&pid("p"), "m", Some(1_000.0), Some(50.0), 10)
        .unwrap();
    let e = reg.place(&req).unwrap().chosen.estimate;
    assert_eq!(e.throughput_source, Provenance::Measured);
    assert!((e.prefill_ms - 100.0).abs() < 1e-9, "{e:?}");
    assert!((e.decode_ms - 200.0).abs() < 1e-9, "{e:?}");

    // A burst made it look slow; fresh measurements pull it back.
    for t in 0..5 {
        reg.record_measurement(&pid("p"), "m", Some(10.0), Some(5.0), 20 + t)
            .unwrap();
    }
    let slow = reg.place(&req).unwrap().chosen.estimate.prefill_ms;
    for t in 0..8 {
        reg.record_measurement(&pid("p"), "m", Some(1_000.0), None, 30 + t)
            .unwrap();
    }
    let recovered = reg.place(&req).unwrap().chosen.estimate.prefill_ms;
    assert!(slow > 1_000.0, "{slow}");
    assert!(recovered < 110.0, "{recovered}");
    // Decode was not re-measured: it keeps its blended value.
    let d = reg.place(&req).unwrap().chosen.estimate.decode_ms;
    assert!(d > 200.0, "{d}");
}

#[test]
fn stale_idle_providers_are_probed_and_best_effort_drops_the_objective() {
    let mut reg = local_cpu();
    // Measured very slow a while ago.
    reg.record_measurement(&pid("p"), "m", Some(1.0), Some(1.0), 1_000)
        .unwrap();
    let mut req = Request::new("m", interactive(500), 100, 10, 2_000);
    match reg.place(&req) {
        Err(PlacementError::NoFeasibleProvider { rejections, .. }) => {
            assert_eq!(rejections.get(RejectionKind::SloInfeasible), 1);
            assert!(rejections.any_transient());
            assert!(rejections.describe().contains("time-to-first-token"));
        }
        other => panic!("expected an SLO refusal, got {other:?}"),
    }
    // Fresh (measured 1 s ago): no probe.
    req.probe_stale = true;
    assert!(reg.place(&req).is_err());
    // Stale (not measured for probe_after_ms) and idle: probed.
    req.now_ms = 1_000 + reg.config().latency.probe_after_ms;
    let p = reg.place(&req).unwrap();
    assert!(p.chosen.estimate.probe);
    // Busy: not probed.
    reg.set_load(&pid("p"), 1, 0).unwrap();
    assert!(reg.place(&req).is_err());
    // Best-effort: the objective filters nothing, the estimate still shows.
    req.probe_stale = false;
    req.best_effort = true;
    let p = reg.place(&req).unwrap();
    assert!(p.chosen.estimate.ttft_ms > 500.0);
    assert!(!p.chosen.estimate.probe);
}

proptest! {
    /// A provider whose real TTFT meets the objective is never refused for
    /// it: with its RTT measured and its prefill rate measured from jobs,
    /// an idle provider whose RTT + prefill time fits the objective is
    /// placed, whatever it claimed before and wherever the prompt length
    /// and objective fall.
    #[test]
    fn a_provider_whose_ttft_meets_the_objective_is_never_refused(
        rtt_us in 50u32..200_000,
        prefill_tps in 10.0f64..20_000.0,
        decode_tps in 1.0f64..2_000.0,
        prompt in 1u32..4_000,
        output in 1u32..512,
        slack_ms in 0.0f64..1_000.0,
        claimed_prefill in proptest::option::of(1.0f64..100_000.0),
        samples in 3usize..8,
    ) {
        let mut reg = registry();
        let mut o = offer("m", 0.1, 100, 200, true);
        o.prefill_tps = claimed_prefill;
        o.decode_tps = None;
        add(&mut reg, &claims("p", "cpu", 1, Interconnect::Pcie, ASHBURN, 1, vec![o]));
        for _ in 0..samples {
            reg.record_rtt(&pid("p"), rtt_us).unwrap();
        }
        // Measured repeatedly at its real rates (the average converges).
        for t in 0..40 {
            reg.record_measurement(&pid("p"), "m", Some(prefill_tps), Some(decode_tps), t).unwrap();
        }
        let real_ttft = f64::from(rtt_us) / 1e3 + f64::from(prompt) * 1e3 / prefill_tps;
        let slo = (real_ttft + slack_ms).ceil() as u32 + 1;
        let req = Request::new("m", interactive(slo), prompt, output, 100);
        let placed = reg.place(&req);
        prop_assert!(placed.is_ok(), "refused: real TTFT {real_ttft} ms, objective {slo} ms: {placed:?}");
    }
}
