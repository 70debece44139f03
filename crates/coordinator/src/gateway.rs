//! `POST /v1/chat/completions`: OpenAI-compatible, streaming (SSE framed as
//! OpenAI's, ending `data: [DONE]`) and not.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use proofmesh_receipt::{client_hash, Digest, Receipt};
use proofmesh_wire::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChunkChoice, Delta,
    JobTimingExt, ProofmeshExt, ResponseMessage, Usage,
};
use proofmesh_wire::JobSpec;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::authenticate;
use crate::chat::Chat;
use crate::error::ApiError;
use crate::idempotency::{self, Claimed};
use crate::money::Quote;
use crate::pipeline::{Done, Event, Job, JobHead};
use crate::state::AppState;
use crate::validate;

/// Reads the body with a hard size limit, answering 413 in the JSON shape.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// Reads a request body within `max_body_bytes`: 413 at once when the
/// declared length is over, and when a chunked body grows past it.
pub async fn read_limited(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let limit = app.config.max_body_bytes;
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        if len
            .to_str()
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l > limit)
        {
            return Err(ApiError::too_large(limit));
        }
    }
    read_body(body, limit).await
}

/// Header naming the receipt of this response.
pub const RECEIPT_HEADER: &str = "x-proofmesh-receipt-id";

/// The handler.
pub async fn chat_completions(State(app): State<AppState>, req: Request) -> Response {
    match handle(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// What a response says about itself besides the result.
#[derive(Debug, Clone)]
pub struct Meta {
    id: String,
    model_name: String,
    digest: String,
    created: u64,
}

async fn handle(app: AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let client = authenticate(&app, &parts.headers).await?;
    let bytes = read_limited(&app, &parts.headers, body).await?;
    let req: ChatCompletionRequest =
        serde_json::from_slice(&bytes).map_err(ApiError::invalid_json)?;
    let plan = validate::plan(&app.config, req)?;
    let (class, hard_objective) = workload_class(&parts.headers)?;
    let model = match app.fleet.registry().resolve_model(&plan.model) {
        Some(m) => m,
        None if app.fleet.registry().is_known_model(&plan.model) => {
            return Err(ApiError::no_provider(&plan.model))
        }
        None => return Err(ApiError::model_not_found(&plan.model)),
    };
    let digest = Digest::try_from(model.digest.clone())
        .map_err(|e| ApiError::internal("model digest", e))?;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let now = app.clock.now_ms();
    // Escrowed at the quote; dispatched at the chosen provider's own rate.
    let quote = Quote::ceiling(app.fleet.chat_offers(digest.as_str()));
    let spec = JobSpec {
        job_id: format!("job_{uuid}"),
        receipt_id: format!("rcpt_{uuid}"),
        client: client_hash(&client.client_id),
        model: digest,
        messages: plan.messages,
        sampling: plan.sampling,
        dispatched_at_ms: now,
        price: quote.rate.clone(),
        stream: plan.stream,
        attestation: None,
    };
    let meta = Meta {
        id: format!("chatcmpl-{uuid}"),
        model_name: model.name.clone(),
        digest: model.digest.clone(),
        created: now / 1000,
    };
    let receipt_id = spec.receipt_id.clone();
    let stream = spec.stream;
    let idem = match idempotency::key_from(&parts.headers)? {
        None => None,
        Some(key) => {
            match idempotency::claim(&app, &client.client_id, key, &bytes, &spec.job_id).await? {
                Claimed::Replay(body) => return Ok(idempotency::replay(*body, stream)),
                Claimed::Run(idem) => Some(idem),
            }
        }
    };
    let head = JobHead {
        job_id: spec.job_id.clone(),
        receipt_id: spec.receipt_id.clone(),
        client_id: client.client_id.clone(),
        model: spec.model.to_string(),
        model_name: plan.model.clone(),
        class,
        hard_objective,
        min_attestation: crate::attestation::required(
            plan.min_attestation,
            client.min_attestation.as_deref(),
        ),
        created_at_ms: now,
        quote,
        idem,
    };
    let kind = Chat {
        prompt: app.prompts.count(&spec),
        spec,
        verification: plan.verification,
        max_price_micros: plan.max_price_micros,
        meta: meta.clone(),
    };
    let mut rx = app.pipeline.submit(Job { head, kind }).await?;
    let mut resp = if stream {
        // Wait for the first event so that a job that fails before producing
        // anything (no provider, bad prompt) gets a proper HTTP status.
        match rx.recv().await {
            None => {
                return Err(ApiError::internal(
                    "stream",
                    "job driver ended without a result",
                ))
            }
            Some(Event::Error(e)) => return Err(e),
            Some(first) => sse(meta, first, rx).into_response(),
        }
    } else {
        collect(meta, rx).await?
    };
    if let Ok(v) = HeaderValue::from_str(&receipt_id) {
        resp.headers_mut().insert(RECEIPT_HEADER, v);
    }
    Ok(resp)
}

/// Header naming the request's workload class (`interactive[;ttft_ms=N][;hard]`,
/// `batch[;deadline_s=N]`, `fine-tune;...`); chat defaults to interactive
/// with a 500 ms time-to-first-token objective. The objective is soft: a
/// request no provider can meet in time waits a bounded time and is then
/// served best-effort. `;hard` makes it a 503 instead.
pub const WORKLOAD_HEADER: &str = "x-proofmesh-workload";

/// The workload class, and whether its interactive objective is hard.
pub(crate) fn workload_class(
    headers: &HeaderMap,
) -> Result<(proofmesh_placement::WorkloadClass, bool), ApiError> {
    use proofmesh_placement::{Endpoint, WorkloadClass};
    let Some(v) = headers.get(WORKLOAD_HEADER) else {
        return Ok((WorkloadClass::default_for(Endpoint::Completions), false));
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::invalid_header(WORKLOAD_HEADER, "not ASCII".into()))?;
    let hard = text.split(';').skip(1).any(|p| p.trim() == "hard");
    let rest: Vec<&str> = text.split(';').filter(|p| p.trim() != "hard").collect();
    let class: WorkloadClass =
        rest.join(";")
            .parse()
            .map_err(|e: proofmesh_placement::WorkloadParseError| {
                ApiError::invalid_header(WORKLOAD_HEADER, e.to_string())
            })?;
    if hard && !matches!(class, WorkloadClass::Interactive { .. }) {
        return Err(ApiError::invalid_header(
            WORKLOAD_HEADER,
            "';hard' applies to the interactive class only".into(),
        ));
    }
    Ok((class, hard))
}

fn ext(r: &Receipt, timing: Option<JobTimingExt>) -> ProofmeshExt {
    ProofmeshExt {
        timing,
        receipt_id: r.body.receipt_id.clone(),
        provider_key: r.body.provider_key.to_string(),
        charged_micros: r.body.price.charged_micros,
        currency: r.body.price.currency.clone(),
        log_index: r.log.as_ref().map(|l| l.index),
    }
}

fn usage(r: &Receipt) -> Usage {
    Usage {
        prompt_tokens: r.body.prompt_tokens,
        completion_tokens: r.body.completion_tokens,
        total_tokens: r
            .body
            .prompt_tokens
            .saturating_add(r.body.completion_tokens),
    }
}

/// The non-streaming response for a finished job (also what an
/// Idempotency-Key replay returns).
pub fn completion_body(
    meta: Meta,
    r: &Receipt,
    text: String,
    timing: Option<JobTimingExt>,
) -> ChatCompletion {
    ChatCompletion {
        id: meta.id,
        object: "chat.completion".into(),
        created: meta.created,
        model: meta.model_name,
        system_fingerprint: meta.digest,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: text,
            },
            finish_reason: r.body.finish_reason.clone(),
            logprobs: None,
        }],
        usage: usage(r),
        proofmesh: ext(r, timing),
    }
}

async fn collect(meta: Meta, mut rx: mpsc::Receiver<Event<Chat>>) -> Result<Response, ApiError> {
    while let Some(ev) = rx.recv().await {
        match ev {
            // Non-streaming jobs get no deltas; the text comes with the result.
            Event::Delta(_) => {}
            Event::Error(e) => return Err(e),
            Event::Done(d) => {
                let Done {
                    receipt,
                    output,
                    timing,
                } = *d;
                let body = completion_body(meta, &receipt, output, Some(timing));
                return Ok(Json(body).into_response());
            }
        }
    }
    Err(ApiError::internal(
        "collect",
        "job driver ended without a result",
    ))
}

fn chunk(meta: &Meta, delta: Delta, finish: Option<String>) -> ChatCompletionChunk {
    ChatCompletionChunk {
        id: meta.id.clone(),
        object: "chat.completion.chunk".into(),
        created: meta.created,
        model: meta.model_name.clone(),
        system_fingerprint: meta.digest.clone(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
            logprobs: None,
        }],
        usage: None,
        proofmesh: None,
    }
}

fn data<T: serde::Serialize>(v: &T) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(v).unwrap_or_default())
}

fn sse(
    meta: Meta,
    first_event: Event<Chat>,
    rx: mpsc::Receiver<Event<Chat>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut first = true;
    let all = stream::once(async move { first_event }).chain(ReceiverStream::new(rx));
    let events = all.flat_map(move |ev| {
        let out: Vec<SseEvent> = match ev {
            Event::Delta(text) => {
                let role = first.then(|| "assistant".to_string());
                first = false;
                vec![data(&chunk(
                    &meta,
                    Delta {
                        role,
                        content: Some(text),
                    },
                    None,
                ))]
            }
            Event::Done(d) => {
                let (r, timing) = (&d.receipt, d.timing.clone());
                let mut c = chunk(&meta, Delta::default(), Some(r.body.finish_reason.clone()));
                if first {
                    c.choices[0].delta = Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                    };
                }
                c.usage = Some(usage(r));
                c.proofmesh = Some(ext(r, Some(timing)));
                vec![data(&c), SseEvent::default().data("[DONE]")]
            }
            Event::Error(e) => vec![data(&e.body())],
        };
        stream::iter(out.into_iter().map(Ok))
    });
    Sse::new(events)
}
