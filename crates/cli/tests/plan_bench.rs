//! `proofmesh plan` and `proofmesh bench schedule` through the real binary:
//! the JSON they print has the documented keys and sane figures (positive
//! costs, a tier saving on the default mix, consistent counts and
//! percentiles), fleet and mix files in TOML and JSON are read, and bad
//! input fails with an error that names what is wrong. No timing
//! thresholds: the figures themselves are `bench schedule`'s job.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_proofmesh");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PROOFMESH_LOG", "warn")
        .output()
        .expect("run the proofmesh binary")
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("missing number {key:?} in {v}"))
}

fn failure(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn scenario_is_consistent(s: &Value, requests: f64) {
    for key in [
        "providers",
        "placed",
        "unplaced",
        "tokens",
        "inference_cost_micros",
        "cost_per_mtok_micros",
        "fine_tune_cost_micros",
        "slo_requests",
        "slo_met",
        "slo_attainment_bp",
        "interactive_p50_ttft_ms",
        "interactive_p99_ttft_ms",
    ] {
        assert!(num(s, key) >= 0.0, "{key} in {s}");
    }
    assert_eq!(num(s, "placed") + num(s, "unplaced"), requests, "{s}");
    assert!(num(s, "cost_per_mtok_micros") > 0.0, "{s}");
    assert!(num(s, "slo_met") <= num(s, "slo_requests"), "{s}");
    let bp = num(s, "slo_attainment_bp");
    assert!(bp > 0.0 && bp <= 10_000.0, "{s}");
    assert!(num(s, "interactive_p50_ttft_ms") <= num(s, "interactive_p99_ttft_ms"));
    let by_gpu = s["jobs_by_gpu"].as_object().expect("jobs_by_gpu object");
    let jobs: f64 = by_gpu.values().filter_map(Value::as_f64).sum();
    assert_eq!(jobs, num(s, "placed"), "{s}");
}

#[test]
fn plan_json_on_the_defaults_shows_costs_slo_and_a_tier_saving() {
    let v = json(&["plan", "--json"]);
    assert_eq!(v["fleet"], "built-in");
    assert_eq!(v["mix"], "built-in");
    assert_eq!(num(&v, "useful_life_years"), 3.0);
    let requests = num(&v, "requests");
    assert!(requests > 0.0);
    for name in ["decentralized", "all_h100", "colocated"] {
        scenario_is_consistent(&v[name], requests);
        assert_eq!(num(&v[name], "providers"), num(&v, "boxes"), "{name}");
    }
    assert!(num(&v, "gpus") >= num(&v, "boxes"));
    let (d, h, c) = (
        num(&v["decentralized"], "cost_per_mtok_micros"),
        num(&v["all_h100"], "cost_per_mtok_micros"),
        num(&v["colocated"], "cost_per_mtok_micros"),
    );
    assert!(num(&v, "tier_saving_per_mtok_micros") > 0.0, "{v}");
    assert_eq!(num(&v, "tier_saving_per_mtok_micros"), h - d);
    assert!(num(&v, "tier_saving_bp") > 0.0);
    assert!(
        c > d,
        "colocated {c} should cost more than decentralized {d}"
    );
    assert!(num(&v, "colocated_to_decentralized_cost_bp") > 10_000.0);
    assert!(num(&v, "h100_floor_per_gpu_hour_micros") > 0.0);
    assert_eq!(num(&v, "aws_p5_list_per_gpu_hour_micros"), 12_290_000.0);
}

#[test]
fn plan_text_prints_every_headline() {
    let out = run(&["plan", "--requests", "800"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "cost/1M tok",
        "SLO met",
        "decentralized",
        "all-h100",
        "colocated",
        "routing simple work to older chips saves",
        "x decentralized per 1M tokens",
        "jobs by GPU",
        "800 requests per scenario",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn a_longer_gpu_life_lowers_the_price_floor() {
    let floor = |years: &str| {
        let v = json(&["plan", "--json", "--requests", "300", "--life-years", years]);
        assert_eq!(v["useful_life_years"].to_string(), years);
        num(&v, "h100_floor_per_gpu_hour_micros")
    };
    let (three, six) = (floor("3"), floor("6"));
    assert!(
        six < three,
        "6-year floor {six} should be below 3-year {three}"
    );
}

const FLEET_TOML: &str = r#"
[[fleet]]
gpu = "H100"
gpus_per_box = 8
interconnect = "nvlink"
region = "us-east"
boxes = 2

[[fleet]]
gpu = "NVIDIA GeForce RTX 3090"
region = "eu-central"
boxes = 10

[[fleet]]
gpu = "t4"
region = "home-lab"
location = { lat = 48.1, lon = 11.5 }
boxes = 3
price_per_gpu_hour_micros = 90000
"#;

const MIX_JSON: &str = r#"{"mix": [
  {"name": "chat", "class": "interactive;ttft_ms=400", "model": "llama-3.2-1b",
   "prompt_tokens": 300, "output_tokens": 150, "share": 70},
  {"name": "batch", "class": {"class": "batch", "deadline_ms": 3600000},
   "model": {"id": "my-8b", "params": 8000000000, "size_bytes": 16000000000},
   "prompt_tokens": 2000, "output_tokens": 300, "share": 30}
]}"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write input file");
    p.display().to_string()
}

#[test]
fn plan_reads_a_toml_fleet_and_a_json_mix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = write(dir.path(), "fleet.toml", FLEET_TOML);
    let mix = write(dir.path(), "mix.json", MIX_JSON);
    let args = ["plan", "--json", "--fleet", &fleet, "--mix", &mix];
    let v = json(&[&args[..], &["--requests", "1000"]].concat());
    assert_eq!(v["fleet"].as_str(), Some(fleet.as_str()));
    assert_eq!(num(&v, "boxes"), 15.0);
    assert_eq!(num(&v, "gpus"), 29.0);
    for name in ["decentralized", "all_h100", "colocated"] {
        scenario_is_consistent(&v[name], 1_000.0);
        assert_eq!(num(&v[name], "providers"), 15.0);
    }
    let used: Vec<&String> = v["decentralized"]["jobs_by_gpu"]
        .as_object()
        .expect("jobs_by_gpu")
        .keys()
        .collect();
    assert!(!used.is_empty());
    for gpu in used {
        assert!(["H100", "RTX 3090", "T4"].contains(&gpu.as_str()), "{gpu}");
    }
}

#[test]
fn plan_rejects_bad_input_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown_gpu = write(
        dir.path(),
        "gpu.json",
        r#"[{"gpu": "Voodoo 5", "region": "us-east", "boxes": 1}]"#,
    );
    let err = failure(&["plan", "--fleet", &unknown_gpu]);
    assert!(
        err.contains("unknown GPU") && err.contains("Voodoo 5"),
        "{err}"
    );
    assert!(err.contains("gpu.json"), "{err}");

    let unknown_field = write(
        dir.path(),
        "field.toml",
        "[[fleet]]\ngpu = \"h100\"\nregion = \"us-east\"\nboxes = 1\ncolour = \"red\"\n",
    );
    let err = failure(&["plan", "--fleet", &unknown_field]);
    assert!(err.contains("colour"), "{err}");

    let off_planet = write(
        dir.path(),
        "lat.json",
        r#"{"fleet": [{"gpu": "h100", "region": "x", "boxes": 1, "location": {"lat": 95, "lon": 0}}]}"#,
    );
    let err = failure(&["plan", "--fleet", &off_planet]);
    assert!(err.contains("latitude"), "{err}");

    let unknown_region = write(
        dir.path(),
        "region.json",
        r#"[{"gpu": "h100", "region": "atlantis", "boxes": 1}]"#,
    );
    let err = failure(&["plan", "--fleet", &unknown_region]);
    assert!(
        err.contains("atlantis") && err.contains("location"),
        "{err}"
    );

    let err = failure(&["plan", "--life-years", "0"]);
    assert!(err.contains("life-years"), "{err}");
    let err = failure(&[
        "plan",
        "--mix",
        &dir.path().join("absent.json").display().to_string(),
    ]);
    assert!(err.contains("absent.json"), "{err}");
}

#[test]
fn bench_schedule_json_reports_throughput_percentiles_and_references() {
    let v = json(&[
        "bench",
        "schedule",
        "--providers",
        "500",
        "--placements",
        "2000",
        "--json",
    ]);
    assert_eq!(num(&v, "providers"), 500.0);
    assert_eq!(num(&v, "placements"), 2_000.0);
    assert_eq!(num(&v, "threads"), 1.0);
    assert_eq!(num(&v, "placed") + num(&v, "infeasible"), 2_000.0);
    assert!(num(&v, "placed") > 1_000.0, "{v}");
    assert!(num(&v, "models") > 0.0);
    assert!(num(&v, "placements_per_s") > 0.0);
    assert!(num(&v, "wall_s") > 0.0);
    let (p50, p90, p99, max) = (
        num(&v, "p50_decision_us"),
        num(&v, "p90_decision_us"),
        num(&v, "p99_decision_us"),
        num(&v, "max_decision_us"),
    );
    assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99 && p99 <= max, "{v}");
    let classes = v["by_class"].as_array().expect("by_class array");
    let names: Vec<&str> = classes.iter().filter_map(|c| c["class"].as_str()).collect();
    assert_eq!(names, ["interactive", "batch", "fine-tune"]);
    let per_class: f64 = classes.iter().map(|c| num(c, "placements")).sum();
    assert_eq!(per_class, 2_000.0);
    assert_eq!(num(&v, "target_placements_per_s"), 50_000.0);
    assert_eq!(num(&v, "target_p99_decision_us"), 1_000.0);
    assert!(v["meets_target"].is_boolean());
    assert_eq!(num(&v, "reference_kube_scheduler_pods_per_s_low"), 300.0);
    assert_eq!(num(&v, "reference_kube_scheduler_pods_per_s_high"), 900.0);
    assert_eq!(num(&v, "reference_ray_tasks_per_s_low"), 8_000.0);
    assert_eq!(num(&v, "reference_ray_tasks_per_s_high"), 22_000.0);
}

#[test]
fn bench_schedule_runs_threaded_and_prints_the_references() {
    let v = json(&[
        "bench",
        "schedule",
        "--providers",
        "300",
        "--placements",
        "1000",
        "--threads",
        "2",
        "--seed",
        "9",
        "--json",
    ]);
    assert_eq!(num(&v, "threads"), 2.0);
    assert_eq!(num(&v, "seed"), 9.0);
    assert_eq!(num(&v, "placements"), 1_000.0);
    let out = run(&[
        "bench",
        "schedule",
        "--providers",
        "300",
        "--placements",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "placements/s",
        "kube-scheduler",
        "Ray",
        "p99",
        "interactive",
        "target",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let err = failure(&["bench", "schedule", "--providers", "0"]);
    assert!(err.contains("providers"), "{err}");
}
