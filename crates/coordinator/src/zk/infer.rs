//! `POST /v1/zk/infer`: a proved inference. The client names a registered
//! zk model and gives its int8 input; a provider that advertised the model
//! runs it and proves `output = model(input)` for the job's nonce; the
//! coordinator verifies the proof against the registered verifying key
//! before it countersigns, logs and answers. The answer carries the output,
//! the proof bundle and the receipt (whose signed `zk` field names the
//! proof's digest), so the client can check it offline.
//!
//! A provider whose signed answer carries a proof that fails is treated like
//! a failed audit: the failure and its evidence are stored, its stake is
//! slashed, its reputation drops, it is excluded after `max_failed_audits`,
//! and the job is retried elsewhere (the client is charged only for the
//! proof it gets).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_ledger::Amount;
use proofmesh_receipt::{client_hash, Digest, Receipt};
use proofmesh_store::{AuditPenalty, Evidence, JobRecord, ProofFailure};
use proofmesh_wire::{
    CoordinatorMsg, PriceRate, ZkInferRequest, ZkInferResponse, ZkJobResult, ZkJobSpec,
};
use proofmesh_zkml::ProofBundle;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::check::{check, ZkRejection};
use super::ZkModel;
use crate::admission::{place_or_wait, PlaceFor};
use crate::error::ApiError;
use crate::registry::{JobEvent, ProviderHandle};
use crate::state::AppState;

/// The handler.
pub async fn infer(State(app): State<AppState>, req: Request) -> Response {
    match handle(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The int8 input a request gives, checked against the model's width.
pub fn parse_input(values: &[i64], width: u32) -> Result<Vec<i8>, ApiError> {
    if values.len() != width as usize {
        return Err(ApiError::invalid_param(
            "input",
            format!(
                "input has {} values; the model takes exactly {width}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            i8::try_from(v).map_err(|_| {
                ApiError::invalid_param(
                    "input",
                    format!("input[{i}] = {v} is outside int8 (-128..=127)"),
                )
            })
        })
        .collect()
}

/// Everything the driver needs about one proved-inference job.
struct ZkCtx {
    spec: ZkJobSpec,
    client_id: String,
    class: proofmesh_placement::WorkloadClass,
    hard_objective: bool,
    model_name: String,
    min_attestation: proofmesh_placement::AttestationLevel,
}

async fn handle(app: AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let client = crate::auth::authenticate(&app, &parts.headers).await?;
    let bytes = crate::gateway::read_limited(&app, &parts.headers, body).await?;
    let req: ZkInferRequest = serde_json::from_slice(&bytes).map_err(ApiError::invalid_json)?;
    let (class, hard_objective) = crate::gateway::workload_class(&parts.headers)?;
    let zk = app.zk.clone();
    let model = zk
        .resolve(&req.model)
        .ok_or_else(|| ApiError::model_not_found(&req.model))?;
    let input = parse_input(&req.input, model.entry.input_len)?;
    let level = crate::validate::min_attestation(req.min_attestation.as_deref())?;
    let digest = Digest::try_from(model.digest()).map_err(|e| ApiError::internal("digest", e))?;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let spec = ZkJobSpec {
        job_id: format!("job_{uuid}"),
        receipt_id: format!("rcpt_{uuid}"),
        client: client_hash(&client.client_id),
        price: escrow_rate(&app, &digest),
        model: digest,
        input,
        dispatched_at_ms: crate::now_ms(),
        attestation: None,
    };
    let ctx = ZkCtx {
        spec,
        client_id: client.client_id,
        class,
        hard_objective,
        model_name: req.model.clone(),
        min_attestation: crate::attestation::required(level, client.min_attestation.as_deref()),
    };
    let receipt_id = ctx.spec.receipt_id.clone();
    let (receipt, bundle) = start(app, ctx).await?;
    let body = ZkInferResponse {
        id: format!("zkinf-{uuid}"),
        object: "zk.inference".into(),
        model: model.entry.name.clone(),
        model_digest: model.digest(),
        class: bundle.class,
        logits: bundle.logits.clone(),
        proof: bundle,
        receipt,
    };
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt_id) {
        resp.headers_mut().insert(crate::gateway::RECEIPT_HEADER, v);
    }
    Ok(resp)
}

/// The escrow rate: the highest per-inference rate among live providers of
/// the model, so whichever is chosen, its charge fits.
fn escrow_rate(app: &AppState, model: &Digest) -> PriceRate {
    app.registry
        .live()
        .iter()
        .flat_map(|p| p.zk_models.iter())
        .filter(|m| &m.model_digest == model)
        .map(|m| m.price.clone())
        .reduce(|a, b| PriceRate {
            input_per_mtok_micros: a.input_per_mtok_micros.max(b.input_per_mtok_micros),
            ..a
        })
        .unwrap_or(PriceRate {
            currency: "USD".into(),
            input_per_mtok_micros: 0,
            output_per_mtok_micros: 0,
        })
}

/// Escrows, records the job and runs the driver in its own task (so a
/// client that goes away does not leave the job half done); waits for it.
async fn start(app: AppState, ctx: ZkCtx) -> Result<(Receipt, ProofBundle), ApiError> {
    let spec = &ctx.spec;
    let held =
        crate::billing::escrow_inference(&app, &spec.job_id, &ctx.client_id, &spec.price).await?;
    let rec = JobRecord {
        job_id: spec.job_id.clone(),
        receipt_id: spec.receipt_id.clone(),
        client_id: ctx.client_id.clone(),
        model: spec.model.to_string(),
        created_at_ms: spec.dispatched_at_ms,
        request_json: serde_json::json!({ "zk_input": spec.input }).to_string(),
        verification: "proof".into(),
    };
    if let Err(e) = app.store.insert_job(&rec).await {
        crate::billing::refund_failed_job(&app, &spec.job_id, &ctx.client_id, held).await;
        return Err(ApiError::internal("insert job", e));
    }
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(drive(app, ctx, held).await);
    });
    rx.await
        .map_err(|_| ApiError::internal("zk job", "driver ended without a result"))?
}

enum Attempt {
    Finished(Box<Receipt>, Box<ProofBundle>),
    Retry(String),
    Fatal(ApiError),
}

#[tracing::instrument(skip_all, fields(job_id = %ctx.spec.job_id))]
async fn drive(
    app: AppState,
    mut ctx: ZkCtx,
    held: Amount,
) -> Result<(Receipt, ProofBundle), ApiError> {
    let deadline = Instant::now() + Duration::from_secs(app.config.request_timeout_s);
    let zk = app.zk.clone();
    let model = zk.by_digest(ctx.spec.model.as_str());
    let mut tried: Vec<String> = Vec::new();
    let mut last_failure = String::from("no provider available");
    let outcome = loop {
        let Some(model) = model else {
            break Err(ApiError::internal("zk job", "model left the registry"));
        };
        if tried.len() as u32 >= app.config.max_attempts {
            break Err(ApiError::provider_failed(tried.len() as u32));
        }
        let what = PlaceFor {
            job_id: &ctx.spec.job_id,
            model: ctx.spec.model.as_str(),
            model_name: &ctx.model_name,
            class: ctx.class,
            hard: ctx.hard_objective,
            prompt_tokens: 1,
            prompt_source: None,
            max_tokens: 0,
            min_attestation: ctx.min_attestation,
        };
        let p = match place_or_wait(&app, &what, &tried, deadline).await {
            Ok(placed) if advertises(&placed.provider, &ctx.spec.model) => placed.provider,
            Ok(_) => break Err(ApiError::no_provider(&ctx.model_name)),
            Err(e) => break Err(e),
        };
        tried.push(p.key.to_string());
        prepare_for(&mut ctx.spec, &p);
        if let Err(e) = app.store.assign_job(&ctx.spec.job_id, p.key.as_str()).await {
            break Err(ApiError::internal("assign job", e));
        }
        let started = crate::now_ms();
        app.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed) + 1);
        let attempt = run_attempt(&app, &ctx, model, &p, deadline).await;
        app.registry.unroute(&ctx.spec.job_id, &p);
        app.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed));
        app.registry.capacity.notify_one();
        match attempt {
            Attempt::Finished(r, b) => {
                let took = crate::now_ms().saturating_sub(started);
                // A proof's time says nothing about token rates: only the
                // service time is recorded.
                let timing = crate::placement::JobTiming {
                    queued_at_provider: true,
                    service_ms: took as f64,
                    ..Default::default()
                };
                app.placer.succeeded(
                    p.key.as_str(),
                    ctx.spec.model.as_str(),
                    &timing,
                    crate::now_ms(),
                );
                break Ok((*r, *b));
            }
            Attempt::Fatal(e) => break Err(e),
            Attempt::Retry(why) => {
                tracing::warn!(provider = %p.key, %why, "zk attempt failed; retrying elsewhere");
                app.placer.failed(p.key.as_str(), false, crate::now_ms());
                metrics::counter!("proofmesh_job_retries_total").increment(1);
                last_failure = why;
            }
        }
    };
    conclude(&app, &ctx, held, outcome, &last_failure).await
}

fn advertises(p: &ProviderHandle, model: &Digest) -> bool {
    p.zk_models.iter().any(|z| &z.model_digest == model)
}

/// The chosen provider's attestation and its own rate go into the spec.
fn prepare_for(spec: &mut ZkJobSpec, p: &ProviderHandle) {
    spec.attestation = p.attestation_ref(crate::now_ms());
    if let Some(z) = p.zk_models.iter().find(|z| z.model_digest == spec.model) {
        if z.price.currency == spec.price.currency {
            spec.price = z.price.clone();
        }
    }
}

/// Settles the money and the job row for the outcome.
async fn conclude(
    app: &AppState,
    ctx: &ZkCtx,
    held: Amount,
    outcome: Result<(Receipt, ProofBundle), ApiError>,
    last_failure: &str,
) -> Result<(Receipt, ProofBundle), ApiError> {
    match &outcome {
        Ok((receipt, _)) => {
            crate::billing::settle_completed(app, &ctx.client_id, receipt, held, false).await;
            metrics::counter!("proofmesh_zk_jobs_completed_total").increment(1);
        }
        Err(err) => {
            metrics::counter!("proofmesh_jobs_failed_total", "code" => err.code).increment(1);
            crate::billing::refund_failed_job(app, &ctx.spec.job_id, &ctx.client_id, held).await;
            let now = crate::now_ms();
            if let Err(e) = app
                .store
                .fail_job(&ctx.spec.job_id, last_failure, now)
                .await
            {
                tracing::error!(%e, "could not record job failure");
            }
        }
    }
    outcome
}

async fn run_attempt(
    app: &AppState,
    ctx: &ZkCtx,
    model: &ZkModel,
    p: &Arc<ProviderHandle>,
    deadline: Instant,
) -> Attempt {
    let mut events = app.registry.route(&ctx.spec.job_id, p);
    if p.tx
        .send(CoordinatorMsg::ZkJob(ctx.spec.clone()))
        .await
        .is_err()
    {
        return Attempt::Retry("provider connection closed before dispatch".into());
    }
    let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
        Err(_) => {
            crate::job::cancel(p, &ctx.spec.job_id).await;
            return Attempt::Fatal(ApiError::timeout());
        }
        Ok(None) | Ok(Some(JobEvent::ProviderGone)) => {
            return Attempt::Retry("provider disconnected mid-job".into())
        }
        Ok(Some(ev)) => ev,
    };
    match ev {
        JobEvent::ZkDone(result) => finish(app, ctx, model, p, *result).await,
        JobEvent::Failed { code, message } if code == "invalid_request" => {
            Attempt::Fatal(ApiError::invalid_param("input", message))
        }
        JobEvent::Failed { code, message } => {
            Attempt::Retry(format!("provider reported {code}: {message}"))
        }
        JobEvent::Token { .. } | JobEvent::Done(_) | JobEvent::ProviderGone => {
            crate::job::cancel(p, &ctx.spec.job_id).await;
            Attempt::Retry("a chat answer to a proved-inference job".into())
        }
    }
}

/// Verifies the answer; on success countersigns, stores and logs it.
async fn finish(
    app: &AppState,
    ctx: &ZkCtx,
    model: &ZkModel,
    p: &ProviderHandle,
    result: ZkJobResult,
) -> Attempt {
    // A Groth16 verification is ~1.5 ms of CPU (three pairings): cheaper to
    // run here than to hand to a blocking thread.
    match check(model, &ctx.spec, &p.key, app.identity.public(), &result) {
        Ok(()) => {}
        Err(ZkRejection::Result(why)) => {
            tracing::warn!(provider = %p.key, %why, "rejected zk result");
            metrics::counter!("proofmesh_results_rejected_total").increment(1);
            return Attempt::Retry(format!("result rejected: {why}"));
        }
        Err(ZkRejection::Proof(why)) => {
            penalize(app, p, &ctx.spec, &result, &why).await;
            return Attempt::Retry(format!("proof failed: {why}"));
        }
    }
    let mut receipt = result.receipt;
    receipt.countersign(&app.identity);
    let evidence = Evidence {
        completion_token_ids: Vec::new(),
        text: result.bundle.to_json(),
        fingerprint: result
            .bundle
            .logits
            .iter()
            .map(|&v| v.to_le_bytes()[0])
            .collect(),
    };
    if let Err(e) = app
        .store
        .complete_job(
            &ctx.spec.job_id,
            &ctx.client_id,
            &receipt,
            &evidence,
            crate::now_ms(),
        )
        .await
    {
        return Attempt::Fatal(ApiError::internal("store receipt", e));
    }
    receipt.log = crate::job::log_receipt(app, &receipt).await;
    Attempt::Finished(Box::new(receipt), Box::new(result.bundle))
}

/// A signed answer whose proof fails: stored with its evidence and treated
/// like a failed audit (slash, failure count, reputation, exclusion).
async fn penalize(
    app: &AppState,
    p: &ProviderHandle,
    spec: &ZkJobSpec,
    r: &ZkJobResult,
    why: &str,
) {
    tracing::warn!(provider = %p.key, job_id = %spec.job_id, reason = %why, "zk proof FAILED");
    metrics::counter!("proofmesh_zk_proofs_failed_total").increment(1);
    let failure = ProofFailure {
        job_id: spec.job_id.clone(),
        provider_key: p.key.to_string(),
        reason: why.to_string(),
        receipt_json: serde_json::to_string(&r.receipt).unwrap_or_default(),
        bundle_json: r.bundle.to_json(),
        at_ms: crate::now_ms(),
    };
    let penalty = AuditPenalty {
        slash_micros: app.config.slash_micros,
        refund_micros: 0,
        max_failed_audits: u64::from(app.config.max_failed_audits),
    };
    let stats = match app.store.record_proof_failure(&failure, penalty).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "could not record the failed proof");
            return;
        }
    };
    crate::billing::slash_failed_proof(app, &spec.job_id, p.key.as_str()).await;
    let bp = u16::try_from(crate::audit::reputation_milli(&stats) * 10).unwrap_or(10_000);
    app.placer.set_reputation(&stats.provider_key, bp);
    if stats.excluded {
        tracing::warn!(provider = %stats.provider_key, failed = stats.audits_failed, "provider excluded from scheduling");
        app.registry.exclude(&stats.provider_key);
    }
}
