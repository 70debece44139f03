//! Shared harness for the coordinator's integration tests. It exists so that
//! every test exercises the real service end to end — a coordinator served by
//! `proofmesh_coordinator::run` on an ephemeral port, real provider agents
//! (`proofmesh_provider::run`) on a tiny random-weight GGUF, and HTTP through
//! reqwest — with one place that owns the plumbing: temp data dirs, API keys,
//! bounded waits, and a raw-WebSocket *test seam* ([`RawProvider`]) for
//! misbehaving providers that the real agent can never imitate.
//!
//! Nothing here sleeps to synchronise: waits poll with a deadline and every
//! network operation has a timeout, so a hang fails the test quickly.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use proofmesh_coordinator::server::db_path;
use proofmesh_coordinator::{CoordinatorConfig, ServerError};
use proofmesh_engine::{Engine, EngineOptions};
use proofmesh_provider::ProviderConfig;
use proofmesh_receipt::{Digest, Identity, PublicKey, Receipt};
use proofmesh_store::{JobStatus, SqliteStore, Store};
use proofmesh_wire::{
    auth_message, CoordinatorMsg, Hardware, JobResult, JobSpec, ModelAdvert, PriceRate,
    ProviderMsg, PROTOCOL_VERSION,
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The name providers advertise the tiny model under.
pub const MODEL: &str = "tiny";
/// Upper bound for one whole test.
pub const TEST_LIMIT: Duration = Duration::from_secs(25);
/// Upper bound for one wait or one network exchange inside a test.
pub const STEP_LIMIT: Duration = Duration::from_secs(10);

/// Runs a test body, failing it (instead of hanging) after [`TEST_LIMIT`].
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test did not finish within its time limit")
}

/// Awaits `f`, panicking with `what` after [`STEP_LIMIT`].
pub async fn step<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(STEP_LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Polls `check` every 20 ms until it returns `Some`, failing after
/// [`STEP_LIMIT`] with `what`.
pub async fn poll_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tiny engine, loaded once per test binary (the file is deleted after
/// loading; the engine keeps its weights in memory).
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("tiny.gguf");
            proofmesh_engine::testing::write_tiny_gguf(&path, 7).expect("write tiny gguf");
            let e = Engine::load(&path, EngineOptions { threads: Some(1) }).expect("load tiny");
            Arc::new(e)
        })
        .clone()
}

/// Digest of the tiny model, as providers advertise it.
pub fn model_digest() -> Digest {
    Digest::try_from(engine().model_digest().to_string()).expect("engine digest parses")
}

/// The price every provider in these tests advertises (non-zero, so the
/// charged amount in receipts is meaningful).
pub fn price() -> PriceRate {
    PriceRate {
        currency: "USD".into(),
        input_per_mtok_micros: 100_000,
        output_per_mtok_micros: 200_000,
    }
}

/// The config every test coordinator starts from: fast heartbeats so dead
/// providers are noticed within a second.
pub fn test_config(data_dir: &Path) -> CoordinatorConfig {
    CoordinatorConfig {
        data_dir: data_dir.to_path_buf(),
        heartbeat_ms: 200,
        provider_timeout_ms: 1000,
        ..Default::default()
    }
}

/// A coordinator served in-process on 127.0.0.1:<ephemeral>.
pub struct Coordinator {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// A second handle on its database (API keys, job rows).
    pub store: SqliteStore,
    /// HTTP client with a per-request timeout.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    _owned_dir: Option<tempfile::TempDir>,
}

impl Coordinator {
    /// Starts a coordinator in a fresh temp dir with [`test_config`].
    pub async fn start() -> Coordinator {
        Self::start_with(|_| {}).await
    }

    /// Starts a coordinator in a fresh temp dir, letting the test adjust the config.
    pub async fn start_with(adjust: impl FnOnce(&mut CoordinatorConfig)) -> Coordinator {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = test_config(dir.path());
        adjust(&mut cfg);
        let mut c = Self::start_in(cfg).await;
        c._owned_dir = Some(dir);
        c
    }

    /// Starts a coordinator on `cfg.data_dir`, which the caller owns (so it
    /// can outlive this coordinator, for restart tests).
    pub async fn start_in(cfg: CoordinatorConfig) -> Coordinator {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let data_dir = cfg.data_dir.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(proofmesh_coordinator::run(listener, cfg, async move {
            let _ = rx.await;
        }));
        let base = format!("http://{addr}");
        let http = reqwest::Client::builder()
            .timeout(STEP_LIMIT)
            .build()
            .expect("http client");
        // Wait until it serves before opening a second store handle, so the
        // two never race to run migrations.
        poll_until("coordinator /healthz", || {
            let http = http.clone();
            let url = format!("{base}/healthz");
            async move {
                let r = http.get(url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        let store = SqliteStore::open(&db_path(&data_dir))
            .await
            .expect("open second store handle");
        Coordinator {
            base,
            data_dir,
            store,
            http,
            shutdown: Some(tx),
            task: Some(task),
            _owned_dir: None,
        }
    }

    /// Shuts the coordinator down and waits for `run` to return Ok.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let res = step("coordinator shutdown", task)
                .await
                .expect("coordinator task panicked");
            res.expect("coordinator run returned an error");
        }
        self.store.close().await;
    }

    /// `ws://…/v1/provider/connect`.
    pub fn ws_url(&self) -> String {
        format!(
            "{}/v1/provider/connect",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// A new API key for a new client, credited with $100 (as an operator
    /// would with `proofmesh billing credit`).
    pub async fn api_key(&self) -> String {
        self.api_key_with_client().await.0
    }

    /// A new API key for a new client (credited with $100), with its client id.
    pub async fn api_key_with_client(&self) -> (String, String) {
        let k = self.unfunded_api_key().await;
        self.credit(&k.1, 100_000_000).await;
        k
    }

    /// A new API key whose client has no balance.
    pub async fn unfunded_api_key(&self) -> (String, String) {
        let k = self
            .store
            .create_api_key(None, "test", 1)
            .await
            .expect("create api key");
        (k.key, k.client_id)
    }

    /// Deposits `micros` USD to `client_id`, from outside the coordinator
    /// process's writer (through the shared database).
    pub async fn credit(&self, client_id: &str, micros: u64) {
        let (bank, task) = proofmesh_settlement::Bank::open(
            std::sync::Arc::new(self.store.clone()),
            Default::default(),
        )
        .await
        .expect("open ledger");
        let usd = proofmesh_ledger::Currency::parse("USD").unwrap();
        let amount = proofmesh_ledger::Amount::from_micros(usd, micros).unwrap();
        let reference = format!("test-{}", uuid::Uuid::new_v4().simple());
        let tx = proofmesh_ledger::settle::deposit(client_id, amount, &reference).unwrap();
        bank.apply(tx, 1).await.expect("deposit");
        bank.close().await;
        task.await.unwrap();
    }

    /// `GET /v1/coordinator` as JSON.
    pub async fn info(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/v1/coordinator", self.base))
            .send()
            .await
            .expect("GET /v1/coordinator");
        assert_eq!(r.status(), 200);
        r.json().await.expect("coordinator JSON")
    }

    /// The coordinator's public key as it publishes it.
    pub async fn coordinator_key(&self) -> PublicKey {
        let info = self.info().await;
        PublicKey::parse(info["coordinator_key"].as_str().expect("coordinator_key"))
            .expect("coordinator_key parses")
    }

    /// Current `providers_connected`.
    pub async fn providers_connected(&self) -> u64 {
        self.info().await["providers_connected"]
            .as_u64()
            .expect("providers_connected")
    }

    /// Waits until exactly `n` providers are connected.
    pub async fn wait_providers(&self, n: u64) {
        poll_until(&format!("providers_connected == {n}"), || async move {
            (self.providers_connected().await == n).then_some(())
        })
        .await;
    }

    /// `GET {path}` (with a bearer key if given), asserting 200; the JSON.
    pub async fn get_json(&self, key: Option<&str>, path: &str) -> Value {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let resp = r.send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.expect("JSON body")
    }

    /// `GET /v1/providers{query}`: the listed rows.
    pub async fn providers(&self, query: &str) -> Vec<Value> {
        let v = self.get_json(None, &format!("/v1/providers{query}")).await;
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /v1/chat/completions` with a bearer key and a JSON body.
    pub async fn chat(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("POST /v1/chat/completions")
    }

    /// `GET /v1/receipts/{id}`.
    pub async fn get_receipt(&self, key: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/receipts/{id}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET /v1/receipts")
    }

    /// A job's row, straight from the database.
    pub async fn job_status(&self, job_id: &str) -> JobStatus {
        self.store
            .job_status(job_id)
            .await
            .expect("read job status")
            .unwrap_or_else(|| panic!("job {job_id} has no row"))
    }

    /// Waits until a job row leaves `dispatched` (the driver records the
    /// outcome just before it answers, so a reader can be a moment early).
    pub async fn wait_job_settled(&self, job_id: &str) -> JobStatus {
        poll_until(&format!("job {job_id} settled"), || async move {
            let s = self.job_status(job_id).await;
            (s.status != "dispatched").then_some(s)
        })
        .await
    }
}

/// A chat request body for the tiny model.
pub fn chat_body(prompt: &str, seed: u64, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "seed": seed,
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// A real provider agent running in-process, with its own shutdown.
pub struct TestProvider {
    /// Its identity.
    pub identity: Arc<Identity>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), proofmesh_provider::ProviderError>>>,
}

impl TestProvider {
    /// Starts a provider with a fresh identity (does not wait for it to register).
    pub fn start(coord: &Coordinator) -> TestProvider {
        Self::start_as(coord, Identity::generate())
    }

    /// Starts a provider with the given identity.
    pub fn start_as(coord: &Coordinator, identity: Identity) -> TestProvider {
        Self::start_role(coord, identity, proofmesh_provider::AgentRole::Provider)
    }

    /// Starts a real verifier agent (its key must be in `trusted_verifiers`).
    pub fn start_verifier(coord: &Coordinator, identity: Identity) -> TestProvider {
        Self::start_role(coord, identity, proofmesh_provider::AgentRole::Verifier)
    }

    /// Starts an agent in the given role.
    pub fn start_role(
        coord: &Coordinator,
        identity: Identity,
        role: proofmesh_provider::AgentRole,
    ) -> TestProvider {
        Self::start_custom(&coord.base, identity, role, price(), None)
    }

    /// Starts an agent dialing `url` (e.g. through a latency proxy), with
    /// its own rates and declared site.
    pub fn start_custom(
        url: &str,
        identity: Identity,
        role: proofmesh_provider::AgentRole,
        rates: PriceRate,
        site: Option<proofmesh_wire::Site>,
    ) -> TestProvider {
        Self::start_full(url, identity, role, rates, site, Default::default())
    }

    /// Starts a provider that presents `bundle` as its attestation evidence
    /// (the provider agent's fixed-evidence test seam).
    pub fn start_attested(
        coord: &Coordinator,
        identity: Identity,
        bundle: proofmesh_attest::EvidenceBundle,
    ) -> TestProvider {
        let src = proofmesh_provider::AttestSource::FixedForTesting(Box::new(bundle));
        let role = proofmesh_provider::AgentRole::Provider;
        Self::start_full(&coord.base, identity, role, price(), None, src)
    }

    /// Starts an agent with every option.
    pub fn start_full(
        url: &str,
        identity: Identity,
        role: proofmesh_provider::AgentRole,
        rates: PriceRate,
        site: Option<proofmesh_wire::Site>,
        attestation: proofmesh_provider::AttestSource,
    ) -> TestProvider {
        let cfg = ProviderConfig {
            price: rates,
            site,
            attestation,
            ..Self::config(url, role)
        };
        Self::spawn(cfg, identity)
    }

    /// Starts a provider that also proves the given zero-knowledge models.
    pub fn start_zk(
        coord: &Coordinator,
        identity: Identity,
        zk: Vec<Arc<proofmesh_provider::ZkProver>>,
    ) -> TestProvider {
        let cfg = ProviderConfig {
            zk,
            ..Self::config(&coord.base, proofmesh_provider::AgentRole::Provider)
        };
        Self::spawn(cfg, identity)
    }

    /// The test agents' defaults: the tiny model, one job at a time.
    fn config(url: &str, role: proofmesh_provider::AgentRole) -> ProviderConfig {
        ProviderConfig {
            coordinator_url: url.to_owned(),
            max_concurrent_jobs: 1,
            price: price(),
            max_backoff: Duration::from_millis(500),
            model_name: MODEL.into(),
            role,
            model_size_bytes: 0,
            site: None,
            attestation: Default::default(),
            zk: Vec::new(),
        }
    }

    fn spawn(cfg: ProviderConfig, identity: Identity) -> TestProvider {
        let identity = Arc::new(identity);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(proofmesh_provider::run(
            cfg,
            engine(),
            identity.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        TestProvider {
            identity,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The provider's key.
    pub fn key(&self) -> &PublicKey {
        self.identity.public()
    }

    /// Kills the provider (its connection drops) and waits for it to stop.
    pub async fn kill(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let res = step("provider shutdown", task)
                .await
                .expect("provider task panicked");
            res.expect("provider run returned an error");
        }
    }
}

/// A coordinator with `n` real providers connected.
pub async fn coordinator_with_providers(n: usize) -> (Coordinator, Vec<TestProvider>) {
    let c = Coordinator::start().await;
    let ps: Vec<TestProvider> = (0..n).map(|_| TestProvider::start(&c)).collect();
    c.wait_providers(n as u64).await;
    (c, ps)
}

/// A raw provider WebSocket (the test seam's connection).
pub type RawSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Ws = RawSocket;

/// Connects a raw WebSocket to the provider endpoint and reads the challenge:
/// `(socket, nonce, coordinator_key)`.
pub async fn raw_connect(coord: &Coordinator) -> (Ws, String, PublicKey) {
    let (mut ws, _) = step(
        "websocket connect",
        tokio_tungstenite::connect_async(coord.ws_url()),
    )
    .await
    .expect("websocket connect");
    let msg = next_coordinator_msg(&mut ws)
        .await
        .expect("coordinator sends a challenge");
    let CoordinatorMsg::Challenge {
        nonce,
        coordinator_key,
        protocol_version,
    } = msg
    else {
        panic!("expected a challenge, got {msg:?}");
    };
    assert_eq!(protocol_version, PROTOCOL_VERSION);
    (ws, nonce, coordinator_key)
}

/// What a raw socket read ended with when it was not a coordinator message.
#[derive(Debug)]
pub enum WsEnd {
    /// A close frame: (code, reason).
    Closed(u16, String),
    /// The connection ended without a close frame, or errored.
    Dropped(String),
}

/// Reads the next coordinator JSON message, or how the socket ended.
pub async fn next_coordinator_msg(ws: &mut Ws) -> Result<CoordinatorMsg, WsEnd> {
    loop {
        let frame = step("coordinator frame", ws.next()).await;
        match frame {
            Some(Ok(Message::Text(t))) => {
                return Ok(serde_json::from_str(&t).expect("coordinator sends valid JSON"))
            }
            Some(Ok(Message::Close(c))) => {
                let (code, reason) = c
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return Err(WsEnd::Closed(code, reason));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(WsEnd::Dropped(e.to_string())),
            None => return Err(WsEnd::Dropped("stream ended".into())),
        }
    }
}

/// The hello a provider with `identity` sends for `nonce`.
pub fn hello(
    identity: &Identity,
    nonce: &str,
    coordinator_key: &PublicKey,
    max_concurrent_jobs: u32,
) -> ProviderMsg {
    ProviderMsg::Hello {
        provider_key: identity.public().clone(),
        signature: identity.sign(&auth_message(nonce, coordinator_key, identity.public())),
        protocol_version: PROTOCOL_VERSION,
        agent_version: "test-seam".into(),
        hardware: Hardware::default(),
        models: vec![ModelAdvert {
            digest: model_digest(),
            name: MODEL.into(),
            context_length: engine().max_sequence_len() as u32,
            price: price(),
            size_bytes: 0,
        }],
        max_concurrent_jobs,
        site: None,
        attestation: None,
        zk_models: Vec::new(),
    }
}

/// Sends one provider message on a raw socket.
pub async fn send_msg(ws: &mut Ws, msg: &ProviderMsg) {
    let text = serde_json::to_string(msg).expect("encode provider message");
    step("send provider frame", ws.send(Message::Text(text.into())))
        .await
        .expect("send provider frame");
}

type Sink = SplitSink<Ws, Message>;

/// TEST SEAM: a "provider" speaking the wire protocol over a raw WebSocket,
/// so tests can make it misbehave (accept a job and vanish, stream a token
/// and vanish, return forged results). It does the real handshake with its
/// own identity and advertises the tiny model's digest and name, and keeps
/// heartbeating in the background so the coordinator does not drop it for
/// silence while a test is arranging something else.
pub struct RawProvider {
    /// Its identity.
    pub identity: Identity,
    /// The coordinator key from the challenge.
    pub coordinator_key: PublicKey,
    sink: Arc<Mutex<Sink>>,
    stream: SplitStream<Ws>,
    heartbeat: JoinHandle<()>,
}

impl RawProvider {
    /// Connects and completes the handshake (up to Welcome).
    pub async fn connect(coord: &Coordinator, max_concurrent_jobs: u32) -> RawProvider {
        let identity = Identity::generate();
        let (mut ws, nonce, coordinator_key) = raw_connect(coord).await;
        send_msg(
            &mut ws,
            &hello(&identity, &nonce, &coordinator_key, max_concurrent_jobs),
        )
        .await;
        match next_coordinator_msg(&mut ws).await {
            Ok(CoordinatorMsg::Welcome { heartbeat_ms }) => assert!(heartbeat_ms > 0),
            other => panic!("expected welcome, got {other:?}"),
        }
        let (sink, stream) = ws.split();
        let sink = Arc::new(Mutex::new(sink));
        let hb_sink = sink.clone();
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let text = serde_json::to_string(&ProviderMsg::Heartbeat { in_flight: 0 })
                    .expect("encode heartbeat");
                if hb_sink
                    .lock()
                    .await
                    .send(Message::Text(text.into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        RawProvider {
            identity,
            coordinator_key,
            sink,
            stream,
            heartbeat,
        }
    }

    /// The provider's key.
    pub fn key(&self) -> &PublicKey {
        self.identity.public()
    }

    /// Waits for the next job (skipping other coordinator messages).
    pub async fn next_job(&mut self) -> JobSpec {
        loop {
            let frame = step("job for the fake provider", self.stream.next()).await;
            match frame {
                Some(Ok(Message::Text(t))) => {
                    match serde_json::from_str::<CoordinatorMsg>(&t).expect("valid JSON") {
                        CoordinatorMsg::Job(spec) => return spec,
                        _ => continue,
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    panic!("coordinator closed the fake provider's connection")
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Sends one message.
    pub async fn send(&self, msg: &ProviderMsg) {
        let text = serde_json::to_string(msg).expect("encode provider message");
        step(
            "send provider frame",
            self.sink.lock().await.send(Message::Text(text.into())),
        )
        .await
        .expect("send provider frame");
    }

    /// Streams `result`'s tokens (one text piece each) and then its Done.
    pub async fn deliver(&self, spec: &JobSpec, pieces: &[(u32, &str)], result: JobResult) {
        for (i, (id, text)) in pieces.iter().enumerate() {
            self.send(&ProviderMsg::Token {
                job_id: spec.job_id.clone(),
                index: i as u32,
                token_id: *id,
                text: text.to_string(),
            })
            .await;
        }
        self.send(&ProviderMsg::Done {
            job_id: spec.job_id.clone(),
            result: Box::new(result),
        })
        .await;
    }

    /// Drops the connection abruptly (no close frame), like a crashed host.
    pub async fn vanish(self) {
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        let sink = Arc::try_unwrap(self.sink)
            .unwrap_or_else(|_| panic!("heartbeat still holds the sink"))
            .into_inner();
        let ws = sink.reunite(self.stream).expect("halves of one socket");
        // Dropping the socket closes TCP without a WebSocket close handshake.
        drop(ws);
    }
}

/// The result an honest provider would return for `spec` if it had generated
/// `pieces` (token id, text) and stopped: every digest consistent and the
/// receipt signed by `identity` for `coordinator`. Tests forge variants of it.
pub fn honest_result(
    spec: &JobSpec,
    identity: &Identity,
    coordinator: &PublicKey,
    pieces: &[(u32, &str)],
) -> JobResult {
    let ids: Vec<u32> = pieces.iter().map(|(id, _)| *id).collect();
    let text: String = pieces.iter().map(|(_, t)| *t).collect();
    // A well-formed fingerprint (the coordinator checks its shape and digest;
    // only a verifier can check its content).
    let mut fingerprint = b"PMFP\x01\x00\x08\x00".to_vec();
    fingerprint.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in &ids {
        fingerprint.extend_from_slice(&u64::from(*id).to_le_bytes());
    }
    let served = proofmesh_provider::Served {
        prompt_tokens: 7,
        completion_tokens: &ids,
        text: &text,
        finish_reason: "stop",
        fingerprint: &fingerprint,
        finished_at_ms: spec.dispatched_at_ms + 1,
    };
    let body = proofmesh_provider::receipt_body(spec, identity.public(), coordinator, &served);
    JobResult {
        receipt: Receipt::sign_as_provider(body, identity),
        completion_token_ids: ids,
        text,
        fingerprint: hex::encode(&fingerprint),
    }
}

/// Re-signs a (tampered) result's receipt as `identity`, so that only the
/// tampering, not the signature, can give it away.
pub fn resign(mut result: JobResult, identity: &Identity) -> JobResult {
    result.receipt = Receipt::sign_as_provider(result.receipt.body, identity);
    result
}

/// Splits an SSE body into its `data:` payloads, asserting OpenAI's framing
/// exactly: nothing but `data: <payload>\n\n` events.
pub fn sse_payloads(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line: {body:?}"
    );
    body[..body.len() - 2]
        .split("\n\n")
        .map(|event| {
            assert!(
                !event.contains('\n'),
                "an SSE event must be one data line: {event:?}"
            );
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("SSE event without 'data: ' prefix: {event:?}"))
                .to_string()
        })
        .collect()
}

/// Asserts the OpenAI error shape and returns `error`.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ct.starts_with("application/json"),
        "error content-type {ct:?}"
    );
    let body: Value = resp.json().await.expect("error body is JSON");
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("no 'error' object: {body}"));
    let obj = err.as_object().expect("error is an object");
    for field in ["message", "type", "param", "code"] {
        assert!(obj.contains_key(field), "error lacks '{field}': {body}");
    }
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        err["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(err["code"], code, "{body}");
    err.clone()
}

/// Parses and fully verifies a receipt body, pinning the coordinator key.
pub fn verified_receipt(bytes: &[u8], coordinator: &PublicKey) -> Receipt {
    let r = Receipt::from_json(bytes).expect("receipt JSON parses strictly");
    r.verify(Some(coordinator)).expect("receipt verifies");
    r
}

/// A successful non-streaming completion: (body JSON, receipt id header).
pub async fn complete(coord: &Coordinator, key: &str, body: &Value) -> (Value, String) {
    let resp = coord.chat(key, body).await;
    let status = resp.status();
    let header = resp
        .headers()
        .get("x-proofmesh-receipt-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.expect("completion body");
    assert_eq!(status, 200, "completion failed: {text}");
    let json: Value = serde_json::from_str(&text).expect("completion JSON");
    (json, header.expect("x-proofmesh-receipt-id header"))
}

/// What the tiny engine itself generates for a one-message chat at
/// temperature 0 with the coordinator's default sampling: the ground truth a
/// provider's relayed answer must equal.
pub fn local_generation(prompt: &str, seed: u64, max_tokens: u32) -> proofmesh_engine::Generation {
    let e = engine();
    let text = e
        .chat_prompt(&[proofmesh_engine::ChatMessage::new("user", prompt)])
        .expect("chat prompt");
    let tokens = e.encode(&text).expect("encode prompt");
    let req = proofmesh_engine::GenerateRequest {
        prompt_tokens: tokens,
        sampling: proofmesh_engine::SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed,
            max_tokens,
            stop: vec![],
            top_k_logits: CoordinatorConfig::default().default_top_k_logits as usize,
        },
    };
    e.generate(&req, &mut |_| std::ops::ControlFlow::Continue(()))
        .expect("local generation")
}

impl Coordinator {
    /// Sends a chat request from a background task, so a test can play the
    /// provider side while the request is in flight. Resolves to the
    /// response once its headers (and, for non-streaming, its body) are ready.
    pub fn spawn_chat(&self, key: &str, body: Value) -> JoinHandle<reqwest::Response> {
        let http = self.http.clone();
        let url = format!("{}/v1/chat/completions", self.base);
        let key = key.to_string();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("POST /v1/chat/completions")
        })
    }
}

impl Coordinator {
    /// Like [`Coordinator::spawn_chat`], with an `x-proofmesh-workload` header.
    pub fn spawn_chat_with(
        &self,
        key: &str,
        body: Value,
        workload: &str,
    ) -> JoinHandle<reqwest::Response> {
        let http = self.http.clone();
        let url = format!("{}/v1/chat/completions", self.base);
        let (key, workload) = (key.to_string(), workload.to_string());
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .header("x-proofmesh-workload", workload)
                .json(&body)
                .send()
                .await
                .expect("chat request")
        })
    }
}

/// Awaits a spawned request.
pub async fn join_chat(handle: JoinHandle<reqwest::Response>) -> reqwest::Response {
    step("chat response", handle)
        .await
        .expect("chat task panicked")
}

/// Config: no sampled audits; only jobs that ask for `verification:
/// "always"` are audited.
pub fn no_audits(c: &mut CoordinatorConfig) {
    c.audit_rate_milli = 0;
    c.audit_rate_new_milli = 0;
    c.audit_rate_low_rep_milli = 0;
}

/// The USD micro-units in a `[{currency, micros}]` list at `v[field]` (0 if none).
pub fn usd(v: &Value, field: &str) -> i64 {
    v[field]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["currency"] == "USD")
        .and_then(|b| b["micros"].as_i64())
        .unwrap_or(0)
}
