//! The driver: the one loop that takes a job of any kind from escrow to
//! its answer (the steps are in the module doc of [`crate::pipeline`]).

use std::sync::Arc;
use std::time::Duration;

use proofmesh_ambient::clock::Clock;
use proofmesh_ledger::Amount;
use proofmesh_receipt::{Identity, Receipt};
use proofmesh_store::{AuditPenalty, JobRecord, ProofFailure, Store};
use proofmesh_wire::openai::JobTimingExt;
use proofmesh_wire::CoordinatorMsg;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CheckCtx, Checked, Done, Event, Job, JobKind, Progress, Rejection};
use crate::admission::{place_or_wait, Mode, PlaceFor};
use crate::config::CoordinatorConfig;
use crate::error::ApiError;
use crate::fleet::Fleet;
use crate::money::Money;
use crate::placement::JobTiming;
use crate::registry::{JobEvent, ProviderHandle};

/// Capacity of the channel from the driver to the client side.
const OUT_CHANNEL: usize = 64;

/// The driver's dependencies: the fleet, the money, the log, the store, the
/// coordinator's key, a clock and the configuration. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) fleet: Arc<Fleet>,
    pub(crate) money: Money,
    pub(crate) log: proofmesh_log::Log,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<CoordinatorConfig>,
}

/// The parts a [`Pipeline`] is built from.
#[derive(Clone)]
pub struct PipelineParts {
    /// Provider state.
    pub fleet: Arc<Fleet>,
    /// Escrow and settlement.
    pub money: Money,
    /// The transparency log.
    pub log: proofmesh_log::Log,
    /// Job rows, receipts, audits, placement records.
    pub store: Arc<dyn Store>,
    /// The coordinator's signing key.
    pub identity: Arc<Identity>,
    /// Wall-clock time.
    pub clock: Arc<dyn Clock>,
    /// Attempts, deadlines, audit rates.
    pub config: Arc<CoordinatorConfig>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("coordinator", &self.identity.public().as_str())
            .finish()
    }
}

/// How one attempt ended.
enum Attempt<O> {
    Finished(Box<Finished<O>>),
    Retry(String),
    Fatal(ApiError),
}

/// A finished attempt: the countersigned receipt, the kind's answer,
/// whether an audit was drawn, and what the attempt measured.
struct Finished<O> {
    receipt: Receipt,
    output: O,
    audited: bool,
    clock: AttemptClock,
}

/// When an attempt's events arrived, ms after its dispatch.
#[derive(Debug, Clone, Copy)]
struct AttemptClock {
    first_ms: Option<f64>,
    last_ms: Option<f64>,
    provider_ms: f64,
    /// When the provider's result arrived.
    result_at: Instant,
}

/// How an attempt began: how long the job waited for it, how busy its
/// provider was, and how placement found it.
#[derive(Debug, Clone, Copy)]
struct AttemptStart {
    queued_ms: f64,
    before: u32,
    mode: Mode,
}

/// A job that reached an outcome, with what it took.
struct Outcome<O> {
    finished: Box<Finished<O>>,
    timing: JobTimingExt,
}

impl Pipeline {
    /// A pipeline over its parts.
    pub fn new(p: PipelineParts) -> Pipeline {
        Pipeline {
            fleet: p.fleet,
            money: p.money,
            log: p.log,
            store: p.store,
            identity: p.identity,
            clock: p.clock,
            config: p.config,
        }
    }

    /// The fleet the pipeline places on.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// Escrows the job, records it, and runs it in its own task (so a
    /// client that goes away does not leave it half done). Errors before
    /// the job runs (balance, price cap, store) come back here, with the
    /// escrow refunded and the idempotency claim freed.
    pub async fn submit<K: JobKind>(
        &self,
        mut job: Job<K>,
    ) -> Result<mpsc::Receiver<Event<K>>, ApiError> {
        let h = &job.head;
        let escrowed = match self
            .money
            .escrow(&h.job_id, &h.client_id, &h.quote, job.kind.charge_bound())
            .await
        {
            Ok(e) => e,
            Err(e) => {
                if let Some(idem) = &h.idem {
                    self.money.release_claim(idem).await;
                }
                return Err(e);
            }
        };
        job.kind.fit_budget(escrowed.max_completion_tokens);
        let h = &job.head;
        let rec = JobRecord {
            job_id: h.job_id.clone(),
            receipt_id: h.receipt_id.clone(),
            client_id: h.client_id.clone(),
            model: h.model.clone(),
            created_at_ms: h.created_at_ms,
            request_json: job.kind.request_json(),
            verification: job.kind.verification().to_string(),
        };
        if let Err(e) = self.store.insert_job(&rec).await {
            self.money
                .refund_failed(&h.job_id, &h.client_id, escrowed.held, h.idem.as_ref())
                .await;
            return Err(ApiError::internal("insert job", e));
        }
        let (tx, rx) = mpsc::channel(OUT_CHANNEL);
        tokio::spawn(self.clone().drive(job, escrowed.held, tx));
        Ok(rx)
    }

    #[tracing::instrument(skip_all, fields(job_id = %job.head.job_id, kind = K::NAME))]
    async fn drive<K: JobKind>(self, mut job: Job<K>, held: Amount, out: mpsc::Sender<Event<K>>) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.config.request_timeout_s);
        let mut tried: Vec<String> = Vec::new();
        let mut streamed = false;
        let mut last_failure = String::from("no provider available");
        let demand = job.kind.demand();
        let outcome = loop {
            if tried.len() as u32 >= self.config.max_attempts {
                break Err(ApiError::provider_failed(tried.len() as u32));
            }
            let what = PlaceFor {
                job_id: &job.head.job_id,
                model: &job.head.model,
                model_name: &job.head.model_name,
                class: job.head.class,
                hard: job.head.hard_objective,
                prompt_tokens: demand.prompt_tokens,
                prompt_source: demand.prompt_source,
                max_tokens: demand.max_tokens,
                min_attestation: job.head.min_attestation,
            };
            let placed = match place_or_wait(&self, &what, &tried, deadline).await {
                Ok(p) if job.kind.serves(&p.provider) => p,
                Ok(_) => break Err(ApiError::no_provider(&job.head.model_name)),
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
            // The price is decided here, once: the chosen provider's own rate.
            let rate = job.head.quote.dispatch_rate(job.kind.offer(&p));
            job.kind.bind(rate, p.attestation_ref(self.clock.now_ms()));
            if let Err(e) = self
                .store
                .assign_job(&job.head.job_id, p.key.as_str())
                .await
            {
                break Err(ApiError::internal("assign job", e));
            }
            let slot = self.fleet.begin_attempt(&job.head.job_id, &p);
            let before = slot.before;
            let attempt = self
                .run_attempt(&job, &p, slot.events, &out, deadline, &mut streamed)
                .await;
            self.fleet.end_attempt(&job.head.job_id, &p);
            match attempt {
                Attempt::Finished(f) => {
                    let started_at = AttemptStart {
                        queued_ms,
                        before,
                        mode: placed.mode,
                    };
                    let timing = self.measured::<K>(&job.head.model, &p, &f, started_at);
                    break Ok(Outcome {
                        finished: f,
                        timing,
                    });
                }
                Attempt::Fatal(e) => break Err(e),
                Attempt::Retry(why) => {
                    self.fleet.failed(p.key.as_str(), self.clock.now_ms());
                    last_failure = why;
                    if streamed {
                        tracing::warn!(provider = %p.key, why = %last_failure, "provider failed after streaming began");
                        break Err(ApiError::provider_failed(tried.len() as u32));
                    }
                    tracing::warn!(provider = %p.key, why = %last_failure, "provider failed; retrying elsewhere");
                    metrics::counter!("proofmesh_job_retries_total").increment(1);
                }
            }
        };
        match outcome {
            Ok(o) => self.succeed(&job, held, o, started, &out).await,
            Err(err) => self.fail(&job, held, err, &last_failure, &out).await,
        }
    }

    /// What a successful attempt measured: fed to the fleet's estimates
    /// (unless the job queued at the provider, or its kind's timings say
    /// nothing about token rates), and returned as the answer's timing.
    fn measured<K: JobKind>(
        &self,
        model: &str,
        p: &ProviderHandle,
        f: &Finished<K::Output>,
        at: AttemptStart,
    ) -> JobTimingExt {
        let b = &f.receipt.body;
        let timing = JobTiming {
            queued_at_provider: at.before >= p.max_concurrent || !K::MEASURES_TOKENS,
            prompt_tokens: b.prompt_tokens,
            completion_tokens: b.completion_tokens,
            first_token_ms: f.clock.first_ms,
            last_token_ms: f.clock.last_ms,
            service_ms: f.clock.provider_ms,
            rtt_ms: self.fleet.placer().rtt_ms(p.key.as_str()),
        };
        self.fleet
            .succeeded(p.key.as_str(), model, &timing, self.clock.now_ms());
        JobTimingExt {
            queued_ms: at.queued_ms,
            provider_ttft_ms: f.clock.first_ms,
            provider_ms: f.clock.provider_ms,
            finish_ms: 0.0,
            objective_missed: at.mode == Mode::BestEffort,
        }
    }

    /// Logs and settles a finished job, records its idempotent answer and
    /// replies.
    async fn succeed<K: JobKind>(
        &self,
        job: &Job<K>,
        held: Amount,
        o: Outcome<K::Output>,
        started: Instant,
        out: &mpsc::Sender<Event<K>>,
    ) {
        let Outcome {
            finished,
            mut timing,
        } = o;
        let Finished {
            mut receipt,
            output,
            audited,
            clock,
        } = *finished;
        // The log commit and the settlement are independent (either may
        // come first; a crash between them is repaired at the next start),
        // so they overlap; the client is answered after both.
        let (log, ()) = tokio::join!(
            self.log_receipt(&receipt),
            self.money
                .settle_completed(&job.head.client_id, &receipt, held, audited),
        );
        receipt.log = log;
        metrics::counter!("proofmesh_jobs_completed_total", "kind" => K::NAME).increment(1);
        metrics::histogram!("proofmesh_job_seconds").record(started.elapsed().as_secs_f64());
        timing.finish_ms = clock.result_at.elapsed().as_secs_f64() * 1e3;
        metrics::histogram!("proofmesh_job_finish_seconds").record(timing.finish_ms / 1e3);
        let done = Done {
            receipt,
            output,
            timing,
        };
        if let Some(idem) = &job.head.idem {
            // A replay returns exactly this answer, timing included.
            if let Some(body) = job.kind.replay_body(&done) {
                crate::idempotency::complete(self.store.as_ref(), idem, &body).await;
            }
        }
        let _ = out.send(Event::Done(Box::new(done))).await;
    }

    /// Refunds a failed job, frees its claim, records why and replies.
    async fn fail<K: JobKind>(
        &self,
        job: &Job<K>,
        held: Amount,
        err: ApiError,
        why: &str,
        out: &mpsc::Sender<Event<K>>,
    ) {
        let h = &job.head;
        let err = err.for_job(&h.job_id).for_model(&h.model_name);
        metrics::counter!("proofmesh_jobs_failed_total", "code" => err.code).increment(1);
        self.money
            .refund_failed(&h.job_id, &h.client_id, held, h.idem.as_ref())
            .await;
        if let Err(e) = self
            .store
            .fail_job(&h.job_id, why, self.clock.now_ms())
            .await
        {
            tracing::error!(%e, "could not record job failure");
        }
        let _ = out.send(Event::Error(err)).await;
    }

    /// Dispatches the job to `p` and follows its events to a result.
    async fn run_attempt<K: JobKind>(
        &self,
        job: &Job<K>,
        p: &Arc<ProviderHandle>,
        mut events: mpsc::Receiver<JobEvent>,
        out: &mpsc::Sender<Event<K>>,
        deadline: Instant,
        streamed: &mut bool,
    ) -> Attempt<K::Output> {
        if p.tx.send(job.kind.dispatch()).await.is_err() {
            return Attempt::Retry("provider connection closed before dispatch".into());
        }
        let job_id = &job.head.job_id;
        let sent = Instant::now();
        let ms = |at: Instant| at.duration_since(sent).as_secs_f64() * 1e3;
        let (mut first_ms, mut last_ms) = (None, None);
        let mut relay = K::Relay::default();
        loop {
            let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => {
                    cancel(p, job_id).await;
                    return Attempt::Fatal(ApiError::timeout());
                }
                Ok(None) | Ok(Some(JobEvent::ProviderGone)) => {
                    return Attempt::Retry("provider disconnected mid-job".into())
                }
                Ok(Some(ev)) => ev,
            };
            if matches!(ev, JobEvent::Token { .. }) {
                let at = ms(Instant::now());
                first_ms.get_or_insert(at);
                last_ms = Some(at);
            }
            match job.kind.on_event(&mut relay, ev) {
                Progress::Pending => {}
                Progress::Relay(delta) => {
                    *streamed = true;
                    if out.send(Event::Delta(delta)).await.is_err() {
                        cancel(p, job_id).await;
                        return Attempt::Fatal(ApiError::internal("relay", "client disconnected"));
                    }
                }
                Progress::Retry(why) => return Attempt::Retry(why),
                Progress::Reject(why) => {
                    cancel(p, job_id).await;
                    return Attempt::Retry(why);
                }
                Progress::Fatal(e) => return Attempt::Fatal(e),
                Progress::Result(result) => {
                    let result_at = Instant::now();
                    let clock = AttemptClock {
                        first_ms,
                        last_ms,
                        provider_ms: ms(result_at),
                        result_at,
                    };
                    return self.finish(job, p, &relay, result, clock).await;
                }
            }
        }
    }

    /// Checks a provider's result through the kind, then countersigns and
    /// stores it and draws the audit. A result that fails a check is the
    /// provider's fault: the job is retried elsewhere if nothing was
    /// streamed yet.
    async fn finish<K: JobKind>(
        &self,
        job: &Job<K>,
        p: &ProviderHandle,
        relay: &K::Relay,
        result: K::Result,
        clock: AttemptClock,
    ) -> Attempt<K::Output> {
        let ctx = CheckCtx {
            provider: &p.key,
            coordinator: self.identity.public(),
            now_ms: self.clock.now_ms(),
        };
        let Checked {
            mut receipt,
            evidence,
            output,
        } = match job.kind.check(ctx, relay, result) {
            Ok(c) => c,
            Err(Rejection::Fault(why)) => {
                tracing::warn!(provider = %p.key, %why, "rejected provider result");
                metrics::counter!("proofmesh_results_rejected_total").increment(1);
                return Attempt::Retry(format!("result rejected: {why}"));
            }
            Err(Rejection::Fraud { why, failure }) => {
                self.penalize(*failure).await;
                return Attempt::Retry(format!("proof failed: {why}"));
            }
            Err(Rejection::Fatal(e)) => return Attempt::Fatal(e),
        };
        receipt.countersign(&self.identity);
        let h = &job.head;
        if let Err(e) = self
            .store
            .complete_job(
                &h.job_id,
                &h.client_id,
                &receipt,
                &evidence,
                self.clock.now_ms(),
            )
            .await
        {
            return Attempt::Fatal(ApiError::internal("store receipt", e));
        }
        // Chosen only now, after the result is committed: the provider
        // cannot know in advance whether this job will be re-executed.
        let audited = job.kind.auditable()
            && crate::audit::maybe_audit(self, &receipt, job.kind.verification()).await;
        metrics::counter!("proofmesh_tokens_generated_total")
            .increment(u64::from(receipt.body.completion_tokens));
        Attempt::Finished(Box::new(Finished {
            receipt,
            output,
            audited,
            clock,
        }))
    }

    /// A signed answer that proves the provider cheated: stored with its
    /// evidence and treated like a failed audit (slash, failure count,
    /// reputation, exclusion).
    async fn penalize(&self, failure: ProofFailure) {
        tracing::warn!(provider = %failure.provider_key, job_id = %failure.job_id, reason = %failure.reason, "proof FAILED");
        metrics::counter!("proofmesh_zk_proofs_failed_total").increment(1);
        let penalty = AuditPenalty {
            slash_micros: self.config.slash_micros,
            stake_after_micros: self.money.stake_after_slash(&failure.provider_key).await,
            refund_micros: 0,
            max_failed_audits: u64::from(self.config.max_failed_audits),
        };
        let stats = match self.store.record_proof_failure(&failure, penalty).await {
            Ok(s) => s,
            Err(e) => return tracing::error!(%e, "could not record the failed proof"),
        };
        self.money
            .slash_failed_proof(&failure.job_id, &failure.provider_key)
            .await;
        self.fleet.apply_audit_record(&stats);
    }

    /// Sequences the countersigned receipt into the transparency log and
    /// returns its inclusion record. If the log fails, the receipt is
    /// already committed and the next start's backlog logs it, so the
    /// client still gets its answer (without an inclusion proof) and
    /// nothing is lost.
    pub(crate) async fn log_receipt(
        &self,
        receipt: &Receipt,
    ) -> Option<proofmesh_receipt::LogInclusion> {
        let key = proofmesh_store::receipt_log_key(&receipt.body.receipt_id);
        let entry = proofmesh_log::LogEntry::receipt(receipt);
        let logged = match self.log.append(&entry, Some(key)).await {
            Ok(s) => self.log.inclusion_for(s.index),
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
}

/// Tells the provider to stop working on a job.
pub(crate) async fn cancel(p: &ProviderHandle, job_id: &str) {
    let _ =
        p.tx.send(CoordinatorMsg::Cancel {
            job_id: job_id.to_string(),
        })
        .await;
}
