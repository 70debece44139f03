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
    /// Only providers attested at least this level: `tee` or `tee+gpu`.
    min_attestation: Option<String>,
}

/// `GET /v1/providers`: public, like any marketplace listing.
pub async fn providers(
    State(app): State<AppState>,
    Query(q): Query<ProvidersQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let model = match &q.model {
        Some(m) => Some(
            app.fleet
                .registry()
                .resolve_model(m)
                .map(|lm| lm.digest)
                .ok_or_else(|| ApiError::model_not_found(m))?,
        ),
        None => None,
    };
    let min_attestation = match q.min_attestation.as_deref() {
        None => None,
        Some(l) => Some(crate::attestation::parse_level(l).ok_or_else(|| {
            ApiError::invalid_param("min_attestation", "must be none, tee or tee+gpu")
        })?),
    };
    let query = proofmesh_placement::ProviderQuery {
        min_attestation,
        model,
        region: q.region,
        available_only: q.available,
        min_vram_mib: q.min_vram_mib,
        max_price_per_hour_micros: q.max_price_per_hour_micros,
        now_ms: app.clock.now_ms(),
        ..Default::default()
    };
    let list = app.fleet.placer().list(&query);
    // Each row also carries the verified attestation behind its level:
    // evidence digest, when it was verified, and when its earliest
    // certificate or collateral expires (null: trust level none).
    let attested: std::collections::HashMap<String, serde_json::Value> = app
        .fleet
        .registry()
        .live()
        .iter()
        .map(|h| {
            let a = h
                .attestation
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            (
                h.key.to_string(),
                serde_json::to_value(a).unwrap_or_default(),
            )
        })
        .collect();
    let data: Vec<serde_json::Value> = list
        .into_iter()
        .map(|v| {
            let mut row = serde_json::to_value(&v).unwrap_or_default();
            let id = v.record.id.0.clone();
            if let Some(obj) = row.as_object_mut() {
                let a = attested.get(&id).cloned().unwrap_or_default();
                obj.insert("attestation".into(), a);
            }
            row
        })
        .collect();
    Ok(Json(serde_json::json!({ "object": "list", "data": data })))
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
