//! Runs `plan` on the default fleet and mix and prints the report as JSON:
//! what `proofmesh plan` will print before the CLI wiring exists.
//! `cargo run --release -p proofmesh-placement --example plan -- [life_years]`

use proofmesh_placement::plan::{default_fleet, default_mix, plan, PlanConfig};

fn main() {
    let mut cfg = PlanConfig::default();
    if let Some(years) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        cfg.floor.useful_life_years = years;
    }
    match plan(&default_fleet(), &default_mix(), &cfg) {
        Ok(r) => println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("report serialises")
        ),
        Err(e) => eprintln!("plan: {e}"),
    }
}
