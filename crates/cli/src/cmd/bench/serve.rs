//! `proofmesh bench serve`: the whole serving path under load (issue 17).
//! Starts a local network — the coordinator in this process with its
//! default configuration, N real provider agents and a verifier as child
//! processes on the real model, in a temporary data directory — drives it
//! with the OpenAI client's request shapes (half streamed by default) at
//! several concurrencies, and reports success rates, end-to-end latency,
//! time to first token, throughput, and what the coordinator adds over the
//! provider's own time (from the `timing` object of each response's
//! `proofmesh` extension).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_wire::openai::{ChatCompletion, ChatCompletionChunk, ErrorBody, JobTimingExt};
use serde::Serialize;
use tokio::process::Child;
use tokio::sync::oneshot;

use crate::cmd::up;

/// The targets.
const TARGET_SUCCESS_PCT: f64 = 100.0;
const TARGET_OVERHEAD_P50_MS: f64 = 10.0;
const TARGET_TTFT_GAP_P50_MS: f64 = 20.0;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// GGUF model (default: the cached SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Provider agents.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    providers: u32,
    /// Engine threads per provider (and for the verifier).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: u64,
    /// Concurrency levels: clients each sending one request after another.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 10, 100],
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: Vec<u32>,
    /// Requests per concurrency level (at least the concurrency).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    requests: u32,
    /// Warm-up requests before measuring (not reported).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    warmup: u32,
    /// The user message of every request.
    #[arg(
        long,
        default_value = "Tell me a short story about a lighthouse keeper."
    )]
    prompt: String,
    /// `max_tokens` of every request.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=2048))]
    max_tokens: u32,
    /// Share of requests sent with `"stream": true`, percent (interleaved).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    stream_pct: u8,
    /// Per-request time limit, seconds (a request past it counts as `timeout`).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    request_timeout_s: u64,
    /// Per-level time limit, seconds: no request starts after it, and one
    /// still running then counts as `timeout`.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    level_timeout_s: u64,
    /// Seconds to wait for the providers to register.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    ready_timeout_s: u64,
    /// Coordinator TOML config instead of the defaults (PROOFMESH_*
    /// variables then apply too); without it, the built-in defaults exactly.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON object (key names carry units).
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let model = crate::cmd::provider::model_path(a.model.clone())?;
    let model_name = proofmesh_provider::advertised_name(&model);
    let threads = usize::try_from(a.threads)?;
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let started = Instant::now();
    if !a.json {
        eprintln!(
            "starting the network: coordinator + {} provider(s) + 1 verifier ({} thread(s) each) on {}",
            a.providers,
            threads,
            model.display()
        );
    }
    let mut net = Network::start(&a, &model, threads, dir.path()).await?;
    let startup_s = started.elapsed().as_secs_f64();
    let plan = Plan {
        url: format!("{}/v1/chat/completions", net.base),
        api_key: net.api_key.clone(),
        model_name: model_name.clone(),
        prompt: a.prompt.clone(),
        max_tokens: a.max_tokens,
        stream_pct: a.stream_pct,
        request_timeout: Duration::from_secs(a.request_timeout_s),
        level_timeout: Duration::from_secs(a.level_timeout_s),
        http: reqwest::Client::new(),
    };
    let outcome = tokio::select! {
        r = measure(&a, &plan, &net.base) => r,
        r = &mut net.server => match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("the coordinator stopped during the benchmark")),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("the coordinator failed during the benchmark")),
            Err(e) => Err(anyhow::Error::new(e).context("the coordinator task panicked")),
        },
        _ = crate::signals::shutdown_signal() => Err(anyhow::anyhow!("interrupted")),
    };
    net.stop().await;
    let (levels, log_entries_added) = outcome?;
    let targets = Targets::of(&levels);
    let report = Report {
        model: model_name,
        model_path: model.display().to_string(),
        providers: a.providers,
        threads_per_provider: threads,
        verifiers: 1,
        coordinator_config: if a.config.is_some() {
            "file".into()
        } else {
            "default".into()
        },
        prompt: a.prompt.clone(),
        max_tokens: a.max_tokens,
        stream_share_pct: a.stream_pct,
        warmup_requests: a.warmup,
        network_startup_s: startup_s,
        log_entries_added,
        levels,
        targets,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The running local network.
struct Network {
    base: String,
    api_key: String,
    server: tokio::task::JoinHandle<Result<(), proofmesh_coordinator::ServerError>>,
    stop_tx: Option<oneshot::Sender<()>>,
    children: Vec<Child>,
}

impl Network {
    async fn start(a: &Args, model: &Path, threads: usize, dir: &Path) -> anyhow::Result<Self> {
        let mut cfg = match &a.config {
            Some(f) => CoordinatorConfig::load(Some(f))?,
            None => CoordinatorConfig::default(),
        };
        cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.data_dir = dir.join("coordinator");
        if !cfg.model_files.iter().any(|f| f == model) {
            cfg.model_files.push(model.to_path_buf());
        }
        let verifier_key = dir.join("verifier.key");
        let vk = proofmesh_receipt::Identity::load_or_create(&verifier_key)?
            .public()
            .to_string();
        if !cfg.trusted_verifiers.contains(&vk) {
            cfg.trusted_verifiers.push(vk);
        }
        cfg.validate()?;
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let client = up::ensure_client(dir, &cfg.data_dir, &base, &cfg.log_origin).await?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(proofmesh_coordinator::run(listener, cfg, async {
            let _ = stop_rx.await;
        }));
        let mut net = Network {
            base,
            api_key: client.api_key,
            server,
            stop_tx: Some(stop_tx),
            children: Vec::new(),
        };
        if let Err(e) = net.spawn_agents(a, model, threads, dir).await {
            net.stop().await;
            return Err(e);
        }
        Ok(net)
    }

    async fn spawn_agents(
        &mut self,
        a: &Args,
        model: &Path,
        threads: usize,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let quiet = |mut cmd: tokio::process::Command| {
            // Stdout stays clean for --json; agents log warnings only unless
            // PROOFMESH_LOG says otherwise.
            cmd.stdout(std::process::Stdio::null());
            if proofmesh_ambient::env::var_os("PROOFMESH_LOG").is_none() {
                cmd.env("PROOFMESH_LOG", "warn");
            }
            cmd
        };
        for i in 0..a.providers {
            let key = dir.join("providers").join(format!("provider-{i}.key"));
            let cmd = up::spawn_agent("provider", &key, &self.base, model, threads);
            self.children.push(up::start(quiet(cmd), "provider")?);
        }
        let key = dir.join("verifier.key");
        let cmd = up::spawn_agent("verifier", &key, &self.base, model, threads);
        self.children.push(up::start(quiet(cmd), "verifier")?);
        let limit = Duration::from_secs(a.ready_timeout_s);
        tokio::select! {
            r = up::wait_ready(&self.base, a.providers, limit) => r?,
            r = &mut self.server => {
                r.context("the coordinator task panicked")??;
                anyhow::bail!("the coordinator stopped before the providers registered");
            }
        }
        // Audits need the verifier; measuring without it would understate
        // nothing on the request path, but say so.
        if !wait_verifier(&self.base, Duration::from_secs(60)).await {
            tracing::warn!("the verifier did not connect; audits will wait");
        }
        Ok(())
    }

    /// Stops the agents, then the coordinator; bounded in time.
    async fn stop(&mut self) {
        up::stop_children(&mut self.children).await;
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if !self.server.is_finished() {
            match tokio::time::timeout(Duration::from_secs(30), &mut self.server).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "coordinator stopped with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "coordinator task panicked"),
                Ok(Ok(Ok(()))) => {}
                Err(_) => {
                    tracing::warn!("coordinator did not stop within 30 s; aborting it");
                    self.server.abort();
                }
            }
        }
    }
}

/// `GET /v1/coordinator`, or nothing.
async fn coordinator_info(base: &str) -> Option<serde_json::Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/coordinator"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

async fn wait_verifier(base: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let n = coordinator_info(base)
            .await
            .and_then(|v| v["verifiers_connected"].as_u64());
        if n.unwrap_or(0) >= 1 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What every request is made of.
struct Plan {
    http: reqwest::Client,
    url: String,
    api_key: String,
    model_name: String,
    prompt: String,
    max_tokens: u32,
    stream_pct: u8,
    request_timeout: Duration,
    level_timeout: Duration,
}

/// Warm-up, then every level; also how many log entries were added.
async fn measure(
    a: &Args,
    plan: &Plan,
    base: &str,
) -> anyhow::Result<(Vec<LevelReport>, Option<u64>)> {
    let log_size = |v: Option<serde_json::Value>| v.and_then(|v| v["log_size"].as_u64());
    if a.warmup > 0 {
        let (samples, _) = run_level(plan, a.warmup.min(2), a.warmup).await;
        let failed = samples
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
            .count();
        if failed > 0 && !a.json {
            eprintln!("warm-up: {failed} of {} requests failed", samples.len());
        }
    }
    let log_before = log_size(coordinator_info(base).await);
    let mut levels = Vec::new();
    for &c in &a.concurrency {
        let requests = a.requests.max(c);
        if !a.json {
            eprintln!("concurrency {c}: {requests} requests ...");
        }
        let (samples, wall) = run_level(plan, c, requests).await;
        let level = LevelReport::of(c, requests, &samples, wall);
        if !a.json {
            print_level(&level);
        }
        levels.push(level);
    }
    let log_after = log_size(coordinator_info(base).await);
    let added = match (log_before, log_after) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok((levels, added))
}

/// Whether request `i` is streamed: `pct` percent of requests, interleaved.
fn is_stream(i: u32, pct: u8) -> bool {
    let p = u64::from(pct.min(100));
    let i = u64::from(i);
    (i + 1) * p / 100 > i * p / 100
}

/// `concurrency` clients sending `requests` requests in all, one after
/// another each; the samples and the wall time.
async fn run_level(plan: &Plan, concurrency: u32, requests: u32) -> (Vec<Sample>, Duration) {
    let next = AtomicU32::new(0);
    let start = Instant::now();
    let deadline = start + plan.level_timeout;
    let workers = (0..concurrency).map(|_| client(plan, &next, requests, deadline));
    let all = futures::future::join_all(workers).await;
    (all.into_iter().flatten().collect(), start.elapsed())
}

/// One client: takes the next request number until all are taken or the
/// level's deadline has passed.
async fn client(plan: &Plan, next: &AtomicU32, requests: u32, deadline: Instant) -> Vec<Sample> {
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= requests {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let stream = is_stream(i, plan.stream_pct);
        let limit = plan.request_timeout.min(deadline - now);
        let outcome = one_request(plan, stream, limit).await;
        out.push(Sample { stream, outcome });
    }
    out
}

/// One request's result.
struct Sample {
    stream: bool,
    outcome: Outcome,
}

/// Succeeded (with measurements) or failed (with a failure key such as
/// `http_429_queue_full`, `stream_error_<code>` or `timeout`).
enum Outcome {
    Ok(Measured),
    Failed(String),
}

/// A successful request's measurements.
struct Measured {
    e2e_ms: f64,
    /// Streams only: until the first chunk with non-empty content.
    ttft_ms: Option<f64>,
    completion_tokens: u32,
    timing: Option<JobTimingExt>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn one_request(plan: &Plan, stream: bool, limit: Duration) -> Outcome {
    let body = serde_json::json!({
        "model": plan.model_name,
        "messages": [{"role": "user", "content": plan.prompt}],
        "max_tokens": plan.max_tokens,
        "stream": stream,
    });
    let t0 = Instant::now();
    match tokio::time::timeout(limit, send(plan, &body, stream, t0)).await {
        Ok(o) => o,
        Err(_) => Outcome::Failed("timeout".into()),
    }
}

fn transport_failure(e: &reqwest::Error) -> Outcome {
    let key = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect_error"
    } else {
        "transport_error"
    };
    Outcome::Failed(key.into())
}

async fn send(plan: &Plan, body: &serde_json::Value, stream: bool, t0: Instant) -> Outcome {
    let resp = match plan
        .http
        .post(&plan.url)
        .bearer_auth(&plan.api_key)
        .json(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return transport_failure(&e),
    };
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<ErrorBody>(&text)
            .map(|e| e.error.code)
            .unwrap_or_else(|_| "unparsed".into());
        return Outcome::Failed(format!("http_{}_{}", status.as_u16(), code));
    }
    if !stream {
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return transport_failure(&e),
        };
        let e2e_ms = ms(t0.elapsed());
        return match serde_json::from_slice::<ChatCompletion>(&bytes) {
            Ok(c) => Outcome::Ok(Measured {
                e2e_ms,
                ttft_ms: None,
                completion_tokens: c.usage.completion_tokens,
                timing: c.proofmesh.timing,
            }),
            Err(_) => Outcome::Failed("malformed_response".into()),
        };
    }
    let mut bytes = resp.bytes_stream();
    let mut lines = SseLines::default();
    let mut ttft_ms = None;
    let mut completion_tokens = None;
    let mut timing = None;
    while let Some(chunk) = bytes.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return transport_failure(&e),
        };
        for data in lines.push(&chunk) {
            if data == "[DONE]" {
                let Some(completion_tokens) = completion_tokens else {
                    return Outcome::Failed("stream_without_usage".into());
                };
                return Outcome::Ok(Measured {
                    e2e_ms: ms(t0.elapsed()),
                    ttft_ms,
                    completion_tokens,
                    timing,
                });
            }
            if let Ok(e) = serde_json::from_str::<ErrorBody>(&data) {
                return Outcome::Failed(format!("stream_error_{}", e.error.code));
            }
            let Ok(c) = serde_json::from_str::<ChatCompletionChunk>(&data) else {
                return Outcome::Failed("malformed_chunk".into());
            };
            let has_text = c
                .choices
                .first()
                .and_then(|c| c.delta.content.as_deref())
                .is_some_and(|t| !t.is_empty());
            if has_text && ttft_ms.is_none() {
                ttft_ms = Some(ms(t0.elapsed()));
            }
            if let Some(u) = c.usage {
                completion_tokens = Some(u.completion_tokens);
            }
            if let Some(p) = c.proofmesh {
                timing = p.timing;
            }
        }
    }
    Outcome::Failed("stream_truncated".into())
}

/// Splits an SSE byte stream into the payloads of its `data:` lines.
#[derive(Default)]
struct SseLines {
    buf: Vec<u8>,
}

impl SseLines {
    /// Adds bytes; returns the `data:` payloads of the lines they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.strip_prefix(' ').unwrap_or(data).to_string());
            }
        }
        out
    }
}

/// Nearest-rank percentile `p` (0–100) of ascending `sorted` values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !p.is_finite() {
        return None;
    }
    let n = sorted.len();
    let rank = (p.clamp(0.0, 100.0) / 100.0 * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// A distribution of milliseconds.
#[derive(Debug, Serialize, PartialEq)]
struct Dist {
    samples: usize,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    mean_ms: Option<f64>,
    max_ms: Option<f64>,
}

impl Dist {
    fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        Dist {
            samples: v.len(),
            p50_ms: percentile(&v, 50.0),
            p95_ms: percentile(&v, 95.0),
            p99_ms: percentile(&v, 99.0),
            mean_ms: mean,
            max_ms: v.last().copied(),
        }
    }
}

/// One concurrency level's figures.
#[derive(Debug, Serialize)]
struct LevelReport {
    concurrency: u32,
    requests_planned: u32,
    /// Not started because the level's time limit passed.
    requests_not_started: u32,
    requests_sent: usize,
    requests_streamed: usize,
    succeeded: usize,
    failed: usize,
    success_rate_pct: f64,
    /// Failure key → count.
    failures: BTreeMap<String, u64>,
    wall_s: f64,
    requests_per_s: f64,
    completion_tokens: u64,
    completion_tokens_per_s: f64,
    /// Client-measured, all successful requests.
    e2e_latency: Dist,
    /// Client-measured, successful streams: first chunk with content.
    ttft: Dist,
    /// Coordinator-measured (`timing.provider_ttft_ms`).
    provider_ttft: Dist,
    /// Coordinator-measured (`timing.provider_ms`).
    provider: Dist,
    /// Coordinator-measured (`timing.queued_ms`).
    queue: Dist,
    /// Client end-to-end − queued_ms − provider_ms: what the gateway, the
    /// checks, the ledger, the log and HTTP added.
    overhead: Dist,
    /// Coordinator-measured (`timing.finish_ms`).
    finish: Dist,
    /// Overhead − finish_ms: the gateway before the job existed (auth,
    /// validation, escrow) and HTTP, including the SSE relay.
    gateway_http: Dist,
    /// Client TTFT − provider_ttft_ms, streams.
    ttft_gap: Dist,
    /// Served best-effort (`timing.objective_missed`).
    objective_missed: usize,
    /// Successful responses without a `timing` object.
    timing_missing: usize,
}

impl LevelReport {
    fn of(concurrency: u32, planned: u32, samples: &[Sample], wall: Duration) -> Self {
        let ok: Vec<(&Measured, bool)> = samples
            .iter()
            .filter_map(|s| match &s.outcome {
                Outcome::Ok(m) => Some((m, s.stream)),
                Outcome::Failed(_) => None,
            })
            .collect();
        let mut failures = BTreeMap::new();
        for s in samples {
            if let Outcome::Failed(k) = &s.outcome {
                *failures.entry(k.clone()).or_insert(0u64) += 1;
            }
        }
        let sent = samples.len();
        let not_started = planned.saturating_sub(u32::try_from(sent).unwrap_or(u32::MAX));
        if not_started > 0 {
            failures.insert("not_started_level_timeout".into(), u64::from(not_started));
        }
        let wall_s = wall.as_secs_f64();
        let per_s = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
        let tokens: u64 = ok.iter().map(|(m, _)| u64::from(m.completion_tokens)).sum();
        let timed = || {
            ok.iter()
                .filter_map(|(m, _)| m.timing.as_ref().map(|t| (*m, t)))
        };
        let planned_total = sent + not_started as usize;
        LevelReport {
            concurrency,
            requests_planned: planned,
            requests_not_started: not_started,
            requests_sent: sent,
            requests_streamed: samples.iter().filter(|s| s.stream).count(),
            succeeded: ok.len(),
            failed: planned_total - ok.len(),
            success_rate_pct: if planned_total == 0 {
                0.0
            } else {
                ok.len() as f64 * 100.0 / planned_total as f64
            },
            failures,
            wall_s,
            requests_per_s: per_s(ok.len() as f64),
            completion_tokens: tokens,
            completion_tokens_per_s: per_s(tokens as f64),
            e2e_latency: Dist::of(ok.iter().map(|(m, _)| m.e2e_ms)),
            ttft: Dist::of(ok.iter().filter_map(|(m, _)| m.ttft_ms)),
            provider_ttft: Dist::of(timed().filter_map(|(_, t)| t.provider_ttft_ms)),
            provider: Dist::of(timed().map(|(_, t)| t.provider_ms)),
            queue: Dist::of(timed().map(|(_, t)| t.queued_ms)),
            overhead: Dist::of(timed().map(|(m, t)| m.e2e_ms - t.queued_ms - t.provider_ms)),
            finish: Dist::of(timed().map(|(_, t)| t.finish_ms)),
            gateway_http: Dist::of(
                timed().map(|(m, t)| m.e2e_ms - t.queued_ms - t.provider_ms - t.finish_ms),
            ),
            ttft_gap: Dist::of(timed().filter_map(|(m, t)| Some(m.ttft_ms? - t.provider_ttft_ms?))),
            objective_missed: timed().filter(|(_, t)| t.objective_missed).count(),
            timing_missing: ok.iter().filter(|(m, _)| m.timing.is_none()).count(),
        }
    }
}

/// The targets against the figures.
#[derive(Debug, Serialize)]
struct Targets {
    success_rate_target_pct: f64,
    /// 100% success at every concurrency.
    success_met: bool,
    overhead_p50_target_ms: f64,
    /// Overhead p50 within the target at every concurrency.
    overhead_met: bool,
    ttft_gap_c1_p50_target_ms: f64,
    /// Client TTFT − provider TTFT, p50, at concurrency 1 (null when not run
    /// or no stream succeeded there).
    ttft_gap_c1_p50_ms: Option<f64>,
    ttft_gap_met: Option<bool>,
    all_met: bool,
}

impl Targets {
    fn of(levels: &[LevelReport]) -> Self {
        let success_met = !levels.is_empty()
            && levels
                .iter()
                .all(|l| l.success_rate_pct >= TARGET_SUCCESS_PCT);
        let overhead_met = !levels.is_empty()
            && levels.iter().all(|l| {
                l.overhead
                    .p50_ms
                    .is_some_and(|p| p <= TARGET_OVERHEAD_P50_MS)
            });
        let gap = levels
            .iter()
            .find(|l| l.concurrency == 1)
            .and_then(|l| l.ttft_gap.p50_ms);
        let ttft_gap_met = gap.map(|g| g <= TARGET_TTFT_GAP_P50_MS);
        Targets {
            success_rate_target_pct: TARGET_SUCCESS_PCT,
            success_met,
            overhead_p50_target_ms: TARGET_OVERHEAD_P50_MS,
            overhead_met,
            ttft_gap_c1_p50_target_ms: TARGET_TTFT_GAP_P50_MS,
            ttft_gap_c1_p50_ms: gap,
            ttft_gap_met,
            all_met: success_met && overhead_met && ttft_gap_met == Some(true),
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    model: String,
    model_path: String,
    providers: u32,
    threads_per_provider: usize,
    verifiers: u32,
    /// "default" (built-in defaults) or "file" (--config).
    coordinator_config: String,
    prompt: String,
    max_tokens: u32,
    stream_share_pct: u8,
    warmup_requests: u32,
    network_startup_s: f64,
    /// Transparency-log entries (receipts and audit reports) added while
    /// measuring.
    log_entries_added: Option<u64>,
    levels: Vec<LevelReport>,
    targets: Targets,
}

fn f(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".into(),
    }
}

fn dist_line(name: &str, d: &Dist) -> String {
    format!(
        "  {name:<24} p50 {:>7} ms  p95 {:>7} ms  p99 {:>7} ms  ({} samples)",
        f(d.p50_ms),
        f(d.p95_ms),
        f(d.p99_ms),
        d.samples
    )
}

fn level_text(l: &LevelReport) -> String {
    let mut s = format!(
        "concurrency {}: {}/{} succeeded ({:.1}%), {:.1} s, {:.1} req/s, {:.1} completion tokens/s\n",
        l.concurrency,
        l.succeeded,
        l.requests_planned,
        l.success_rate_pct,
        l.wall_s,
        l.requests_per_s,
        l.completion_tokens_per_s
    );
    let lines = [
        ("end-to-end", &l.e2e_latency),
        ("TTFT (client, streams)", &l.ttft),
        ("provider TTFT", &l.provider_ttft),
        ("provider time", &l.provider),
        ("queue", &l.queue),
        ("overhead (e2e-q-prov)", &l.overhead),
        ("  of which finish", &l.finish),
        ("  of which gateway+HTTP", &l.gateway_http),
        ("TTFT - provider TTFT", &l.ttft_gap),
    ];
    for (name, d) in lines {
        s.push_str(&dist_line(name, d));
        s.push('\n');
    }
    if !l.failures.is_empty() {
        let list: Vec<String> = l
            .failures
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        s.push_str(&format!("  failures: {}\n", list.join(", ")));
    }
    if l.objective_missed > 0 {
        s.push_str(&format!(
            "  served best-effort (TTFT objective missed): {}\n",
            l.objective_missed
        ));
    }
    if l.timing_missing > 0 {
        s.push_str(&format!(
            "  responses without a timing object: {}\n",
            l.timing_missing
        ));
    }
    s
}

/// Progress on stderr: one line per level.
fn print_level(l: &LevelReport) {
    eprintln!(
        "concurrency {}: {}/{} succeeded, end-to-end p50 {} ms, overhead p50 {} ms",
        l.concurrency,
        l.succeeded,
        l.requests_planned,
        f(l.e2e_latency.p50_ms),
        f(l.overhead.p50_ms)
    );
}

fn met(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "NOT MET"
    }
}

fn targets_text(r: &Report) -> String {
    let t = &r.targets;
    let per = |g: &dyn Fn(&LevelReport) -> String| {
        r.levels
            .iter()
            .map(|l| format!("c={}: {}", l.concurrency, g(l)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = String::from("targets:\n");
    s.push_str(&format!(
        "  {:<7} success {:.0}% at every concurrency ({})\n",
        met(t.success_met),
        t.success_rate_target_pct,
        per(&|l| format!("{:.1}%", l.success_rate_pct))
    ));
    s.push_str(&format!(
        "  {:<7} gateway+log overhead p50 <= {:.0} ms ({})\n",
        met(t.overhead_met),
        t.overhead_p50_target_ms,
        per(&|l| format!("{} ms", f(l.overhead.p50_ms)))
    ));
    let gap = match t.ttft_gap_met {
        Some(m) => met(m),
        None => "n/a",
    };
    s.push_str(&format!(
        "  {:<7} TTFT within {:.0} ms of the provider's own at concurrency 1 (p50 {} ms)\n",
        gap,
        t.ttft_gap_c1_p50_target_ms,
        f(t.ttft_gap_c1_p50_ms)
    ));
    s
}

fn print_text(r: &Report) {
    println!(
        "serve benchmark: {} — {} provider(s) x {} thread(s) + 1 verifier, {} coordinator config",
        r.model, r.providers, r.threads_per_provider, r.coordinator_config
    );
    println!(
        "  {} max_tokens, {}% streamed, {} warm-up requests, network up in {:.1} s{}",
        r.max_tokens,
        r.stream_share_pct,
        r.warmup_requests,
        r.network_startup_s,
        match r.log_entries_added {
            Some(n) => format!(", {n} log entries added"),
            None => String::new(),
        }
    );
    for l in &r.levels {
        print!("{}", level_text(l));
    }
    print!("{}", targets_text(r));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0], f64::NAN), None);
    }

    #[test]
    fn dist_sorts_and_drops_non_finite() {
        let d = Dist::of([3.0, f64::NAN, 1.0, 2.0, f64::INFINITY]);
        assert_eq!(d.samples, 3);
        assert_eq!(d.p50_ms, Some(2.0));
        assert_eq!(d.max_ms, Some(3.0));
        assert_eq!(d.mean_ms, Some(2.0));
        assert_eq!(Dist::of(std::iter::empty()).p50_ms, None);
    }

    #[test]
    fn stream_share_is_interleaved() {
        let n = |pct| (0..100).filter(|&i| is_stream(i, pct)).count();
        assert_eq!(n(0), 0);
        assert_eq!(n(50), 50);
        assert_eq!(n(100), 100);
        assert_eq!(n(25), 25);
        assert!(!is_stream(0, 50) && is_stream(1, 50) && !is_stream(2, 50));
    }

    #[test]
    fn sse_lines_across_chunk_boundaries() {
        let mut s = SseLines::default();
        assert!(s.push(b"data: {\"a\"").is_empty());
        assert_eq!(s.push(b":1}\n\ndata: [DO"), vec!["{\"a\":1}"]);
        assert_eq!(s.push(b"NE]\r\n\r\n: comment\n"), vec!["[DONE]"]);
        // A multi-byte character split across chunks survives.
        let text = "data: é\n".as_bytes();
        assert!(s.push(&text[..7]).is_empty());
        assert_eq!(s.push(&text[7..]), vec!["é"]);
    }

    fn measured(e2e: f64, ttft: Option<f64>, timing: Option<JobTimingExt>) -> Outcome {
        Outcome::Ok(Measured {
            e2e_ms: e2e,
            ttft_ms: ttft,
            completion_tokens: 16,
            timing,
        })
    }

    #[test]
    fn level_report_figures_and_targets() {
        let t = |q, p, pt| {
            Some(JobTimingExt {
                queued_ms: q,
                provider_ttft_ms: Some(pt),
                provider_ms: p,
                finish_ms: 2.0,
                objective_missed: false,
            })
        };
        let samples = vec![
            Sample {
                stream: false,
                outcome: measured(105.0, None, t(1.0, 100.0, 20.0)),
            },
            Sample {
                stream: true,
                outcome: measured(110.0, Some(30.0), t(2.0, 100.0, 25.0)),
            },
            Sample {
                stream: true,
                outcome: Outcome::Failed("http_429_queue_full".into()),
            },
            Sample {
                stream: false,
                outcome: measured(50.0, None, None),
            },
        ];
        let l = LevelReport::of(1, 5, &samples, Duration::from_secs(2));
        assert_eq!(l.requests_sent, 4);
        assert_eq!(l.requests_not_started, 1);
        assert_eq!(l.succeeded, 3);
        assert_eq!(l.failed, 2);
        assert!((l.success_rate_pct - 60.0).abs() < 1e-9);
        assert_eq!(l.failures.get("http_429_queue_full"), Some(&1));
        assert_eq!(l.failures.get("not_started_level_timeout"), Some(&1));
        assert_eq!(l.completion_tokens, 48);
        assert!((l.completion_tokens_per_s - 24.0).abs() < 1e-9);
        assert_eq!(l.overhead.samples, 2);
        assert_eq!(l.overhead.p50_ms, Some(4.0));
        assert_eq!(l.overhead.max_ms, Some(8.0));
        assert_eq!(l.ttft_gap.p50_ms, Some(5.0));
        assert_eq!(l.gateway_http.p50_ms, Some(2.0));
        assert_eq!(l.timing_missing, 1);
        let targets = Targets::of(std::slice::from_ref(&l));
        assert!(!targets.success_met);
        assert!(targets.overhead_met);
        assert_eq!(targets.ttft_gap_met, Some(true));
        assert!(!targets.all_met);
        // The text names the failures and the missed target, and the JSON
        // carries units.
        assert!(level_text(&l).contains("http_429_queue_full x1"));
        let report = Report {
            model: "m".into(),
            model_path: "m.gguf".into(),
            providers: 2,
            threads_per_provider: 1,
            verifiers: 1,
            coordinator_config: "default".into(),
            prompt: "p".into(),
            max_tokens: 16,
            stream_share_pct: 50,
            warmup_requests: 0,
            network_startup_s: 1.0,
            log_entries_added: None,
            levels: vec![l],
            targets,
        };
        assert!(targets_text(&report).contains("NOT MET success 100%"));
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["levels"][0]["e2e_latency"]["p50_ms"], 105.0);
        assert_eq!(json["levels"][0]["success_rate_pct"], 60.0);
        assert!(json["levels"][0]["completion_tokens_per_s"].is_number());
    }

    #[test]
    fn args_parse() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let c = Cli::try_parse_from(["x"]).map(|c| c.args);
        let Ok(a) = c else {
            panic!("defaults parse");
        };
        assert_eq!(a.concurrency, vec![1, 10, 100]);
        assert_eq!((a.providers, a.threads, a.max_tokens), (2, 1, 16));
        let Ok(c) = Cli::try_parse_from(["x", "--concurrency", "2,4", "--json"]) else {
            panic!("explicit levels parse");
        };
        assert_eq!(c.args.concurrency, vec![2, 4]);
        assert!(c.args.json);
        assert!(Cli::try_parse_from(["x", "--concurrency", "0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--stream-pct", "101"]).is_err());
    }
}
