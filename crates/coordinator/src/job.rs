//! Driving one job to completion: dispatch, relay tokens, retry on another
//! provider while nothing has reached the client, check and countersign the
//! receipt, and store job + receipt atomically.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use proofmesh_ledger::Amount;
use proofmesh_receipt::digest::fingerprint_format;
use proofmesh_receipt::{response_digest, Digest, Receipt};
use proofmesh_store::{Evidence, JobRecord};
use proofmesh_wire::openai::JobTimingExt;
use proofmesh_wire::{CoordinatorMsg, JobResult, JobSpec};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::admission::{place_or_wait, Mode, PlaceFor};
use crate::error::ApiError;
use crate::placement::JobTiming;
use crate::registry::{JobEvent, ProviderHandle};
use crate::state::AppState;

/// What the HTTP side receives from the driver.
#[derive(Debug)]
pub enum GatewayEvent {
    /// Text to forward.
    Delta(String),
    /// Done, with the countersigned receipt, the full completion text and
    /// where the time went.
    Finished(Box<Receipt>, String, JobTimingExt),
    /// Failed; nothing more follows.
    Error(ApiError),
}

/// Who asked for the job, and what it is.
#[derive(Debug, Clone)]
pub struct JobCtx {
    /// The spec as sent to providers.
    pub spec: JobSpec,
    /// Owner.
    pub client_id: String,
    /// "sampled" or "always".
    pub verification: String,
    /// Interactive (TTFT objective), batch (deadline) or fine-tune.
    pub class: proofmesh_placement::WorkloadClass,
    /// The interactive objective is hard: 503 rather than best-effort.
    pub hard_objective: bool,
    /// The model as the client named it.
    pub model_name: String,
    /// The client's price cap, micro-units.
    pub max_price_micros: Option<u64>,
    /// The Idempotency-Key claim to record the answer under, with what the
    /// response says about itself.
    pub idem: Option<(crate::idempotency::Idem, crate::gateway::Meta)>,
    /// The least attestation level a provider needs (request and API key).
    pub min_attestation: proofmesh_placement::AttestationLevel,
}

enum Attempt {
    /// The receipt, the text, whether an audit was scheduled, and what the
    /// attempt measured.
    Finished(Box<Receipt>, String, bool, Clock),
    Retry(String),
    Fatal(ApiError),
}

/// Creates the job row and runs the driver in the background.
pub async fn start(
    app: AppState,
    mut ctx: JobCtx,
) -> Result<mpsc::Receiver<GatewayEvent>, ApiError> {
    // Escrow first: a price cap may lower max_tokens, which the job row and
    // the dispatched spec must then carry.
    let held =
        match crate::billing::escrow(&app, &mut ctx.spec, &ctx.client_id, ctx.max_price_micros)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                if let Some((idem, _)) = &ctx.idem {
                    crate::idempotency::release(&app, idem).await;
                }
                return Err(e);
            }
        };
    let rec = JobRecord {
        job_id: ctx.spec.job_id.clone(),
        receipt_id: ctx.spec.receipt_id.clone(),
        client_id: ctx.client_id.clone(),
        model: ctx.spec.model.to_string(),
        created_at_ms: ctx.spec.dispatched_at_ms,
        request_json: serde_json::to_string(&ctx.spec.messages).unwrap_or_else(|_| "[]".into()),
        verification: ctx.verification.clone(),
    };
    if let Err(e) = app.store.insert_job(&rec).await {
        crate::billing::refund_failed_job(&app, &ctx.spec.job_id, &ctx.client_id, held).await;
        if let Some((idem, _)) = &ctx.idem {
            crate::idempotency::release(&app, idem).await;
        }
        return Err(ApiError::internal("insert job", e));
    }
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(drive(app, ctx, held, tx));
    Ok(rx)
}

#[tracing::instrument(skip_all, fields(job_id = %ctx.spec.job_id))]
async fn drive(app: AppState, ctx: JobCtx, held: Amount, out: mpsc::Sender<GatewayEvent>) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(app.config.request_timeout_s);
    let mut tried: Vec<String> = Vec::new();
    let mut streamed = false;
    let mut last_failure = String::from("no provider available");
    let mut ctx = ctx;
    let prompt = app.prompts.count(&ctx.spec);
    let outcome = loop {
        if tried.len() as u32 >= app.config.max_attempts {
            break Err(ApiError::provider_failed(tried.len() as u32));
        }
        let what = PlaceFor {
            job_id: &ctx.spec.job_id,
            model: ctx.spec.model.as_str(),
            model_name: &ctx.model_name,
            class: ctx.class,
            hard: ctx.hard_objective,
            prompt_tokens: prompt.tokens,
            prompt_source: Some(prompt.source),
            max_tokens: ctx.spec.sampling.max_tokens,
            min_attestation: ctx.min_attestation,
        };
        let placed = match place_or_wait(&app, &what, &tried, deadline).await {
            Ok(p) => p,
            Err(e) => {
                // After a failed attempt, its reason is the job's story.
                if tried.is_empty() {
                    last_failure = e.message.clone();
                }
                break Err(e);
            }
        };
        let p = placed.provider;
        let queued_ms = started.elapsed().as_secs_f64() * 1e3;
        tried.push(p.key.to_string());
        // The chosen provider's verified attestation goes into its receipt.
        ctx.spec.attestation = p.attestation_ref(crate::now_ms());
        // The chosen provider's own rates (escrow was taken at the highest).
        if let Some(m) = p.models.iter().find(|m| m.digest == ctx.spec.model) {
            if m.price.currency == ctx.spec.price.currency {
                ctx.spec.price = m.price.clone();
            }
        }
        let before = p.in_flight.load(Ordering::Relaxed);
        app.placer.set_load(p.key.as_str(), before + 1);
        if let Err(e) = app.store.assign_job(&ctx.spec.job_id, p.key.as_str()).await {
            break Err(ApiError::internal("assign job", e));
        }
        let attempt = run_attempt(&app, &ctx, &p, &out, deadline, &mut streamed).await;
        app.registry.unroute(&ctx.spec.job_id, &p);
        app.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed));
        // A slot may be free: the longest-waiting job tries it first.
        app.registry.capacity.notify_one();
        match attempt {
            Attempt::Finished(r, text, audited, clock) => {
                let b = &r.body;
                let timing = JobTiming {
                    queued_at_provider: before >= p.max_concurrent,
                    prompt_tokens: b.prompt_tokens,
                    completion_tokens: b.completion_tokens,
                    first_token_ms: clock.first_token_ms,
                    last_token_ms: clock.last_token_ms,
                    service_ms: clock.provider_ms,
                    rtt_ms: app.placer.rtt_ms(p.key.as_str()),
                };
                app.placer.succeeded(
                    p.key.as_str(),
                    ctx.spec.model.as_str(),
                    &timing,
                    crate::now_ms(),
                );
                let ext = JobTimingExt {
                    queued_ms,
                    provider_ttft_ms: clock.first_token_ms,
                    provider_ms: clock.provider_ms,
                    finish_ms: 0.0,
                    objective_missed: placed.mode == Mode::BestEffort,
                };
                break Ok((r, text, audited, ext, clock.result_at));
            }
            Attempt::Fatal(e) => break Err(e),
            Attempt::Retry(why) if streamed => {
                app.placer.failed(p.key.as_str(), false, crate::now_ms());
                tracing::warn!(provider = %p.key, %why, "provider failed after streaming began");
                last_failure = why;
                break Err(ApiError::provider_failed(tried.len() as u32));
            }
            Attempt::Retry(why) => {
                app.placer.failed(p.key.as_str(), false, crate::now_ms());
                tracing::warn!(provider = %p.key, %why, "provider failed; retrying elsewhere");
                metrics::counter!("proofmesh_job_retries_total").increment(1);
                last_failure = why;
            }
        }
    };
    let now = crate::now_ms();
    match outcome {
        Ok((mut receipt, text, audited, mut timing, result_at)) => {
            // The log commit and the settlement are independent (either may
            // come first; a crash between them is repaired at the next
            // start), so they overlap; the client is answered after both.
            let (log, ()) = tokio::join!(
                log_receipt(&app, &receipt),
                crate::billing::settle_completed(&app, &ctx.client_id, &receipt, held, audited),
            );
            receipt.log = log;
            metrics::counter!("proofmesh_jobs_completed_total").increment(1);
            metrics::histogram!("proofmesh_job_seconds").record(started.elapsed().as_secs_f64());
            timing.finish_ms = result_at.elapsed().as_secs_f64() * 1e3;
            metrics::histogram!("proofmesh_job_finish_seconds").record(timing.finish_ms / 1e3);
            if let Some((idem, meta)) = &ctx.idem {
                // A replay returns exactly this answer, timing included.
                let body = crate::gateway::completion_body(
                    meta.clone(),
                    &receipt,
                    text.clone(),
                    Some(timing.clone()),
                );
                crate::idempotency::complete(&app, idem, &body).await;
            }
            let _ = out
                .send(GatewayEvent::Finished(receipt, text, timing))
                .await;
        }
        Err(err) => {
            let err = err.for_job(&ctx.spec.job_id).for_model(&ctx.model_name);
            metrics::counter!("proofmesh_jobs_failed_total", "code" => err.code).increment(1);
            crate::billing::refund_failed_job(&app, &ctx.spec.job_id, &ctx.client_id, held).await;
            if let Some((idem, _)) = &ctx.idem {
                crate::idempotency::release(&app, idem).await;
            }
            if let Err(e) = app
                .store
                .fail_job(&ctx.spec.job_id, &last_failure, now)
                .await
            {
                tracing::error!(%e, "could not record job failure");
            }
            let _ = out.send(GatewayEvent::Error(err)).await;
        }
    }
}

/// When an attempt's events arrived, ms after its spec was sent.
#[derive(Debug, Clone, Copy)]
struct Clock {
    first_token_ms: Option<f64>,
    last_token_ms: Option<f64>,
    provider_ms: f64,
    /// When the provider's result arrived.
    result_at: Instant,
}

/// Tokens as relayed, to check against the final result.
#[derive(Default)]
struct Relayed {
    ids: Vec<u32>,
    text: String,
}

async fn run_attempt(
    app: &AppState,
    ctx: &JobCtx,
    p: &Arc<ProviderHandle>,
    out: &mpsc::Sender<GatewayEvent>,
    deadline: Instant,
    streamed: &mut bool,
) -> Attempt {
    let mut events = app.registry.route(&ctx.spec.job_id, p);
    if p.tx
        .send(CoordinatorMsg::Job(ctx.spec.clone()))
        .await
        .is_err()
    {
        return Attempt::Retry("provider connection closed before dispatch".into());
    }
    let sent = Instant::now();
    let ms = |at: Instant| at.duration_since(sent).as_secs_f64() * 1e3;
    let mut first_token_ms = None;
    let mut last_token_ms = None;
    let mut relayed = Relayed::default();
    loop {
        let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                cancel(p, &ctx.spec.job_id).await;
                return Attempt::Fatal(ApiError::timeout());
            }
            Ok(None) => return Attempt::Retry("provider disconnected mid-job".into()),
            Ok(Some(ev)) => ev,
        };
        match ev {
            JobEvent::Token {
                index,
                token_id,
                text,
            } => {
                if index as usize != relayed.ids.len() {
                    cancel(p, &ctx.spec.job_id).await;
                    return Attempt::Retry(format!("token index {index} out of order"));
                }
                let at = ms(Instant::now());
                first_token_ms.get_or_insert(at);
                last_token_ms = Some(at);
                relayed.ids.push(token_id);
                relayed.text.push_str(&text);
                // Only streaming jobs forward deltas: a non-streaming job has
                // sent nothing to its client until the end, so it stays retryable.
                if ctx.spec.stream && !text.is_empty() {
                    *streamed = true;
                    if out.send(GatewayEvent::Delta(text)).await.is_err() {
                        cancel(p, &ctx.spec.job_id).await;
                        return Attempt::Fatal(ApiError::internal("relay", "client disconnected"));
                    }
                }
            }
            JobEvent::Failed { code, message } => {
                if code == "context_length_exceeded" {
                    return Attempt::Fatal(ApiError::context_length(message));
                }
                if code == "invalid_request" {
                    return Attempt::Fatal(ApiError::invalid_param("messages", message));
                }
                return Attempt::Retry(format!("provider reported {code}: {message}"));
            }
            JobEvent::Done(result) => {
                let result_at = Instant::now();
                let clock = Clock {
                    first_token_ms,
                    last_token_ms,
                    provider_ms: ms(result_at),
                    result_at,
                };
                return finish(app, ctx, p, *result, &relayed, clock).await;
            }
            JobEvent::ZkDone(_) => {
                cancel(p, &ctx.spec.job_id).await;
                return Attempt::Retry("a proof answer to a chat job".into());
            }
            JobEvent::ProviderGone => {
                return Attempt::Retry("provider disconnected mid-job".into())
            }
        }
    }
}

pub(crate) async fn cancel(p: &ProviderHandle, job_id: &str) {
    let _ =
        p.tx.send(CoordinatorMsg::Cancel {
            job_id: job_id.to_string(),
        })
        .await;
}

/// Checks a provider's result against the job and what was relayed, then
/// countersigns and stores it. A result that fails a check is the provider's
/// fault: the job is retried elsewhere if nothing was streamed yet.
async fn finish(
    app: &AppState,
    ctx: &JobCtx,
    p: &ProviderHandle,
    result: JobResult,
    relayed: &Relayed,
    clock: Clock,
) -> Attempt {
    let fingerprint = match check_result(app, ctx, p, &result, relayed) {
        Ok(fp) => fp,
        Err(why) => {
            tracing::warn!(provider = %p.key, %why, "rejected provider result");
            metrics::counter!("proofmesh_results_rejected_total").increment(1);
            return Attempt::Retry(format!("result rejected: {why}"));
        }
    };
    let mut receipt = result.receipt;
    receipt.countersign(&app.identity);
    let evidence = Evidence {
        completion_token_ids: result.completion_token_ids,
        text: result.text.clone(),
        fingerprint,
    };
    let now = crate::now_ms();
    if let Err(e) = app
        .store
        .complete_job(&ctx.spec.job_id, &ctx.client_id, &receipt, &evidence, now)
        .await
    {
        return Attempt::Fatal(ApiError::internal("store receipt", e));
    }
    // Chosen only now, after the result is committed: the provider cannot
    // know in advance whether this job will be re-executed.
    let audited = crate::audit::maybe_audit(app, &receipt, &ctx.verification).await;
    metrics::counter!("proofmesh_tokens_generated_total")
        .increment(u64::from(receipt.body.completion_tokens));
    Attempt::Finished(Box::new(receipt), result.text, audited, clock)
}

/// Sequences the countersigned receipt into the transparency log and returns
/// its inclusion record. If the log fails, the receipt is already committed
/// and the next start's backlog logs it, so the client still gets its answer
/// (without an inclusion proof) and nothing is lost.
pub(crate) async fn log_receipt(
    app: &AppState,
    receipt: &Receipt,
) -> Option<proofmesh_receipt::LogInclusion> {
    let key = proofmesh_store::receipt_log_key(&receipt.body.receipt_id);
    let entry = proofmesh_tlog::LogEntry::receipt(receipt);
    let logged = match app.log.append(&entry, Some(key)).await {
        Ok(s) => app.log.inclusion_for(s.index),
        Err(e) => Err(e),
    };
    match logged {
        Ok(inc) => Some(inc),
        Err(e) => {
            tracing::error!(error = %e, "receipt stored but not logged; it is logged at next start");
            metrics::counter!("proofmesh_log_receipt_failures_total").increment(1);
            None
        }
    }
}

/// Every way a provider's result can disagree with the job, as a reason.
/// Returns the decoded fingerprint bytes.
fn check_result(
    app: &AppState,
    ctx: &JobCtx,
    p: &ProviderHandle,
    result: &JobResult,
    relayed: &Relayed,
) -> Result<Vec<u8>, String> {
    let b = &result.receipt.body;
    let spec = &ctx.spec;
    let same = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(crate::dispatch_check::mismatch(what))
        }
    };
    crate::dispatch_check::DispatchTerms {
        receipt_id: &spec.receipt_id,
        job_id: &spec.job_id,
        client: &spec.client,
        model: &spec.model,
        provider: &p.key,
        coordinator: app.identity.public(),
        request_digest: spec.request_digest(),
        sampling: &spec.sampling,
        attestation: &spec.attestation,
        dispatched_at_ms: spec.dispatched_at_ms,
        price: &spec.price,
    }
    .check(&result.receipt)?;
    same("relayed tokens", relayed.ids == result.completion_token_ids)?;
    same("relayed text", relayed.text == result.text)?;
    same(
        "completion_tokens",
        b.completion_tokens as usize == result.completion_token_ids.len(),
    )?;
    // The coordinator never accepts a result after cancelling, so a
    // "cancelled" finish is a provider truncating its own output.
    same(
        "finish_reason (must be stop or length)",
        b.finish_reason == "stop" || b.finish_reason == "length",
    )?;
    let rd = response_digest(&result.completion_token_ids, &result.text, &b.finish_reason);
    same("response_digest", b.response_digest == rd)?;
    // The fingerprint's shape and digest; the verifier decodes and re-derives
    // its content on audit.
    let fp = proofmesh_wire::fingerprint_bytes(&result.fingerprint)?;
    same(
        "fingerprint shape (header + 8 bytes per token)",
        fingerprint_format::has_shape(&fp, result.completion_token_ids.len()),
    )?;
    same("logits_digest", b.logits_digest == Digest::of(&fp))?;
    Ok(fp)
}
