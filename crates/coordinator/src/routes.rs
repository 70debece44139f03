//! Small read endpoints: models, receipts, coordinator identity, health, metrics.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_wire::openai::{ModelEntry, ModelList};

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /v1/models`.
pub async fn models(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    authenticate(&app, &headers).await?;
    let data = app
        .fleet
        .registry()
        .models()
        .into_iter()
        .map(|m| ModelEntry {
            id: m.name,
            object: "model".into(),
            created: 0,
            owned_by: "proofmesh".into(),
            digest: m.digest,
            providers: m.providers,
        })
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// The caller's receipt `id`. Someone else's receipt gets the same 404 as a
/// nonexistent one, so its existence is not revealed.
async fn owned_receipt(
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<proofmesh_store::StoredReceipt, ApiError> {
    let client = authenticate(app, headers).await?;
    let stored = app
        .store
        .get_receipt(id)
        .await
        .map_err(|e| ApiError::internal("get receipt", e))?;
    stored
        .filter(|s| s.client_id == client.client_id)
        .ok_or_else(|| ApiError::receipt_not_found(id))
}

/// `GET /v1/receipts/{id}`: only the owner may read it; others get 404, so
/// the existence of someone else's receipt is not revealed. Audit reports are
/// attached; the `x-proofmesh-audit` header says `none`, `pending`, `passed`
/// or `failed`.
pub async fn receipt(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut receipt = owned_receipt(&app, &headers, &id).await?.receipt;
    // Status first, reports second: a report finishing in between can only
    // make the body newer than the header, never the header claim a report
    // the body lacks.
    let status = app
        .store
        .audit_status(&id)
        .await
        .map_err(|e| ApiError::internal("audit", e))?;
    receipt.audits = app
        .store
        .audit_reports(&id)
        .await
        .map_err(|e| ApiError::internal("audits", e))?;
    // Its place in the log, proven against the latest checkpoint.
    let key = proofmesh_store::receipt_log_key(&id);
    receipt.log = match app.log.index_of(&key).await.map_err(ApiError::log)? {
        Some(i) => Some(app.log.inclusion_for(i).map_err(ApiError::log)?),
        None => None,
    };
    let status = status.unwrap_or_else(|| "none".into());
    Ok(([("x-proofmesh-audit", status)], Json(receipt)).into_response())
}

/// `GET /v1/receipts/{id}/evidence`: what a client needs to re-execute its
/// own job (`proofmesh receipt verify --reexecute`): the conversation, the
/// completion token ids and text, and the fingerprint. Owner only.
pub async fn evidence(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    owned_receipt(&app, &headers, &id).await?;
    let Some((request_json, ev)) = app
        .store
        .evidence(&id)
        .await
        .map_err(|e| ApiError::internal("evidence", e))?
    else {
        return Err(ApiError::receipt_not_found(&id));
    };
    let messages: serde_json::Value =
        serde_json::from_str(&request_json).map_err(|e| ApiError::internal("request json", e))?;
    Ok(Json(serde_json::json!({
        "receipt_id": id,
        "messages": messages,
        "completion_token_ids": ev.completion_token_ids,
        "text": ev.text,
        "fingerprint": hex::encode(&ev.fingerprint),
    }))
    .into_response())
}

/// `GET /v1/coordinator`: the coordinator's public key and the log's
/// checkpoint key, for pinning.
pub async fn coordinator(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "coordinator_key": app.identity.public().as_str(),
        "providers_connected": app.fleet.registry().live_count(),
        "verifiers_connected": app.fleet.registry().verifier_count(),
        "trusted_verifiers": app.config.trusted_verifiers,
        "log_origin": app.log.origin(),
        "log_key": app.log.verifier_key(),
        "log_size": app.log.checkpoint().size,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /healthz`.
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /metrics` (Prometheus text format).
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics_http::render(),
    )
        .into_response()
}

/// Fallback: unknown route, in the JSON error shape.
pub async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: "not_found",
        message: "Unknown endpoint.".into(),
        param: None,
        context: None,
    }
}
