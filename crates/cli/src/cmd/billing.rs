//! `proofmesh billing`: a client's balance and usage (over the API, with its
//! key), and two operator commands on the coordinator's data directory,
//! through the coordinator's offline administration service
//! ([`proofmesh_coordinator::admin`]): `billing credit`, which deposits
//! prepaid credit straight into the ledger (the running coordinator picks
//! the deposit up: its writer reloads when the store moved), and `billing
//! check`, which checks that no job's escrow or audit hold still holds money
//! once the job and its audit are final (exit status 1 if one does).

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_coordinator::admin::{self, Deposit};
use proofmesh_ledger::money::format_micros;
use proofmesh_ledger::{Amount, Currency};

use crate::clientcfg::{api_get, ApiArgs};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Show the caller's prepaid balance.
    Balance(ApiArgs),
    /// Show the caller's latest ledger lines (escrows, releases, refunds).
    Usage(ApiArgs),
    /// Operator: deposit prepaid credit for a client (idempotent per --reference).
    Credit {
        /// Client id (`client_...`, shown by `proofmesh keys create`).
        #[arg(long)]
        client: String,
        /// Amount as a decimal, e.g. `25.00`.
        #[arg(long)]
        amount: String,
        /// Currency code.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Payment reference; the same reference never credits twice.
        #[arg(long)]
        reference: String,
        /// The coordinator's data directory (as for `keys create`).
        #[arg(long, default_value = ".proofmesh/coordinator")]
        data_dir: PathBuf,
    },
    /// Operator: check that every job escrow and audit hold is empty once
    /// its job and audit are final. Read-only; exits 1 on a violation.
    Check {
        /// The coordinator's data directory (as for `keys create`).
        #[arg(long, default_value = ".proofmesh/coordinator")]
        data_dir: PathBuf,
        /// Ignore jobs that became final less than this many seconds ago (a
        /// running coordinator settles them a moment after); 0 checks all.
        #[arg(long, default_value_t = 60)]
        grace_s: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Balance(a) => {
            let v = api_get(a, "/balance", &[]).await?;
            println!("client {}", v["client_id"].as_str().unwrap_or("?"));
            for b in v["balances"].as_array().into_iter().flatten() {
                let micros = b["micros"].as_i64().unwrap_or(0);
                println!(
                    "  {} {}",
                    format_micros(micros),
                    b["currency"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Usage(a) => {
            let v = api_get(a, "/usage", &[]).await?;
            for l in v["activity"].as_array().into_iter().flatten() {
                println!(
                    "{:>8}  {:<10} {:>14} {}  {}",
                    l["seq"],
                    l["reason"].as_str().unwrap_or("?"),
                    format_micros(l["delta_micros"].as_i64().unwrap_or(0)),
                    l["currency"].as_str().unwrap_or("?"),
                    l["link"].as_str().unwrap_or("")
                );
            }
        }
        Command::Credit {
            client,
            amount,
            currency,
            reference,
            data_dir,
        } => credit(&client, &amount, &currency, &reference, &data_dir).await?,
        Command::Check {
            data_dir,
            grace_s,
            json,
        } => return check(&data_dir, grace_s, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(dir: &std::path::Path, grace_s: u64, json: bool) -> anyhow::Result<ExitCode> {
    let report = admin::check_settlement(
        dir,
        proofmesh_ambient::clock::now_ms(),
        std::time::Duration::from_secs(grace_s),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for v in &report.violations {
            println!(
                "VIOLATION {} holds {} {} (job {}: {}, audit {})",
                v.account,
                format_micros(v.balance),
                v.currency.code(),
                v.job_id,
                v.job.as_str(),
                v.audit.as_str(),
            );
        }
        println!(
            "{} funded job accounts: {} not final yet (or without a job row), {} final within {grace_s}s, {} violations",
            report.checked,
            report.not_final,
            report.recent,
            report.violations.len()
        );
        println!("{}", if report.holds() { "OK" } else { "FAIL" });
    }
    Ok(if report.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn credit(
    client: &str,
    amount: &str,
    currency: &str,
    reference: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let currency = Currency::parse(currency)?;
    let amount = Amount::parse_decimal(currency, amount)?;
    let applied = admin::credit(
        dir,
        Deposit {
            client_id: client,
            amount,
            reference,
        },
        proofmesh_ambient::clock::now_ms(),
    )
    .await?;
    if applied.replayed {
        println!("reference {reference} was already credited; nothing changed");
    } else {
        println!(
            "credited {} {} to {client} (ledger seq {})",
            format_micros(i64::try_from(amount.micros()).unwrap_or(i64::MAX)),
            currency.code(),
            applied.seq
        );
    }
    Ok(())
}
