//! OpenAI-compatible chat completion types, as the gateway accepts and emits
//! them (the subset proofmesh supports, plus a `proofmesh` extension object
//! carrying the receipt id). Unknown request fields are ignored, as vLLM does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/chat/completions` body.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChatCompletionRequest {
    /// Model name or `sha256:` digest.
    pub model: String,
    /// Conversation.
    pub messages: Vec<RequestMessage>,
    /// Stream as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Sampling temperature, 0..=2.
    pub temperature: Option<f32>,
    /// Nucleus mass, (0, 1].
    pub top_p: Option<f32>,
    /// Completion token limit (legacy name).
    pub max_tokens: Option<u32>,
    /// Completion token limit (current name).
    pub max_completion_tokens: Option<u32>,
    /// Stop string or strings.
    pub stop: Option<Stop>,
    /// Seed; if absent the coordinator picks one.
    pub seed: Option<u64>,
    /// Number of choices; only 1 is supported.
    pub n: Option<u32>,
    /// proofmesh extension: how many top logits per token the provider commits to.
    pub top_k_logits: Option<u32>,
    /// proofmesh extension: `"sampled"` (default: audited at the network's
    /// rate) or `"always"` (always re-executed by a verifier, at a fee).
    pub verification: Option<String>,
    /// proofmesh extension: the most this request may cost, in micro-units of
    /// the model's currency. `max_tokens` is lowered so the worst case fits;
    /// a prompt that alone costs more is refused.
    pub max_price_micros: Option<u64>,
    /// proofmesh extension: serve only on providers whose hardware
    /// attestation is at least this level: `"none"`, `"tee"` or `"tee+gpu"`
    /// (an API key's own requirement applies too; the stricter wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_attestation: Option<String>,
}

/// `stop` may be a string or a list of strings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// As a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// A request message; content may be a string or a list of text parts.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RequestMessage {
    /// Role.
    pub role: String,
    /// Content.
    #[serde(default)]
    pub content: Option<Content>,
}

/// Message content.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts; only `{"type":"text"}` parts are supported.
    Parts(Vec<Value>),
}

/// Non-streaming response.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChatCompletion {
    /// Completion id.
    pub id: String,
    /// "chat.completion".
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Model name.
    pub model: String,
    /// Model digest.
    pub system_fingerprint: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
    /// Receipt reference.
    pub proofmesh: ProofmeshExt,
}

/// A choice in a non-streaming response.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: ResponseMessage,
    /// "stop" or "length".
    pub finish_reason: String,
    /// Always null.
    pub logprobs: Option<Value>,
}

/// The assistant's message.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ResponseMessage {
    /// "assistant".
    pub role: String,
    /// Text.
    pub content: String,
}

/// Token counts.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Sum.
    pub total_tokens: u32,
}

/// proofmesh's extension object on responses and final chunks.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ProofmeshExt {
    /// Receipt id; `GET /v1/receipts/{id}` returns it.
    pub receipt_id: String,
    /// Provider that served the job.
    pub provider_key: String,
    /// Charge in micro-units.
    pub charged_micros: u64,
    /// Currency of the charge.
    pub currency: String,
    /// Leaf index of the receipt in the transparency log (absent only if
    /// logging failed; it is then logged at the coordinator's next start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// Where the time went, as the coordinator measured it (an
    /// Idempotency-Key replay repeats the original job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<JobTimingExt>,
}

/// Where a job's time went, ms, measured at the coordinator. The client's
/// end-to-end latency minus `queued_ms` and `provider_ms` is what the
/// gateway, the checks, the ledger and the log added.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct JobTimingExt {
    /// From the job's creation until it was sent to the provider that
    /// served it (waiting for a provider, earlier failed attempts).
    pub queued_ms: f64,
    /// From sending the job to the provider to its first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ttft_ms: Option<f64>,
    /// From sending the job to the provider to its signed result.
    pub provider_ms: f64,
    /// From the result to the answer: checks, countersigning, storage,
    /// settlement and the log.
    pub finish_ms: f64,
    /// The job was served best-effort: no provider could meet its
    /// time-to-first-token objective in time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub objective_missed: bool,
}

/// A streaming chunk.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChatCompletionChunk {
    /// Completion id (same for all chunks).
    pub id: String,
    /// "chat.completion.chunk".
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Model name.
    pub model: String,
    /// Model digest.
    pub system_fingerprint: String,
    /// One choice delta.
    pub choices: Vec<ChunkChoice>,
    /// Present on the final chunk.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage: Option<Usage>,
    /// Present on the final chunk.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proofmesh: Option<ProofmeshExt>,
}

/// A choice delta.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// New content.
    pub delta: Delta,
    /// Set on the final chunk.
    pub finish_reason: Option<String>,
    /// Always null.
    pub logprobs: Option<Value>,
}

/// Delta content.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Delta {
    /// "assistant" on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// Text added.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content: Option<String>,
}

/// OpenAI's error envelope.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// OpenAI's error object.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// Error class, e.g. "invalid_request_error".
    #[serde(rename = "type")]
    pub kind: String,
    /// Offending parameter, if any.
    pub param: Option<String>,
    /// Stable machine-readable code.
    pub code: String,
    /// The job the error belongs to, when one was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The model as the client named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Seconds after which a retry may succeed (also the `Retry-After`
    /// header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// `GET /v1/models` entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ModelEntry {
    /// Model name.
    pub id: String,
    /// "model".
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// "proofmesh".
    pub owned_by: String,
    /// Model digest.
    pub digest: String,
    /// Providers serving it now.
    pub providers: u32,
}

/// `GET /v1/models` body.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ModelList {
    /// "list".
    pub object: String,
    /// Models.
    pub data: Vec<ModelEntry>,
}
