//! `GET /v1/provider/connect`: the WebSocket providers dial out to (they sit
//! behind NAT, so the coordinator never dials them).
//!
//! Handshake: challenge nonce → signed hello → welcome. Afterwards the session
//! relays jobs out and events in until the provider goes silent for longer
//! than `provider_timeout_ms`, disconnects, or the coordinator shuts down.
//! A provider's standing (audit reputation, uptime) is restored on every
//! connect and its heartbeats feed its uptime (`standing.rs`).

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use proofmesh_store::ProviderRecord;
use proofmesh_wire::{auth_message, CoordinatorMsg, ProviderMsg, PROTOCOL_VERSION};
use tokio::sync::mpsc;

use crate::registry::{JobEvent, ProviderHandle};
use crate::state::AppState;

/// Largest frame a provider may send (a result with logits for 2048 tokens fits).
const MAX_FRAME: usize = 8 << 20;
/// Outbound queue per provider.
const OUTBOUND: usize = 64;

/// What the connecting agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs jobs.
    Provider,
    /// Re-executes jobs for audits.
    Verifier,
}

/// The provider upgrade handler (`/v1/provider/connect`).
pub async fn connect(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| session(app, socket, Role::Provider))
}

/// The verifier upgrade handler (`/v1/verifier/connect`). Only keys in
/// `trusted_verifiers` are accepted.
pub async fn connect_verifier(State(app): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| session(app, socket, Role::Verifier))
}

/// Longest close reason: a control frame carries at most 125 bytes, two of
/// which are the close code (RFC 6455 §5.5).
const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut to fit a close frame, at a character boundary.
fn close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

async fn close(socket: &mut WebSocket, reason: &str) {
    tracing::warn!(reason, "rejecting provider");
    let frame = CloseFrame {
        code: 1008,
        reason: close_reason(reason).to_string().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn send_json(socket: &mut WebSocket, msg: &CoordinatorMsg) -> bool {
    match serde_json::to_string(msg) {
        Ok(s) => socket.send(Message::Text(s.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// Runs the handshake; returns the registered handle and its outbound queue.
async fn handshake(
    app: &AppState,
    socket: &mut WebSocket,
    role: Role,
) -> Result<(Arc<ProviderHandle>, mpsc::Receiver<CoordinatorMsg>), String> {
    let nonce = hex::encode(rand::random::<[u8; 32]>());
    let challenge = CoordinatorMsg::Challenge {
        nonce: nonce.clone(),
        coordinator_key: app.identity.public().clone(),
        protocol_version: PROTOCOL_VERSION,
    };
    if !send_json(socket, &challenge).await {
        return Err("could not send challenge".into());
    }
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.recv())
        .await
        .map_err(|_| "no hello within 10 s".to_string())?;
    let text = match frame {
        Some(Ok(Message::Text(t))) => t,
        _ => return Err("expected a text hello frame".into()),
    };
    let hello: ProviderMsg =
        serde_json::from_str(&text).map_err(|e| format!("malformed hello: {e}"))?;
    let ProviderMsg::Hello {
        provider_key,
        signature,
        protocol_version,
        agent_version,
        hardware,
        models,
        max_concurrent_jobs,
        site,
        attestation,
        zk_models,
    } = hello
    else {
        return Err("first message must be hello".into());
    };
    if protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {protocol_version} unsupported (want {PROTOCOL_VERSION})"
        ));
    }
    let msg = auth_message(&nonce, app.identity.public(), &provider_key);
    provider_key
        .verify(&msg, &signature)
        .map_err(|_| "challenge signature does not verify".to_string())?;
    if models.is_empty() && zk_models.is_empty() {
        return Err("provider advertises no models".into());
    }
    for z in &zk_models {
        app.zk.check_advert(z)?;
    }
    let trusted = || {
        app.config
            .trusted_verifiers
            .iter()
            .any(|k| k == provider_key.as_str())
    };
    if role == Role::Verifier && !trusted() {
        return Err(format!(
            "verifier key {provider_key} is not trusted by this coordinator"
        ));
    }
    // Attestation first: evidence that is stale, replayed, made for another
    // key or rejected by policy refuses the registration, naming why.
    let mut attested = None;
    if role == Role::Provider {
        let nonce_raw = crate::attestation::nonce_bytes(&nonce)
            .ok_or_else(|| "internal error: nonce".to_string())?;
        attested =
            crate::attestation::admit(app, &provider_key, &nonce_raw, attestation.as_deref())
                .await
                .map_err(|e| format!("attestation rejected: {e}"))?;
        let offers = crate::placement::with_zk_offers(&models, &zk_models);
        let claims = crate::placement::claims(
            provider_key.as_str(),
            &hardware,
            &offers,
            max_concurrent_jobs.clamp(1, 64),
            site.as_ref(),
        )
        .map_err(|e| format!("invalid provider claims: {e}"))?;
        app.fleet
            .placer()
            .upsert(provider_key.as_str(), &claims, app.clock.now_ms())
            .map_err(|e| format!("invalid provider claims: {e}"))?;
        register_provider(app, &provider_key, &hardware, &models, agent_version).await?;
    }
    let (tx, rx) = mpsc::channel(OUTBOUND);
    let handle = Arc::new(ProviderHandle {
        key: provider_key,
        conn_id: app.fleet.registry().next_conn_id(),
        tx,
        models,
        zk_models,
        hardware,
        max_concurrent: max_concurrent_jobs.clamp(1, 64),
        in_flight: AtomicU32::new(0),
        attestation: std::sync::RwLock::new(None),
        pending_nonce: std::sync::Mutex::new(None),
    });
    if role == Role::Provider {
        crate::attestation::apply(app, &handle, attested).await;
    }
    Ok((handle, rx))
}

/// Records a provider's registration and, on first sight, its stake.
async fn register_provider(
    app: &AppState,
    provider_key: &proofmesh_receipt::PublicKey,
    hardware: &proofmesh_wire::Hardware,
    models: &[proofmesh_wire::ModelAdvert],
    agent_version: String,
) -> Result<(), String> {
    let now = app.clock.now_ms();
    let rec = ProviderRecord {
        provider_key: provider_key.to_string(),
        hardware_json: serde_json::to_string(&hardware).unwrap_or_default(),
        models_json: serde_json::to_string(&models).unwrap_or_default(),
        agent_version,
        first_seen_ms: now,
        last_seen_ms: now,
    };
    let internal = |e: proofmesh_store::StoreError| {
        tracing::error!(%e, "store provider");
        "internal error".to_string()
    };
    app.store.upsert_provider(&rec).await.map_err(internal)?;
    app.store
        .ensure_provider_stats(provider_key.as_str())
        .await
        .map_err(internal)?;
    app.money.ensure_stake(provider_key.as_str()).await;
    Ok(())
}

#[tracing::instrument(skip_all)]
async fn session(app: AppState, mut socket: WebSocket, role: Role) {
    let (handle, mut outbound) = match handshake(&app, &mut socket, role).await {
        Ok(h) => h,
        Err(reason) => return close(&mut socket, &reason).await,
    };
    let welcome = CoordinatorMsg::Welcome {
        heartbeat_ms: app.config.heartbeat_ms,
    };
    if !send_json(&mut socket, &welcome).await {
        return;
    }
    let key = handle.key.to_string();
    match role {
        Role::Provider => {
            // Reputation and uptime back into the fresh registry record
            // before the provider can take jobs.
            crate::standing::on_connect(&app, &key).await;
            app.fleet.registry().register(handle.clone());
        }
        Role::Verifier => app.fleet.registry().register_verifier(handle.clone()),
    }
    tracing::info!(key = %handle.key, ?role, models = handle.models.len(), "agent connected");
    let (mut sink, mut stream) = socket.split();
    let silence = Duration::from_millis(app.config.provider_timeout_ms);
    let mut shutdown = app.shutdown.clone();
    // RTT: a WebSocket ping carrying its send time; the pong echoes it.
    let epoch = std::time::Instant::now();
    let mut ping = tokio::time::interval(Duration::from_millis(app.config.heartbeat_ms));
    // Silence is measured from the last inbound frame, not from the last
    // loop turn (pings and outbound traffic must not keep a mute peer alive).
    let mut last_heard = tokio::time::Instant::now();
    let recheck_every = Duration::from_secs(app.config.attestation_recheck_s);
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + recheck_every, recheck_every);
    loop {
        tokio::select! {
            _ = recheck.tick(), if role == Role::Provider => {
                let msg = crate::attestation::recheck(&app, &handle).await;
                let Ok(text) = serde_json::to_string(&msg) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() { break; }
            }
            _ = ping.tick(), if role == Role::Provider => {
                let sent = (epoch.elapsed().as_micros() as u64).to_be_bytes().to_vec();
                if sink.send(Message::Ping(sent.into())).await.is_err() { break; }
            }
            msg = outbound.recv() => {
                let Some(msg) = msg else { break };
                let Ok(text) = serde_json::to_string(&msg) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() { break; }
            }
            frame = tokio::time::timeout_at(last_heard + silence, stream.next()) => {
                last_heard = tokio::time::Instant::now();
                let text = match frame {
                    Err(_) => { tracing::warn!(provider = %key, "provider silent; dropping"); break; }
                    Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(Message::Pong(p)))) => {
                        if let Ok(b) = <[u8; 8]>::try_from(&p[..]) {
                            let now = epoch.elapsed().as_micros() as u64;
                            let rtt = now.saturating_sub(u64::from_be_bytes(b));
                            app.fleet.placer().record_rtt(&key, rtt);
                            metrics::histogram!("proofmesh_provider_rtt_seconds").record(rtt as f64 / 1e6);
                        }
                        continue;
                    }
                    Ok(Some(Ok(_))) => continue,
                };
                if !on_message(&app, &handle, role, &text).await { break; }
            }
            _ = shutdown.changed() => {
                let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "coordinator shutting down".into() }))).await;
                break;
            }
        }
    }
    match role {
        Role::Provider => {
            app.fleet.registry().unregister(&key, handle.conn_id);
            if !app.fleet.registry().is_live(&key) {
                app.fleet.placer().remove(&key);
                crate::standing::on_disconnect(&app, &key);
            }
        }
        Role::Verifier => app
            .fleet
            .registry()
            .unregister_verifier(&key, handle.conn_id),
    }
    tracing::info!(key = %key, ?role, "agent disconnected");
}

/// Handles one inbound frame; false to drop the connection.
async fn on_message(app: &AppState, h: &ProviderHandle, role: Role, text: &str) -> bool {
    let msg: ProviderMsg = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(provider = %h.key, %e, "malformed provider message; dropping connection");
            return false;
        }
    };
    let key = h.key.as_str();
    let (job_id, ev) = match msg {
        ProviderMsg::Heartbeat { .. } => {
            if let Err(e) = app.store.touch_provider(key, app.clock.now_ms()).await {
                tracing::error!(%e, "record heartbeat");
            }
            if role == Role::Provider {
                crate::standing::on_heartbeat(app, key);
            }
            return true;
        }
        ProviderMsg::Hello { .. } => return false,
        ProviderMsg::Attestation { nonce, bundle } => {
            crate::attestation::on_evidence(app, h, &nonce, bundle.as_deref()).await;
            return true;
        }
        ProviderMsg::AuditDone { report } => {
            if role != Role::Verifier {
                tracing::warn!(key, "audit report from a non-verifier; dropping connection");
                return false;
            }
            if let Err(why) = crate::audit::on_report(&app.pipeline, key, &report).await {
                tracing::warn!(verifier = key, %why, "rejected audit report");
                metrics::counter!("proofmesh_audit_reports_rejected_total").increment(1);
            }
            return true;
        }
        _ if role == Role::Verifier => return true,
        ProviderMsg::Token {
            job_id,
            index,
            token_id,
            text,
        } => (
            job_id,
            JobEvent::Token {
                index,
                token_id,
                text,
            },
        ),
        ProviderMsg::Done { job_id, result } => (job_id, JobEvent::Done(result)),
        ProviderMsg::ZkDone { job_id, result } => (job_id, JobEvent::ZkDone(result)),
        ProviderMsg::Failed {
            job_id,
            code,
            message,
        } => (job_id, JobEvent::Failed { code, message }),
    };
    if !app
        .fleet
        .registry()
        .deliver(key, h.conn_id, &job_id, ev)
        .await
    {
        tracing::debug!(provider = %key, %job_id, "event for a job not routed to this provider; ignored");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON && long.starts_with(cut));
        assert_eq!(cut.len(), 122);
    }
}
