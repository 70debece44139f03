//! Discovery endpoints: `GET /v1/providers` lists the registered providers
//! with what they claim (marked self-declared, measured or attested) and
//! what was measured, with filters; `GET /v1/jobs/{id}/placement` explains
//! where each attempt of the caller's job went and why (`proofmesh explain`).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// Filters of `GET /v1/providers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersQuery {
    /// Model name or digest.
    model: Option<String>,
    /// Region label.
    region: Option<String>,
    /// Only providers with free capacity and not cooling down.
    #[serde(default)]
    available: bool,
    /// Only providers with at least this much VRAM per GPU, MiB.
    min_vram_mib: Option<u64>,
    /// Only providers at or below this price per hour, micro-USD.
    max_price_per_hour_micros: Option<u64>,
}

/// `GET /v1/providers`: public, like any marketplace listing.
pub async fn providers(
    State(app): State<AppState>,
    Query(q): Query<ProvidersQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let model = match &q.model {
        Some(m) => Some(
            app.registry
                .resolve_model(m)
                .map(|lm| lm.digest)
                .ok_or_else(|| ApiError::model_not_found(m))?,
        ),
        None => None,
    };
    let query = proofmesh_placement::ProviderQuery {
        model,
        region: q.region,
        available_only: q.available,
        min_vram_mib: q.min_vram_mib,
        max_price_per_hour_micros: q.max_price_per_hour_micros,
        now_ms: crate::now_ms(),
        ..Default::default()
    };
    let list = app.placer.list(&query);
    Ok(Json(serde_json::json!({ "object": "list", "data": list })))
}

/// `GET /v1/jobs/{id}/placement`: the owner's job's placement decisions,
/// one per attempt (filters passed and failed per provider, scores,
/// estimates). Someone else's job is a 404, like a missing one.
pub async fn placement(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&app, &headers).await?;
    let found = app
        .store
        .job_placements(&id)
        .await
        .map_err(|e| ApiError::internal("placement", e))?;
    let Some((owner, json)) = found.filter(|(owner, _)| *owner == client.client_id) else {
        return Err(ApiError::job_not_found(&id));
    };
    let _ = owner;
    let attempts: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| ApiError::internal("placement json", e))?;
    Ok(Json(
        serde_json::json!({ "job_id": id, "attempts": attempts }),
    ))
}
