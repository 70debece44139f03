//! `proofmesh providers` lists the network's providers with their claims
//! (each marked self-declared, measured or attested) and measurements;
//! `proofmesh explain JOB_ID` shows where each attempt of one of your jobs
//! went and why: every provider's filter verdicts, scores and estimates.

use std::process::ExitCode;

use crate::clientcfg::{api_get, ApiArgs};

/// `providers` options.
#[derive(clap::Args, Debug)]
pub struct ProvidersArgs {
    /// Only providers offering this model (name or digest).
    #[arg(long)]
    model: Option<String>,
    /// Only providers in this region.
    #[arg(long)]
    region: Option<String>,
    /// Only providers with free capacity now.
    #[arg(long)]
    available: bool,
    /// Only providers attested at least this level: tee or tee+gpu.
    #[arg(long)]
    min_attestation: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// `explain` options.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Job id (`job_...`; the receipt's `job_id`).
    job_id: String,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `proofmesh providers`.
pub async fn providers(a: ProvidersArgs) -> anyhow::Result<ExitCode> {
    let mut q = Vec::new();
    if let Some(m) = a.model {
        q.push(("model", m));
    }
    if let Some(r) = a.region {
        q.push(("region", r));
    }
    if a.available {
        q.push(("available", "true".to_owned()));
    }
    if let Some(l) = a.min_attestation {
        q.push(("min_attestation", l));
    }
    let v = api_get(a.api, "/providers", &q).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = v["data"].as_array().cloned().unwrap_or_default();
    println!("{} provider(s)", list.len());
    for p in list {
        println!("{}", attestation_line(&p));
        println!("  {}", serde_json::to_string(&p)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per provider: key, trust level, evidence digest and when its
/// earliest certificate or collateral expires.
fn attestation_line(p: &serde_json::Value) -> String {
    let id = p["id"].as_str().unwrap_or("?");
    let a = &p["attestation"];
    match a["level"].as_str() {
        None => format!("{id}  attestation: none"),
        Some(level) => {
            let expiry = a["not_after_s"]
                .as_u64()
                .map(|t| {
                    let left = t as i64 - (proofmesh_ambient::clock::now_ms() / 1000) as i64;
                    format!(
                        "expires at unix {t} ({:.1} days left)",
                        left as f64 / 86_400.0
                    )
                })
                .unwrap_or_else(|| "no expiry".into());
            let digest = a["evidence_digest"].as_str().unwrap_or("?");
            format!("{id}  attestation: {level}, evidence sha256:{digest}, {expiry}")
        }
    }
}

/// One placement record: how it was asked (mode, prompt count), then the
/// choice with its estimate, or why nothing could take it, per provider.
fn print_attempt(att: &serde_json::Value) -> anyhow::Result<()> {
    let mode = att["mode"].as_str().unwrap_or("as_asked");
    let counted = att["prompt_counted_by"].as_str().unwrap_or("unknown");
    println!(
        "attempt {} ({}), {mode}, prompt {} tokens ({counted})",
        att["attempt"], att["class"], att["prompt_tokens"]
    );
    if let Some(e) = att["error"].as_str() {
        println!("  no placement: {e}");
        let verdicts = att["explanation"]["verdicts"].as_array();
        for v in verdicts.into_iter().flatten() {
            let reasons: Vec<String> = v["rejections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r.to_string())
                .collect();
            println!(
                "    {}: {}",
                v["provider"].as_str().unwrap_or("?"),
                reasons.join(", ")
            );
        }
        return Ok(());
    }
    let p = &att["placement"];
    let c = &p["chosen"];
    let e = &c["estimate"];
    println!(
        "  chosen   {} in {}: estimated TTFT {} ms = RTT {} ms ({}) + queue {} ms + prefill {} ms ({}){}",
        c["provider"].as_str().unwrap_or("?"),
        c["region"].as_str().unwrap_or("?"),
        e["ttft_ms"],
        e["provider_rtt_ms"],
        e["provider_rtt_source"].as_str().unwrap_or("?"),
        e["queue_ms"],
        e["prefill_ms"],
        e["throughput_source"].as_str().unwrap_or("?"),
        if att["objective_missed"] == true { "; objective missed (best-effort)" } else { "" },
    );
    for alt in p["alternates"].as_array().into_iter().flatten() {
        println!("  fallback {}", alt["provider"].as_str().unwrap_or("?"));
    }
    if let Some(ex) = p.get("explanation").filter(|e| !e.is_null()) {
        println!("  explanation: {}", serde_json::to_string(ex)?);
    }
    Ok(())
}

/// Runs `proofmesh explain`.
pub async fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let v = api_get(a.api, &format!("/jobs/{}/placement", a.job_id), &[]).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for att in v["attempts"].as_array().into_iter().flatten() {
        print_attempt(att)?;
    }
    Ok(ExitCode::SUCCESS)
}
