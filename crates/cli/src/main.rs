//! `proofmesh`: the one binary. Thin: parses arguments and calls into the
//! library crates. Subcommands live in `cmd/`.

mod clientcfg;
mod cmd;
mod signals;

use clap::{Parser, Subcommand};

/// A verifiable decentralized inference network.
#[derive(Parser, Debug)]
#[command(name = "proofmesh", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local network: a coordinator and N providers.
    Up(cmd::up::Args),
    /// Run a coordinator.
    Coordinator(cmd::coordinator::Args),
    /// Run a provider agent.
    Provider(cmd::provider::Args),
    /// Run a verifier: re-executes audited jobs and signs audit reports.
    Verifier(cmd::provider::Args),
    /// Manage client API keys.
    Keys {
        #[command(subcommand)]
        command: cmd::keys::Command,
    },
    /// Chat with the network (streams the answer).
    Chat(cmd::chat::Args),
    /// Receipts.
    Receipt {
        #[command(subcommand)]
        command: cmd::receipt::Command,
    },
    /// Audit the transparency log: consistency and full recomputation.
    Log {
        #[command(subcommand)]
        command: cmd::log::Command,
    },
    /// Witness the log: check consistency, then cosign its checkpoint.
    Witness(cmd::witness::Args),
    /// Plan a fleet: cost per 1M tokens, SLO attainment, tier savings,
    /// colocated against decentralized.
    Plan(cmd::plan::Args),
    /// Balance and usage; operators credit accounts.
    Billing {
        #[command(subcommand)]
        command: cmd::billing::Command,
    },
    /// Revenue-share pools: sign a charter (provider) or a unit transfer
    /// (holder), show a pool or a holder's payouts.
    Pool {
        #[command(subcommand)]
        command: cmd::pool::Command,
    },
    /// Lender covenants: verify a provider's signed metrics statements
    /// against the transparency log and evaluate a policy.
    Covenant {
        #[command(subcommand)]
        command: cmd::covenant::Command,
    },
    /// List the network's providers (claims and measurements).
    Providers(cmd::providers::ProvidersArgs),
    /// Explain where each attempt of one of your jobs went, and why.
    Explain(cmd::providers::ExplainArgs),
    /// Hardware attestation: verify TEE and GPU evidence offline.
    Attest {
        #[command(subcommand)]
        command: cmd::attest::Command,
    },
    /// Zero-knowledge proofs of inference: verify a bundle offline, train, setup, prove.
    Zk {
        #[command(subcommand)]
        command: cmd::zk::Command,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: cmd::bench::Command,
    },
}

fn init_tracing() {
    let filter = proofmesh_ambient::env::var("PROOFMESH_LOG")
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Up(a) => cmd::up::run(a).await,
            Command::Coordinator(a) => cmd::coordinator::run(a).await,
            Command::Provider(a) => cmd::provider::run(a).await,
            Command::Verifier(a) => {
                cmd::provider::serve(a, proofmesh_provider::AgentRole::Verifier).await
            }
            Command::Keys { command } => cmd::keys::run(command).await,
            Command::Chat(a) => cmd::chat::run(a).await,
            Command::Receipt { command } => cmd::receipt::run(command).await,
            Command::Bench { command } => cmd::bench::run(command).await,
            Command::Zk { command } => cmd::zk::run(command).await,
            Command::Attest { command } => cmd::attest::run(command).await,
            Command::Providers(a) => cmd::providers::providers(a).await,
            Command::Explain(a) => cmd::providers::explain(a).await,
            Command::Billing { command } => cmd::billing::run(command).await,
            Command::Pool { command } => cmd::pool::run(command).await,
            Command::Covenant { command } => cmd::covenant::run(command).await,
            Command::Plan(a) => cmd::plan::run(a).await,
            Command::Log { command } => cmd::log::run(command).await,
            Command::Witness(args) => cmd::witness::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
