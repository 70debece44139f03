//! `proofmesh covenant check` end to end: a real coordinator and provider
//! agent (in-process, on a tiny random-weight model) serve a job; the
//! provider's metrics statement is published into the real log; the real
//! binary then checks it over HTTP and passes a lenient policy, fails a
//! strict one with the numbers, refuses a different pinned coordinator key,
//! and fails once the operator appends an inflated statement signed with
//! the coordinator's own key (only recomputation from the log can catch
//! that one).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use proofmesh_ambient::clock::now_ms;
use proofmesh_coordinator::server::{db_path, key_path, log_key_path};
use proofmesh_coordinator::statements::{self, statement_log_key, Publisher};
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_ledger::{Epoch, SignedStatement, StatementBody};
use proofmesh_log::LogEntry;
use proofmesh_receipt::Identity;
use proofmesh_store::{SqliteStore, Store};
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_proofmesh");
const LIMIT: Duration = Duration::from_secs(60);

/// A coordinator served in-process until `stop`.
struct Coord {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), proofmesh_coordinator::ServerError>>,
}

async fn start(cfg: &CoordinatorConfig) -> Coord {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(proofmesh_coordinator::run(listener, cfg.clone(), async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Coord { base, stop, task }
}

impl Coord {
    async fn info(&self) -> serde_json::Value {
        let url = format!("{}/v1/coordinator", self.base);
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A real provider agent on the tiny model; send to the sender to stop it.
fn provider(base: &str, dir: &Path, identity: Arc<Identity>) -> oneshot::Sender<()> {
    let gguf = dir.join("tiny.gguf");
    proofmesh_engine::testing::write_tiny_gguf(&gguf, 7).unwrap();
    let opts = proofmesh_engine::EngineOptions { threads: Some(1) };
    let engine = Arc::new(proofmesh_engine::Engine::load(&gguf, opts).unwrap());
    let cfg = proofmesh_provider::ProviderConfig {
        coordinator_url: base.to_owned(),
        max_concurrent_jobs: 1,
        price: proofmesh_wire::PriceRate {
            currency: "USD".into(),
            input_per_mtok_micros: 100_000,
            output_per_mtok_micros: 200_000,
        },
        max_backoff: Duration::from_millis(500),
        model_name: "tiny".into(),
        role: proofmesh_provider::AgentRole::Provider,
        model_size_bytes: 0,
        site: None,
        attestation: Default::default(),
        zk: Vec::new(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(proofmesh_provider::run(cfg, engine, identity, async {
        let _ = rx.await;
    }));
    tx
}

/// A funded API key (as `proofmesh billing credit` would fund it).
async fn funded_key(cfg: &CoordinatorConfig) -> String {
    let store = SqliteStore::open(&db_path(&cfg.data_dir)).await.unwrap();
    let k = store.create_api_key(None, "lender-test", 1).await.unwrap();
    let (bank, task) =
        proofmesh_settlement::Bank::open(Arc::new(store.clone()), Default::default())
            .await
            .unwrap();
    let usd = proofmesh_ledger::Currency::Usd;
    let amount = proofmesh_ledger::Amount::from_micros(usd, 100_000_000).unwrap();
    let tx = proofmesh_ledger::settle::deposit(&k.client_id, amount, "covenant-test").unwrap();
    bank.apply(tx, 1).await.unwrap();
    bank.close().await;
    task.await.unwrap();
    store.close().await;
    k.key
}

/// Opens the stopped coordinator's store, log and key, runs `f`, closes.
async fn with_publisher<T>(cfg: &CoordinatorConfig, f: impl AsyncFnOnce(&Publisher) -> T) -> T {
    let dir = &cfg.data_dir;
    let store = SqliteStore::open(&db_path(dir)).await.unwrap();
    let log_key = Identity::load(&log_key_path(dir)).unwrap();
    let signer =
        proofmesh_tlog::CheckpointSigner::from_seed(&cfg.log_origin, &log_key.seed()).unwrap();
    let (log, task) = proofmesh_log::Log::open(Arc::new(store.clone()), signer, cfg.log())
        .await
        .unwrap();
    let p = Publisher {
        store: Arc::new(store.clone()),
        log,
        identity: Arc::new(Identity::load(&key_path(dir)).unwrap()),
        params: statements::params(cfg).unwrap(),
    };
    let out = f(&p).await;
    p.log.close().await;
    task.await.unwrap();
    store.close().await;
    out
}

/// Runs `covenant check`; (exit code, stdout).
async fn check(c: &Coord, policy: &Path, provider: &str, coord_key: &str) -> (i32, String) {
    let info = c.info().await;
    let out = Command::new(BIN)
        .args([
            "covenant",
            "check",
            "--provider",
            provider,
            "--coordinator-key",
        ])
        .arg(coord_key)
        .arg("--policy")
        .arg(policy)
        .arg("--log-url")
        .arg(format!("{}/log", c.base))
        .arg("--log-key")
        .arg(info["log_key"].as_str().unwrap())
        .arg("--data-dir")
        .arg(policy.parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

async fn serve_one_job(cfg: &CoordinatorConfig, identity: Arc<Identity>) -> String {
    let c = start(cfg).await;
    let stop_provider = provider(&c.base, &cfg.data_dir, identity);
    while c.info().await["providers_connected"] != 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = funded_key(cfg).await;
    let body = serde_json::json!({
        "model": "tiny", "max_tokens": 6, "temperature": 0,
        "messages": [{"role": "user", "content": "pay my lender"}],
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", c.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let coord_key = c.info().await["coordinator_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = stop_provider.send(());
    c.stop().await;
    coord_key
}

async fn wait_until_ms(t: u64) {
    while now_ms() < t {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covenant_check_recomputes_statements_and_catches_inflation() {
    tokio::time::timeout(LIMIT, scenario())
        .await
        .expect("the covenant scenario did not finish in time");
}

/// Checks the honest statement: a lenient policy passes, a strict one fails
/// with its numbers, a different pinned coordinator key is refused.
async fn check_honest(c: &Coord, dir: &Path, pkey: &str, coord_key: &str) {
    let lenient = dir.join("lenient.toml");
    std::fs::write(&lenient, "max_failed_audit_rate_bps = 50\n").unwrap();
    let strict = dir.join("strict.json");
    let policy = r#"{"min_dscr": 1.25, "debt_service_micros": 1000000000}"#;
    std::fs::write(&strict, policy).unwrap();
    let (code, out) = check(c, &lenient, pkey, coord_key).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the figures recompute from the log"), "{out}");
    assert!(
        out.contains("jobs 1, revenue") && out.ends_with("PASS\n"),
        "{out}"
    );
    let (code, out) = check(c, &strict, pkey, coord_key).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("  FAIL ["), "{out}");
    assert!(out.contains("DSCR 0.0000 >= 1.2500 required"), "{out}");
    let other = Identity::generate().public().to_string();
    let (code, out) = check(c, &lenient, pkey, &other).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("other than the pinned one"), "{out}");
}

/// The operator appends an inflated statement for the epoch after `prev`'s,
/// chained correctly and signed with the coordinator's own key.
async fn append_lie(cfg: &CoordinatorConfig, prev: &StatementBody, pkey: &str) {
    with_publisher(cfg, async |p: &Publisher| {
        let mut figures = prev.figures.clone();
        figures.revenue_micros += 5_000_000;
        figures.jobs_served += 10;
        let start = prev.epoch.end_s();
        let body = StatementBody {
            epoch: Epoch::new(start, start + 1).unwrap(),
            figures,
            prev_statement_hash: prev.hash(),
            ..prev.clone()
        };
        let lie = SignedStatement::sign(body, &p.identity).unwrap();
        let key = statement_log_key(pkey, start);
        let entry = LogEntry::Statement(lie);
        p.log.append(&entry, Some(key)).await.unwrap();
    })
    .await;
}

/// `log monitor` checks form, signatures and chains only: the lie passes
/// it, which is why covenant checks recompute.
async fn monitor_accepts_the_signed_lie(c: &Coord) {
    let info = c.info().await;
    let url = format!("{}/log", c.base);
    let out = Command::new(BIN)
        .args(["log", "monitor", "--log-url", &url, "--log-key"])
        .arg(info["log_key"].as_str().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let chained = "2 metrics statements (signed, chained per provider)";
    assert!(stdout.contains(chained), "{stdout}");
    assert!(stdout.contains("heartbeat logs verify"), "{stdout}");
}

async fn scenario() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CoordinatorConfig {
        data_dir: dir.path().join("coord"),
        heartbeat_ms: 200,
        provider_timeout_ms: 1000,
        audit_rate_milli: 0,
        audit_rate_new_milli: 0,
        audit_rate_low_rep_milli: 0,
        ..Default::default()
    };
    let t0 = now_ms() / 1000;
    let identity = Arc::new(Identity::generate());
    let pkey = identity.public().to_string();
    let coord_key = serve_one_job(&cfg, identity).await;
    let t1 = now_ms() / 1000 + 1;
    wait_until_ms((t1 + 1) * 1000).await; // closed: [t0, t1) and [t1, t1 + 1)
    let honest = Epoch::new(t0, t1).unwrap();
    let published = with_publisher(&cfg, async |p: &Publisher| {
        p.publish(&[honest], now_ms()).await.unwrap()
    })
    .await;
    assert_eq!(published.len(), 1);
    let body = &published[0].statement.body;
    assert_eq!(body.figures.jobs_served, 1);
    assert!(
        body.figures.heartbeats >= 1 && body.figures.uptime_ms > 0,
        "{body:?}"
    );
    let c = start(&cfg).await;
    check_honest(&c, dir.path(), &pkey, &coord_key).await;
    c.stop().await;

    append_lie(&cfg, body, &pkey).await;
    let c = start(&cfg).await;
    let (code, out) = check(&c, &dir.path().join("lenient.toml"), &pkey, &coord_key).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("#2 epoch") && out.contains("do NOT follow from the log"),
        "{out}"
    );
    assert!(out.contains("revenue_micros: claimed 5"), "{out}");
    assert!(
        out.contains("jobs_served: claimed 11, recomputed 0"),
        "{out}"
    );
    let summary = "FAIL 1 statement(s) claim figures the log does not support";
    assert!(out.contains(summary), "{out}");
    monitor_accepts_the_signed_lie(&c).await;
    c.stop().await;
}
