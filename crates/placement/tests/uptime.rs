//! Properties of the live uptime tracker (`proofmesh_placement::uptime`),
//! the figure the fine-tune class's 98% uptime filter reads (issue 17): a
//! provider that stays connected scores ≥ 99.9% for any epoch length ≥ 60 s
//! at any moment, including the moment it first connects; an outage of a
//! known fraction of an epoch costs that fraction; the figure never exceeds
//! 100%, never drops when heartbeats are added, and agrees with the metrics
//! statements' union-of-grace-windows rule.

use proofmesh_placement::uptime::{Uptime, UptimeConfig, FULL_BP};
use proptest::prelude::*;

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const DAY: u64 = 86_400 * SEC;

/// 64 cases by default; `PROPTEST_CASES` raises it for a soak run.
fn cases() -> u32 {
    proofmesh_ambient::env::parse("PROPTEST_CASES").unwrap_or(64)
}

/// An epoch length ≥ 60 s, often short (many boundaries crossed), sometimes
/// the default day or longer.
fn epoch_ms() -> impl Strategy<Value = u64> {
    prop_oneof![MIN..=10 * MIN, MIN..=3 * DAY, Just(MIN), Just(DAY)]
}

/// Length of the covered part of `[from, to)` under the statements' rule:
/// each heartbeat covers `[t, t + grace)`.
fn union_ms(beats: &[u64], grace: u64, from: u64, to: u64) -> u64 {
    let mut iv: Vec<(u64, u64)> = beats
        .iter()
        .map(|&t| (t.max(from), (t + grace).min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    iv.sort_unstable();
    let (mut total, mut end) = (0, from);
    for (a, b) in iv {
        let a = a.max(end);
        if b > a {
            total += b - a;
            end = b;
        }
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// (a) Connected throughout, heartbeats at most `grace` apart with
    /// arbitrary jitter (a few even step back, as wall clocks do): ≥ 99.9%
    /// at the first connect and at every moment before the next heartbeat
    /// is due, across epoch boundaries, for any epoch length ≥ 60 s.
    #[test]
    fn a_connected_provider_scores_at_least_99_9(
        epoch in epoch_ms(),
        grace in SEC..=2 * MIN,
        start_epoch in 0u64..30_000_000,
        start_frac in 0.0f64..1.0,
        gaps in prop::collection::vec((0.0f64..=1.0, 0u8..20, 0.0f64..=1.0), 1..300),
    ) {
        let cfg = UptimeConfig::new(epoch, grace).unwrap();
        // First sight anywhere in an epoch, often right before a boundary.
        let t0 = start_epoch * epoch + ((epoch - 1) as f64 * start_frac) as u64;
        let mut u = Uptime::new(cfg, t0);
        u.connect(t0);
        prop_assert!(u.uptime_bp(t0) >= 9_990, "at first connect: {}", u.uptime_bp(t0));
        let mut last = t0;
        for (frac, back, probe) in gaps {
            // Next heartbeat 1..=grace after the last; one in 20 steps back.
            let gap = 1 + ((grace - 1) as f64 * frac) as u64;
            // Probe any moment until the next heartbeat is due.
            let now = last + (gap as f64 * probe) as u64;
            let bp = u.uptime_bp(now);
            prop_assert!(bp >= 9_990, "{bp} bp at {now} (last beat {last}, E {epoch}, grace {grace})");
            let t = if back == 0 { last.saturating_sub(gap % 50) } else { last + gap };
            u.heartbeat(t);
            last = last.max(t);
        }
        prop_assert!(u.uptime_bp(last + grace) >= 9_990);
    }

    /// (b) Up all of an epoch except an outage of a known fraction `f`:
    /// at the epoch's end the figure is `1 − f`. With a disconnect the
    /// outage is exact (±2 bp rounding); with silence the provider keeps
    /// the grace of its last heartbeat, so it may score up to `grace / E`
    /// more, never less. Just after the boundary the blend still reads the
    /// finished epoch.
    #[test]
    fn an_outage_costs_its_fraction(
        epoch in MIN..=2 * DAY,
        grace in 10 * SEC..=MIN,
        interval_frac in 0.0f64..=1.0,
        k in 1u64..1_000_000,
        f in 0.0f64..0.9,
        pos in 0.0f64..=1.0,
        disconnect in any::<bool>(),
    ) {
        let cfg = UptimeConfig::new(epoch, grace).unwrap();
        // At most ~20k heartbeats per case.
        let h_min = (epoch / 20_000).max(100);
        let h = h_min + ((grace - h_min) as f64 * interval_frac) as u64;
        let start = k * epoch;
        let end = start + epoch;
        let down = (epoch as f64 * f) as u64;
        let a = start + ((epoch - down) as f64 * pos) as u64;
        let b = a + down;
        let mut u = Uptime::new(cfg, start);
        u.connect(start);
        let mut t = start;
        let mut out = false;
        while t < end {
            if t >= a && !out && down > 0 {
                if disconnect {
                    u.disconnect(a);
                }
                out = true;
                t = b;
                u.connect(b);
            } else {
                u.heartbeat(t);
            }
            t += h;
        }
        let observed = epoch - 1;
        let cur = u.current(end - 1);
        prop_assert_eq!(cur.observed_ms, observed);
        let want = (observed - down.min(observed)) as f64 / observed as f64 * 10_000.0;
        let slack = if disconnect { 2.0 } else { 2.0 + grace as f64 / epoch as f64 * 10_000.0 };
        for now in [end - 1, end + 1] {
            let got = f64::from(u.uptime_bp(now));
            prop_assert!(
                got >= want - 2.0 && got <= want + slack,
                "at {now}: got {got} bp, want {want:.1} (+{slack:.1}); E {epoch}, down {down}, h {h}"
            );
        }
    }

    /// (c) Arbitrary events in any order, at any times: the figure is a
    /// basis-point value, an epoch's covered time never exceeds its observed
    /// time nor the epoch, and nothing panics.
    #[test]
    fn figures_stay_in_range_whatever_the_events(
        epoch in 1u64..=3 * DAY,
        grace in 1u64..=u64::MAX / 2,
        t0 in any::<u64>(),
        events in prop::collection::vec((0u8..3, any::<u64>(), any::<bool>()), 0..60),
    ) {
        let cfg = UptimeConfig::new(epoch, grace).unwrap();
        let mut u = Uptime::new(cfg, t0);
        for (kind, raw, near) in events {
            // Half the times near the last one (either side), half anywhere.
            let t = if near { t0.saturating_add(raw % (4 * epoch)).saturating_sub(epoch) } else { raw };
            match kind {
                0 => u.connect(t),
                1 => u.heartbeat(t),
                _ => u.disconnect(t),
            }
            let bp = u.uptime_bp(t);
            prop_assert!(bp <= FULL_BP);
            let cur = u.current(t);
            prop_assert!(cur.covered_ms <= cur.observed_ms && cur.observed_ms <= epoch);
            if let Some(p) = u.previous(t) {
                prop_assert!(p.covered_ms <= p.observed_ms && p.observed_ms <= epoch);
                prop_assert_eq!(p.epoch + 1, cur.epoch);
            }
        }
    }

    /// (c) More evidence never lowers the figure: adding one heartbeat to a
    /// history leaves every later reading equal or higher; and, first seen
    /// at an epoch's start, the covered time is exactly the statements'
    /// union of `[t, t + grace)` windows.
    #[test]
    fn heartbeats_only_help_and_match_the_statement_rule(
        epoch in MIN..=DAY,
        grace in SEC..=5 * MIN,
        k in 0u64..1_000_000,
        offsets in prop::collection::vec(0u64..2 * DAY, 1..80),
        extra in 0u64..2 * DAY,
        probe in 0u64..3 * DAY,
    ) {
        let cfg = UptimeConfig::new(epoch, grace).unwrap();
        let start = k * epoch;
        let mut beats: Vec<u64> = offsets.iter().map(|o| start + o).collect();
        beats.sort_unstable();
        let run = |beats: &[u64]| {
            let mut u = Uptime::new(cfg, start);
            for &t in beats {
                u.heartbeat(t);
            }
            u
        };
        let base = run(&beats);
        let mut more = beats.clone();
        more.push(start + extra);
        more.sort_unstable();
        let with = run(&more);
        // Read both after every heartbeat of either history.
        let after = more.last().copied().unwrap_or(start).max(start + probe);
        prop_assert!(with.uptime_bp(after) >= base.uptime_bp(after));
        // At any moment, counting the heartbeats that had arrived by then.
        let now = start + probe;
        let counted: Vec<u64> = beats.iter().copied().filter(|&t| t <= now).collect();
        let cur = run(&counted).current(now);
        let lo = now / epoch * epoch;
        prop_assert_eq!(cur.covered_ms, union_ms(&counted, grace, lo, now));
        prop_assert_eq!(cur.observed_ms, now - lo);
    }
}
