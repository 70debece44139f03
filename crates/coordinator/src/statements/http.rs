//! `GET /v1/providers/{key}/statements`: a provider's metrics statements
//! with their log indexes and inclusion proofs, public like the log itself.
//!
//! Why an index: the log is the only store of statements, and the store can
//! look entries up by exact key only. Log entries never change, so a
//! per-log index (provider → statement indexes) built incrementally from the
//! entries published since the last request is always correct; only new
//! entries are read. It is rebuilt from scratch if the log looks different
//! (smaller, or an indexed entry is not the expected statement).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, State};
use axum::Json;
use proofmesh_ledger::SignedStatement;
use proofmesh_log::entry::TAG_STATEMENT;
use proofmesh_log::LogEntry;
use proofmesh_receipt::PublicKey;
use proofmesh_tlog::encode_proof;

use crate::error::ApiError;
use crate::state::AppState;

/// Entries read per store query while indexing.
const INDEX_CHUNK: u64 = 1024;

#[derive(Debug, Default)]
struct Index {
    scanned: u64,
    by_provider: HashMap<String, Vec<u64>>,
}

type Shared = Arc<tokio::sync::Mutex<Index>>;

/// One index per log (by its checkpoint key), for the life of the process.
fn index_for(log_key: &str) -> Shared {
    static INDEXES: OnceLock<Mutex<HashMap<String, Shared>>> = OnceLock::new();
    let map = INDEXES.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(log_key.to_owned()).or_default().clone()
}

async fn read(app: &AppState, start: u64, end: u64) -> Result<Vec<Vec<u8>>, ApiError> {
    let entries = app
        .store
        .log_entries(start, end)
        .await
        .map_err(|e| ApiError::internal("statements: log entries", e))?;
    if entries.len() as u64 != end - start {
        return Err(ApiError::internal(
            "statements: log entries",
            format!("entries {start}..{end} are not all stored"),
        ));
    }
    Ok(entries)
}

/// Indexes the entries in `[idx.scanned, size)`.
async fn extend(app: &AppState, idx: &mut Index, size: u64) -> Result<(), ApiError> {
    while idx.scanned < size {
        let end = (idx.scanned + INDEX_CHUNK).min(size);
        for (i, bytes) in read(app, idx.scanned, end).await?.iter().enumerate() {
            if bytes.first() != Some(&TAG_STATEMENT) {
                continue;
            }
            if let Ok(LogEntry::Statement(s)) = LogEntry::decode(bytes) {
                idx.by_provider
                    .entry(s.body.provider.to_string())
                    .or_default()
                    .push(idx.scanned + i as u64);
            }
        }
        idx.scanned = end;
    }
    Ok(())
}

/// The indexed statements of `provider` below `size`, or `None` if an
/// indexed entry is not that provider's statement (a different log).
async fn collect(
    app: &AppState,
    idx: &Index,
    provider: &str,
    size: u64,
) -> Result<Option<Vec<(u64, SignedStatement)>>, ApiError> {
    let wanted = idx
        .by_provider
        .get(provider)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::with_capacity(wanted.len());
    for &i in wanted.iter().filter(|i| **i < size) {
        let bytes = read(app, i, i + 1).await?;
        match LogEntry::decode(&bytes[0]) {
            Ok(LogEntry::Statement(s)) if s.body.provider.as_str() == provider => out.push((i, s)),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The provider's statements at indexes below `size`, in log order.
async fn statements_of(
    app: &AppState,
    provider: &str,
    size: u64,
) -> Result<Vec<(u64, SignedStatement)>, ApiError> {
    let shared = index_for(app.log.verifier_key());
    let mut idx = shared.lock().await;
    if app.log.checkpoint().size < idx.scanned {
        *idx = Index::default(); // the log shrank: not the one indexed
    }
    for _attempt in 0..2 {
        extend(app, &mut idx, size).await?;
        if let Some(found) = collect(app, &idx, provider, size).await? {
            return Ok(found);
        }
        *idx = Index::default();
    }
    Err(ApiError::internal(
        "statements",
        "the statement index does not match the log",
    ))
}

/// `GET /v1/providers/{key}/statements`.
pub async fn list(
    State(app): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    PublicKey::parse(&key)
        .map_err(|_| ApiError::invalid_param("provider", "not an ed25519:<hex> key"))?;
    let cp = app.log.checkpoint();
    let found = statements_of(&app, &key, cp.size).await?;
    let mut statements = Vec::with_capacity(found.len());
    for (index, s) in found {
        let proof = app
            .log
            .inclusion_proof(index, cp.size)
            .map_err(ApiError::log)?;
        statements.push(serde_json::json!({
            "index": index,
            "statement_hash": s.body.hash(),
            "inclusion_proof": encode_proof(&proof),
            "statement": s,
        }));
    }
    Ok(Json(serde_json::json!({
        "provider_key": key,
        "coordinator_key": app.identity.public(),
        "log_origin": app.log.origin(),
        "tree_size": cp.size,
        "checkpoint": cp.note,
        "statements": statements,
    })))
}
