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
use proofmesh_wire::{CoordinatorMsg, JobResult, JobSpec};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::registry::{JobEvent, ProviderHandle};
use crate::state::AppState;

/// What the HTTP side receives from the driver.
#[derive(Debug)]
pub enum GatewayEvent {
    /// Text to forward.
    Delta(String),
    /// Done, with the countersigned receipt and the full completion text.
    Finished(Box<Receipt>, String),
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
    /// The client's price cap, micro-units.
    pub max_price_micros: Option<u64>,
    /// The Idempotency-Key claim to record the answer under, with what the
    /// response says about itself.
    pub idem: Option<(crate::idempotency::Idem, crate::gateway::Meta)>,
    /// The least attestation level a provider needs (request and API key).
    pub min_attestation: proofmesh_placement::AttestationLevel,
}

enum Attempt {
    /// The receipt, the text, and whether an audit was scheduled.
    Finished(Box<Receipt>, String, bool),
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
    let outcome = loop {
        if tried.len() as u32 >= app.config.max_attempts {
            break Err(ApiError::provider_failed(tried.len() as u32));
        }
        let what = PlaceFor {
            job_id: &ctx.spec.job_id,
            model: ctx.spec.model.as_str(),
            class: ctx.class,
            prompt_tokens: crate::billing::prompt_token_bound(&ctx.spec),
            max_tokens: ctx.spec.sampling.max_tokens,
            min_attestation: ctx.min_attestation,
        };
        let Some(p) = place(&app, &what, &tried).await else {
            break Err(what.unplaced(&tried));
        };
        tried.push(p.key.to_string());
        // The chosen provider's verified attestation goes into its receipt.
        ctx.spec.attestation = p.attestation_ref(crate::now_ms());
        // The chosen provider's own rates (escrow was taken at the highest).
        if let Some(m) = p.models.iter().find(|m| m.digest == ctx.spec.model) {
            if m.price.currency == ctx.spec.price.currency {
                ctx.spec.price = m.price.clone();
            }
        }
        app.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed) + 1);
        if let Err(e) = app.store.assign_job(&ctx.spec.job_id, p.key.as_str()).await {
            break Err(ApiError::internal("assign job", e));
        }
        let attempt = run_attempt(&app, &ctx, &p, &out, deadline, &mut streamed).await;
        app.registry.unroute(&ctx.spec.job_id, &p);
        app.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed));
        match &attempt {
            Attempt::Finished(r, ..) => {
                let b = &r.body;
                app.placer.succeeded(
                    p.key.as_str(),
                    ctx.spec.model.as_str(),
                    u64::from(b.prompt_tokens) + u64::from(b.completion_tokens),
                    b.finished_at_ms.saturating_sub(b.dispatched_at_ms),
                )
            }
            Attempt::Retry(_) => app.placer.failed(p.key.as_str(), false, crate::now_ms()),
            Attempt::Fatal(_) => {}
        }
        match attempt {
            Attempt::Finished(r, text, audited) => break Ok((r, text, audited)),
            Attempt::Fatal(e) => break Err(e),
            Attempt::Retry(why) if streamed => {
                tracing::warn!(provider = %p.key, %why, "provider failed after streaming began");
                last_failure = why;
                break Err(ApiError::provider_failed(tried.len() as u32));
            }
            Attempt::Retry(why) => {
                tracing::warn!(provider = %p.key, %why, "provider failed; retrying elsewhere");
                metrics::counter!("proofmesh_job_retries_total").increment(1);
                last_failure = why;
            }
        }
    };
    let now = crate::now_ms();
    match outcome {
        Ok((receipt, text, audited)) => {
            crate::billing::settle_completed(&app, &ctx.client_id, &receipt, held, audited).await;
            metrics::counter!("proofmesh_jobs_completed_total").increment(1);
            metrics::histogram!("proofmesh_job_seconds").record(started.elapsed().as_secs_f64());
            if let Some((idem, meta)) = &ctx.idem {
                let body = crate::gateway::completion_body(meta.clone(), &receipt, text.clone());
                crate::idempotency::complete(&app, idem, &body).await;
            }
            let _ = out.send(GatewayEvent::Finished(receipt, text)).await;
        }
        Err(err) => {
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

/// What placement needs to know about one attempt of a job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaceFor<'a> {
    /// The job (its decisions are recorded under it).
    pub job_id: &'a str,
    /// Model digest.
    pub model: &'a str,
    /// Workload class.
    pub class: proofmesh_placement::WorkloadClass,
    /// Prompt tokens (an upper bound).
    pub prompt_tokens: u32,
    /// Completion tokens at most.
    pub max_tokens: u32,
    /// The least attestation level accepted.
    pub min_attestation: proofmesh_placement::AttestationLevel,
}

impl PlaceFor<'_> {
    /// The error when no provider could be placed after trying `tried`.
    pub(crate) fn unplaced(&self, tried: &[String]) -> ApiError {
        if tried.is_empty() && self.min_attestation > Default::default() {
            ApiError::no_attested_provider(
                self.model,
                crate::attestation::level_name(self.min_attestation),
            )
        } else if tried.is_empty() {
            ApiError::no_provider(self.model)
        } else {
            ApiError::provider_failed(tried.len() as u32)
        }
    }
}

/// Asks the placement policy where this attempt goes (excluding providers
/// already tried), records the decision for `proofmesh explain`, and returns
/// the first live provider in its failover order.
pub(crate) async fn place(
    app: &AppState,
    what: &PlaceFor<'_>,
    tried: &[String],
) -> Option<Arc<ProviderHandle>> {
    let mut req = proofmesh_placement::Request::new(
        what.model,
        what.class,
        what.prompt_tokens,
        what.max_tokens,
        crate::now_ms(),
    );
    req.min_attestation = what.min_attestation;
    let decision = app.placer.place(&req, tried);
    let record = match &decision {
        Ok(p) => {
            serde_json::json!({"attempt": tried.len() + 1, "class": what.class, "placement": p})
        }
        Err(e) => {
            serde_json::json!({"attempt": tried.len() + 1, "class": what.class, "error": e.to_string()})
        }
    };
    if let Err(e) = app
        .store
        .record_placement(what.job_id, &record.to_string())
        .await
    {
        tracing::error!(%e, "record placement");
    }
    let placement = match decision {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(job_id = %what.job_id, reason = %e, "no placement");
            return None;
        }
    };
    let live = placement
        .failover_order()
        .find_map(|id| app.registry.live_provider(&id.0));
    live
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
            JobEvent::Done(result) => return finish(app, ctx, p, *result, &relayed).await,
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
    receipt.log = log_receipt(app, &receipt).await;
    metrics::counter!("proofmesh_tokens_generated_total")
        .increment(u64::from(receipt.body.completion_tokens));
    Attempt::Finished(Box::new(receipt), result.text, audited)
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
