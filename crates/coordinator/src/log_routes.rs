//! The transparency log over HTTP, read-only and public: the C2SP
//! tlog-tiles resources under `/log/` (`checkpoint`, `tile/<L>/<N>[.p/<W>]`,
//! `tile/entries/<N>[.p/<W>]`) plus convenience proofs, and the startup
//! backlog that logs receipts and audit reports committed before a crash but
//! not yet sequenced.
//!
//! Caching (C2SP tlog-tiles "Caching"): tiles and bundles never change once
//! they exist, so they are `immutable` for a year; the checkpoint changes with
//! every batch, so it must be revalidated.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_log::LogEntry;
use proofmesh_store::{audit_log_key, receipt_log_key};
use proofmesh_tlog::{encode_proof, TilePath};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /log/checkpoint`: the latest signed checkpoint note.
pub async fn checkpoint(State(app): State<AppState>) -> Response {
    let cp = app.log.checkpoint();
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        cp.note.clone(),
    )
        .into_response()
}

/// `GET /log/tile/...`: a hash tile or entry bundle.
pub async fn tile(
    State(app): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let path = format!("tile/{rest}");
    let tile = TilePath::parse(&path).map_err(|e| ApiError::log(e.into()))?;
    let bytes = app.log.tile(tile).await.map_err(ApiError::log)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        bytes,
    )
        .into_response())
}

/// Query of `/log/v1/inclusion`: a leaf `index` or a `receipt_id`, and an
/// optional tree `size` (default: the latest checkpoint).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: Option<u64>,
    receipt_id: Option<String>,
    size: Option<u64>,
}

/// `GET /log/v1/inclusion`: the RFC 6962 §2.1.1 audit path, with the
/// checkpoint it leads to when `size` is the latest.
pub async fn inclusion(
    State(app): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = match (q.index, &q.receipt_id) {
        (Some(i), None) => i,
        (None, Some(id)) => app
            .log
            .index_of(&receipt_log_key(id))
            .await
            .map_err(ApiError::log)?
            .ok_or_else(|| ApiError::log(not_logged(format!("receipt {id}"), &app)))?,
        _ => {
            return Err(ApiError::invalid_param(
                "index",
                "give exactly one of index and receipt_id",
            ))
        }
    };
    let cp = app.log.checkpoint();
    let size = q.size.unwrap_or(cp.size);
    let proof = app
        .log
        .inclusion_proof(index, size)
        .map_err(ApiError::log)?;
    let leaf = app.log.leaf_hash(index).map_err(ApiError::log)?;
    Ok(Json(serde_json::json!({
        "index": index,
        "tree_size": size,
        "leaf_hash": encode_proof(&[leaf])[0],
        "inclusion_proof": encode_proof(&proof),
        "checkpoint": (size == cp.size).then(|| cp.note.clone()),
    })))
}

fn not_logged(what: String, app: &AppState) -> proofmesh_log::LogError {
    proofmesh_log::LogError::NotPublished {
        what,
        published: app.log.checkpoint().size,
    }
}

/// Query of `/log/v1/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

/// `GET /log/v1/consistency?old=M[&new=N]`: RFC 6962 §2.1.2 proof.
pub async fn consistency(
    State(app): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cp = app.log.checkpoint();
    let new = q.new.unwrap_or(cp.size);
    let proof = app
        .log
        .consistency_proof(q.old, new)
        .map_err(ApiError::log)?;
    Ok(Json(serde_json::json!({
        "old_size": q.old,
        "new_size": new,
        "consistency_proof": encode_proof(&proof),
        "checkpoint": (new == cp.size).then(|| cp.note.clone()),
    })))
}

/// Query of `/log/v1/checkpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointsQuery {
    #[serde(default)]
    from: u64,
    limit: Option<u32>,
}

/// `GET /log/v1/checkpoints?from=N&limit=L`: every checkpoint published
/// with size >= N (at most L, default 100, max 1000), for monitors that
/// check no two published checkpoints conflict.
pub async fn checkpoints(
    State(app): State<AppState>,
    Query(q): Query<CheckpointsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let cps = app
        .log
        .checkpoints(q.from, limit)
        .await
        .map_err(ApiError::log)?;
    let notes: Vec<String> = cps
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.note).into_owned())
        .collect();
    Ok(Json(serde_json::json!({ "checkpoints": notes })))
}

/// Logs what was committed but never sequenced (a crash between the two):
/// receipts first, then finished audit reports. Keys make this idempotent.
pub async fn log_backlog(app: &AppState) -> Result<(), proofmesh_log::LogError> {
    let receipts = app.store.log_unlogged_receipts().await?;
    let audits = app.store.log_unlogged_audits().await?;
    if receipts.is_empty() && audits.is_empty() {
        return Ok(());
    }
    tracing::info!(
        receipts = receipts.len(),
        audits = audits.len(),
        "logging receipts and audit reports left unsequenced by a previous run"
    );
    let mut entries: Vec<(LogEntry, String)> = receipts
        .iter()
        .map(|r| (LogEntry::receipt(r), receipt_log_key(&r.body.receipt_id)))
        .collect();
    entries.extend(
        audits
            .into_iter()
            .map(|(id, report)| (LogEntry::AuditReport(report), audit_log_key(&id))),
    );
    // Concurrently, so they share batches instead of waiting one batch age each.
    for chunk in entries.chunks(4096) {
        let appends = chunk
            .iter()
            .map(|(e, k)| app.log.append(e, Some(k.clone())));
        for r in futures::future::join_all(appends).await {
            r?;
        }
    }
    Ok(())
}
