//! The provider's connection to the coordinator: dial out, authenticate,
//! serve jobs, heartbeat, reconnect with backoff.

use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proofmesh_engine::Engine;
use proofmesh_receipt::{Identity, PublicKey};
use proofmesh_wire::{
    auth_message, CoordinatorMsg, JobSpec, ModelAdvert, PriceRate, ProviderMsg, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::runner::{execute_job, model_digest, JobOutcome};

/// Why a session ended badly.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The coordinator URL is not http(s)://.
    #[error("coordinator URL {0:?} must start with http:// or https://")]
    BadUrl(String),
    /// Connecting failed.
    #[error("connecting to {url}: {reason}")]
    Connect {
        /// WebSocket URL.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The handshake went wrong.
    #[error("handshake with coordinator failed: {0}")]
    Handshake(String),
    /// The connection dropped.
    #[error("connection lost: {0}")]
    Lost(String),
}

/// How to reach the coordinator and what to advertise.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Coordinator base URL, e.g. `http://127.0.0.1:8080`.
    pub coordinator_url: String,
    /// Jobs run at once.
    pub max_concurrent_jobs: u32,
    /// Advertised price for the loaded model.
    pub price: PriceRate,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Name to advertise the model under (clients may also use its digest).
    pub model_name: String,
    /// Provider (runs jobs) or verifier (re-executes audited jobs).
    pub role: AgentRole,
    /// Size of the model file in bytes (advertised for VRAM fit).
    pub model_size_bytes: u64,
    /// Location and box price to declare, if any.
    pub site: Option<proofmesh_wire::Site>,
    /// Where hardware attestation evidence comes from.
    pub attestation: crate::attest::AttestSource,
    /// Models this agent can run and prove in zero knowledge (issue 9).
    pub zk: Vec<Arc<crate::zk::ZkProver>>,
}

/// What an agent does for the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRole {
    /// Runs jobs and signs receipts.
    Provider,
    /// Re-executes audited jobs and signs audit reports.
    Verifier,
}

impl ProviderConfig {
    /// The WebSocket URL of the provider endpoint.
    pub fn ws_url(&self) -> Result<String, ProviderError> {
        let base = self.coordinator_url.trim_end_matches('/');
        let ws = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            return Err(ProviderError::BadUrl(self.coordinator_url.clone()));
        };
        let path = match self.role {
            AgentRole::Provider => "/v1/provider/connect",
            AgentRole::Verifier => "/v1/verifier/connect",
        };
        Ok(format!("{ws}{path}"))
    }
}

/// The name a model file is advertised under: its file stem without a
/// trailing quantization tag (`SmolLM2-135M-Instruct.Q4_1.gguf` →
/// `SmolLM2-135M-Instruct`). GGUF `general.name` is often a training-run
/// label, so the file name is the better default.
pub fn advertised_name(path: &std::path::Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    match stem.rsplit_once('.') {
        Some((base, tag))
            if tag.starts_with(['Q', 'q', 'F', 'f', 'I', 'i', 'B', 'b']) && !base.is_empty() =>
        {
            base.to_string()
        }
        _ => stem.to_string(),
    }
}

/// Shared between sessions.
struct Agent {
    config: ProviderConfig,
    engine: Arc<Engine>,
    identity: Arc<Identity>,
    slots: Arc<Semaphore>,
    in_flight: Arc<AtomicU32>,
}

/// Serves until `shutdown` resolves, reconnecting after failures.
pub async fn run(
    config: ProviderConfig,
    engine: Arc<Engine>,
    identity: Arc<Identity>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ProviderError> {
    let url = config.ws_url()?;
    let slots = Arc::new(Semaphore::new(config.max_concurrent_jobs.max(1) as usize));
    let agent = Arc::new(Agent {
        config,
        engine,
        identity,
        slots,
        in_flight: Arc::default(),
    });
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = session(&agent, &url) => match r {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(e) => tracing::warn!(%e, "session ended"),
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(agent.config.max_backoff);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv_msg(ws: &mut Ws) -> Result<CoordinatorMsg, ProviderError> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| ProviderError::Handshake("coordinator sent nothing for 10 s".into()))?;
        match frame {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map_err(|e| ProviderError::Handshake(format!("malformed message: {e}")))
            }
            Some(Ok(Message::Close(c))) => {
                let why = c.map(|c| c.reason.to_string()).unwrap_or_default();
                return Err(ProviderError::Handshake(format!(
                    "coordinator closed: {why}"
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ProviderError::Handshake(e.to_string())),
            None => return Err(ProviderError::Handshake("connection closed".into())),
        }
    }
}

async fn handshake(agent: &Agent, ws: &mut Ws) -> Result<(PublicKey, u64), ProviderError> {
    let CoordinatorMsg::Challenge {
        nonce,
        coordinator_key,
        protocol_version,
    } = recv_msg(ws).await?
    else {
        return Err(ProviderError::Handshake("expected a challenge".into()));
    };
    if protocol_version != PROTOCOL_VERSION {
        return Err(ProviderError::Handshake(format!(
            "coordinator speaks protocol {protocol_version}"
        )));
    }
    let e = &agent.engine;
    let digest = model_digest(e).map_err(ProviderError::Handshake)?;
    let attestation = crate::attest::wire_evidence_for(
        &agent.config.attestation,
        agent.identity.public(),
        &nonce,
    )
    .map_err(|e| ProviderError::Handshake(format!("attestation evidence: {e}")))?;
    let hello = ProviderMsg::Hello {
        provider_key: agent.identity.public().clone(),
        signature: agent.identity.sign(&auth_message(
            &nonce,
            &coordinator_key,
            agent.identity.public(),
        )),
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        hardware: crate::hardware::detect_hardware(),
        models: vec![ModelAdvert {
            digest,
            name: agent.config.model_name.clone(),
            context_length: e.max_sequence_len() as u32,
            price: agent.config.price.clone(),
            size_bytes: agent.config.model_size_bytes,
        }],
        max_concurrent_jobs: agent.config.max_concurrent_jobs.max(1),
        site: agent.config.site.clone(),
        attestation,
        zk_models: agent.config.zk.iter().map(|p| p.advert()).collect(),
    };
    let text =
        serde_json::to_string(&hello).map_err(|e| ProviderError::Handshake(e.to_string()))?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| ProviderError::Handshake(e.to_string()))?;
    match recv_msg(ws).await? {
        CoordinatorMsg::Welcome { heartbeat_ms } => Ok((coordinator_key, heartbeat_ms.max(100))),
        other => Err(ProviderError::Handshake(format!(
            "expected welcome, got {other:?}"
        ))),
    }
}

async fn session(agent: &Arc<Agent>, url: &str) -> Result<(), ProviderError> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| ProviderError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
    let (coordinator, heartbeat_ms) = handshake(agent, &mut ws).await?;
    tracing::info!(%coordinator, provider = %agent.identity.public(), "registered with coordinator");
    let (out_tx, mut out_rx) = mpsc::channel::<ProviderMsg>(256);
    let cancels: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>> = Arc::default();
    let mut beat = tokio::time::interval(Duration::from_millis(heartbeat_ms));
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let in_flight = agent.in_flight.load(Ordering::Relaxed);
                let _ = out_tx.try_send(ProviderMsg::Heartbeat { in_flight });
            }
            msg = out_rx.recv() => {
                let Some(msg) = msg else { continue };
                let text = serde_json::to_string(&msg).map_err(|e| ProviderError::Lost(e.to_string()))?;
                sink.send(Message::Text(text.into())).await.map_err(|e| ProviderError::Lost(e.to_string()))?;
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        let why = c.map(|c| c.reason.to_string()).unwrap_or_default();
                        return Err(ProviderError::Lost(format!("coordinator closed: {why}")));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ProviderError::Lost(e.to_string())),
                    None => return Err(ProviderError::Lost("connection closed".into())),
                };
                match serde_json::from_str::<CoordinatorMsg>(&text) {
                    Ok(CoordinatorMsg::Job(spec)) => {
                        let flag = Arc::new(AtomicBool::new(false));
                        cancels.lock().unwrap_or_else(|e| e.into_inner()).insert(spec.job_id.clone(), flag.clone());
                        spawn_job(agent.clone(), coordinator.clone(), spec, flag, out_tx.clone(), cancels.clone());
                    }
                    Ok(CoordinatorMsg::ZkJob(spec)) if agent.config.role == AgentRole::Provider => {
                        spawn_zk_job(agent.clone(), coordinator.clone(), spec, out_tx.clone());
                    }
                    Ok(CoordinatorMsg::Audit(task)) if agent.config.role == AgentRole::Verifier => {
                        spawn_audit(agent.clone(), *task, out_tx.clone());
                    }
                    Ok(CoordinatorMsg::Reattest { nonce }) => {
                        let bundle = match crate::attest::wire_evidence_for(
                            &agent.config.attestation,
                            agent.identity.public(),
                            &nonce,
                        ) {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::warn!(error = %e, "collecting attestation evidence");
                                None
                            }
                        };
                        let _ = out_tx.try_send(ProviderMsg::Attestation { nonce, bundle });
                    }
                    Ok(CoordinatorMsg::Cancel { job_id }) => {
                        if let Some(f) = cancels.lock().unwrap_or_else(|e| e.into_inner()).get(&job_id) {
                            f.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok(other) => tracing::debug!(?other, "ignored coordinator message"),
                    Err(e) => tracing::warn!(%e, "malformed coordinator message"),
                }
            }
        }
    }
}

fn spawn_audit(agent: Arc<Agent>, task: proofmesh_wire::AuditTask, out: mpsc::Sender<ProviderMsg>) {
    tokio::spawn(async move {
        let Ok(_permit) = agent.slots.clone().acquire_owned().await else {
            return;
        };
        let audit_id = task.audit_id.clone();
        let a = agent.clone();
        let report = tokio::task::spawn_blocking(move || {
            crate::auditor::audit(&a.engine, &a.identity, &task)
        })
        .await;
        match report {
            Ok(report) => {
                tracing::info!(%audit_id, outcome = report.body.outcome.as_str(), reason = %report.body.reason, "audit done");
                let _ = out
                    .send(ProviderMsg::AuditDone {
                        report: Box::new(report),
                    })
                    .await;
            }
            Err(e) => tracing::error!(%audit_id, %e, "audit task panicked"),
        }
    });
}

fn spawn_zk_job(
    agent: Arc<Agent>,
    coordinator: PublicKey,
    spec: proofmesh_wire::ZkJobSpec,
    out: mpsc::Sender<ProviderMsg>,
) {
    tokio::spawn(async move {
        let Ok(_permit) = agent.slots.clone().acquire_owned().await else {
            return;
        };
        agent.in_flight.fetch_add(1, Ordering::Relaxed);
        let job_id = spec.job_id.clone();
        let span = tracing::info_span!("zk_job", %job_id);
        let a = agent.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            crate::zk::execute_zk_job(&a.config.zk, &a.identity, &coordinator, &spec)
        })
        .await;
        agent.in_flight.fetch_sub(1, Ordering::Relaxed);
        let msg = match outcome {
            Ok(Ok(result)) => ProviderMsg::ZkDone {
                job_id,
                result: Box::new(result),
            },
            Ok(Err((code, message))) => ProviderMsg::Failed {
                job_id,
                code: code.to_string(),
                message,
            },
            Err(e) => ProviderMsg::Failed {
                job_id,
                code: "prover_error".into(),
                message: e.to_string(),
            },
        };
        let _ = out.send(msg).await;
    });
}

fn spawn_job(
    agent: Arc<Agent>,
    coordinator: PublicKey,
    spec: JobSpec,
    cancel: Arc<AtomicBool>,
    out: mpsc::Sender<ProviderMsg>,
    cancels: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
) {
    tokio::spawn(async move {
        let Ok(_permit) = agent.slots.clone().acquire_owned().await else {
            return;
        };
        agent.in_flight.fetch_add(1, Ordering::Relaxed);
        let job_id = spec.job_id.clone();
        let span = tracing::info_span!("job", %job_id);
        let a = agent.clone();
        let tx = out.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            let jid = spec.job_id.clone();
            let mut on_token = |index: u32, token_id: u32, text: &str| {
                let msg = ProviderMsg::Token {
                    job_id: jid.clone(),
                    index,
                    token_id,
                    text: text.to_string(),
                };
                if cancel.load(Ordering::Relaxed) || tx.blocking_send(msg).is_err() {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            };
            execute_job(&a.engine, &a.identity, &coordinator, &spec, &mut on_token)
        })
        .await;
        agent.in_flight.fetch_sub(1, Ordering::Relaxed);
        cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job_id);
        let msg = match outcome {
            Ok(JobOutcome::Done(result)) => ProviderMsg::Done { job_id, result },
            Ok(JobOutcome::Failed { code, message }) => ProviderMsg::Failed {
                job_id,
                code: code.to_string(),
                message,
            },
            Err(e) => ProviderMsg::Failed {
                job_id,
                code: "engine_error".into(),
                message: e.to_string(),
            },
        };
        let _ = out.send(msg).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_names() {
        let n = |p: &str| advertised_name(std::path::Path::new(p));
        assert_eq!(
            n("/m/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "SmolLM2-135M-Instruct"
        );
        assert_eq!(n("llama.F16.gguf"), "llama");
        assert_eq!(n("tiny.gguf"), "tiny");
    }

    #[test]
    fn ws_urls() {
        let mut c = ProviderConfig {
            coordinator_url: "http://127.0.0.1:8080/".into(),
            max_concurrent_jobs: 1,
            price: PriceRate {
                currency: "USD".into(),
                input_per_mtok_micros: 0,
                output_per_mtok_micros: 0,
            },
            max_backoff: Duration::from_secs(1),
            model_name: "m".into(),
            role: AgentRole::Provider,
            model_size_bytes: 0,
            site: None,
            attestation: Default::default(),
            zk: Vec::new(),
        };
        assert_eq!(
            c.ws_url().unwrap(),
            "ws://127.0.0.1:8080/v1/provider/connect"
        );
        c.coordinator_url = "https://x.example".into();
        assert_eq!(c.ws_url().unwrap(), "wss://x.example/v1/provider/connect");
        c.role = AgentRole::Verifier;
        assert!(c.ws_url().unwrap().ends_with("/v1/verifier/connect"));
        c.role = AgentRole::Provider;
        c.coordinator_url = "ftp://x".into();
        assert!(c.ws_url().is_err());
    }
}
