//! `proofmesh billing`: a client's balance and usage (over the API, with its
//! key), and the operator's `billing credit`, which deposits prepaid credit
//! straight into the coordinator's ledger database. The running coordinator
//! picks the deposit up (its writer reloads when the store moved).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_ledger::{settle, Amount, Currency};
use proofmesh_settlement::{Bank, BankConfig};
use proofmesh_store::SqliteStore;

use crate::clientcfg;

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Show the caller's prepaid balance.
    Balance(ClientArgs),
    /// Show the caller's latest ledger lines (escrows, releases, refunds).
    Usage(ClientArgs),
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
}

/// How to reach the API.
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// API base URL.
    #[arg(long, env = "PROOFMESH_BASE_URL")]
    base_url: Option<String>,
    /// API key.
    #[arg(long, env = "PROOFMESH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Data directory holding client.json.
    #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

async fn get(a: ClientArgs, path: &str) -> anyhow::Result<serde_json::Value> {
    let (base, key) = clientcfg::resolve(a.base_url, a.api_key, &a.data_dir)?;
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("GET {base}{path}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// Runs the subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Balance(a) => {
            let v = get(a, "/balance").await?;
            println!("client {}", v["client_id"].as_str().unwrap_or("?"));
            for b in v["balances"].as_array().into_iter().flatten() {
                let micros = b["micros"].as_i64().unwrap_or(0);
                println!(
                    "  {} {}",
                    money(micros),
                    b["currency"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Usage(a) => {
            let v = get(a, "/usage").await?;
            for l in v["activity"].as_array().into_iter().flatten() {
                println!(
                    "{:>8}  {:<10} {:>14} {}  {}",
                    l["seq"],
                    l["reason"].as_str().unwrap_or("?"),
                    money(l["delta_micros"].as_i64().unwrap_or(0)),
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
    }
    Ok(ExitCode::SUCCESS)
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
    let db = proofmesh_coordinator::server::db_path(dir);
    anyhow::ensure!(db.exists(), "no coordinator database at {}", db.display());
    let store = SqliteStore::open(&db).await?;
    let (bank, task) =
        Bank::open(std::sync::Arc::new(store.clone()), BankConfig::default()).await?;
    let tx = settle::deposit(client, amount, reference)?;
    let result = bank.apply(tx, proofmesh_coordinator::now_ms()).await;
    bank.close().await;
    let _ = task.await;
    store.close().await;
    let applied = result?;
    if applied.replayed {
        println!("reference {reference} was already credited; nothing changed");
    } else {
        println!(
            "credited {} {} to {client} (ledger seq {})",
            money(i64::try_from(amount.micros()).unwrap_or(i64::MAX)),
            currency.code(),
            applied.seq
        );
    }
    Ok(())
}
