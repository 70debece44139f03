//! `proofmesh pool create | transfer | show | holder`: revenue-share pools
//! from the command line. A provider signs a charter with its own key file
//! (the one its agent runs with), a holder signs a transfer with its key
//! file (`--key`, created if absent, so `pool holder --key F` prints the id
//! to be given units); the coordinator only checks and records what the keys
//! signed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use proofmesh_ledger::{
    Allocation, Currency, PoolCharter, SignedCharter, SignedTransfer, UnitTransfer,
};
use proofmesh_receipt::Identity;

use crate::clientcfg;

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Sign and register a pool of this provider's earnings.
    Create {
        /// Pool id.
        #[arg(long)]
        pool: String,
        /// The provider's key file (its agent's `--key`).
        #[arg(long)]
        key: PathBuf,
        /// Share of the provider's post-fee earnings, basis points.
        #[arg(long)]
        share_bps: u32,
        /// Initial units, `HOLDER_KEY=UNITS` (repeatable).
        #[arg(long = "holder", required = true)]
        holders: Vec<String>,
        /// Currency.
        #[arg(long, default_value = "USD")]
        currency: String,
        /// Coordinator base URL.
        #[arg(long, env = "PROOFMESH_BASE_URL")]
        base_url: Option<String>,
        /// Data directory holding client.json (for the base URL).
        #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Sign and submit a unit transfer from the holder whose key this is.
    Transfer {
        /// Pool id.
        #[arg(long)]
        pool: String,
        /// The sending holder's key file.
        #[arg(long)]
        key: PathBuf,
        /// Receiving holder key (`ed25519:<hex>`).
        #[arg(long)]
        to: String,
        /// Units to move.
        #[arg(long)]
        units: u64,
        /// Idempotency key (default: random; reuse one to retry safely).
        #[arg(long)]
        transfer_key: Option<String>,
        /// Coordinator base URL.
        #[arg(long, env = "PROOFMESH_BASE_URL")]
        base_url: Option<String>,
        /// Data directory holding client.json (for the base URL).
        #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Show a pool: units by holder and what is not yet distributed.
    Show {
        /// Pool id.
        pool: String,
        #[command(flatten)]
        api: clientcfg::ApiArgs,
    },
    /// Print a holder id for a key file (creating the key if absent), and
    /// its paid-out balance.
    Holder {
        /// The holder's key file.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        api: clientcfg::ApiArgs,
    },
}

fn base(base_url: Option<String>, data_dir: &std::path::Path) -> anyhow::Result<String> {
    base_url
        .or_else(|| clientcfg::load(data_dir).map(|c| c.base_url))
        .map(|b| b.trim_end_matches('/').to_owned())
        .context("no base URL: pass --base-url or run `proofmesh up` first")
}

async fn post(url: String, body: &impl serde::Serialize) -> anyhow::Result<serde_json::Value> {
    let resp = reqwest::Client::new()
        .post(&url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    if !status.is_success() {
        bail!("{status}: {}", v["error"]["message"]);
    }
    Ok(v)
}

fn parse_holders(holders: &[String]) -> anyhow::Result<Vec<Allocation>> {
    holders
        .iter()
        .map(|h| {
            let (holder, units) = h
                .rsplit_once('=')
                .with_context(|| format!("--holder {h:?}: expected HOLDER_KEY=UNITS"))?;
            let units = units
                .parse()
                .with_context(|| format!("--holder {h:?}: units are not a number"))?;
            Ok(Allocation {
                holder: holder.to_owned(),
                units,
            })
        })
        .collect()
}

/// Runs the subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Create {
            pool,
            key,
            share_bps,
            holders,
            currency,
            base_url,
            data_dir,
        } => {
            let id = Identity::load(&key).with_context(|| format!("key {}", key.display()))?;
            let charter = PoolCharter {
                version: proofmesh_ledger::pool::signed::POOL_DOC_VERSION,
                pool,
                provider: id.public().clone(),
                share_bps,
                currency: Currency::parse(&currency)?,
                holders: parse_holders(&holders)?,
                created_ms: proofmesh_ambient::clock::now_ms(),
            };
            let signed = SignedCharter::sign(charter, &id)?;
            let v = post(format!("{}/v1/pools", base(base_url, &data_dir)?), &signed).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Transfer {
            pool,
            key,
            to,
            units,
            transfer_key,
            base_url,
            data_dir,
        } => {
            let id = Identity::load(&key).with_context(|| format!("key {}", key.display()))?;
            let t = UnitTransfer {
                key: transfer_key.unwrap_or_else(|| format!("t-{}", uuid::Uuid::new_v4().simple())),
                pool: pool.clone(),
                from: id.public().to_string(),
                to,
                units,
            };
            let signed = SignedTransfer::sign(t, &id)?;
            let url = format!("{}/v1/pools/{pool}/transfers", base(base_url, &data_dir)?);
            let v = post(url, &signed).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Show { pool, api } => {
            let v = clientcfg::api_get(api, &format!("/v1/pools/{pool}"), &[]).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Holder { key, api } => {
            let id = Identity::load_or_create(&key)?;
            println!("holder {}", id.public());
            let v = clientcfg::api_get(api, &format!("/v1/holders/{}", id.public()), &[]).await?;
            println!("{}", serde_json::to_string_pretty(&v["balances"])?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
