//! `proofmesh bench schedule`: prints the placement figures ([`measure`]) —
//! placements per second and decision time with N registered synthetic
//! providers and a realistic request mix — beside the published references
//! (kube-scheduler, Ray) and the target.

mod measure;

use std::process::ExitCode;

use measure::{run_with, BenchConfig, BenchReport};

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Registered synthetic providers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    providers: u64,
    /// Timed placements.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    placements: u64,
    /// Threads placing concurrently on the shared registry (1 gives the
    /// cleanest per-decision latency).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_024))]
    threads: u64,
    /// Seed of the synthetic fleet and requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object (key names carry units).
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = BenchConfig {
        providers: usize::try_from(a.providers)?,
        placements: usize::try_from(a.placements)?,
        seed: a.seed,
        threads: usize::try_from(a.threads)?,
    };
    let r = tokio::task::spawn_blocking(move || run_with(&cfg)).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_text(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(r: &BenchReport) {
    println!(
        "placement benchmark: {} providers, {} models, {} placements, {} thread(s), seed {}",
        r.providers, r.models, r.placements, r.threads, r.seed
    );
    println!("  registry build     {:.1} ms", r.registry_build_ms);
    println!(
        "  placed             {} ({} with no feasible provider)",
        r.placed, r.infeasible
    );
    println!(
        "  throughput         {:.0} placements/s   (target >= {:.0}; kube-scheduler ~{:.0}-{:.0} pods/s; Ray ~{:.0}-{:.0} tasks/s)",
        r.placements_per_s,
        r.target_placements_per_s,
        r.reference_kube_scheduler_pods_per_s_low,
        r.reference_kube_scheduler_pods_per_s_high,
        r.reference_ray_tasks_per_s_low,
        r.reference_ray_tasks_per_s_high
    );
    println!(
        "  decision time      mean {:.1} µs, p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs   (target p99 < {:.0} µs)",
        r.mean_decision_us,
        r.p50_decision_us,
        r.p90_decision_us,
        r.p99_decision_us,
        r.max_decision_us,
        r.target_p99_decision_us
    );
    println!(
        "  candidates         {:.1} examined after pruning, of {:.1} offering the model",
        r.mean_examined, r.mean_index_candidates
    );
    for c in &r.by_class {
        println!(
            "  {:<18} {:>8} placements, p50 {:.1} µs, p99 {:.1} µs, {:.1} examined",
            c.class, c.placements, c.p50_decision_us, c.p99_decision_us, c.mean_examined
        );
    }
    let verdict = if r.meets_target { "met" } else { "NOT met" };
    println!("  target             {verdict}");
}
