//! Money around a job, through the durable ledger (`proofmesh-settlement`):
//! escrow the worst-case charge at dispatch (402 if the client's balance
//! cannot cover it), release the receipt's exact charge to the provider
//! (minus the protocol fee) and refund the rest, hold audited jobs' charge
//! until the audit ends, refund and slash on a failed audit, refund a failed
//! job in full. Every transaction's key derives from the job id, so a retry
//! never charges twice. Plus the read endpoints: balance, usage, earnings.
//!
//! After a job has been answered, a settlement error is logged and counted,
//! never shown to the client: the money stays in the job's escrow or hold
//! account, so nothing is lost, and the next start's recovery sweep settles
//! it ([`recover`]). Which steps a job still needs is decided in one pure
//! place, `proofmesh_ledger::reconcile`, from its state and its accounts'
//! balances, whoever calls: the job driver, the audit report handler (which
//! applies the completion settlement itself if its report came first) or
//! the sweep. [`check_settlement`] checks the resulting invariant: no money
//! left in a job's escrow or hold once the job and its audit are final.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use proofmesh_ledger::reconcile::{self, build_step, Step, StepInputs};
use proofmesh_ledger::settle::{self, AuditDecision, JobParties};
use proofmesh_ledger::{
    check_job_accounts, AccountId, Amount, AuditState, Currency, InvariantReport, JobAccount,
    JobAccountKind, JobState, LedgerError, ModelPrice, ReconcileError,
};
use proofmesh_receipt::{AuditOutcome, AuditReport, Receipt};
use proofmesh_settlement::BankError;
use proofmesh_store::{BillingStore, FundedJobAccount};
use proofmesh_wire::JobSpec;

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// The parties of a job, as the ledger names them.
pub fn parties(job_id: &str, client_id: &str, provider: &str) -> JobParties {
    JobParties {
        job_id: job_id.to_owned(),
        client: client_id.to_owned(),
        provider: provider.to_owned(),
    }
}

fn price_of(spec: &JobSpec) -> Result<ModelPrice, String> {
    Ok(ModelPrice {
        currency: Currency::parse(&spec.price.currency).map_err(|e| e.to_string())?,
        input_per_mtok_micros: spec.price.input_per_mtok_micros,
        output_per_mtok_micros: spec.price.output_per_mtok_micros,
        gpu_hour_micros: None,
    })
}

/// An upper bound on the prompt's tokens without tokenizing: the byte-level
/// BPE never makes a token of less than one byte, and the ChatML template
/// adds at most 8 tokens per message plus 8 for the reply prefix.
pub fn prompt_token_bound(spec: &JobSpec) -> u32 {
    let bytes: usize = spec
        .messages
        .iter()
        .map(|m| m.content.len() + m.role.len() + 8)
        .sum();
    u32::try_from(bytes + 8).unwrap_or(u32::MAX)
}

fn settle_failed(context: &'static str, e: impl std::fmt::Display) {
    tracing::error!(error = %e, context, "settlement not applied; the money stays in escrow or hold for the recovery sweep");
    metrics::counter!("proofmesh_settlement_failures_total", "step" => context).increment(1);
}

/// Escrows the job's worst-case charge from the client. With a price cap,
/// `max_tokens` is lowered so the worst case fits the cap (400 if even the
/// prompt does not). Returns the amount held; 402 `insufficient_balance` if
/// the balance cannot cover it.
pub async fn escrow(
    app: &AppState,
    spec: &mut JobSpec,
    client_id: &str,
    max_price_micros: Option<u64>,
) -> Result<Amount, ApiError> {
    let price = price_of(spec).map_err(|e| ApiError::internal("price", e))?;
    let job = parties(&spec.job_id, client_id, "");
    let bound = prompt_token_bound(spec);
    let cap = max_price_micros
        .map(|m| Amount::from_micros(price.currency, m))
        .transpose()
        .map_err(|e| ApiError::invalid_param("max_price_micros", e.to_string()))?;
    let esc = match settle::escrow_at_dispatch(&job, &price, bound, spec.sampling.max_tokens, cap) {
        Ok(e) if e.max_completion_tokens > 0 => e,
        Ok(_) | Err(settle::SettleError::AboveMaxPrice { .. }) => {
            return Err(ApiError::invalid_param(
                "max_price_micros",
                format!(
                    "max_price_micros is too low: the prompt alone may cost up to {} micro-{}",
                    price
                        .charge(bound, 1)
                        .map(|a| a.micros())
                        .unwrap_or(u64::MAX),
                    price.currency.code()
                ),
            ))
        }
        Err(e) => return Err(ApiError::internal("escrow", e)),
    };
    spec.sampling.max_tokens = spec.sampling.max_tokens.min(esc.max_completion_tokens);
    apply_escrow(app, esc.settlement).await
}

/// Applies an escrow transaction; 402 if the client's balance is short.
async fn apply_escrow(app: &AppState, s: settle::Settlement) -> Result<Amount, ApiError> {
    let held = s.breakdown.held;
    match app.bank.apply(s.tx, crate::now_ms()).await {
        Ok(_) => Ok(held),
        Err(BankError::Refused(LedgerError::InsufficientFunds { balance, .. })) => Err(
            ApiError::insufficient_balance(held.micros(), balance, held.currency().code()),
        ),
        Err(e) => Err(ApiError::internal("escrow", e)),
    }
}

/// Escrows the charge of one proved inference (`rate`'s input rate is per
/// 1M inferences: a receipt counts the inference as one prompt token).
/// A free model holds nothing.
pub async fn escrow_inference(
    app: &AppState,
    job_id: &str,
    client_id: &str,
    rate: &proofmesh_wire::PriceRate,
) -> Result<Amount, ApiError> {
    let price = ModelPrice {
        currency: Currency::parse(&rate.currency).map_err(|e| ApiError::internal("price", e))?,
        input_per_mtok_micros: rate.input_per_mtok_micros,
        output_per_mtok_micros: rate.output_per_mtok_micros,
        gpu_hour_micros: None,
    };
    let job = parties(job_id, client_id, "");
    match settle::escrow_at_dispatch(&job, &price, 1, 0, None) {
        Ok(esc) => apply_escrow(app, esc.settlement).await,
        Err(settle::SettleError::NothingToSettle { .. }) => Ok(Amount::zero(price.currency)),
        Err(e) => Err(ApiError::internal("escrow", e)),
    }
}

/// Slashes a provider whose proof of job `job_id` failed (a failed audit
/// without a held charge: nothing was paid for it), up to what its stake
/// holds, to the insurance fund. Idempotent by job and provider.
pub async fn slash_failed_proof(app: &AppState, job_id: &str, provider: &str) {
    let Ok(currency) = Currency::parse("USD") else {
        return;
    };
    let stake_account = AccountId::ProviderStake(provider.to_string());
    let stake = match app.bank.balance(&stake_account, currency).await {
        Ok(s) => u64::try_from(s).unwrap_or(0),
        Err(e) => return settle_failed("proof slash", e),
    };
    let micros = u64::try_from(app.config.slash_micros)
        .unwrap_or(0)
        .min(stake);
    let Ok(amount) = Amount::from_micros(currency, micros) else {
        return settle_failed("proof slash", "amount out of range");
    };
    if amount.is_zero() {
        return;
    }
    let key = format!(
        "zkproof/{job_id}/{}",
        provider.trim_start_matches("ed25519:")
    );
    let tx = settle::transfer(
        key,
        proofmesh_ledger::Reason::Slash,
        Some(proofmesh_ledger::Link::Job(job_id.to_string())),
        stake_account,
        AccountId::Insurance,
        amount,
    );
    match tx {
        Ok(tx) => {
            if let Err(e) = app.bank.apply(tx, crate::now_ms()).await {
                settle_failed("proof slash", e);
            }
        }
        Err(e) => settle_failed("proof slash", e),
    }
}

/// Why a settlement step was not applied (logged and counted; the money
/// stays where it is for the recovery sweep).
#[derive(Debug, thiserror::Error)]
enum StepFailed {
    /// Amount arithmetic or an unknown currency.
    #[error(transparent)]
    Money(#[from] proofmesh_ledger::MoneyError),
    /// The step could not be built.
    #[error(transparent)]
    Plan(#[from] ReconcileError),
    /// The ledger refused it or could not commit it.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// Reading the pool share, receipt or audit failed.
    #[error(transparent)]
    Store(#[from] proofmesh_store::StoreError),
    /// A step that pays or refunds a charge for a job without its receipt.
    #[error("job {job_id}: {step:?} needs the job's receipt")]
    NoReceipt {
        /// Job.
        job_id: String,
        /// The step.
        step: Step,
    },
    /// A finished audit without its stored report.
    #[error("audit of receipt {receipt_id} is {status} but its report is not stored")]
    NoReport {
        /// Receipt.
        receipt_id: String,
        /// Stored audit status.
        status: String,
    },
}

/// One job, as the settlement steps need it.
struct JobView<'a> {
    job_id: &'a str,
    client_id: &'a str,
    /// The countersigned receipt (completed jobs).
    receipt: Option<&'a Receipt>,
    /// Its audit, if one exists.
    audit_id: Option<&'a str>,
}

impl JobView<'_> {
    fn parties(&self) -> JobParties {
        let provider = self.receipt.map(|r| r.body.provider_key.as_str());
        parties(self.job_id, self.client_id, provider.unwrap_or(""))
    }
}

/// Builds and applies one settlement step for `job` in `currency` (see
/// [`proofmesh_ledger::reconcile`]). Each step's key derives from the job
/// id, so a step that was applied before (by the job driver, the audit
/// handler or an earlier sweep) with the same content is a no-op. A step
/// that moves nothing (a free job) is skipped.
async fn apply_step(
    app: &AppState,
    job: &JobView<'_>,
    currency: Currency,
    step: Step,
) -> Result<(), StepFailed> {
    let needs_receipt = !matches!(step, Step::RefundEscrow { .. });
    let (receipt_id, charge) = match job.receipt {
        Some(r) => (
            r.body.receipt_id.as_str(),
            Amount::from_micros(currency, r.body.price.charged_micros)?,
        ),
        None if needs_receipt => {
            return Err(StepFailed::NoReceipt {
                job_id: job.job_id.to_owned(),
                step,
            })
        }
        None => ("", Amount::zero(currency)),
    };
    let parties = job.parties();
    // A pool's share of the provider's earnings; if the store cannot say,
    // settle nothing now (the money stays put for the recovery sweep)
    // rather than pay the provider what it pledged away.
    let pool = if step.pays_out() {
        pool_share(app, &parties.provider).await?
    } else {
        None
    };
    let stake = if step.slashes() {
        let account = AccountId::ProviderStake(parties.provider.clone());
        let micros = app.bank.balance(&account, currency).await?;
        Amount::from_micros(currency, u64::try_from(micros).unwrap_or(0))?
    } else {
        Amount::zero(currency)
    };
    let cfg = app.config.settlement();
    let inputs = StepInputs {
        job: &parties,
        receipt_id,
        audit_id: job.audit_id,
        charge,
        cfg: &cfg,
        pool: pool.as_ref(),
        stake,
    };
    let built = match build_step(step, &inputs) {
        Ok(s) => s,
        Err(ReconcileError::Settle(settle::SettleError::NothingToSettle { .. })) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    app.bank.apply(built.tx, crate::now_ms()).await?;
    Ok(())
}

/// Settles whatever `job` still needs in `currency`, given its state and
/// its audit's, from the balances its escrow and hold accounts hold now
/// ([`proofmesh_ledger::reconcile::plan`]). Returns the steps applied.
///
/// The escrow is read before the hold: the completion settlement empties
/// the one into the other in a single transaction, so reading in this order
/// can see money in both (the completion step is then an idempotent no-op)
/// but never in neither.
async fn reconcile_job(
    app: &AppState,
    job: &JobView<'_>,
    state: JobState,
    audit: AuditState,
    currency: Currency,
) -> Result<Vec<Step>, StepFailed> {
    let read = |account: AccountId| async move {
        let micros = app.bank.balance(&account, currency).await?;
        Ok::<_, StepFailed>(Amount::from_micros(
            currency,
            u64::try_from(micros).unwrap_or(0),
        )?)
    };
    let escrow = read(AccountId::JobEscrow(job.job_id.to_owned())).await?;
    let hold = read(AccountId::AuditHold(job.job_id.to_owned())).await?;
    let steps = reconcile::plan(state, audit, escrow, hold);
    for step in &steps {
        apply_step(app, job, currency, *step).await?;
    }
    Ok(steps)
}

/// Settles a completed job from its countersigned receipt: the exact charge
/// goes to the provider (or to the audit hold), the rest back to the client.
/// `held` is what was escrowed; if the audit's report was settled first, it
/// already applied this same transaction and this call changes nothing.
pub async fn settle_completed(
    app: &AppState,
    client_id: &str,
    receipt: &Receipt,
    held: Amount,
    audited: bool,
) {
    let decision = if audited {
        AuditDecision::Hold
    } else {
        AuditDecision::NotAudited
    };
    let job = JobView {
        job_id: &receipt.body.job_id,
        client_id,
        receipt: Some(receipt),
        audit_id: None,
    };
    let step = Step::Complete {
        escrowed: held,
        decision,
    };
    if let Err(e) = apply_step(app, &job, held.currency(), step).await {
        settle_failed("release", e);
    }
}

/// The share of a provider's earnings pledged to its revenue-share pool.
async fn pool_share(
    app: &AppState,
    provider: &str,
) -> Result<Option<settle::PoolShare>, proofmesh_store::StoreError> {
    Ok(app
        .store
        .pool_of_provider(provider)
        .await?
        .map(|p| settle::PoolShare {
            pool: p.pool_id,
            share_bps: p.share_bps,
        }))
}

/// Refunds the whole escrow of a job that produced no receipt.
pub async fn refund_failed_job(app: &AppState, job_id: &str, client_id: &str, held: Amount) {
    let job = JobView {
        job_id,
        client_id,
        receipt: None,
        audit_id: None,
    };
    let step = Step::RefundEscrow { escrowed: held };
    if let Err(e) = apply_step(app, &job, held.currency(), step).await {
        settle_failed("refund", e);
    }
}

/// Ends an audit hold: release on pass; on failure, refund the client in
/// full and slash the provider's stake to the insurance account.
///
/// Self-sufficient whatever order the job driver runs in (issue 17): if the
/// job's escrow still holds money, its completion settlement has not run
/// yet (the driver settles only after the receipt is logged, and a fast
/// verifier reports before that), so it is applied here first — as a hold
/// of the escrow's balance, which is exactly what was escrowed and exactly
/// the transaction the driver builds, so the driver's later call is a no-op.
pub async fn settle_audit(
    app: &AppState,
    client_id: &str,
    receipt: &Receipt,
    report: &AuditReport,
) {
    let b = &receipt.body;
    let Ok(currency) = Currency::parse(&b.price.currency) else {
        return settle_failed("audit", "unknown currency");
    };
    let audit = match report.body.outcome {
        AuditOutcome::Passed => AuditState::Passed,
        AuditOutcome::Failed => AuditState::Failed,
    };
    let job = JobView {
        job_id: &b.job_id,
        client_id,
        receipt: Some(receipt),
        audit_id: Some(&report.body.audit_id),
    };
    match reconcile_job(app, &job, JobState::Completed, audit, currency).await {
        // Nothing escrowed or held although the job charged: it was paid
        // out as unaudited, which no flow does for a job with an audit.
        // A failed audit then refunds nothing; say so rather than hide it.
        Ok(steps)
            if steps.is_empty() && audit == AuditState::Failed && b.price.charged_micros > 0 =>
        {
            settle_failed(
                "audit",
                "failed audit found no escrow or hold (the charge was paid out); not clawed back",
            )
        }
        Ok(_) => {}
        Err(e) => settle_failed("audit", e),
    }
}

/// Posts the provider's initial stake once (idempotent by key).
pub async fn ensure_stake(app: &AppState, provider_key: &str) {
    let Ok(currency) = Currency::parse("USD") else {
        return;
    };
    let micros = u64::try_from(app.config.initial_stake_micros).unwrap_or(0);
    let Ok(amount) = Amount::from_micros(currency, micros) else {
        return;
    };
    if amount.is_zero() {
        return;
    }
    let reference = format!("initial-{}", provider_key.trim_start_matches("ed25519:"));
    match settle::post_stake(provider_key, amount, &reference) {
        Ok(tx) => {
            if let Err(e) = app.bank.apply(tx, crate::now_ms()).await {
                settle_failed("stake", e);
            }
        }
        Err(e) => settle_failed("stake", e),
    }
}

fn balances_json(balances: Vec<(String, i64)>) -> Vec<serde_json::Value> {
    balances
        .into_iter()
        .map(|(c, m)| serde_json::json!({"currency": c, "micros": m}))
        .collect()
}

async fn activity_json(
    app: &AppState,
    account: &AccountId,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = app
        .store
        .ledger_activity(&account.to_string(), 100)
        .await
        .map_err(|e| ApiError::internal("usage", e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "seq": r.seq, "reason": r.reason, "link": r.link,
                "currency": r.currency, "delta_micros": r.delta, "at_ms": r.at_ms,
            })
        })
        .collect())
}

/// `GET /v1/balance`: the caller's prepaid balance.
pub async fn balance(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&app, &headers).await?;
    let account = AccountId::Client(client.client_id.clone());
    let b = app
        .bank
        .balances(&account)
        .await
        .map_err(|e| ApiError::internal("balance", e))?;
    Ok(Json(
        serde_json::json!({"client_id": client.client_id, "balances": balances_json(b)}),
    ))
}

/// `GET /v1/usage`: the caller's latest 100 ledger lines (escrows, refunds).
pub async fn usage(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&app, &headers).await?;
    let account = AccountId::Client(client.client_id.clone());
    let lines = activity_json(&app, &account).await?;
    Ok(Json(
        serde_json::json!({"client_id": client.client_id, "activity": lines}),
    ))
}

/// `GET /v1/providers/{key}/earnings`: a provider's earnings and stake, and
/// its latest earnings lines. Public: provider revenue is what metrics
/// statements publish anyway.
pub async fn earnings(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    proofmesh_receipt::PublicKey::parse(&key)
        .map_err(|_| ApiError::invalid_param("provider", "not an ed25519:<hex> key"))?;
    let earnings = AccountId::ProviderEarnings(key.clone());
    let stake = AccountId::ProviderStake(key.clone());
    let e = app
        .bank
        .balances(&earnings)
        .await
        .map_err(|e| ApiError::internal("earnings", e))?;
    let s = app
        .bank
        .balances(&stake)
        .await
        .map_err(|e| ApiError::internal("stake", e))?;
    Ok(Json(serde_json::json!({
        "provider_key": key,
        "earnings": balances_json(e),
        "stake": balances_json(s),
        "activity": activity_json(&app, &earnings).await?,
    })))
}

/// What the startup recovery sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Jobs left `dispatched` by a previous process, now failed.
    pub failed_jobs: u64,
    /// Escrows refunded to clients (jobs without a result).
    pub refunded: u64,
    /// Escrows of completed jobs settled from their receipts.
    pub settled: u64,
    /// Audit holds paid out (audit passed, or no audit exists).
    pub holds_released: u64,
    /// Audit holds refunded to the client (audit failed; stake slashed).
    pub holds_refunded: u64,
    /// Job accounts that could not be settled (logged and counted as
    /// settlement failures; the money stays for the next sweep).
    pub unsettled: u64,
    /// Idempotency claims freed.
    pub claims_freed: u64,
}

impl Recovered {
    fn count(&mut self, steps: &[Step]) {
        for s in steps {
            match s {
                Step::RefundEscrow { .. } => self.refunded += 1,
                Step::Complete { .. } => self.settled += 1,
                Step::ReleaseHold | Step::ReleaseUnaudited => self.holds_released += 1,
                Step::RefundHold => self.holds_refunded += 1,
            }
        }
    }
}

/// Settles what a crash left unsettled, before the coordinator serves:
/// jobs still `dispatched` are failed (their provider sessions died with
/// the process); then every job whose escrow or audit hold holds money gets
/// the steps [`proofmesh_ledger::reconcile::plan`] names — the escrow of a
/// failed job is refunded; a completed job's escrow is settled from its
/// countersigned receipt (held if it has an audit, paid out if not); a hold
/// is released if its audit passed, refunded (and the provider slashed) if
/// it failed, and left alone while the audit is pending.
///
/// A hold on a completed job without an audit row (the process stopped
/// between holding the charge and recording the audit) is paid out as for
/// an unaudited job: the audit draw that chose it was never recorded, so no
/// verifier will ever report on it, and the countersigned receipt is what an
/// unaudited job is paid on. Money in the account of a job with no job row
/// cannot be attributed and is left (and reported by the invariant check
/// only once a job row exists).
///
/// Every transaction's key derives from the job id, so running this twice,
/// or after the normal path already settled, changes nothing.
pub async fn recover(app: &AppState) -> Result<Recovered, proofmesh_store::StoreError> {
    let mut out = Recovered::default();
    let now = crate::now_ms();
    for job in app.store.unsettled_jobs().await? {
        if job.status == "dispatched" {
            app.store
                .fail_job(
                    &job.job_id,
                    "coordinator restarted before the job finished",
                    now,
                )
                .await?;
            out.failed_jobs += 1;
        }
    }
    let funded = app.store.funded_job_accounts().await?;
    let mut i = 0;
    while i < funded.len() {
        // Rows come ordered by job id: one group per job.
        let n = funded[i..]
            .iter()
            .take_while(|a| a.job_id == funded[i].job_id)
            .count();
        let group = &funded[i..i + n];
        i += n;
        if let Err(e) = recover_job(app, group, &mut out).await {
            settle_failed("recover", e);
            out.unsettled += 1;
        }
    }
    out.claims_freed = app
        .store
        .idem_sweep(now.saturating_sub(crate::idempotency::RETENTION_MS))
        .await?;
    Ok(out)
}

/// Settles one job's funded accounts (one or more currencies).
async fn recover_job(
    app: &AppState,
    group: &[FundedJobAccount],
    out: &mut Recovered,
) -> Result<(), StepFailed> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let Some(row) = &first.job else {
        tracing::warn!(job = %first.job_id, "money in the account of an unknown job; left as is");
        out.unsettled += 1;
        return Ok(());
    };
    let state = JobState::parse(&row.status)?;
    let audit = AuditState::parse(first.audit_status.as_deref())?;
    let stored = match state {
        JobState::Completed => app.store.get_receipt(&row.receipt_id).await?,
        _ => None,
    };
    let report = match audit {
        AuditState::Passed | AuditState::Failed => {
            let reports = app.store.audit_reports(&row.receipt_id).await?;
            let Some(r) = reports.into_iter().next() else {
                return Err(StepFailed::NoReport {
                    receipt_id: row.receipt_id.clone(),
                    status: first.audit_status.clone().unwrap_or_default(),
                });
            };
            Some(r)
        }
        _ => None,
    };
    let job = JobView {
        job_id: &first.job_id,
        client_id: &row.client_id,
        receipt: stored.as_ref().map(|s| &s.receipt),
        audit_id: report.as_ref().map(|r| r.body.audit_id.as_str()),
    };
    let mut currencies: Vec<&str> = group.iter().map(|a| a.currency.as_str()).collect();
    currencies.sort_unstable();
    currencies.dedup();
    for code in currencies {
        let currency = Currency::parse(code)?;
        let steps = reconcile_job(app, &job, state, audit, currency).await?;
        out.count(&steps);
    }
    Ok(())
}

/// Why the settlement invariant could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] proofmesh_store::StoreError),
    /// A stored job or audit status is not one the ledger knows.
    #[error("account {kind}:{job_id}: {source}")]
    Status {
        /// `escrow` or `hold`.
        kind: String,
        /// Job.
        job_id: String,
        /// Why.
        source: ReconcileError,
    },
    /// A stored currency code is not one the ledger knows.
    #[error("account {kind}:{job_id}: {source}")]
    Currency {
        /// `escrow` or `hold`.
        kind: String,
        /// Job.
        job_id: String,
        /// Why.
        source: proofmesh_ledger::MoneyError,
    },
}

/// Checks "every job escrow and every audit hold is zero once its job and
/// its audit are final" ([`proofmesh_ledger::check_job_accounts`]) over the
/// store. Jobs (and audits) that became final after `final_before_ms` are
/// counted as recent, not as violations; `None` checks everything. Read-only;
/// works on a live coordinator's database.
pub async fn check_settlement<S: BillingStore + ?Sized>(
    store: &S,
    final_before_ms: Option<u64>,
) -> Result<InvariantReport, CheckError> {
    let rows = store.funded_job_accounts().await?;
    let mut accounts = Vec::with_capacity(rows.len());
    for r in rows {
        accounts.push(job_account(r)?);
    }
    Ok(check_job_accounts(&accounts, final_before_ms))
}

fn job_account(r: FundedJobAccount) -> Result<JobAccount, CheckError> {
    let status = |source| CheckError::Status {
        kind: r.kind.clone(),
        job_id: r.job_id.clone(),
        source,
    };
    let kind = match r.kind.as_str() {
        "escrow" => JobAccountKind::Escrow,
        _ => JobAccountKind::Hold,
    };
    let currency = Currency::parse(&r.currency).map_err(|source| CheckError::Currency {
        kind: r.kind.clone(),
        job_id: r.job_id.clone(),
        source,
    })?;
    let job = match &r.job {
        Some(j) => Some(JobState::parse(&j.status).map_err(status)?),
        None => None,
    };
    let audit = AuditState::parse(r.audit_status.as_deref()).map_err(status)?;
    let job_final_at = r.job.as_ref().and_then(|j| j.finished_at_ms);
    let final_since_ms = match audit {
        AuditState::NotAudited => job_final_at,
        AuditState::Pending => None,
        AuditState::Passed | AuditState::Failed => job_final_at.max(r.audit_finished_at_ms),
    };
    Ok(JobAccount {
        kind,
        job_id: r.job_id,
        currency,
        balance: r.balance,
        job,
        audit,
        final_since_ms,
    })
}
