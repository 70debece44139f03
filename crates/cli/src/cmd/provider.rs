//! `proofmesh provider`: run a provider agent with the embedded engine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proofmesh_engine::{Engine, EngineOptions};
use proofmesh_receipt::Identity;
use proofmesh_wire::PriceRate;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Coordinator base URL.
    #[arg(
        long,
        env = "PROOFMESH_COORDINATOR",
        default_value = "http://127.0.0.1:8080"
    )]
    pub coordinator: String,
    /// Provider key file (created with mode 0600 if missing).
    #[arg(long)]
    pub key: PathBuf,
    /// GGUF model file (default: the cached SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Engine threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    pub max_concurrent_jobs: u32,
    /// Price per 1M prompt tokens, in micro-units.
    #[arg(long, default_value_t = 50_000)]
    pub price_input: u64,
    /// Price per 1M completion tokens, in micro-units.
    #[arg(long, default_value_t = 100_000)]
    pub price_output: u64,
    /// Currency of the prices.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Name to advertise the model under (default: file name without the quantization tag).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Region label to declare (with --lat/--lon), e.g. "eu-west".
    #[arg(long)]
    pub region: Option<String>,
    /// Latitude to declare, degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub lat: Option<f64>,
    /// Longitude to declare, degrees.
    #[arg(long, allow_negative_numbers = true)]
    pub lon: Option<f64>,
    /// Price of the whole box per hour, micro-USD (for batch/fine-tune pricing).
    #[arg(long, default_value_t = 0)]
    pub price_per_hour: u64,
    /// GPU interconnect: pcie, nvlink or infiniband.
    #[arg(long, default_value = "pcie")]
    pub interconnect: String,
    /// Hardware attestation: `none`, or `tsm` (a TDX/SNP confidential VM:
    /// evidence through Linux configfs-tsm, bound to this key and each nonce).
    #[arg(long, default_value = "none")]
    pub attest: String,
    /// With `--attest tsm`: the configfs-tsm report directory.
    #[arg(long, default_value = "/sys/kernel/config/tsm/report")]
    pub tsm_dir: PathBuf,
    /// With `--attest tsm`: cached collateral to send with the evidence
    /// (JSON: `{"type":"intel",...}` as Intel PCS/PCCS returns it in
    /// dcap-qvl's layout, or `{"type":"snp","vcek":"<base64 DER>"}`).
    #[arg(long)]
    pub attest_collateral: Option<PathBuf>,
    /// Prove inferences of a zero-knowledge model: its proving key file
    /// (from the operator's `proofmesh zk setup`; repeatable, paired in order
    /// with --zk-model and --zk-name).
    #[arg(long)]
    pub zk_pk: Vec<PathBuf>,
    /// The quantized model file for the matching --zk-pk (default, or
    /// `builtin`: the committed model of that --zk-name, `digits-mlp` or
    /// `digits-cnn`).
    #[arg(long)]
    pub zk_model: Vec<String>,
    /// Registry name for the matching --zk-pk (default `digits-mlp`).
    #[arg(long)]
    pub zk_name: Vec<String>,
    /// Price per 1M proved inferences, micro-units.
    #[arg(long, default_value_t = 2_000_000)]
    pub zk_price: u64,
}

/// The zero-knowledge models to prove, from --zk-pk/--zk-model/--zk-name.
fn zk_provers(args: &Args) -> anyhow::Result<Vec<Arc<proofmesh_provider::ZkProver>>> {
    anyhow::ensure!(
        args.zk_model.len() <= args.zk_pk.len() && args.zk_name.len() <= args.zk_pk.len(),
        "--zk-model and --zk-name each need a --zk-pk"
    );
    let mut out = Vec::new();
    for (i, pk) in args.zk_pk.iter().enumerate() {
        let model = args
            .zk_model
            .get(i)
            .filter(|m| !matches!(m.as_str(), "builtin" | "digits"))
            .map(PathBuf::from);
        let name = args.zk_name.get(i).map_or("digits-mlp", String::as_str);
        let price = PriceRate {
            currency: args.currency.clone(),
            input_per_mtok_micros: args.zk_price,
            output_per_mtok_micros: 0,
        };
        let p = proofmesh_provider::ZkProver::load(name, model.as_deref(), pk, price)?;
        tracing::info!(name, model = %p.model_digest(), "zk model loaded");
        out.push(Arc::new(p));
    }
    Ok(out)
}

/// Where attestation evidence comes from.
fn attest_source(args: &Args) -> anyhow::Result<proofmesh_provider::AttestSource> {
    match args.attest.as_str() {
        "none" => Ok(proofmesh_provider::AttestSource::None),
        "tsm" => {
            let collateral =
                match &args.attest_collateral {
                    None => None,
                    Some(p) => {
                        let bytes = std::fs::read(p)
                            .with_context(|| format!("reading collateral {}", p.display()))?;
                        Some(serde_json::from_slice(&bytes).with_context(|| {
                            format!("collateral {} is not valid JSON", p.display())
                        })?)
                    }
                };
            Ok(proofmesh_provider::AttestSource::Tsm {
                base: args.tsm_dir.clone(),
                collateral,
            })
        }
        other => anyhow::bail!("--attest must be none or tsm, not {other:?}"),
    }
}

/// The declared site, if a region and coordinates were given.
fn site(args: &Args) -> anyhow::Result<Option<proofmesh_wire::Site>> {
    match (&args.region, args.lat, args.lon) {
        (None, None, None) => Ok(None),
        (Some(region), Some(lat), Some(lon)) => Ok(Some(proofmesh_wire::Site {
            region: region.clone(),
            lat,
            lon,
            price_per_hour_micros: args.price_per_hour,
            interconnect: args.interconnect.clone(),
        })),
        _ => anyhow::bail!("--region, --lat and --lon go together"),
    }
}

/// The model path to use, checked to exist.
pub fn model_path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let p = explicit.unwrap_or_else(proofmesh_engine::default_model_path);
    anyhow::ensure!(
        p.exists(),
        "model file {} not found; run `cargo xtask fetch-model` (or `cargo xtask up`), or pass --model PATH",
        p.display()
    );
    Ok(p)
}

/// Runs until ctrl-c or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    serve(args, proofmesh_provider::AgentRole::Provider).await
}

/// Runs a provider or a verifier agent until ctrl-c or SIGTERM.
pub async fn serve(args: Args, role: proofmesh_provider::AgentRole) -> anyhow::Result<ExitCode> {
    let identity = Arc::new(Identity::load_or_create(&args.key)?);
    let site = site(&args)?;
    let attestation = attest_source(&args)?;
    let zk = zk_provers(&args)?;
    let path = model_path(args.model)?;
    let model_size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let model_name = args
        .model_name
        .unwrap_or_else(|| proofmesh_provider::advertised_name(&path));
    let threads = args.threads;
    let engine =
        tokio::task::spawn_blocking(move || Engine::load(&path, EngineOptions { threads }))
            .await
            .context("engine loader panicked")??;
    tracing::info!(model = engine.model_name(), digest = engine.model_digest(), key = %identity.public(), ?role, "model loaded");
    let config = proofmesh_provider::ProviderConfig {
        coordinator_url: args.coordinator,
        max_concurrent_jobs: args.max_concurrent_jobs,
        price: PriceRate {
            currency: args.currency,
            input_per_mtok_micros: args.price_input,
            output_per_mtok_micros: args.price_output,
        },
        max_backoff: Duration::from_secs(5),
        model_name,
        role,
        model_size_bytes,
        site,
        attestation,
        zk,
    };
    proofmesh_provider::run(
        config,
        Arc::new(engine),
        identity,
        crate::signals::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
