//! Revenue-share pools in the running coordinator (issue 8 §3): register a
//! provider-signed charter, move units with holder-signed transfers, pay
//! each pool pro rata every epoch, and log all three.
//!
//! Why here: the rules (signatures, unit arithmetic, the largest-remainder
//! rounding) are `proofmesh_ledger`'s; this module orders the side effects
//! so that nothing is lost or paid twice:
//!
//! * **charter**: verified, stored with its units in one transaction, then
//!   appended to the log (`pool:<id>`) before the caller is answered;
//! * **transfer**: verified (signature, sender's units via
//!   [`proofmesh_ledger::RevenuePool::transfer`]), applied by the store in
//!   one guarded transaction (idempotent by key), then logged
//!   (`pool-transfer:<pool>:<key>`);
//! * **distribution**: decided once per (pool, epoch) and recorded *before*
//!   its ledger transaction (key `distribution/<pool>/<epoch start>`), so a
//!   crash in between re-applies the same payouts; then signed and logged
//!   (`distribution:<pool>:<epoch start>`).
//!
//! Money reaches a pool at release time: `share_bps` of the provider's
//! post-fee earnings on each job ([`crate::money::Money::settle_completed`]).
//! A distribution pays out everything the pool account holds when it runs
//! (after the epoch has ended and settled), to the units held then.
//!
//! At startup [`backfill`] re-appends every charter and transfer (the log
//! deduplicates by key), so a crash between a store commit and its log
//! append leaves no pool document unlogged, in the order they were applied.

use axum::extract::{Path, State};
use axum::Json;
use proofmesh_ledger::{
    distribute, AccountId, Amount, Currency, Distribution, Epoch, PoolError, RevenuePool,
    SignedCharter, SignedDistribution, SignedTransfer,
};
use proofmesh_log::LogEntry;
use proofmesh_store::{PoolRow, StoreError, TransferOutcome, TransferRow};

use crate::error::ApiError;
use crate::state::AppState;

fn pool_key(pool: &str) -> String {
    format!("pool:{pool}")
}

fn transfer_key(pool: &str, key: &str) -> String {
    format!("pool-transfer:{pool}:{key}")
}

fn distribution_key(pool: &str, epoch_start_s: u64) -> String {
    format!("distribution:{pool}:{epoch_start_s}")
}

async fn log_entry(app: &AppState, entry: LogEntry, key: String) -> Result<u64, ApiError> {
    app.log
        .append(&entry, Some(key))
        .await
        .map(|s| s.index)
        .map_err(ApiError::log)
}

/// `POST /v1/pools`: registers a provider-signed [`SignedCharter`]. The
/// signature is the authorization: only the provider's key can pledge its
/// earnings. Re-sending the identical charter is a no-op.
pub async fn create(
    State(app): State<AppState>,
    Json(signed): Json<SignedCharter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pool = signed
        .verify()
        .map_err(|e| ApiError::invalid_pool_document(e.to_string()))?;
    let c = &signed.charter;
    let row = PoolRow {
        pool_id: c.pool.clone(),
        provider_key: c.provider.to_string(),
        share_bps: c.share_bps,
        currency: c.currency.code().to_owned(),
        charter_json: serde_json::to_string(&signed)
            .map_err(|e| ApiError::internal("charter", e))?,
        created_at_ms: app.clock.now_ms(),
    };
    let units: Vec<(String, u64)> = pool.holders().map(|(h, u)| (h.to_owned(), u)).collect();
    let created = match app.store.create_pool(&row, &units).await {
        Ok(c) => c,
        Err(StoreError::Conflict { id, .. }) => {
            return Err(ApiError::pool_conflict(format!(
                "pool {id} already exists for this id or provider with a different charter"
            )))
        }
        Err(e) => return Err(ApiError::internal("create pool", e)),
    };
    let id = c.pool.clone();
    let index = log_entry(&app, LogEntry::PoolCharter(signed), pool_key(&id)).await?;
    Ok(Json(serde_json::json!({
        "pool_id": id, "created": created, "log_index": index,
        "total_units": pool.total_units(),
    })))
}

async fn load(app: &AppState, id: &str) -> Result<(PoolRow, RevenuePool), ApiError> {
    let (row, units) = app
        .store
        .pool(id)
        .await
        .map_err(|e| ApiError::internal("read pool", e))?
        .ok_or_else(|| ApiError::pool_not_found(id))?;
    let currency =
        Currency::parse(&row.currency).map_err(|e| ApiError::internal("pool currency", e))?;
    let pool = RevenuePool::new(
        &row.pool_id,
        &row.provider_key,
        row.share_bps,
        currency,
        units,
    )
    .map_err(|e| ApiError::internal("stored pool", e))?;
    Ok((row, pool))
}

/// `GET /v1/pools/{id}`: the charter, current units by holder, and the
/// undistributed balance. Public, like the log that carries all of it.
pub async fn show(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (row, pool) = load(&app, &id).await?;
    let balance = app
        .money
        .bank()
        .balances(&AccountId::Pool(id.clone()))
        .await
        .map_err(|e| ApiError::internal("pool balance", e))?;
    let holders: Vec<_> = pool
        .holders()
        .map(|(h, u)| serde_json::json!({"holder": h, "units": u}))
        .collect();
    let charter: serde_json::Value =
        serde_json::from_str(&row.charter_json).unwrap_or(serde_json::Value::Null);
    Ok(Json(serde_json::json!({
        "pool_id": row.pool_id, "provider_key": row.provider_key,
        "share_bps": row.share_bps, "currency": row.currency,
        "total_units": pool.total_units(), "holders": holders,
        "undistributed": balance.into_iter()
            .map(|(c, m)| serde_json::json!({"currency": c, "micros": m}))
            .collect::<Vec<_>>(),
        "charter": charter,
    })))
}

/// `POST /v1/pools/{id}/transfers`: applies a holder-signed
/// [`SignedTransfer`]. Idempotent by the transfer's key: the same transfer
/// again answers `applied: false`; a different one under that key is 409.
pub async fn transfer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Json(signed): Json<SignedTransfer>,
) -> Result<Json<serde_json::Value>, ApiError> {
    signed
        .verify()
        .map_err(|e| ApiError::invalid_pool_document(e.to_string()))?;
    let t = &signed.transfer;
    if t.pool != id {
        return Err(ApiError::invalid_pool_document(format!(
            "the transfer names pool {}, not {id}",
            t.pool
        )));
    }
    let (_, mut pool) = load(&app, &id).await?;
    // The pure rules first, for a precise error (the store re-checks units
    // atomically: another transfer may land in between).
    match pool.transfer(t) {
        Ok(_) | Err(PoolError::ConflictingKey { .. }) => {}
        Err(e) => return Err(ApiError::invalid_pool_document(e.to_string())),
    }
    let row = TransferRow {
        key: t.key.clone(),
        pool_id: id.clone(),
        from: t.from.clone(),
        to: t.to.clone(),
        units: t.units,
        doc_json: serde_json::to_string(&signed).map_err(|e| ApiError::internal("transfer", e))?,
        at_ms: app.clock.now_ms(),
    };
    let outcome = app
        .store
        .transfer_units(&row)
        .await
        .map_err(|e| ApiError::internal("transfer units", e))?;
    let applied = match outcome {
        TransferOutcome::Applied => true,
        TransferOutcome::Replayed => false,
        TransferOutcome::Conflict => {
            return Err(ApiError::pool_conflict(format!(
                "transfer key {:?} was already used for a different transfer",
                t.key
            )))
        }
        TransferOutcome::InsufficientUnits { has } => {
            return Err(ApiError::invalid_pool_document(format!(
                "holder {} has {has} units, cannot move {}",
                t.from, t.units
            )))
        }
        TransferOutcome::UnknownPool => return Err(ApiError::pool_not_found(&id)),
    };
    let key = transfer_key(&id, &row.key);
    let index = log_entry(&app, LogEntry::PoolTransfer(signed), key).await?;
    Ok(Json(
        serde_json::json!({"pool_id": id, "applied": applied, "log_index": index}),
    ))
}

/// Re-appends every stored charter and transfer (no-ops for those already
/// logged), in the order they were applied.
pub async fn backfill(app: &AppState) -> Result<u64, String> {
    let mut appended = 0;
    let pools = app.store.list_pools().await.map_err(|e| e.to_string())?;
    for p in pools {
        let charter: SignedCharter =
            serde_json::from_str(&p.charter_json).map_err(|e| e.to_string())?;
        log_entry(app, LogEntry::PoolCharter(charter), pool_key(&p.pool_id))
            .await
            .map_err(|e| e.message)?;
        appended += 1;
        let transfers = app
            .store
            .pool_transfers(&p.pool_id)
            .await
            .map_err(|e| e.to_string())?;
        for (key, doc) in transfers {
            let t: SignedTransfer = serde_json::from_str(&doc).map_err(|e| e.to_string())?;
            log_entry(
                app,
                LogEntry::PoolTransfer(t),
                transfer_key(&p.pool_id, &key),
            )
            .await
            .map_err(|e| e.message)?;
            appended += 1;
        }
    }
    Ok(appended)
}

/// Why a pool's distribution did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DistributeError {
    /// Store access failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored document does not decode or break a rule.
    #[error("pool {pool}: {reason}")]
    Pool {
        /// Pool.
        pool: String,
        /// Why.
        reason: String,
    },
    /// The ledger refused the payout.
    #[error("ledger: {0}")]
    Bank(#[from] proofmesh_settlement::BankError),
    /// Appending to the log failed.
    #[error("log: {0}")]
    Log(#[from] proofmesh_log::LogError),
}

/// Pays every pool for `epoch`; returns the signed distributions made (or
/// found already made). Pools with nothing to pay or no units are skipped.
pub async fn distribute_epoch(
    app: &AppState,
    epoch: Epoch,
) -> Result<Vec<SignedDistribution>, DistributeError> {
    let mut out = Vec::new();
    for row in app.store.list_pools().await? {
        if let Some(d) = distribute_pool(app, &row, epoch).await? {
            out.push(d);
        }
    }
    Ok(out)
}

async fn distribute_pool(
    app: &AppState,
    row: &PoolRow,
    epoch: Epoch,
) -> Result<Option<SignedDistribution>, DistributeError> {
    let bad = |reason: String| DistributeError::Pool {
        pool: row.pool_id.clone(),
        reason,
    };
    let (_, pool) = load(app, &row.pool_id).await.map_err(|e| bad(e.message))?;
    let account = AccountId::Pool(row.pool_id.clone());
    let held = app.money.bank().balance(&account, pool.currency()).await?;
    let amount = Amount::from_micros(pool.currency(), u64::try_from(held).unwrap_or(0))
        .map_err(|e| bad(e.to_string()))?;
    let proposed = match distribute(&pool, amount, epoch) {
        Ok(d) => Some(serde_json::to_string(&d).map_err(|e| bad(e.to_string()))?),
        Err(PoolError::NothingToDistribute { .. } | PoolError::NoUnits { .. }) => None,
        Err(e) => return Err(bad(e.to_string())),
    };
    // An earlier run's decision wins (it may have been paid but not logged).
    let Some(recorded) = app
        .store
        .record_distribution(&row.pool_id, epoch.start_s(), proposed.as_deref())
        .await?
    else {
        return Ok(None);
    };
    let decided: Distribution = serde_json::from_str(&recorded).map_err(|e| bad(e.to_string()))?;
    app.money
        .bank()
        .apply(decided.transaction(), app.clock.now_ms())
        .await?;
    let signed = SignedDistribution::sign(decided, &app.identity);
    let key = distribution_key(&row.pool_id, epoch.start_s());
    app.log
        .append(&LogEntry::PoolDistribution(signed.clone()), Some(key))
        .await?;
    Ok(Some(signed))
}

/// `GET /v1/holders/{key}`: a revenue-share holder's paid-out balance and
/// its latest payout lines. Public, like the distributions in the log.
pub async fn holder(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    proofmesh_receipt::PublicKey::parse(&key)
        .map_err(|_| ApiError::invalid_param("holder", "not an ed25519:<hex> key"))?;
    let account = AccountId::Holder(key.clone());
    let balances = app
        .money
        .bank()
        .balances(&account)
        .await
        .map_err(|e| ApiError::internal("holder balance", e))?;
    let lines = app
        .store
        .ledger_activity(&account.to_string(), 100)
        .await
        .map_err(|e| ApiError::internal("holder activity", e))?;
    Ok(Json(serde_json::json!({
        "holder": key,
        "balances": balances.into_iter()
            .map(|(c, m)| serde_json::json!({"currency": c, "micros": m}))
            .collect::<Vec<_>>(),
        "activity": lines.into_iter()
            .map(|r| serde_json::json!({"seq": r.seq, "reason": r.reason, "link": r.link,
                "currency": r.currency, "delta_micros": r.delta, "at_ms": r.at_ms}))
            .collect::<Vec<_>>(),
    })))
}
