//! Money around a job, through the durable ledger (`proofmesh-settlement`):
//! escrow the worst-case charge at dispatch (402 if the client's balance
//! cannot cover it), release the receipt's exact charge to the provider
//! (minus the protocol fee) and refund the rest, hold audited jobs' charge
//! until the audit ends, refund and slash on a failed audit, refund a failed
//! job in full. Every transaction's key derives from the job id, so a retry
//! never charges twice. Plus the read endpoints: balance, usage, earnings.
//!
//! After a job has been answered, a settlement error is logged and counted,
//! never shown to the client: the money stays in the job's escrow account,
//! so nothing is lost and an operator can settle it later.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use proofmesh_ledger::settle::{self, AuditDecision, JobParties};
use proofmesh_ledger::{AccountId, Amount, Currency, LedgerError, ModelPrice};
use proofmesh_receipt::{AuditOutcome, AuditReport, Receipt};
use proofmesh_settlement::BankError;
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
    tracing::error!(error = %e, context, "settlement not applied; the money stays in escrow");
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

/// Settles a completed job from its countersigned receipt: the exact charge
/// goes to the provider (or to the audit hold), the rest back to the client.
pub async fn settle_completed(
    app: &AppState,
    client_id: &str,
    receipt: &Receipt,
    held: Amount,
    audited: bool,
) {
    let b = &receipt.body;
    let job = parties(&b.job_id, client_id, b.provider_key.as_str());
    let charge = match Amount::from_micros(held.currency(), b.price.charged_micros) {
        Ok(c) => c,
        Err(e) => return settle_failed("charge", e),
    };
    let decision = if audited {
        AuditDecision::Hold
    } else {
        AuditDecision::NotAudited
    };
    let cfg = app.config.settlement();
    // A pool's share of the provider's earnings; if the store cannot say,
    // settle nothing now (the money stays in escrow for the recovery sweep)
    // rather than pay the provider what it pledged away.
    let pool = match pool_share(app, b.provider_key.as_str()).await {
        Ok(p) => p,
        Err(e) => return settle_failed("pool", e),
    };
    match settle::settle_completed(
        &job,
        &b.receipt_id,
        held,
        charge,
        &cfg,
        pool.as_ref(),
        decision,
    ) {
        Ok(s) => {
            if let Err(e) = app.bank.apply(s.tx, crate::now_ms()).await {
                settle_failed("release", e);
            }
        }
        Err(e) => settle_failed("release", e),
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
    let job = parties(job_id, client_id, "");
    match settle::settle_failed_job(&job, held) {
        Ok(s) => {
            if let Err(e) = app.bank.apply(s.tx, crate::now_ms()).await {
                settle_failed("refund", e);
            }
        }
        Err(e) => settle_failed("refund", e),
    }
}

/// Ends an audit hold: release on pass; on failure, refund the client in
/// full and slash the provider's stake to the insurance account.
pub async fn settle_audit(
    app: &AppState,
    client_id: &str,
    receipt: &Receipt,
    report: &AuditReport,
) {
    let b = &receipt.body;
    let job = parties(&b.job_id, client_id, b.provider_key.as_str());
    let Ok(currency) = Currency::parse(&b.price.currency) else {
        return settle_failed("audit", "unknown currency");
    };
    let Ok(charge) = Amount::from_micros(currency, b.price.charged_micros) else {
        return settle_failed("audit", "charge out of range");
    };
    let cfg = app.config.settlement();
    let audit_id = &report.body.audit_id;
    let built = match report.body.outcome {
        AuditOutcome::Passed => match pool_share(app, b.provider_key.as_str()).await {
            Ok(pool) => settle::release_held(&job, audit_id, charge, &cfg, pool.as_ref()),
            Err(e) => return settle_failed("pool", e),
        },
        AuditOutcome::Failed => {
            let stake_account = AccountId::ProviderStake(b.provider_key.to_string());
            let stake = match app.bank.balance(&stake_account, currency).await {
                Ok(s) => Amount::from_micros(currency, u64::try_from(s).unwrap_or(0)),
                Err(e) => return settle_failed("audit", e),
            };
            match stake {
                Ok(stake) => settle::refund_failed_audit(&job, audit_id, charge, stake, &cfg),
                Err(e) => return settle_failed("audit", e),
            }
        }
    };
    match built {
        Ok(s) => {
            if let Err(e) = app.bank.apply(s.tx, crate::now_ms()).await {
                settle_failed("audit", e);
            }
        }
        // A free job has nothing held: nothing to settle.
        Err(settle::SettleError::NothingToSettle { .. }) => {}
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
    /// Idempotency claims freed.
    pub claims_freed: u64,
}

/// Settles what a crash left unsettled, before the coordinator serves:
/// jobs still `dispatched` are failed (their provider sessions died with
/// the process); the escrow of every job without a receipt is refunded;
/// the escrow of every completed job is settled from its countersigned
/// receipt (held if its audit is pending, refunded if its audit failed).
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
        for (code, micros) in &job.escrow {
            let held = match Currency::parse(code)
                .and_then(|c| Amount::from_micros(c, u64::try_from(*micros).unwrap_or(0)))
            {
                Ok(h) => h,
                Err(e) => {
                    settle_failed("recover", e);
                    continue;
                }
            };
            let receipt = match job.status.as_str() {
                "completed" => app.store.get_receipt(&job.receipt_id).await?,
                _ => None,
            };
            let Some(stored) = receipt else {
                refund_failed_job(app, &job.job_id, &job.client_id, held).await;
                out.refunded += 1;
                continue;
            };
            match app.store.audit_status(&job.receipt_id).await?.as_deref() {
                Some("failed") => {
                    refund_failed_job(app, &job.job_id, &job.client_id, held).await;
                    out.refunded += 1;
                }
                audit => {
                    let audited = audit == Some("pending");
                    settle_completed(app, &job.client_id, &stored.receipt, held, audited).await;
                    out.settled += 1;
                }
            }
        }
    }
    out.claims_freed = app
        .store
        .idem_sweep(now.saturating_sub(crate::idempotency::RETENTION_MS))
        .await?;
    Ok(out)
}
