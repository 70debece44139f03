//! `proofmesh keys create`: issue a client API key, optionally with an
//! attestation requirement (`--min-attestation tee`).

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_store::{SqliteStore, Store};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create an API key (printed once; only its hash is stored).
    Create {
        /// Coordinator data directory.
        #[arg(long, default_value = ".proofmesh/coordinator")]
        data_dir: PathBuf,
        /// Add the key to an existing client instead of a new one.
        #[arg(long)]
        client: Option<String>,
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Serve this key's requests only on providers attested at this
        /// level or above: `tee` or `tee+gpu`.
        #[arg(long)]
        min_attestation: Option<String>,
    },
}

/// Runs the subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Create {
            data_dir,
            client,
            label,
            min_attestation,
        } => {
            if let Some(l) = &min_attestation {
                anyhow::ensure!(
                    proofmesh_coordinator::attestation::parse_level(l).is_some(),
                    "--min-attestation must be none, tee or tee+gpu, not {l:?}"
                );
            }
            std::fs::create_dir_all(&data_dir)?;
            let store =
                SqliteStore::open(&proofmesh_coordinator::server::db_path(&data_dir)).await?;
            let k = store
                .create_api_key(client.as_deref(), &label, proofmesh_coordinator::now_ms())
                .await?;
            if let Some(l) = min_attestation.as_deref().filter(|l| *l != "none") {
                store.set_key_min_attestation(&k.key_id, Some(l)).await?;
                eprintln!("key {} requires providers attested at {l}", k.key_id);
            }
            store.close().await;
            eprintln!("client {} key id {}", k.client_id, k.key_id);
            println!("{}", k.key);
            Ok(ExitCode::SUCCESS)
        }
    }
}
