//! `proofmesh up`: a whole local network in one command — the coordinator in
//! this process, N provider agents as child processes dialing in over
//! loopback, an API key for the user, and a clean shutdown on ctrl-c.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use proofmesh_coordinator::admin::{self, Deposit, NewKey};
use proofmesh_coordinator::CoordinatorConfig;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::clientcfg::{self, ClientConfig};

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of provider agents.
    #[arg(long, default_value_t = 2)]
    pub providers: u32,
    /// GGUF model file (default: the cached SmolLM2-135M-Instruct).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Data directory for the coordinator, keys and client settings.
    #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Coordinator listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Engine threads per provider (default: cores / providers, at least 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Coordinator TOML config (PROOFMESH_* variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seconds to wait for all providers to register.
    #[arg(long, default_value_t = 180)]
    pub ready_timeout_s: u64,
}

/// Runs the network until ctrl-c or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=64).contains(&args.providers),
        "--providers must be between 1 and 64"
    );
    let model = crate::cmd::provider::model_path(args.model.clone())?;
    let data_dir = args.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut cfg = CoordinatorConfig::load(args.config.as_deref())?;
    cfg.listen = args.listen;
    cfg.data_dir = data_dir.join("coordinator");
    // The coordinator counts prompt tokens with the served model's tokenizer.
    if !cfg.model_files.contains(&model) {
        cfg.model_files.push(model.clone());
    }
    // The local network's verifier: its key is created here so the
    // coordinator can trust it.
    let verifier_key = data_dir.join("verifier.key");
    let verifier = proofmesh_receipt::Identity::load_or_create(&verifier_key)?;
    let vk = verifier.public().to_string();
    if !cfg.trusted_verifiers.contains(&vk) {
        cfg.trusted_verifiers.push(vk);
    }
    // The operator's zk setup for the committed digits models, once (providers
    // only get the proving key; see docs/ZK.md).
    let zk_keys = crate::cmd::zk::ensure_local_keys(&data_dir.join("zk"))?;
    for k in &zk_keys {
        if !cfg.zk_models.iter().any(|m| m.name == k.name) {
            cfg.zk_models
                .push(proofmesh_coordinator::config::ZkModelConfig {
                    name: k.name.into(),
                    vk: k.vk.clone(),
                });
        }
    }
    cfg.validate()?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {} (is another proofmesh running?)", cfg.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let coord_dir = cfg.data_dir.clone();
    // Create (and migrate) the database and keys before the server opens them.
    let client = ensure_client(&data_dir, &coord_dir, &base, &cfg.log_origin).await?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let mut server = tokio::spawn(proofmesh_coordinator::run(listener, cfg, async {
        let _ = stop_rx.await;
    }));
    let threads = args.threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        (cores / args.providers as usize).max(1)
    });
    let mut children = Vec::new();
    for i in 0..args.providers {
        let key = data_dir.join("providers").join(format!("provider-{i}.key"));
        let mut agent = spawn_agent("provider", &key, &base, &model, threads);
        for k in &zk_keys {
            agent.arg("--zk-pk").arg(&k.pk).args(["--zk-name", k.name]);
        }
        children.push(start(agent, "provider")?);
    }
    children.push(start(
        spawn_agent("verifier", &verifier_key, &base, &model, threads),
        "verifier",
    )?);
    let ready = tokio::select! {
        r = wait_ready(&base, args.providers, Duration::from_secs(args.ready_timeout_s)) => r,
        r = &mut server => {
            stop_children(&mut children).await;
            r.context("coordinator task panicked")??;
            anyhow::bail!("the coordinator stopped before the providers registered");
        }
    };
    if let Err(e) = ready {
        stop_children(&mut children).await;
        let _ = stop_tx.send(());
        let _ = server.await;
        return Err(e);
    }
    print_banner(&client, args.providers, &data_dir);
    let outcome = tokio::select! {
        _ = crate::signals::shutdown_signal() => Ok(()),
        r = watch_children(&mut children) => r,
        r = &mut server => {
            stop_children(&mut children).await;
            r.context("coordinator task panicked")??;
            anyhow::bail!("the coordinator stopped unexpectedly");
        }
    };
    eprintln!("proofmesh: shutting down");
    stop_children(&mut children).await;
    let _ = stop_tx.send(());
    server.await.context("coordinator task panicked")??;
    outcome.map(|_| ExitCode::SUCCESS)
}

/// Reuses the client key in client.json if it still authenticates, else creates one.
pub(crate) async fn ensure_client(
    data_dir: &Path,
    coord_dir: &Path,
    base: &str,
    log_origin: &str,
) -> anyhow::Result<ClientConfig> {
    // Creates the coordinator's keys (and, with the first API key, its
    // database) before the server opens them.
    let keys = admin::public_keys(coord_dir, log_origin)?;
    let reused = match clientcfg::load(data_dir) {
        Some(c) => admin::authenticate(coord_dir, &c.api_key)
            .await?
            .map(|holder| (c.api_key, holder.client_id)),
        None => None,
    };
    let (api_key, client_id) = match reused {
        Some(known) => known,
        None => {
            let k = admin::create_api_key(
                coord_dir,
                NewKey {
                    label: "proofmesh up",
                    ..NewKey::default()
                },
                proofmesh_ambient::clock::now_ms(),
            )
            .await?;
            (k.api_key, k.client_id)
        }
    };
    credit_local_client(coord_dir, &client_id).await?;
    let cfg = ClientConfig {
        base_url: format!("{base}/v1"),
        api_key,
        coordinator_key: keys.coordinator_key,
        log_key: Some(keys.log_key),
    };
    clientcfg::save(data_dir, &cfg)?;
    Ok(cfg)
}

/// Prepaid credit for the local network's client: $100, deposited once per
/// client (the deposit key is derived from the client id, so restarts do not
/// add more).
const LOCAL_CREDIT_MICROS: u64 = 100_000_000;

async fn credit_local_client(coord_dir: &Path, client_id: &str) -> anyhow::Result<()> {
    let usd = proofmesh_ledger::Currency::parse("USD")?;
    let reference = format!("proofmesh-up-{client_id}");
    admin::credit(
        coord_dir,
        Deposit {
            client_id,
            amount: proofmesh_ledger::Amount::from_micros(usd, LOCAL_CREDIT_MICROS)?,
            reference: &reference,
        },
        proofmesh_ambient::clock::now_ms(),
    )
    .await?;
    Ok(())
}

/// The command line of a `proofmesh provider` or `proofmesh verifier` child.
pub(crate) fn spawn_agent(
    role: &str,
    key: &Path,
    base: &str,
    model: &Path,
    threads: usize,
) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("proofmesh"));
    let mut cmd = Command::new(exe);
    cmd.arg(role)
        .arg("--coordinator")
        .arg(base)
        .arg("--key")
        .arg(key)
        .arg("--model")
        .arg(model)
        .arg("--threads")
        .arg(threads.to_string())
        // candle's quantized matmuls use a process-wide rayon pool that spins;
        // size it too, or N providers oversubscribe the cores.
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("CANDLE_NUM_THREADS", threads.to_string())
        .kill_on_drop(true);
    cmd
}

/// Starts an agent child.
pub(crate) fn start(mut cmd: Command, role: &str) -> anyhow::Result<Child> {
    cmd.spawn()
        .with_context(|| format!("starting a {role} agent"))
}

pub(crate) async fn wait_ready(base: &str, want: u32, limit: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match http.get(format!("{base}/v1/coordinator")).send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["providers_connected"].as_u64()),
            Err(_) => None,
        };
        if n.unwrap_or(0) >= u64::from(want) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} providers registered within {}s",
            n.unwrap_or(0),
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_banner(c: &ClientConfig, n: u32, data_dir: &Path) {
    println!("proofmesh is up: coordinator + {n} provider(s) + 1 verifier");
    println!("  OPENAI_BASE_URL={}", c.base_url);
    println!("  OPENAI_API_KEY={}", c.api_key);
    println!("  coordinator key {}", c.coordinator_key);
    println!("  data directory  {}", data_dir.display());
    println!("try:  proofmesh chat \"What is the capital of France?\"");
    println!("      proofmesh zk infer   (a zero-knowledge-proved digit classification)");
    println!("stop: ctrl-c");
}

async fn watch_children(children: &mut [Child]) -> anyhow::Result<()> {
    let mut reported = vec![false; children.len()];
    loop {
        for (i, c) in children.iter_mut().enumerate() {
            if reported[i] {
                continue;
            }
            if let Some(status) = c.try_wait()? {
                tracing::warn!(provider = i, %status, "provider agent exited");
                reported[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(crate) async fn stop_children(children: &mut [Child]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for c in children.iter() {
        if let Some(pid) = c.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for c in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .is_err()
        {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}
