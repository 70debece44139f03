//! `proofmesh keys create`: issue a client API key, optionally with an
//! attestation requirement (`--min-attestation tee`).

use std::path::PathBuf;
use std::process::ExitCode;

use proofmesh_coordinator::admin::NewKey;

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
            let k = proofmesh_coordinator::admin::create_api_key(
                &data_dir,
                NewKey {
                    client_id: client.as_deref(),
                    label: &label,
                    min_attestation: min_attestation.as_deref(),
                },
                proofmesh_ambient::clock::now_ms(),
            )
            .await?;
            if let Some(l) = &k.min_attestation {
                eprintln!("key {} requires providers attested at {l}", k.key_id);
            }
            eprintln!("client {} key id {}", k.client_id, k.key_id);
            println!("{}", k.api_key);
            Ok(ExitCode::SUCCESS)
        }
    }
}
