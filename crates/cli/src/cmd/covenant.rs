//! `proofmesh covenant check`: a lender's check of a provider's metrics
//! statements, trusting only the log's checkpoint key and the coordinator's
//! statement key — never the operator's figures.
//!
//! Steps: download every log entry and recompute the tree against the signed
//! checkpoint (so every statement found is provably in the log); verify each
//! of the provider's statements' signature under the pinned coordinator key
//! and the hash chain from genesis; recompute each statement's figures from
//! the entries logged before it, by the coordinator's own rule
//! (`proofmesh_ledger::statement::evidence`), and report every
//! mismatch; report evidence logged too late to be in any statement; then
//! evaluate the lender's policy on the recomputed figures. Prints PASS or
//! FAIL with the numbers; exit status 1 on FAIL.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_ledger::money::format_micros;
use proofmesh_ledger::statement::evidence::Evidence;
use proofmesh_ledger::statement::FigureMismatch;
use proofmesh_ledger::{
    evaluate, genesis_hash, recheck, verify_chain, CovenantPolicy, SignedStatement, StatementBody,
    StatementFigures,
};
use proofmesh_log::LogEntry;
use proofmesh_receipt::PublicKey;

use crate::clientcfg;
use crate::cmd::log::{download_verified, LogArgs, Remote};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify a provider's metrics statements against the transparency log
    /// (signatures, inclusion, chain, recomputed figures) and evaluate a
    /// lender policy on them.
    Check(CheckArgs),
}

/// Arguments of `covenant check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The lender policy: TOML, or JSON if the file name ends in `.json`.
    #[arg(long)]
    policy: PathBuf,
    /// The provider's key (`ed25519:<hex>`).
    #[arg(long)]
    provider: String,
    /// The coordinator key statements must be signed with (default:
    /// client.json's `coordinator_key`).
    #[arg(long, env = "PROOFMESH_COORDINATOR_KEY")]
    coordinator_key: Option<String>,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs the subcommand; exit status 1 when the check fails.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check(a) => check(a).await,
    }
}

fn load_policy(path: &Path) -> anyhow::Result<CovenantPolicy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let policy = if path.extension().is_some_and(|e| e == "json") {
        CovenantPolicy::from_json_str(&text)
    } else {
        CovenantPolicy::from_toml_str(&text)
    };
    policy.with_context(|| format!("policy {}", path.display()))
}

fn coordinator_key(flag: Option<String>, data_dir: &Path) -> anyhow::Result<PublicKey> {
    let key = flag
        .or_else(|| clientcfg::load(data_dir).map(|c| c.coordinator_key))
        .context("no coordinator key: pass --coordinator-key or run `proofmesh up` first")?;
    PublicKey::parse(&key).with_context(|| format!("coordinator key {key:?}"))
}

/// One statement, checked.
struct Checked {
    index: u64,
    statement: SignedStatement,
    recomputed: StatementFigures,
    mismatches: Vec<FigureMismatch>,
    late: Vec<FigureMismatch>,
}

/// Recomputes `s` (logged at `index`) from `entries` by the evidence rule,
/// and with every later entry and audit too.
fn recompute(s: &SignedStatement, index: u64, entries: &[LogEntry]) -> anyhow::Result<Checked> {
    let b = &s.body;
    let mut before = Evidence::new(b.epoch, b.coordinator.clone());
    let mut all = Evidence::without_cutoff(b.epoch, b.coordinator.clone());
    for (i, e) in entries.iter().enumerate() {
        if (i as u64) < index {
            before.add(e);
        }
        all.add(e);
    }
    let recomputed = before.compute(&b.provider, &b.params)?.figures;
    let everything = all.compute(&b.provider, &b.params)?.figures;
    Ok(Checked {
        index,
        mismatches: recheck(&b.figures, &recomputed),
        late: recheck(&recomputed, &everything),
        recomputed,
        statement: s.clone(),
    })
}

fn pct(bps: u32) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

fn money(micros: u64) -> String {
    format_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

fn print_checked(n: usize, c: &Checked) {
    let b = &c.statement.body;
    let f = &c.recomputed;
    let cur = b.params.currency;
    let head = format!("#{n} epoch {} (log index {})", b.epoch, c.index);
    if c.mismatches.is_empty() {
        println!("ok   {head}: the figures recompute from the log");
    } else {
        println!("FAIL {head}: the figures do NOT follow from the log");
        for m in &c.mismatches {
            println!(
                "       {}: claimed {}, recomputed {}",
                m.field, m.claimed, m.recomputed
            );
        }
    }
    println!(
        "       jobs {}, revenue {} {cur} (net {}, refunded {}), audits {} passed / {} failed",
        f.jobs_served,
        money(f.revenue_micros),
        money(f.net_revenue_micros),
        money(f.refunded_micros),
        f.audits_passed,
        f.audits_failed
    );
    println!(
        "       uptime {} ({} ms, {} heartbeats, grace {} ms), utilization {}",
        pct(f.uptime_bps),
        f.uptime_ms,
        f.heartbeats,
        b.params.heartbeat_grace_ms,
        pct(f.utilization_bps)
    );
    for m in &c.late {
        println!(
            "WARN   evidence logged after this statement (or audits after its cutoff) would make {} {} instead of {}",
            m.field, m.recomputed, m.claimed
        );
    }
}

/// Decodes every entry (the log is already verified against its checkpoint).
fn decode_all(raw: &[Vec<u8>]) -> anyhow::Result<Vec<LogEntry>> {
    raw.iter()
        .enumerate()
        .map(|(i, b)| LogEntry::decode(b).with_context(|| format!("log entry {i} does not parse")))
        .collect()
}

async fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&a.policy)?;
    let provider =
        PublicKey::parse(&a.provider).with_context(|| format!("provider key {:?}", a.provider))?;
    let coordinator = coordinator_key(a.coordinator_key, &a.log.data_dir)?;
    let remote = Remote::new(a.log)?;
    let (cp, raw) = download_verified(&remote).await?;
    println!(
        "ok   log {}: {} entries recomputed to the signed checkpoint's root",
        cp.origin, cp.size
    );
    let entries = decode_all(&raw)?;
    let found: Vec<(u64, SignedStatement)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            LogEntry::Statement(s) if s.body.provider == provider => Some((i as u64, s.clone())),
            _ => None,
        })
        .collect();
    if found.is_empty() {
        println!("FAIL no metrics statements for provider {provider} in the log");
        return Ok(ExitCode::FAILURE);
    }
    let chain: Vec<SignedStatement> = found.iter().map(|(_, s)| s.clone()).collect();
    if let Err(e) = verify_chain(&chain, Some(&coordinator), Some(&genesis_hash())) {
        println!("FAIL statements for {provider}: {e}");
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok   {} statements for {provider}: signed by {coordinator}, one hash chain from genesis",
        found.len()
    );
    let mut checked = Vec::with_capacity(found.len());
    for (n, (index, s)) in found.iter().enumerate() {
        let c = recompute(s, *index, &entries)?;
        print_checked(n + 1, &c);
        checked.push(c);
    }
    let bad = checked.iter().filter(|c| !c.mismatches.is_empty()).count();
    let bodies: Vec<StatementBody> = checked
        .iter()
        .map(|c| StatementBody {
            figures: c.recomputed.clone(),
            ..c.statement.body.clone()
        })
        .collect();
    let report = evaluate(&policy, &bodies)?;
    println!("policy on the recomputed figures:");
    print!("{report}");
    if bad > 0 {
        println!("FAIL {bad} statement(s) claim figures the log does not support");
    }
    Ok(if bad == 0 && report.passed {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::FAILURE
    })
}
