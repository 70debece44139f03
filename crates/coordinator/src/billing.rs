//! The read side of billing: `GET /v1/balance`, `GET /v1/usage` and
//! `GET /v1/providers/{key}/earnings`, and the settlement invariant check
//! ([`check_settlement`]) that `proofmesh billing check` runs. Everything
//! that moves money is [`crate::money::Money`]'s.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use proofmesh_ledger::{
    check_job_accounts, AccountId, AuditState, Currency, InvariantReport, JobAccount,
    JobAccountKind, JobState, ReconcileError,
};
use proofmesh_store::{BillingStore, FundedJobAccount};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

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
        .money
        .bank()
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
        .money
        .bank()
        .balances(&earnings)
        .await
        .map_err(|e| ApiError::internal("earnings", e))?;
    let s = app
        .money
        .bank()
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
