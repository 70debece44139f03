//! Wiring: open the store and key, build the router, serve until shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use proofmesh_receipt::{Identity, IdentityError};
use proofmesh_store::{AuditStore, SqliteStore, Store, StoreError};
use proofmesh_wire::ModelAdvert;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

use proofmesh_ambient::clock::Clock;

use crate::config::CoordinatorConfig;
use crate::fleet::Fleet;
use crate::money::{Money, StakeRules};
use crate::pipeline::{Pipeline, PipelineParts};
use crate::registry::Registry;
use crate::state::AppState;
use crate::{billing, gateway, log_routes, provider_ws, routes};

/// Why the coordinator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Creating the data directory failed.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The coordinator key could not be loaded.
    #[error(transparent)]
    Key(#[from] IdentityError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The transparency log could not be opened.
    #[error("transparency log: {0}")]
    Log(#[from] proofmesh_log::LogError),
    /// The ledger could not be opened.
    #[error("ledger: {0}")]
    Bank(#[from] proofmesh_settlement::BankError),
    /// Uptime tracking cannot work with the configured epoch and timeout.
    #[error("provider uptime: {0}")]
    Uptime(#[from] proofmesh_placement::uptime::UptimeError),
    /// A configured model file's tokenizer could not be read.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokens::TokenizerError),
    /// A configured zk model could not be loaded.
    #[error(transparent)]
    Zk(#[from] crate::zk::ZkConfigError),
    /// Serving failed.
    #[error("serving HTTP failed: {0}")]
    Serve(std::io::Error),
}

/// Path of the coordinator key inside a data directory.
pub fn key_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("coordinator.key")
}

/// Path of the transparency log's checkpoint key inside a data directory
/// (separate from the receipt countersigning key).
pub fn log_key_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("log.key")
}

/// Path of the database inside a data directory.
pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("coordinator.sqlite")
}

/// Builds the router for a state.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(gateway::chat_completions))
        .route("/v1/models", get(routes::models))
        .route("/v1/receipts/{id}", get(routes::receipt))
        .route("/v1/coordinator", get(routes::coordinator))
        .route("/v1/provider/connect", get(provider_ws::connect))
        .route("/v1/verifier/connect", get(provider_ws::connect_verifier))
        .route("/v1/receipts/{id}/evidence", get(routes::evidence))
        .route("/log/checkpoint", get(log_routes::checkpoint))
        .route("/log/tile/{*path}", get(log_routes::tile))
        .route("/log/v1/inclusion", get(log_routes::inclusion))
        .route("/log/v1/consistency", get(log_routes::consistency))
        .route("/log/v1/checkpoints", get(log_routes::checkpoints))
        .route("/v1/providers", get(crate::discovery::providers))
        .route("/v1/jobs/{id}/placement", get(crate::discovery::placement))
        .route("/v1/balance", get(billing::balance))
        .route("/v1/usage", get(billing::usage))
        .route("/v1/providers/{key}/earnings", get(billing::earnings))
        .route("/v1/pools", post(crate::pools::create))
        .route("/v1/pools/{id}", get(crate::pools::show))
        .route("/v1/pools/{id}/transfers", post(crate::pools::transfer))
        .route("/v1/holders/{key}", get(crate::pools::holder))
        .route(
            "/v1/providers/{key}/statements",
            get(crate::statements::http::list),
        )
        .route("/v1/zk/infer", post(crate::zk::infer::infer))
        .route("/v1/zk/models", get(crate::zk::models))
        .route("/v1/zk/models/{name}/vk", get(crate::zk::verifying_key))
        .route("/healthz", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .fallback(routes::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// The coordinator's services, opened and recovered but not serving: what
/// [`run`] serves, and what tests drive without a socket.
pub struct Opened {
    /// The services.
    pub app: AppState,
    stop: watch::Sender<bool>,
    log_task: tokio::task::JoinHandle<()>,
    bank_task: tokio::task::JoinHandle<()>,
    store: SqliteStore,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("app", &self.app).finish()
    }
}

impl Opened {
    /// Stops background work and closes the log, ledger and store, each
    /// after what was queued for it is committed.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        self.app.log.close().await;
        let _ = self.log_task.await;
        self.app.money.bank().close().await;
        let _ = self.bank_task.await;
        self.store.close().await;
    }
}

/// Opens everything under `config.data_dir` (keys, store, log, ledger),
/// builds the services with `clock`, then logs the receipts a previous run
/// left unlogged and settles what it left unsettled.
pub async fn open(config: CoordinatorConfig, clock: Arc<dyn Clock>) -> Result<Opened, ServerError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let identity = Arc::new(Identity::load_or_create(&key_path(dir))?);
    let zk = crate::zk::ZkModels::load(&config.zk_models)?;
    let prompts = crate::tokens::PromptCounters::load(&config.model_files)?;
    let store = SqliteStore::open(&db_path(dir)).await?;
    let fleet = Arc::new(open_fleet(&config, &store).await?);
    let log_key = Identity::load_or_create(&log_key_path(dir))?;
    let signer = proofmesh_tlog::CheckpointSigner::from_seed(&config.log_origin, &log_key.seed())
        .map_err(proofmesh_log::LogError::from)?;
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let (log, log_task) =
        proofmesh_log::Log::open(Arc::new(store.clone()), signer, config.log()).await?;
    let (bank, bank_task) = proofmesh_settlement::Bank::open(
        Arc::new(store.clone()),
        proofmesh_settlement::BankConfig::default(),
    )
    .await?;
    let stake = StakeRules {
        initial_stake_micros: u64::try_from(config.initial_stake_micros).unwrap_or(0),
        slash_micros: u64::try_from(config.slash_micros).unwrap_or(0),
    };
    let money = Money::new(
        bank,
        shared.clone(),
        config.settlement(),
        stake,
        clock.clone(),
    );
    let config = Arc::new(config);
    let pipeline = Pipeline::new(PipelineParts {
        fleet: fleet.clone(),
        money: money.clone(),
        log: log.clone(),
        store: shared.clone(),
        identity: identity.clone(),
        clock: clock.clone(),
        config: config.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let app = AppState {
        config,
        store: shared,
        identity,
        money,
        log,
        fleet,
        pipeline,
        zk: Arc::new(zk),
        prompts: Arc::new(prompts),
        clock,
        shutdown: stop_rx,
    };
    log_routes::log_backlog(&app).await?;
    let recovered = app.money.recover().await?;
    if recovered != crate::money::Recovered::default() {
        tracing::warn!(?recovered, "settled what a previous run left unsettled");
    }
    match crate::pools::backfill(&app).await {
        Ok(n) => tracing::debug!(documents = n, "pool documents logged"),
        Err(e) => tracing::error!(error = %e, "logging pool documents"),
    }
    Ok(Opened {
        app,
        stop,
        log_task,
        bank_task,
        store,
    })
}

/// The fleet, with what the store remembers: models seen before a restart
/// stay known (503 while offline, not 404), and exclusions stand.
async fn open_fleet(config: &CoordinatorConfig, store: &SqliteStore) -> Result<Fleet, ServerError> {
    let registry = Registry::default();
    for p in store.list_providers().await? {
        let models: Vec<ModelAdvert> = serde_json::from_str(&p.models_json).unwrap_or_default();
        registry.remember_models(models.into_iter().map(|m| (m.digest.to_string(), m.name)));
    }
    for key in store.excluded_providers().await? {
        registry.exclude(&key);
    }
    let placer = crate::placement::Placer::new(config).map_err(|reason| ServerError::DataDir {
        path: "placement config".into(),
        source: std::io::Error::other(reason),
    })?;
    Ok(Fleet::new(
        registry,
        placer,
        crate::standing::Standing::new(config)?,
        crate::admission::Admission::new(config.queue_max_jobs),
    ))
}

/// Serves the coordinator on `listener` until `shutdown` resolves, then
/// closes provider sessions, finishes in-flight requests and closes the store.
pub async fn run(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    crate::metrics_http::init();
    let opened = open(config, proofmesh_ambient::clock::system()).await?;
    let app = opened.app.clone();
    tracing::info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        coordinator_key = %app.identity.public(),
        log_key = %app.log.verifier_key(),
        "coordinator listening"
    );
    let stop = opened.stop.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("coordinator shutting down");
        let _ = stop.send(true);
    };
    let auditor = tokio::spawn(crate::audit::dispatch_loop(
        app.pipeline.clone(),
        app.shutdown.clone(),
    ));
    let statements = tokio::spawn(crate::statements::run(app.clone()));
    let result = axum::serve(listener, router(app))
        .with_graceful_shutdown(graceful)
        .await;
    let _ = auditor.await;
    let _ = statements.await;
    // Everything queued is committed before the store closes.
    opened.close().await;
    result.map_err(ServerError::Serve)
}
