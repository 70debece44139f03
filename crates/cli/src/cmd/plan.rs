//! `proofmesh plan`: simulates a workload mix on a fleet with the placement
//! crate's `plan` and prints cost per 1M tokens, SLO attainment, the saving
//! from routing simple work to older chips, and colocated against
//! decentralized placement. Defaults to the built-in fleet and mix; file
//! formats are described in `plan/input.rs`.

mod input;

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_placement::economics::figures;
use proofmesh_placement::plan::{
    default_fleet, default_mix, plan, FleetEntry, MixItem, PlanConfig, PlanReport, ScenarioReport,
};
use serde::Serialize;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fleet description, JSON or TOML (`[[fleet]]` entries with gpu,
    /// boxes, region, ...); default: the built-in decentralized fleet.
    #[arg(long, value_name = "FILE")]
    fleet: Option<PathBuf>,
    /// Workload mix, JSON or TOML (`[[mix]]` entries with name, class,
    /// model, prompt_tokens, output_tokens, share); default: the built-in mix.
    #[arg(long, value_name = "FILE")]
    mix: Option<PathBuf>,
    /// Useful life of a GPU, years: capex is amortized over it (3 against
    /// 4–6 is the debate that moves the cost curve).
    #[arg(long, default_value_t = figures::DEFAULT_USEFUL_LIFE_YEARS,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    life_years: u32,
    /// Requests simulated per scenario.
    #[arg(long, default_value_t = PlanConfig::default().requests,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    requests: u32,
    /// Seed of arrivals, mix draws and client sites.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object (key names carry units).
    #[arg(long)]
    json: bool,
}

/// What `--json` prints: the inputs named, then the report.
#[derive(Serialize)]
struct Output<'a> {
    fleet: String,
    mix: String,
    useful_life_years: u32,
    boxes: u64,
    gpus: u64,
    #[serde(flatten)]
    report: &'a PlanReport,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let fleet: Vec<FleetEntry> = match &a.fleet {
        Some(p) => input::fleet(p)?,
        None => default_fleet(),
    };
    let mix: Vec<MixItem> = match &a.mix {
        Some(p) => input::mix(p)?,
        None => default_mix(),
    };
    let mut cfg = PlanConfig {
        requests: a.requests,
        seed: a.seed,
        ..PlanConfig::default()
    };
    cfg.floor.useful_life_years = a.life_years;
    let boxes: u64 = fleet.iter().map(|e| u64::from(e.boxes)).sum();
    let gpus: u64 = fleet
        .iter()
        .map(|e| u64::from(e.boxes) * u64::from(e.gpus_per_box))
        .sum();
    let kinds = mix.len();
    let name = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or("built-in".into(), |p| p.display().to_string())
    };
    let (fleet_name, mix_name) = (name(&a.fleet), name(&a.mix));
    let report = tokio::task::spawn_blocking(move || plan(&fleet, &mix, &cfg))
        .await?
        // The message already names the cause; don't print the chain twice.
        .map_err(|e| anyhow::anyhow!("fleet {fleet_name}, mix {mix_name}: {e}"))?;
    let out = Output {
        fleet: name(&a.fleet),
        mix: name(&a.mix),
        useful_life_years: a.life_years,
        boxes,
        gpus,
        report: &report,
    };
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_text(&out, kinds);
    }
    Ok(ExitCode::SUCCESS)
}

fn usd(micros: u64) -> String {
    format!("${:.4}", micros as f64 / 1e6)
}

fn pct(bp: i64) -> String {
    format!("{:.1}%", bp as f64 / 100.0)
}

fn row(s: &ScenarioReport) {
    println!(
        "  {:<14} {:>9} {:>12} {:>8} {:>13.0} {:>13.0} {:>8} {:>8}",
        s.name,
        s.providers,
        usd(s.cost_per_mtok_micros),
        pct(i64::from(s.slo_attainment_bp)),
        s.interactive_p50_ttft_ms,
        s.interactive_p99_ttft_ms,
        s.placed,
        s.unplaced
    );
}

fn print_text(o: &Output<'_>, kinds: usize) {
    let r = o.report;
    println!(
        "plan: fleet {} ({} boxes, {} GPUs), mix {} ({kinds} kinds), {} requests per scenario, GPU life {} years",
        o.fleet, o.boxes, o.gpus, o.mix, r.requests, o.useful_life_years
    );
    println!(
        "  H100 price floor {}/GPU-h; decentralized market {}/GPU-h, verified on-demand {}–{}/GPU-h, old AWS p5 list {}/GPU-h",
        usd(r.h100_floor_per_gpu_hour_micros),
        usd(figures::H100_DECENTRALIZED_PER_GPU_HOUR_MICROS),
        usd(figures::VERIFIED_ON_DEMAND_LOW_PER_GPU_HOUR_MICROS),
        usd(figures::VERIFIED_ON_DEMAND_HIGH_PER_GPU_HOUR_MICROS),
        usd(r.aws_p5_list_per_gpu_hour_micros)
    );
    println!();
    println!(
        "  {:<14} {:>9} {:>12} {:>8} {:>13} {:>13} {:>8} {:>8}",
        "scenario",
        "providers",
        "cost/1M tok",
        "SLO met",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "placed",
        "unplaced"
    );
    for s in [&r.decentralized, &r.all_h100, &r.colocated] {
        row(s);
    }
    println!();
    println!(
        "  routing simple work to older chips saves {} per 1M tokens ({} of the all-H100 cost)",
        usd(r.tier_saving_per_mtok_micros.max(0) as u64),
        pct(r.tier_saving_bp)
    );
    println!(
        "  colocated (one site, verified on-demand prices) costs {:.2}x decentralized per 1M tokens",
        r.colocated_to_decentralized_cost_bp as f64 / 10_000.0
    );
    println!(
        "  fine-tune jobs (not in per-token figures): {} decentralized, {} colocated",
        usd(r.decentralized.fine_tune_cost_micros),
        usd(r.colocated.fine_tune_cost_micros)
    );
    let jobs: Vec<String> = r
        .decentralized
        .jobs_by_gpu
        .iter()
        .map(|(g, n)| format!("{g} {n}"))
        .collect();
    println!("  jobs by GPU (decentralized): {}", jobs.join(", "));
    println!("  SLO attainment is on modelled TTFT and completion estimates, not measured runs");
}
