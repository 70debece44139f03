//! Settlement flows: the transactions the coordinator applies as a job moves
//! from dispatch to payment (or refund), plus deposits, stake and withdrawals.
//!
//! Why: the money rules for a job live in one pure place, and each step has a
//! deterministic idempotency key, so a retried request (or a coordinator that
//! crashed between steps and replays them) never charges twice:
//!
//! | step | key | movement |
//! |---|---|---|
//! | dispatch | `escrow/<job>` | client → escrow: `min(worst-case charge, client max price)` |
//! | completed, not audited | `settle/<job>` | escrow → earnings + fee + pool; unused → client |
//! | completed, audited | `settle/<job>` | escrow → audit hold (charge); unused → client |
//! | failed, no receipt | `settle/<job>` | escrow → client (all) |
//! | audit passed | `audit/<job>` | hold → earnings + fee + pool |
//! | held, but no audit exists | `audit/<job>` | hold → earnings + fee + pool |
//! | audit failed | `audit/<job>` | hold → client (all); stake → insurance (slash) |
//! | audit failed after release | `audit/<job>` | stake → client (charge), stake → insurance |
//!
//! Because pass and fail share `audit/<job>`, one job can never be both paid
//! and refunded. Which of these steps a job still needs, whatever ran
//! before, is [`crate::reconcile::plan`]. Splits round down in the payer's
//! favour, in this order: `fee = floor(charge × fee_bps / 10⁴)`, `pool =
//! floor((charge − fee) × share_bps / 10⁴)`, `provider = charge − fee − pool`
//! (the provider keeps the rounding remainders). A step that would move nothing is an error
//! ([`SettleError::NothingToSettle`]): free jobs are not escrowed.

use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::money::{check_bps, Amount, MoneyError};
use crate::pricing::{ModelPrice, PriceError};
use crate::tx::{Link, Posting, Reason, Transaction};

/// Why a settlement step could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// Amount arithmetic failed (currency mismatch, overflow, bad bps).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Pricing failed.
    #[error(transparent)]
    Price(#[from] PriceError),
    /// The receipt charges more than was escrowed.
    #[error("job {job_id}: charge {charge} exceeds escrow {escrowed}")]
    ChargeExceedsEscrow {
        /// Job.
        job_id: String,
        /// Charge.
        charge: Amount,
        /// Escrowed.
        escrowed: Amount,
    },
    /// The prompt alone costs more than the client's max price.
    #[error("job {job_id}: the prompt alone costs {prompt_cost}, above the client's max price {max_price}")]
    AboveMaxPrice {
        /// Job.
        job_id: String,
        /// Cost of the prompt with zero completion tokens.
        prompt_cost: Amount,
        /// Client's limit.
        max_price: Amount,
    },
    /// The step would move no money.
    #[error("job {job_id}: nothing to settle (amount is zero)")]
    NothingToSettle {
        /// Job.
        job_id: String,
    },
}

/// How much stake a failed audit costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SlashRule {
    /// No slashing.
    None,
    /// A fixed amount (capped at the stake).
    Fixed {
        /// Micro-units of the stake's currency.
        micros: u64,
    },
    /// A share of the current stake, rounded down.
    StakeBps {
        /// Basis points.
        bps: u32,
    },
}

impl SlashRule {
    /// The slash for a provider whose stake is `stake` (never more than it).
    pub fn amount(&self, stake: Amount) -> Result<Amount, MoneyError> {
        match *self {
            SlashRule::None => Ok(Amount::zero(stake.currency())),
            SlashRule::Fixed { micros } => {
                Amount::from_micros(stake.currency(), micros)?.min(stake)
            }
            SlashRule::StakeBps { bps } => stake.bps_floor(bps),
        }
    }
}

/// Protocol-wide settlement parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    /// Protocol fee on each charge, basis points.
    pub protocol_fee_bps: u32,
    /// Slash on a failed audit.
    pub slash: SlashRule,
}

impl Default for SettlementConfig {
    /// 5% fee; slash 10% of stake.
    fn default() -> Self {
        SettlementConfig {
            protocol_fee_bps: 500,
            slash: SlashRule::StakeBps { bps: 1_000 },
        }
    }
}

/// A provider's revenue-share assignment: this share of its post-fee earnings
/// goes to the pool's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolShare {
    /// Pool id.
    pub pool: String,
    /// Basis points of the provider's post-fee earnings.
    pub share_bps: u32,
}

/// Who a job involves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParties {
    /// Job id.
    pub job_id: String,
    /// Client id (owner of the `client:` account).
    pub client: String,
    /// Provider key (owner of `earnings:` and `stake:`).
    pub provider: String,
}

/// Whether a completed job's payment waits for an audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    /// Pay the provider now.
    NotAudited,
    /// Hold the charge until the audit reports.
    Hold,
}

/// What a step does, in numbers (for APIs and statements).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The job's charge (0 for escrow and failed jobs).
    pub charge: Amount,
    /// Protocol fee.
    pub fee: Amount,
    /// Revenue-share pool's cut.
    pub pool_cut: Amount,
    /// Provider's earnings credit.
    pub provider_net: Amount,
    /// Back to the client.
    pub refund: Amount,
    /// Put into escrow or audit hold.
    pub held: Amount,
    /// Slashed from stake.
    pub slashed: Amount,
    /// Part of a refund the provider's stake could not cover.
    pub shortfall: Amount,
}

impl Breakdown {
    fn zero(a: Amount) -> Breakdown {
        let z = Amount::zero(a.currency());
        Breakdown {
            charge: z,
            fee: z,
            pool_cut: z,
            provider_net: z,
            refund: z,
            held: z,
            slashed: z,
            shortfall: z,
        }
    }
}

/// A built settlement step: the transaction to apply and its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Apply this.
    pub tx: Transaction,
    /// What it does.
    pub breakdown: Breakdown,
}

/// An escrow step, with the completion-token cap that keeps the charge within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// The step.
    pub settlement: Settlement,
    /// `max_tokens` to send to the provider: the request's, or fewer if the
    /// client's max price would otherwise be exceeded.
    pub max_completion_tokens: u32,
}

/// Builds a transaction from (account, amount) debits and credits, dropping zeros.
fn build(
    key: String,
    reason: Reason,
    link: Option<Link>,
    debits: &[(AccountId, Amount)],
    credits: &[(AccountId, Amount)],
    job_id: &str,
) -> Result<Transaction, SettleError> {
    let mut postings = Vec::with_capacity(debits.len() + credits.len());
    for (a, m) in debits.iter().filter(|(_, m)| !m.is_zero()) {
        postings.push(Posting::debit(a.clone(), *m));
    }
    for (a, m) in credits.iter().filter(|(_, m)| !m.is_zero()) {
        postings.push(Posting::credit(a.clone(), *m));
    }
    if postings.is_empty() {
        return Err(SettleError::NothingToSettle {
            job_id: job_id.into(),
        });
    }
    Ok(Transaction {
        key,
        reason,
        link,
        postings,
    })
}

/// Escrow at dispatch: `min(charge(prompt, max_tokens), client_max)` moves
/// from the client to the job's escrow. The ledger rejects it if the client's
/// balance is short.
pub fn escrow_at_dispatch(
    job: &JobParties,
    price: &ModelPrice,
    prompt_tokens: u32,
    max_tokens: u32,
    client_max: Option<Amount>,
) -> Result<Escrow, SettleError> {
    let worst = price.charge(prompt_tokens, max_tokens)?;
    let amount = match client_max {
        Some(limit) => worst.min(limit)?,
        None => worst,
    };
    let max_completion_tokens = if amount == worst {
        max_tokens
    } else {
        price
            .max_completion_within(prompt_tokens, amount)
            .ok_or_else(|| SettleError::AboveMaxPrice {
                job_id: job.job_id.clone(),
                prompt_cost: price.charge(prompt_tokens, 0).unwrap_or(worst),
                max_price: amount,
            })?
            .min(max_tokens)
    };
    let tx = build(
        format!("escrow/{}", job.job_id),
        Reason::Escrow,
        Some(Link::Job(job.job_id.clone())),
        &[(AccountId::Client(job.client.clone()), amount)],
        &[(AccountId::JobEscrow(job.job_id.clone()), amount)],
        &job.job_id,
    )?;
    let mut breakdown = Breakdown::zero(amount);
    breakdown.held = amount;
    Ok(Escrow {
        settlement: Settlement { tx, breakdown },
        max_completion_tokens,
    })
}

/// The payee side of a release: (credits, breakdown) for paying `charge`.
fn payout(
    job: &JobParties,
    charge: Amount,
    cfg: &SettlementConfig,
    pool: Option<&PoolShare>,
) -> Result<(Vec<(AccountId, Amount)>, Breakdown), SettleError> {
    let fee = charge.bps_floor(cfg.protocol_fee_bps)?;
    let gross = charge.checked_sub(fee)?;
    let pool_cut = match pool {
        Some(p) => {
            check_bps(p.share_bps)?;
            gross.bps_floor(p.share_bps)?
        }
        None => Amount::zero(charge.currency()),
    };
    let provider_net = gross.checked_sub(pool_cut)?;
    let mut credits = vec![
        (
            AccountId::ProviderEarnings(job.provider.clone()),
            provider_net,
        ),
        (AccountId::ProtocolFee, fee),
    ];
    if let Some(p) = pool {
        credits.push((AccountId::Pool(p.pool.clone()), pool_cut));
    }
    let mut b = Breakdown::zero(charge);
    b.charge = charge;
    b.fee = fee;
    b.pool_cut = pool_cut;
    b.provider_net = provider_net;
    Ok((credits, b))
}

/// Settles a job whose receipt was countersigned: pays out now, or moves the
/// charge to the audit hold; either way unused escrow returns to the client.
pub fn settle_completed(
    job: &JobParties,
    receipt_id: &str,
    escrowed: Amount,
    charge: Amount,
    cfg: &SettlementConfig,
    pool: Option<&PoolShare>,
    decision: AuditDecision,
) -> Result<Settlement, SettleError> {
    let refund = escrowed.checked_sub(charge).map_err(|e| match e {
        MoneyError::Underflow { .. } => SettleError::ChargeExceedsEscrow {
            job_id: job.job_id.clone(),
            charge,
            escrowed,
        },
        other => other.into(),
    })?;
    let (mut credits, mut breakdown, reason) = match decision {
        AuditDecision::NotAudited => {
            let (c, b) = payout(job, charge, cfg, pool)?;
            (c, b, Reason::Release)
        }
        AuditDecision::Hold => {
            let mut b = Breakdown::zero(charge);
            b.charge = charge;
            b.held = charge;
            (
                vec![(AccountId::AuditHold(job.job_id.clone()), charge)],
                b,
                Reason::Hold,
            )
        }
    };
    credits.push((AccountId::Client(job.client.clone()), refund));
    breakdown.refund = refund;
    let tx = build(
        format!("settle/{}", job.job_id),
        reason,
        Some(Link::Receipt(receipt_id.into())),
        &[(AccountId::JobEscrow(job.job_id.clone()), escrowed)],
        &credits,
        &job.job_id,
    )?;
    Ok(Settlement { tx, breakdown })
}

/// Settles a job that failed without a receipt: the whole escrow goes back.
pub fn settle_failed_job(job: &JobParties, escrowed: Amount) -> Result<Settlement, SettleError> {
    let tx = build(
        format!("settle/{}", job.job_id),
        Reason::Refund,
        Some(Link::Job(job.job_id.clone())),
        &[(AccountId::JobEscrow(job.job_id.clone()), escrowed)],
        &[(AccountId::Client(job.client.clone()), escrowed)],
        &job.job_id,
    )?;
    let mut breakdown = Breakdown::zero(escrowed);
    breakdown.refund = escrowed;
    Ok(Settlement { tx, breakdown })
}

/// The audit passed: the held charge is paid out.
pub fn release_held(
    job: &JobParties,
    audit_id: &str,
    charge: Amount,
    cfg: &SettlementConfig,
    pool: Option<&PoolShare>,
) -> Result<Settlement, SettleError> {
    release_hold(job, Link::Audit(audit_id.into()), charge, cfg, pool)
}

/// A charge is held but the job has no audit (the coordinator stopped
/// between holding the charge and recording the audit): the held charge is
/// paid out as for an unaudited job. Same key as the audit's outcome, so the
/// hold is released or refunded once, whichever comes first.
pub fn release_unaudited(
    job: &JobParties,
    receipt_id: &str,
    charge: Amount,
    cfg: &SettlementConfig,
    pool: Option<&PoolShare>,
) -> Result<Settlement, SettleError> {
    release_hold(job, Link::Receipt(receipt_id.into()), charge, cfg, pool)
}

fn release_hold(
    job: &JobParties,
    link: Link,
    charge: Amount,
    cfg: &SettlementConfig,
    pool: Option<&PoolShare>,
) -> Result<Settlement, SettleError> {
    let (credits, breakdown) = payout(job, charge, cfg, pool)?;
    let tx = build(
        format!("audit/{}", job.job_id),
        Reason::Release,
        Some(link),
        &[(AccountId::AuditHold(job.job_id.clone()), charge)],
        &credits,
        &job.job_id,
    )?;
    Ok(Settlement { tx, breakdown })
}

/// The audit failed on a held job: the client gets the whole charge back and
/// the provider's stake (currently `stake`) is slashed to the insurance fund.
pub fn refund_failed_audit(
    job: &JobParties,
    audit_id: &str,
    charge: Amount,
    stake: Amount,
    cfg: &SettlementConfig,
) -> Result<Settlement, SettleError> {
    let slashed = cfg.slash.amount(stake)?;
    let reason = if slashed.is_zero() {
        Reason::Refund
    } else {
        Reason::Slash
    };
    let tx = build(
        format!("audit/{}", job.job_id),
        reason,
        Some(Link::Audit(audit_id.into())),
        &[
            (AccountId::AuditHold(job.job_id.clone()), charge),
            (AccountId::ProviderStake(job.provider.clone()), slashed),
        ],
        &[
            (AccountId::Client(job.client.clone()), charge),
            (AccountId::Insurance, slashed),
        ],
        &job.job_id,
    )?;
    let mut breakdown = Breakdown::zero(charge);
    breakdown.charge = charge;
    breakdown.refund = charge;
    breakdown.slashed = slashed;
    Ok(Settlement { tx, breakdown })
}

/// The audit failed after the provider was already paid: the refund comes
/// out of the stake (as far as it reaches; the rest is `shortfall`), then the
/// slash is taken from what stake remains.
pub fn clawback_failed_audit(
    job: &JobParties,
    audit_id: &str,
    charge: Amount,
    stake: Amount,
    cfg: &SettlementConfig,
) -> Result<Settlement, SettleError> {
    let refund = charge.min(stake)?;
    let shortfall = charge.checked_sub(refund)?;
    let slashed = cfg.slash.amount(stake.checked_sub(refund)?)?;
    let tx = build(
        format!("audit/{}", job.job_id),
        Reason::Slash,
        Some(Link::Audit(audit_id.into())),
        &[(
            AccountId::ProviderStake(job.provider.clone()),
            refund.checked_add(slashed)?,
        )],
        &[
            (AccountId::Client(job.client.clone()), refund),
            (AccountId::Insurance, slashed),
        ],
        &job.job_id,
    )?;
    let mut breakdown = Breakdown::zero(charge);
    breakdown.charge = charge;
    breakdown.refund = refund;
    breakdown.slashed = slashed;
    breakdown.shortfall = shortfall;
    Ok(Settlement { tx, breakdown })
}

/// A one-line transfer between two accounts (deposits, stake, withdrawals,
/// admin credits). `key` must be unique per real-world operation, e.g. the
/// payment processor's id.
pub fn transfer(
    key: String,
    reason: Reason,
    link: Option<Link>,
    from: AccountId,
    to: AccountId,
    amount: Amount,
) -> Result<Transaction, SettleError> {
    build(
        key.clone(),
        reason,
        link,
        &[(from, amount)],
        &[(to, amount)],
        &key,
    )
}

/// External money credited to a client (key `deposit/<payment_ref>`).
pub fn deposit(
    client: &str,
    amount: Amount,
    payment_ref: &str,
) -> Result<Transaction, SettleError> {
    transfer(
        format!("deposit/{payment_ref}"),
        Reason::Deposit,
        Some(Link::Payment(payment_ref.into())),
        AccountId::External,
        AccountId::Client(client.into()),
        amount,
    )
}

/// A provider posts stake from outside (key `stake/<payment_ref>`).
pub fn post_stake(
    provider: &str,
    amount: Amount,
    payment_ref: &str,
) -> Result<Transaction, SettleError> {
    transfer(
        format!("stake/{payment_ref}"),
        Reason::StakeDeposit,
        Some(Link::Payment(payment_ref.into())),
        AccountId::External,
        AccountId::ProviderStake(provider.into()),
        amount,
    )
}

/// Money leaves the ledger from `account` (earnings, holder payouts, client
/// credit, stake) (key `withdraw/<payout_ref>`).
pub fn withdraw(
    account: AccountId,
    amount: Amount,
    payout_ref: &str,
) -> Result<Transaction, SettleError> {
    let reason = if matches!(account, AccountId::ProviderStake(_)) {
        Reason::StakeWithdrawal
    } else {
        Reason::Withdrawal
    };
    transfer(
        format!("withdraw/{payout_ref}"),
        reason,
        Some(Link::Payment(payout_ref.into())),
        account,
        AccountId::External,
        amount,
    )
}

#[cfg(test)]
mod tests;
