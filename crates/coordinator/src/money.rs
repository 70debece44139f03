//! The one owner of a job's money (issue 18): the quote, the escrow, the
//! release to the provider, the refund, the slash, and the idempotency
//! claim that is freed with a refund. Every job kind's money goes through
//! [`Money`]; nothing else in the coordinator moves funds.
//!
//! The rules, in order of a job's life:
//! - **Quote** ([`Quote::ceiling`]): a job is escrowed at each rate's
//!   highest among the live offers for its model, so whichever provider is
//!   chosen, its exact charge fits the escrow.
//! - **Escrow** ([`Money::escrow`]): the worst-case charge at the quote; a
//!   client price cap lowers the completion budget to fit (400 if even the
//!   prompt does not); 402 `insufficient_balance` if the balance is short.
//! - **Dispatch price** ([`Quote::dispatch_rate`]): the chosen provider's own
//!   rate, decided once when the attempt is dispatched. The charge is then
//!   computed by one formula, [`proofmesh_receipt::token_cost`], in the
//!   receipt and in the ledger alike.
//! - **Settle** ([`Money::settle_completed`]): the receipt's exact charge to
//!   the provider (minus the protocol fee, and a pool's share), or to the
//!   audit hold; the rest back to the client.
//! - **Refund** ([`Money::refund_failed`]): a job without a receipt gets its
//!   whole escrow back, and its idempotency claim is freed so a retry runs.
//! - **Audit** ([`Money::settle_audit`]): a hold is released on a pass; on a
//!   failure the client is refunded and the provider's stake slashed.
//! - **Slash** ([`Money::slash_failed_proof`]): a proof that fails costs the
//!   provider stake, up to what it holds.
//! - **Recover** ([`Money::recover`]): what a crash left unsettled.
//!
//! After a job has been answered, a settlement error is logged and counted,
//! never shown to the client: the money stays in the job's escrow or hold
//! account, so nothing is lost, and the next start's recovery sweep settles
//! it. Which steps a job still needs is decided in one pure place,
//! [`proofmesh_ledger::reconcile`], from its state and its accounts'
//! balances, whoever calls. Every transaction's key derives from the job
//! id, so a repeated step never charges twice. Stake lives only in the
//! ledger: slashes move it, and [`Money::stake`] reads it.

use std::sync::Arc;

use proofmesh_ambient::clock::Clock;
use proofmesh_ledger::reconcile::{self, build_step, Step, StepInputs};
use proofmesh_ledger::settle::{self, AuditDecision, JobParties};
use proofmesh_ledger::{
    AccountId, Amount, AuditState, Currency, JobState, LedgerError, ModelPrice, ReconcileError,
    SettlementConfig,
};
use proofmesh_receipt::{AuditOutcome, AuditReport, Receipt};
use proofmesh_settlement::{Bank, BankError};
use proofmesh_store::{FundedJobAccount, Store};
use proofmesh_wire::PriceRate;

use crate::error::ApiError;
use crate::idempotency::Idem;

/// The parties of a job, as the ledger names them.
pub fn parties(job_id: &str, client_id: &str, provider: &str) -> JobParties {
    JobParties {
        job_id: job_id.to_owned(),
        client: client_id.to_owned(),
        provider: provider.to_owned(),
    }
}

/// What a job is escrowed at: each rate at its highest among the offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The escrow rate.
    pub rate: PriceRate,
}

impl Quote {
    /// The ceiling of `offers` (free, in USD, when there is none).
    pub fn ceiling(offers: impl IntoIterator<Item = PriceRate>) -> Quote {
        let rate = offers
            .into_iter()
            .reduce(|a, b| PriceRate {
                input_per_mtok_micros: a.input_per_mtok_micros.max(b.input_per_mtok_micros),
                output_per_mtok_micros: a.output_per_mtok_micros.max(b.output_per_mtok_micros),
                ..a
            })
            .unwrap_or(PriceRate {
                currency: "USD".into(),
                input_per_mtok_micros: 0,
                output_per_mtok_micros: 0,
            });
        Quote { rate }
    }

    /// The rate an attempt is dispatched at: the chosen provider's own offer
    /// when it is in the quote's currency (it is then ≤ the quote, so its
    /// charge fits the escrow), else the quote itself.
    pub fn dispatch_rate(&self, offer: Option<&PriceRate>) -> PriceRate {
        match offer {
            Some(o) if o.currency == self.rate.currency => o.clone(),
            _ => self.rate.clone(),
        }
    }

    fn price(&self) -> Result<ModelPrice, ApiError> {
        Ok(ModelPrice {
            currency: Currency::parse(&self.rate.currency)
                .map_err(|e| ApiError::internal("price", e))?,
            input_per_mtok_micros: self.rate.input_per_mtok_micros,
            output_per_mtok_micros: self.rate.output_per_mtok_micros,
            gpu_hour_micros: None,
        })
    }
}

/// The most a job can be charged for, in tokens (a proved inference counts
/// as one prompt token and no completion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeBound {
    /// Prompt tokens, at most.
    pub prompt_tokens: u32,
    /// Completion tokens, at most.
    pub max_completion_tokens: u32,
    /// The client's price cap, micro-units.
    pub max_price_micros: Option<u64>,
}

/// An escrow taken: what is held, and the completion budget that fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escrowed {
    /// Held from the client.
    pub held: Amount,
    /// Completion tokens the job may produce (≤ the asked maximum).
    pub max_completion_tokens: u32,
}

/// Why a settlement step was not applied (logged and counted; the money
/// stays where it is for the recovery sweep).
#[derive(Debug, thiserror::Error)]
pub enum StepFailed {
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

fn settle_failed(context: &'static str, e: impl std::fmt::Display) {
    tracing::error!(error = %e, context, "settlement not applied; the money stays in escrow or hold for the recovery sweep");
    metrics::counter!("proofmesh_settlement_failures_total", "step" => context).increment(1);
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

/// Stake and slash amounts, micro-USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StakeRules {
    /// Posted once for each new provider.
    pub initial_stake_micros: u64,
    /// Taken from a provider's stake per failed audit or proof.
    pub slash_micros: u64,
}

/// The money service. Cheap to clone; narrow dependencies: the ledger, the
/// store (pool shares, receipts, audits, idempotency claims) and a clock.
#[derive(Clone)]
pub struct Money {
    bank: Bank,
    store: Arc<dyn Store>,
    settlement: SettlementConfig,
    stake: StakeRules,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Money")
            .field("settlement", &self.settlement)
            .field("stake", &self.stake)
            .finish()
    }
}

impl Money {
    /// The service over `bank`, with `store` for what settlement reads.
    pub fn new(
        bank: Bank,
        store: Arc<dyn Store>,
        settlement: SettlementConfig,
        stake: StakeRules,
        clock: Arc<dyn Clock>,
    ) -> Money {
        Money {
            bank,
            store,
            settlement,
            stake,
            clock,
        }
    }

    /// The ledger itself (read endpoints).
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Escrows the worst-case charge of `bound` at `quote` from the client.
    /// With a price cap, the completion budget is lowered so the worst case
    /// fits the cap (400 if even the prompt does not). A free job holds
    /// nothing. 402 `insufficient_balance` if the balance cannot cover it.
    pub async fn escrow(
        &self,
        job_id: &str,
        client_id: &str,
        quote: &Quote,
        bound: ChargeBound,
    ) -> Result<Escrowed, ApiError> {
        let price = quote.price()?;
        let job = parties(job_id, client_id, "");
        let cap = bound
            .max_price_micros
            .map(|m| Amount::from_micros(price.currency, m))
            .transpose()
            .map_err(|e| ApiError::invalid_param("max_price_micros", e.to_string()))?;
        let asked = bound.max_completion_tokens;
        let esc = match settle::escrow_at_dispatch(&job, &price, bound.prompt_tokens, asked, cap) {
            Ok(e) if e.max_completion_tokens > 0 || asked == 0 => e,
            Err(settle::SettleError::NothingToSettle { .. }) => {
                return Ok(Escrowed {
                    held: Amount::zero(price.currency),
                    max_completion_tokens: asked,
                })
            }
            Ok(_) | Err(settle::SettleError::AboveMaxPrice { .. }) => {
                return Err(too_low(&price, bound.prompt_tokens))
            }
            Err(e) => return Err(ApiError::internal("escrow", e)),
        };
        let held = esc.settlement.breakdown.held;
        match self
            .bank
            .apply(esc.settlement.tx, self.clock.now_ms())
            .await
        {
            Ok(_) => Ok(Escrowed {
                held,
                max_completion_tokens: asked.min(esc.max_completion_tokens),
            }),
            Err(BankError::Refused(LedgerError::InsufficientFunds { balance, .. })) => Err(
                ApiError::insufficient_balance(held.micros(), balance, held.currency().code()),
            ),
            Err(e) => Err(ApiError::internal("escrow", e)),
        }
    }

    /// A provider's stake in `currency`, micro-units (the ledger is its one
    /// source of truth).
    pub async fn stake(&self, provider: &str, currency: Currency) -> Result<u64, BankError> {
        let account = AccountId::ProviderStake(provider.to_string());
        let micros = self.bank.balance(&account, currency).await?;
        Ok(u64::try_from(micros).unwrap_or(0))
    }

    /// What `provider`'s USD stake will hold once one more slash is taken
    /// (never below zero), read from the ledger: the figure the audit
    /// record's exclusion rule uses. If the ledger cannot be read, nothing
    /// is assumed (`i64::MAX`: stake alone excludes no one).
    pub async fn stake_after_slash(&self, provider: &str) -> i64 {
        let Ok(currency) = Currency::parse("USD") else {
            return i64::MAX;
        };
        match self.stake(provider, currency).await {
            Ok(s) => i64::try_from(s.saturating_sub(self.stake.slash_micros)).unwrap_or(i64::MAX),
            Err(e) => {
                tracing::error!(error = %e, provider, "reading stake");
                i64::MAX
            }
        }
    }

    /// Slashes a provider whose proof of job `job_id` failed (a failed audit
    /// without a held charge: nothing was paid for it), up to what its stake
    /// holds, to the insurance fund. Idempotent by job and provider.
    pub async fn slash_failed_proof(&self, job_id: &str, provider: &str) {
        let Ok(currency) = Currency::parse("USD") else {
            return;
        };
        let stake = match self.stake(provider, currency).await {
            Ok(s) => s,
            Err(e) => return settle_failed("proof slash", e),
        };
        let Ok(amount) = Amount::from_micros(currency, self.stake.slash_micros.min(stake)) else {
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
            AccountId::ProviderStake(provider.to_string()),
            AccountId::Insurance,
            amount,
        );
        match tx {
            Ok(tx) => {
                if let Err(e) = self.bank.apply(tx, self.clock.now_ms()).await {
                    settle_failed("proof slash", e);
                }
            }
            Err(e) => settle_failed("proof slash", e),
        }
    }

    /// Posts the provider's initial stake once (idempotent by key).
    pub async fn ensure_stake(&self, provider_key: &str) {
        let Ok(currency) = Currency::parse("USD") else {
            return;
        };
        let Ok(amount) = Amount::from_micros(currency, self.stake.initial_stake_micros) else {
            return;
        };
        if amount.is_zero() {
            return;
        }
        let reference = format!("initial-{}", provider_key.trim_start_matches("ed25519:"));
        match settle::post_stake(provider_key, amount, &reference) {
            Ok(tx) => {
                if let Err(e) = self.bank.apply(tx, self.clock.now_ms()).await {
                    settle_failed("stake", e);
                }
            }
            Err(e) => settle_failed("stake", e),
        }
    }

    /// Builds and applies one settlement step for `job` in `currency` (see
    /// [`proofmesh_ledger::reconcile`]). Each step's key derives from the
    /// job id, so a step that was applied before (by the job driver, the
    /// audit handler or an earlier sweep) with the same content is a no-op.
    /// A step that moves nothing (a free job) is skipped.
    async fn apply_step(
        &self,
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
        // A pool's share of the provider's earnings; if the store cannot
        // say, settle nothing now (the money stays put for the recovery
        // sweep) rather than pay the provider what it pledged away.
        let pool = if step.pays_out() {
            self.pool_share(&parties.provider).await?
        } else {
            None
        };
        let stake = if step.slashes() {
            Amount::from_micros(currency, self.stake(&parties.provider, currency).await?)?
        } else {
            Amount::zero(currency)
        };
        let inputs = StepInputs {
            job: &parties,
            receipt_id,
            audit_id: job.audit_id,
            charge,
            cfg: &self.settlement,
            pool: pool.as_ref(),
            stake,
        };
        let built = match build_step(step, &inputs) {
            Ok(s) => s,
            Err(ReconcileError::Settle(settle::SettleError::NothingToSettle { .. })) => {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        };
        self.bank.apply(built.tx, self.clock.now_ms()).await?;
        Ok(())
    }

    /// Settles whatever `job` still needs in `currency`, given its state and
    /// its audit's, from the balances its escrow and hold accounts hold now
    /// ([`proofmesh_ledger::reconcile::plan`]). Returns the steps applied.
    ///
    /// The escrow is read before the hold: the completion settlement empties
    /// the one into the other in a single transaction, so reading in this
    /// order can see money in both (the completion step is then an
    /// idempotent no-op) but never in neither.
    async fn reconcile_job(
        &self,
        job: &JobView<'_>,
        state: JobState,
        audit: AuditState,
        currency: Currency,
    ) -> Result<Vec<Step>, StepFailed> {
        let read = |account: AccountId| async move {
            let micros = self.bank.balance(&account, currency).await?;
            Ok::<_, StepFailed>(Amount::from_micros(
                currency,
                u64::try_from(micros).unwrap_or(0),
            )?)
        };
        let escrow = read(AccountId::JobEscrow(job.job_id.to_owned())).await?;
        let hold = read(AccountId::AuditHold(job.job_id.to_owned())).await?;
        let steps = reconcile::plan(state, audit, escrow, hold);
        for step in &steps {
            self.apply_step(job, currency, *step).await?;
        }
        Ok(steps)
    }

    /// Settles a completed job from its countersigned receipt: the exact
    /// charge goes to the provider (or to the audit hold), the rest back to
    /// the client. `held` is what was escrowed; if the audit's report was
    /// settled first, it already applied this same transaction and this
    /// call changes nothing.
    pub async fn settle_completed(
        &self,
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
        if let Err(e) = self.apply_step(&job, held.currency(), step).await {
            settle_failed("release", e);
        }
    }

    /// The share of a provider's earnings pledged to its revenue-share pool.
    async fn pool_share(
        &self,
        provider: &str,
    ) -> Result<Option<settle::PoolShare>, proofmesh_store::StoreError> {
        Ok(self
            .store
            .pool_of_provider(provider)
            .await?
            .map(|p| settle::PoolShare {
                pool: p.pool_id,
                share_bps: p.share_bps,
            }))
    }

    /// Refunds the whole escrow of a job that produced no receipt, then
    /// frees its idempotency claim (so a retry runs anew; in this order, a
    /// retry can never find the claim free while the money is still held).
    pub async fn refund_failed(
        &self,
        job_id: &str,
        client_id: &str,
        held: Amount,
        idem: Option<&Idem>,
    ) {
        let job = JobView {
            job_id,
            client_id,
            receipt: None,
            audit_id: None,
        };
        let step = Step::RefundEscrow { escrowed: held };
        if let Err(e) = self.apply_step(&job, held.currency(), step).await {
            settle_failed("refund", e);
        }
        if let Some(idem) = idem {
            self.release_claim(idem).await;
        }
    }

    /// Frees the idempotency claim of a request that charged nothing.
    pub async fn release_claim(&self, idem: &Idem) {
        if let Err(e) = self.store.idem_release(&idem.client_id, &idem.key).await {
            tracing::error!(error = %e, "releasing idempotency key");
        }
    }

    /// Ends an audit hold: release on pass; on failure, refund the client
    /// in full and slash the provider's stake to the insurance account.
    ///
    /// Self-sufficient whatever order the job driver runs in (issue 17): if
    /// the job's escrow still holds money, its completion settlement has not
    /// run yet (the driver settles only after the receipt is logged, and a
    /// fast verifier reports before that), so it is applied here first — as
    /// a hold of the escrow's balance, which is exactly what was escrowed
    /// and exactly the transaction the driver builds, so the driver's later
    /// call is a no-op.
    pub async fn settle_audit(&self, client_id: &str, receipt: &Receipt, report: &AuditReport) {
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
        match self
            .reconcile_job(&job, JobState::Completed, audit, currency)
            .await
        {
            // Nothing escrowed or held although the job charged: it was
            // paid out as unaudited, which no flow does for a job with an
            // audit. A failed audit then refunds nothing; say so rather
            // than hide it.
            Ok(steps)
                if steps.is_empty()
                    && audit == AuditState::Failed
                    && b.price.charged_micros > 0 =>
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
}

fn too_low(price: &ModelPrice, prompt: u32) -> ApiError {
    ApiError::invalid_param(
        "max_price_micros",
        format!(
            "max_price_micros is too low: the prompt alone may cost up to {} micro-{}",
            price
                .charge(prompt, 1)
                .map(|a| a.micros())
                .unwrap_or(u64::MAX),
            price.currency.code()
        ),
    )
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

impl Money {
    /// Settles what a crash left unsettled, before the coordinator serves:
    /// jobs still `dispatched` are failed (their provider sessions died with
    /// the process); then every job whose escrow or audit hold holds money
    /// gets the steps [`proofmesh_ledger::reconcile::plan`] names — the
    /// escrow of a failed job is refunded; a completed job's escrow is
    /// settled from its countersigned receipt (held if it has an audit, paid
    /// out if not); a hold is released if its audit passed, refunded (and
    /// the provider slashed) if it failed, and left alone while the audit is
    /// pending.
    ///
    /// A hold on a completed job without an audit row (the process stopped
    /// between holding the charge and recording the audit) is paid out as
    /// for an unaudited job: the audit draw that chose it was never
    /// recorded, so no verifier will ever report on it, and the
    /// countersigned receipt is what an unaudited job is paid on. Money in
    /// the account of a job with no job row cannot be attributed and is left
    /// (and reported by the invariant check only once a job row exists).
    ///
    /// Every transaction's key derives from the job id, so running this
    /// twice, or after the normal path already settled, changes nothing.
    pub async fn recover(&self) -> Result<Recovered, proofmesh_store::StoreError> {
        let mut out = Recovered::default();
        let now = self.clock.now_ms();
        for job in self.store.unsettled_jobs().await? {
            if job.status == "dispatched" {
                self.store
                    .fail_job(
                        &job.job_id,
                        "coordinator restarted before the job finished",
                        now,
                    )
                    .await?;
                out.failed_jobs += 1;
            }
        }
        let funded = self.store.funded_job_accounts().await?;
        let mut i = 0;
        while i < funded.len() {
            // Rows come ordered by job id: one group per job.
            let n = funded[i..]
                .iter()
                .take_while(|a| a.job_id == funded[i].job_id)
                .count();
            let group = &funded[i..i + n];
            i += n;
            if let Err(e) = self.recover_job(group, &mut out).await {
                settle_failed("recover", e);
                out.unsettled += 1;
            }
        }
        out.claims_freed = self
            .store
            .idem_sweep(now.saturating_sub(crate::idempotency::RETENTION_MS))
            .await?;
        Ok(out)
    }

    /// Settles one job's funded accounts (one or more currencies).
    async fn recover_job(
        &self,
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
            JobState::Completed => self.store.get_receipt(&row.receipt_id).await?,
            _ => None,
        };
        let report = match audit {
            AuditState::Passed | AuditState::Failed => {
                let reports = self.store.audit_reports(&row.receipt_id).await?;
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
            let steps = self.reconcile_job(&job, state, audit, currency).await?;
            out.count(&steps);
        }
        Ok(())
    }
}
