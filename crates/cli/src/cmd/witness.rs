//! `proofmesh witness`: an independent witness for the transparency log
//! (C2SP tlog-cosignature). Each round it fetches the log's checkpoint,
//! checks the log's signature and that the checkpoint is consistent with the
//! last one it cosigned (RFC 6962 §2.1.2 proof; a smaller size or a
//! different root at the same size is a fork and is refused, loudly), then
//! cosigns it and publishes the cosigned note in its state directory.
//!
//! State: `<state>/checkpoint` (the last checkpoint verified, log-signed
//! only) and `<state>/cosigned` (the same note with this witness's
//! cosignature), so a restart continues from what it already vouched for.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use proofmesh_receipt::Identity;
use proofmesh_tlog::WitnessSigner;

use crate::cmd::log::{LogArgs, Remote};

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The witness's key file (created if absent, mode 0600).
    #[arg(long, default_value = ".proofmesh/witness.key")]
    key: PathBuf,
    /// The witness's name in its cosignatures.
    #[arg(long, default_value = "proofmesh.local/witness")]
    name: String,
    /// Directory for the witness's state.
    #[arg(long, default_value = ".proofmesh/witness")]
    state: PathBuf,
    /// Seconds between rounds; 0 runs one round and exits.
    #[arg(long, default_value_t = 0)]
    interval_s: u64,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs the witness; exit status 1 if a round finds a fork.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let id = Identity::load_or_create(&a.key)?;
    let mut signer = WitnessSigner::from_seed(&a.name, &id.seed())?;
    println!("witness key: {}", signer.verifier_key());
    std::fs::create_dir_all(&a.state)?;
    let remote = Remote::new(a.log)?;
    loop {
        if let Err(e) = round(&remote, &mut signer, &a.state).await {
            println!("FAIL {e:#}");
            return Ok(ExitCode::FAILURE);
        }
        if a.interval_s == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_secs(a.interval_s)).await;
    }
}

async fn round(
    remote: &Remote,
    signer: &mut WitnessSigner,
    state: &std::path::Path,
) -> anyhow::Result<()> {
    let (new, note) = remote.checkpoint().await?;
    let last = state.join("checkpoint");
    if last.exists() {
        let old_note = std::fs::read(&last)?;
        let old = remote
            .verifier
            .verify(&old_note)
            .context("the witness's saved checkpoint")?;
        remote.check_extends(&old, &new).await?;
        println!(
            "ok   size {} is consistent with size {}",
            new.size, old.size
        );
    }
    let now = proofmesh_ambient::clock::now_s();
    let cosigned = signer.cosign(&note, now)?;
    std::fs::write(&last, &note)?;
    std::fs::write(state.join("cosigned"), &cosigned)?;
    println!("COSIGNED checkpoint of size {} at {now}", new.size);
    Ok(())
}
