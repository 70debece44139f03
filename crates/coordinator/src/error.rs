//! The one HTTP error shape: OpenAI's `{"error": {message, type, param, code}}`
//! with stable codes. Internal failures are logged with detail and answered
//! with a generic message, never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_wire::openai::{ErrorBody, ErrorDetail};

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. "invalid_api_key".
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Offending parameter.
    pub param: Option<&'static str>,
    /// Which job and model, and when to retry (boxed: most errors have
    /// none, and handlers return `Result<_, ApiError>` by value).
    pub context: Option<Box<ErrorContext>>,
}

/// What an error says about the job it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The job, when one was created.
    pub job_id: Option<String>,
    /// The model as the client named it.
    pub model: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
            context: None,
        }
    }

    fn context_mut(&mut self) -> &mut ErrorContext {
        self.context.get_or_insert_with(Default::default)
    }

    /// Names the job the error belongs to.
    pub fn for_job(mut self, job_id: &str) -> Self {
        self.context_mut().job_id = Some(job_id.to_string());
        self
    }

    /// Names the model as the client asked for it.
    pub fn for_model(mut self, model: &str) -> Self {
        self.context_mut().model = Some(model.to_string());
        self
    }

    /// Tells the client when to retry (`Retry-After`, seconds, at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.context_mut().retry_after_s = Some(seconds.max(1));
        self
    }

    /// Seconds after which a retry may succeed, if said.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.context.as_ref().and_then(|c| c.retry_after_s)
    }

    /// 429: too many jobs are already waiting for a provider.
    pub fn queue_full(model: &str, waiting: usize) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            format!(
                "{waiting} jobs are already waiting for a provider, the most this coordinator queues; nothing was charged. Retry after the Retry-After interval."
            ),
        )
        .for_model(model)
    }

    /// 503: a hard time-to-first-token objective could not be met in time.
    pub fn objective_unmet(model: &str, ttft_ms: u32, waited_ms: u64, missing: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ttft_objective_unmet",
            format!(
                "No provider could start this request within its hard {ttft_ms} ms time-to-first-token objective after waiting {waited_ms} ms: {missing}. Nothing was charged; retry, or drop ';hard' to be served best-effort."
            ),
        )
        .for_model(model)
    }

    /// 503: a deadline-bound job could not be started before its deadline.
    pub fn deadline_unmet(model: &str, missing: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "deadline_unmet",
            format!(
                "No provider could run this job before its deadline: {missing}. Nothing was charged."
            ),
        )
        .for_model(model)
    }

    /// 401: no key.
    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "No API key provided. Send it as 'Authorization: Bearer <key>'.",
        )
    }

    /// 401: wrong key.
    pub fn invalid_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Incorrect API key provided.",
        )
    }

    /// 400: body is not JSON of the right shape.
    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("The request body is not valid JSON for this endpoint: {detail}"),
        )
    }

    /// 400: a parameter is out of range.
    pub fn invalid_param(param: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message);
        e.param = Some(param);
        e
    }

    /// 400: prompt longer than the model's context.
    pub fn context_length(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "context_length_exceeded", message);
        e.param = Some("messages");
        e
    }

    /// 404: unknown model.
    pub fn model_not_found(model: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!(
                "The model '{model}' does not exist or no provider serves it. See GET /v1/models."
            ),
        );
        e.param = Some("model");
        e
    }

    /// 404: unknown (or someone else's) receipt.
    pub fn receipt_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "receipt_not_found",
            format!("No receipt '{id}' for this API key."),
        )
    }

    /// 404: unknown (or someone else's) job.
    pub fn job_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("No job '{id}' for this API key."),
        )
    }

    /// 413: body too big.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    }

    /// 400: a request header is malformed.
    pub fn invalid_header(name: &'static str, reason: String) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            format!("Header {name}: {reason}"),
        );
        e.param = Some(name);
        e
    }

    /// 402: the client's prepaid balance cannot cover the job's escrow.
    pub fn insufficient_balance(needed: u64, balance: i64, currency: &str) -> Self {
        Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            format!(
                "This request needs {needed} micro-{currency} held in escrow; the balance is {balance}. Add credit or lower max_tokens."
            ),
        )
    }

    /// 422: an Idempotency-Key was reused with a different request body.
    pub fn idempotency_key_reused() -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body. Use a new key for a new request.",
        );
        e.param = Some("Idempotency-Key");
        e
    }

    /// 409: the request first sent with this Idempotency-Key is still running.
    pub fn idempotency_key_in_progress() -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_progress",
            "The request first sent with this Idempotency-Key is still running; retry after it finishes to get its result.",
        );
        e.param = Some("Idempotency-Key");
        e
    }

    /// 400 `invalid_pool_document`: a pool charter or transfer was refused.
    pub fn invalid_pool_document(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_pool_document", reason)
    }

    /// 404: no such pool.
    pub fn pool_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "pool_not_found",
            format!("No revenue-share pool '{id}'."),
        )
    }

    /// 409: a pool document conflicts with what is recorded.
    pub fn pool_conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "pool_conflict", reason)
    }

    /// 503: no provider can take the job.
    pub fn no_provider(model: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_provider_available",
            format!("No provider is available for model '{model}' right now. Retry later."),
        )
        .for_model(model)
    }

    /// 503: providers serve the model, but none could take the job for a
    /// reason that does not lift by waiting (`missing`, in words).
    pub fn no_provider_because(model: &str, missing: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_provider_available",
            format!("No provider can take this request for model '{model}': {missing}."),
        )
        .for_model(model)
    }

    /// 503: no provider with the required attestation can take the job.
    pub fn no_attested_provider(model: &str, level: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_attested_provider",
            format!(
                "No provider attested at level '{level}' or above is available for model '{model}' right now."
            ),
        )
    }

    /// 502: providers failed the job.
    pub fn provider_failed(attempts: u32) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "provider_failed",
            format!("The job failed on {attempts} provider(s); no result was produced."),
        )
    }

    /// 504: deadline passed.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "The request did not finish in time.",
        )
    }

    /// A log read error: requests beyond the published tree are 404
    /// `log_not_found`; malformed indexes, sizes or tile paths are 400
    /// `invalid_log_request`; anything else is internal.
    pub fn log(e: proofmesh_log::LogError) -> Self {
        use proofmesh_log::LogError as L;
        use proofmesh_tlog::TlogError as T;
        match e {
            L::NotPublished { what, published } => Self::new(
                StatusCode::NOT_FOUND,
                "log_not_found",
                format!("{what} is not in the log (published tree size {published})."),
            ),
            L::Tlog(
                t @ (T::BadTilePath { .. }
                | T::BadTile { .. }
                | T::IndexOutOfRange { .. }
                | T::SizeOutOfRange { .. }
                | T::SizesOutOfOrder { .. }),
            ) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_log_request",
                t.to_string(),
            ),
            other => Self::internal("log", other),
        }
    }

    /// 500: logged, never detailed to the client.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error.",
        )
    }

    /// OpenAI error type for the status.
    fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            404 if self.code == "model_not_found" => "invalid_request_error",
            404 => "not_found_error",
            400 | 413 => "invalid_request_error",
            402 => "insufficient_quota",
            429 => "rate_limit_error",
            502..=504 => "service_unavailable_error",
            _ => "server_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind().to_string(),
                param: self.param.map(str::to_string),
                code: self.code.to_string(),
                job_id: self.context.as_ref().and_then(|c| c.job_id.clone()),
                model: self.context.as_ref().and_then(|c| c.model.clone()),
                retry_after_s: self.retry_after_s(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("proofmesh_http_errors_total", "code" => self.code).increment(1);
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after_s() {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}
