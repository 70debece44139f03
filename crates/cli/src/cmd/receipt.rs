//! `proofmesh receipt verify FILE_OR_ID`: offline verification of a receipt's
//! signatures and arithmetic and its transparency-log inclusion proof,
//! saying exactly which check fails.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_receipt::{PublicKey, Receipt};

use crate::clientcfg;

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify a receipt given as a JSON file, or as a receipt id to fetch.
    Verify {
        /// Receipt JSON file, or a receipt id (`rcpt_...`).
        target: String,
        /// Trust only this coordinator key (default: the one in client.json, if any).
        #[arg(long)]
        coordinator_key: Option<String>,
        /// API base URL (for fetching by id).
        #[arg(long, env = "PROOFMESH_BASE_URL")]
        base_url: Option<String>,
        /// API key (for fetching by id).
        #[arg(long, env = "PROOFMESH_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Data directory holding client.json.
        #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Also write the fetched receipt JSON here.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Re-execute the job locally (one prefill pass on the model) and check
        /// every sampled token and the logit fingerprint. Fetches the job's
        /// evidence from the coordinator (owner only).
        #[arg(long)]
        reexecute: bool,
        /// Model file for --reexecute (default: the cached default model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The transparency log's checkpoint key, to check the receipt's
        /// inclusion proof (default: client.json's `log_key`).
        #[arg(long, env = "PROOFMESH_LOG_KEY")]
        log_key: Option<String>,
    },
}

async fn fetch(base: &str, key: &str, id: &str) -> anyhow::Result<Vec<u8>> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/receipts/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("fetching receipt {id} from {base}"))?;
    let status = resp.status();
    let body = resp.bytes().await?.to_vec();
    anyhow::ensure!(
        status.is_success(),
        "fetching receipt {id}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// Runs the subcommand; exit status 1 when verification fails.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Verify {
        target,
        coordinator_key,
        base_url,
        api_key,
        data_dir,
        save,
        reexecute,
        model,
        log_key,
    } = cmd;
    let creds = (base_url, api_key);
    let path = PathBuf::from(&target);
    let bytes = if path.exists() {
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
    } else {
        let (base, key) = clientcfg::resolve(creds.0.clone(), creds.1.clone(), &data_dir)
            .context("the argument is not a file, so it is taken as a receipt id to fetch")?;
        fetch(&base, &key, &target).await?
    };
    if let Some(s) = save {
        std::fs::write(&s, &bytes)?;
    }
    let pinned =
        match coordinator_key.or_else(|| clientcfg::load(&data_dir).map(|c| c.coordinator_key)) {
            Some(k) => Some(PublicKey::parse(&k)?),
            None => None,
        };
    let log = crate::cmd::log::resolve_verifier(log_key, &data_dir).transpose()?;
    let code = report(&bytes, pinned.as_ref(), log.as_ref());
    if !reexecute || code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let (base, key) = clientcfg::resolve(creds.0, creds.1, &data_dir)
        .context("--reexecute fetches the job's evidence from the coordinator")?;
    reexecute_job(&base, &key, &bytes, model).await
}

/// Fetches the evidence and re-runs the audit locally, as a verifier would.
async fn reexecute_job(
    base: &str,
    key: &str,
    bytes: &[u8],
    model: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let receipt = Receipt::from_json(bytes)?;
    let id = &receipt.body.receipt_id;
    let url = format!("{base}/receipts/{id}/evidence");
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(key)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "fetching evidence: {}",
        resp.status()
    );
    let ev: serde_json::Value = resp.json().await?;
    let task = proofmesh_wire::AuditTask {
        audit_id: "local".into(),
        receipt,
        messages: serde_json::from_value(ev["messages"].clone())?,
        completion_token_ids: serde_json::from_value(ev["completion_token_ids"].clone())?,
        text: serde_json::from_value(ev["text"].clone())?,
        fingerprint: serde_json::from_value(ev["fingerprint"].clone())?,
    };
    let path = crate::cmd::provider::model_path(model)?;
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let engine = proofmesh_engine::Engine::load(&path, Default::default())?;
        let me = proofmesh_receipt::Identity::generate();
        Ok(proofmesh_provider::audit(&engine, &me, &task))
    })
    .await??;
    let b = report.body;
    if b.outcome == proofmesh_receipt::AuditOutcome::Passed {
        println!(
            "ok   re-execution: {} positions match (tokens and fingerprint)",
            b.positions_checked
        );
        println!("RE-EXECUTION VERIFIED");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAIL re-execution: {}", b.reason);
        println!("RE-EXECUTION FAILED");
        Ok(ExitCode::FAILURE)
    }
}

/// Prints every check; returns the exit code.
pub fn report(
    bytes: &[u8],
    pinned: Option<&PublicKey>,
    log: Option<&proofmesh_tlog::CheckpointVerifier>,
) -> ExitCode {
    let receipt = match Receipt::from_json(bytes) {
        Ok(r) => r,
        Err(e) => {
            println!("FAIL parse: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "receipt {} (job {})",
        receipt.body.receipt_id, receipt.body.job_id
    );
    println!("  provider    {}", receipt.body.provider_key);
    println!("  coordinator {}", receipt.body.coordinator_key);
    println!("  model       {}", receipt.body.model);
    let mut ok = true;
    for (name, r) in receipt.checks() {
        match r {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                ok = false;
                println!("FAIL {name}: {e}");
            }
        }
    }
    if let Some(k) = pinned {
        match receipt.verify(Some(k)) {
            Err(proofmesh_receipt::ReceiptError::UntrustedKey {
                found, expected, ..
            }) => {
                ok = false;
                println!("FAIL coordinator key pinning: receipt names {found}, trusted key is {expected}");
            }
            _ => println!("ok   coordinator key matches the pinned key"),
        }
    } else {
        println!("note no coordinator key pinned: signatures were checked against the keys the receipt names");
    }
    match (&receipt.log, log) {
        (None, _) => println!("note the receipt carries no transparency-log inclusion proof"),
        (Some(_), None) => {
            println!("note log inclusion not checked: no log key (pass --log-key)")
        }
        (Some(inc), Some(v)) => match proofmesh_log::verify_receipt_inclusion(&receipt, v) {
            Ok(cp) => println!(
                "ok   log inclusion: entry {} of {} in a checkpoint signed by {}",
                inc.index, cp.size, cp.origin
            ),
            Err(e) => {
                ok = false;
                println!("FAIL log inclusion: {e}");
            }
        },
    }
    println!("guarantee: {}", receipt.guarantee().as_str());
    println!("{}", if ok { "VERIFIED" } else { "NOT VERIFIED" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
