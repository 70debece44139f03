//! The measurement behind `proofmesh bench schedule`: placements per second
//! and decision latency with N registered synthetic providers and a
//! realistic request mix (`proofmesh_placement::synthetic`). It measures
//! wall time around [`Registry::place`]; placement itself never reads a
//! clock. Key names carry units.

use std::time::Instant;

use proofmesh_placement::synthetic::{fleet, request, Rng, NOW_MS};
use proofmesh_placement::{ClassKind, PlacementConfig, PlacementError, Registry, Request};
use serde::Serialize;

/// The throughput target, placements/s.
pub const TARGET_PLACEMENTS_PER_S: f64 = 50_000.0;
/// The p99 target, µs.
pub const TARGET_P99_DECISION_US: f64 = 1_000.0;

/// Bench parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BenchConfig {
    /// Registered providers.
    pub providers: usize,
    /// Timed placements.
    pub placements: usize,
    /// Seed of fleet and requests.
    pub seed: u64,
    /// Threads placing concurrently (registry shared read-only).
    pub threads: usize,
}

/// Decision-time figures of one workload class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRow {
    /// Class name.
    pub class: &'static str,
    /// Placements of this class.
    pub placements: usize,
    /// Median decision time, µs.
    pub p50_decision_us: f64,
    /// 99th percentile, µs.
    pub p99_decision_us: f64,
    /// Mean candidates evaluated after pruning.
    pub mean_examined: f64,
}

/// The bench result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Registered providers.
    pub providers: usize,
    /// Models in the catalog.
    pub models: usize,
    /// Timed placements.
    pub placements: usize,
    /// Threads used.
    pub threads: usize,
    /// Seed.
    pub seed: u64,
    /// Time to build the registry, ms.
    pub registry_build_ms: f64,
    /// Placements that found a provider.
    pub placed: usize,
    /// Placements with no feasible provider.
    pub infeasible: usize,
    /// Wall time of the timed loop, s.
    pub wall_s: f64,
    /// Throughput over all threads, placements/s.
    pub placements_per_s: f64,
    /// Mean decision time, µs.
    pub mean_decision_us: f64,
    /// Median decision time, µs.
    pub p50_decision_us: f64,
    /// 90th percentile, µs.
    pub p90_decision_us: f64,
    /// 99th percentile, µs.
    pub p99_decision_us: f64,
    /// Slowest decision, µs.
    pub max_decision_us: f64,
    /// Mean candidates evaluated per placement after pruning (a placement
    /// with no feasible provider counts every candidate of its model).
    pub mean_examined: f64,
    /// Mean candidates offering the requested model (before pruning).
    pub mean_index_candidates: f64,
    /// Per class.
    pub by_class: Vec<ClassRow>,
    /// Target throughput, placements/s.
    pub target_placements_per_s: f64,
    /// Target p99, µs.
    pub target_p99_decision_us: f64,
    /// Both targets met.
    pub meets_target: bool,
    /// kube-scheduler reference, pods/s (low end).
    pub reference_kube_scheduler_pods_per_s_low: f64,
    /// kube-scheduler reference, pods/s (high end).
    pub reference_kube_scheduler_pods_per_s_high: f64,
    /// Ray reference, tasks/s (low end).
    pub reference_ray_tasks_per_s_low: f64,
    /// Ray reference, tasks/s (high end).
    pub reference_ray_tasks_per_s_high: f64,
}

/// One timed placement.
#[derive(Clone, Copy)]
struct Sample {
    ns: u64,
    class: ClassKind,
    placed: bool,
    examined: usize,
    index_size: usize,
}

fn time_all(reg: &Registry, reqs: &[Request]) -> Vec<Sample> {
    reqs.iter()
        .map(|r| {
            let t = Instant::now();
            let out = reg.place(r);
            let ns = t.elapsed().as_nanos() as u64;
            let index_size = reg.candidates(&r.model);
            let (placed, examined) = match &out {
                Ok(p) => (true, p.examined),
                Err(PlacementError::NoFeasibleProvider { candidates, .. }) => (false, *candidates),
                Err(_) => (false, 0),
            };
            Sample {
                ns,
                class: r.class.kind(),
                placed,
                examined,
                index_size,
            }
        })
        .collect()
}

/// Runs the bench with explicit parameters.
pub fn run_with(cfg: &BenchConfig) -> BenchReport {
    let t0 = Instant::now();
    let reg = fleet(cfg.providers, cfg.seed, PlacementConfig::default(), NOW_MS);
    let registry_build_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut rng = Rng::new(cfg.seed ^ 0x5EED);
    let reqs: Vec<Request> = (0..cfg.placements)
        .map(|_| request(&mut rng, cfg.providers, NOW_MS))
        .collect();
    // Warm caches and branch predictors.
    let _ = time_all(&reg, &reqs[..reqs.len().min(2_000)]);
    let threads = cfg.threads.max(1);
    let chunk = reqs.len().div_ceil(threads).max(1);
    let t1 = Instant::now();
    let samples: Vec<Sample> = std::thread::scope(|s| {
        let handles: Vec<_> = reqs
            .chunks(chunk)
            .map(|c| s.spawn(|| time_all(&reg, c)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let wall_s = t1.elapsed().as_secs_f64();
    report(cfg, &reg, registry_build_ms, wall_s, &samples)
}

fn percentile_us(sorted_ns: &[u64], pct: usize) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted_ns.len()).div_ceil(100).max(1);
    sorted_ns[rank - 1] as f64 / 1e3
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

fn report(
    cfg: &BenchConfig,
    reg: &Registry,
    registry_build_ms: f64,
    wall_s: f64,
    samples: &[Sample],
) -> BenchReport {
    let mut ns: Vec<u64> = samples.iter().map(|s| s.ns).collect();
    ns.sort_unstable();
    let by_class = ClassKind::ALL
        .iter()
        .map(|&k| {
            let of: Vec<&Sample> = samples.iter().filter(|s| s.class == k).collect();
            let mut v: Vec<u64> = of.iter().map(|s| s.ns).collect();
            v.sort_unstable();
            ClassRow {
                class: k.name(),
                placements: of.len(),
                p50_decision_us: percentile_us(&v, 50),
                p99_decision_us: percentile_us(&v, 99),
                mean_examined: mean(of.iter().map(|s| s.examined as f64)),
            }
        })
        .collect();
    let placements_per_s = if wall_s > 0.0 {
        samples.len() as f64 / wall_s
    } else {
        0.0
    };
    let p99 = percentile_us(&ns, 99);
    BenchReport {
        providers: reg.len(),
        models: reg.model_count(),
        placements: samples.len(),
        threads: cfg.threads.max(1),
        seed: cfg.seed,
        registry_build_ms,
        placed: samples.iter().filter(|s| s.placed).count(),
        infeasible: samples.iter().filter(|s| !s.placed).count(),
        wall_s,
        placements_per_s,
        mean_decision_us: mean(ns.iter().map(|&n| n as f64 / 1e3)),
        p50_decision_us: percentile_us(&ns, 50),
        p90_decision_us: percentile_us(&ns, 90),
        p99_decision_us: p99,
        max_decision_us: ns.last().map_or(0.0, |&n| n as f64 / 1e3),
        mean_examined: mean(samples.iter().map(|s| s.examined as f64)),
        mean_index_candidates: mean(samples.iter().map(|s| s.index_size as f64)),
        by_class,
        target_placements_per_s: TARGET_PLACEMENTS_PER_S,
        target_p99_decision_us: TARGET_P99_DECISION_US,
        meets_target: placements_per_s >= TARGET_PLACEMENTS_PER_S && p99 <= TARGET_P99_DECISION_US,
        reference_kube_scheduler_pods_per_s_low: 300.0,
        reference_kube_scheduler_pods_per_s_high: 900.0,
        reference_ray_tasks_per_s_low: 8_000.0,
        reference_ray_tasks_per_s_high: 22_000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bench_reports_consistent_figures() {
        let r = run_with(&BenchConfig {
            providers: 300,
            placements: 400,
            seed: 11,
            threads: 1,
        });
        assert_eq!(r.providers, 300);
        assert_eq!(r.placements, 400);
        assert_eq!(r.placed + r.infeasible, 400);
        assert!(r.placed > 200, "{}", r.placed);
        assert!(r.p50_decision_us <= r.p90_decision_us && r.p90_decision_us <= r.p99_decision_us);
        assert!(r.p99_decision_us <= r.max_decision_us);
        assert!(r.placements_per_s > 0.0);
        assert_eq!(r.by_class.iter().map(|c| c.placements).sum::<usize>(), 400);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("p99_decision_us").is_some() && json.get("placements_per_s").is_some());
    }
}
