//! Client authentication: `Authorization: Bearer <api key>`.

use axum::http::HeaderMap;
use proofmesh_store::Client;

use crate::error::ApiError;
use crate::state::AppState;

/// Resolves the caller, or the 401 to answer.
pub async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Client, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::missing_key());
    };
    let value = value.to_str().map_err(|_| ApiError::invalid_key())?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(ApiError::invalid_key)?
        .trim();
    if key.is_empty() {
        return Err(ApiError::missing_key());
    }
    match app.store.authenticate(key).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(ApiError::invalid_key()),
        Err(e) => Err(ApiError::internal("authenticate", e)),
    }
}
