//! `proofmesh coordinator`: run the coordinator service alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_coordinator::CoordinatorConfig;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// TOML config file (PROOFMESH_* environment variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address (overrides the config).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory (overrides the config).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Loads config with flag overrides applied and validated.
pub fn load_config(args: &Args) -> anyhow::Result<CoordinatorConfig> {
    let mut cfg = CoordinatorConfig::load(args.config.as_deref())?;
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Runs until ctrl-c or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(&args)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    proofmesh_coordinator::run(listener, cfg, crate::signals::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
