//! Client retries with `Idempotency-Key` (issue 8: "a retried request never
//! charges twice").
//!
//! Why: a client that loses the connection cannot tell whether its request
//! ran. Sending the same `Idempotency-Key` again is safe: the first request
//! claims `(client, key)` for its job (one SQLite transaction), and a retry
//!
//! * with the same body, after the job answered, gets the stored response
//!   replayed (header `idempotent-replayed: true`, streamed as SSE if asked),
//!   without a new job or a new charge;
//! * with the same body while the job runs gets 409
//!   `idempotency_key_in_progress`;
//! * with a different body gets 422 `idempotency_key_reused`.
//!
//! A job that fails is refunded and its claim freed, so a retry runs anew.
//! Claims are scoped per client (keys are the client's own strings) and
//! expire after [`RETENTION_MS`]; at startup, claims whose job never answered
//! are freed (their jobs died with the previous process and were refunded by
//! the recovery sweep in [`crate::money::Money::recover`]). The stored response
//! is the one the job produced even if the client had gone away, because
//! the job driver, not the HTTP handler, records it.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_store::{IdemClaim, Store};
use proofmesh_wire::openai::{ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The response header set on a replay.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a claim is kept, ms (a day).
pub const RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A claimed key, carried by the job so the driver can record its answer.
#[derive(Debug, Clone)]
pub struct Idem {
    /// The client.
    pub client_id: String,
    /// The key.
    pub key: String,
}

/// The key a request carries, if any; 400 if it is empty, too long or not
/// printable ASCII.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let bad = |why: &str| ApiError::invalid_header("Idempotency-Key", why.to_string());
    let s = v.to_str().map_err(|_| bad("not ASCII"))?;
    if s.is_empty() || s.len() > MAX_KEY_LEN {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad("must be printable ASCII without spaces"));
    }
    Ok(Some(s.to_owned()))
}

/// What a claim came to.
#[derive(Debug)]
pub enum Claimed {
    /// Run the job; record its answer under this claim.
    Run(Idem),
    /// Answer with this response; run nothing.
    Replay(Box<ChatCompletion>),
}

/// Claims `key` for `job_id`, or finds what an earlier request with it did.
pub async fn claim(
    app: &AppState,
    client_id: &str,
    key: String,
    body: &[u8],
    job_id: &str,
) -> Result<Claimed, ApiError> {
    let hash = hex::encode(Sha256::digest(body));
    let c = app
        .store
        .idem_claim(client_id, &key, &hash, job_id, app.clock.now_ms())
        .await
        .map_err(|e| ApiError::internal("idempotency claim", e))?;
    match c {
        IdemClaim::Fresh => Ok(Claimed::Run(Idem {
            client_id: client_id.to_owned(),
            key,
        })),
        IdemClaim::Existing(row) if row.request_sha256 != hash => {
            Err(ApiError::idempotency_key_reused())
        }
        IdemClaim::Existing(row) => match row.response_json {
            None => Err(ApiError::idempotency_key_in_progress()),
            Some(json) => serde_json::from_str(&json)
                .map(|c| Claimed::Replay(Box::new(c)))
                .map_err(|e| ApiError::internal("stored idempotent response", e)),
        },
    }
}

/// Records the job's answer for replays. A failure is logged: the job has
/// run and been charged once; a retry then gets 409 until the claim expires.
pub async fn complete(store: &dyn Store, idem: &Idem, body: &ChatCompletion) {
    let json = match serde_json::to_string(body) {
        Ok(j) => j,
        Err(e) => return tracing::error!(error = %e, "serializing idempotent response"),
    };
    if let Err(e) = store.idem_complete(&idem.client_id, &idem.key, &json).await {
        tracing::error!(error = %e, "recording idempotent response");
    }
}

/// The stored response, as JSON or (for a streaming request) as one SSE
/// content chunk, a final chunk with usage and receipt, and `[DONE]`.
pub fn replay(body: ChatCompletion, stream: bool) -> Response {
    let mut resp = if stream {
        sse_replay(body).into_response()
    } else {
        Json(body).into_response()
    };
    resp.headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

fn sse_replay(
    c: ChatCompletion,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let choice = c.choices.first();
    let text = choice
        .map(|ch| ch.message.content.clone())
        .unwrap_or_default();
    let finish = choice.map(|ch| ch.finish_reason.clone());
    let chunk = |delta: Delta, finish_reason: Option<String>| ChatCompletionChunk {
        id: c.id.clone(),
        object: "chat.completion.chunk".into(),
        created: c.created,
        model: c.model.clone(),
        system_fingerprint: c.system_fingerprint.clone(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            logprobs: None,
        }],
        usage: None,
        proofmesh: None,
    };
    let first = chunk(
        Delta {
            role: Some("assistant".into()),
            content: Some(text),
        },
        None,
    );
    let mut last = chunk(Delta::default(), finish);
    last.usage = Some(c.usage.clone());
    last.proofmesh = Some(c.proofmesh.clone());
    let events = [
        serde_json::to_string(&first).unwrap_or_default(),
        serde_json::to_string(&last).unwrap_or_default(),
        "[DONE]".to_owned(),
    ]
    .map(|d| Ok(Event::default().data(d)));
    Sse::new(futures::stream::iter(events))
}
