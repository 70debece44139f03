//! Running one job on the engine and signing its receipt. Synchronous: called
//! on a blocking thread, streaming tokens through a callback.

use std::ops::ControlFlow;

use proofmesh_engine::{ChatMessage, Engine, GenerateRequest, SamplingParams};
use proofmesh_receipt::{
    charge_micros, response_digest, Digest, Identity, Price, PublicKey, Receipt, ReceiptBody,
};
use proofmesh_verify::fingerprint::{exact_fingerprint_from_top_k, fingerprint_digest};
use proofmesh_wire::{JobResult, JobSpec};

/// How a job ended.
#[derive(Debug)]
pub enum JobOutcome {
    /// Finished, with a provider-signed receipt.
    Done(Box<JobResult>),
    /// Failed: a stable code and a message.
    Failed {
        /// "model_not_loaded", "context_length_exceeded", "invalid_request" or "engine_error".
        code: &'static str,
        /// Why.
        message: String,
    },
}

fn failed(code: &'static str, message: impl Into<String>) -> JobOutcome {
    JobOutcome::Failed {
        code,
        message: message.into(),
    }
}

/// Runs `spec` on `engine`; `on_token(index, id, text)` returns Break to cancel.
pub fn execute_job(
    engine: &Engine,
    identity: &Identity,
    coordinator: &PublicKey,
    spec: &JobSpec,
    on_token: &mut dyn FnMut(u32, u32, &str) -> ControlFlow<()>,
) -> JobOutcome {
    if spec.model.as_str() != engine.model_digest() {
        return failed(
            "model_not_loaded",
            format!("model {} is not loaded here", spec.model),
        );
    }
    let messages = engine_messages(&spec.messages);
    let prompt = match engine
        .chat_prompt(&messages)
        .and_then(|p| engine.encode(&p))
    {
        Ok(t) => t,
        Err(e) => return failed("invalid_request", e.to_string()),
    };
    let ctx = engine.max_sequence_len();
    if prompt.len() >= ctx {
        return failed(
            "context_length_exceeded",
            format!(
                "prompt is {} tokens; the model's context is {ctx}",
                prompt.len()
            ),
        );
    }
    let room = (ctx - prompt.len()) as u32;
    let s = &spec.sampling;
    let req = GenerateRequest {
        prompt_tokens: prompt,
        sampling: SamplingParams {
            temperature: s.temperature(),
            top_p: s.top_p(),
            seed: s.seed,
            max_tokens: s.max_tokens.min(room),
            stop: s.stop.clone(),
            top_k_logits: s.top_k_logits as usize,
        },
    };
    let mut cb =
        |ev: &proofmesh_engine::TokenEvent| on_token(ev.index as u32, ev.token_id, &ev.text_delta);
    let gen = match engine.generate(&req, &mut cb) {
        Ok(g) => g,
        Err(e) => return failed("engine_error", e.to_string()),
    };
    let finish = gen.finish_reason.as_str();
    // The logit fingerprint: 8 bytes per generated token over the exact top-k.
    let k = u8::try_from(s.top_k_logits.clamp(1, 255)).unwrap_or(u8::MAX);
    let fingerprint = match exact_fingerprint_from_top_k(k, &gen.logits).and_then(|f| f.encode()) {
        Ok(b) => b,
        Err(e) => return failed("engine_error", format!("fingerprint: {e}")),
    };
    let served = Served {
        prompt_tokens: gen.prompt_tokens.len() as u32,
        completion_tokens: &gen.completion_tokens,
        text: &gen.text,
        finish_reason: finish,
        fingerprint: &fingerprint,
        finished_at_ms: proofmesh_ambient::clock::now_ms().max(spec.dispatched_at_ms),
    };
    let body = receipt_body(spec, identity.public(), coordinator, &served);
    let receipt = Receipt::sign_as_provider(body, identity);
    JobOutcome::Done(Box::new(JobResult {
        receipt,
        completion_token_ids: gen.completion_tokens,
        text: gen.text,
        fingerprint: hex::encode(&fingerprint),
    }))
}

/// What a provider served for a job, as the receipt records it.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Completion token ids.
    pub completion_tokens: &'a [u32],
    /// Completion text.
    pub text: &'a str,
    /// "stop" or "length".
    pub finish_reason: &'a str,
    /// Encoded logit fingerprint.
    pub fingerprint: &'a [u8],
    /// Finish time, unix ms.
    pub finished_at_ms: u64,
}

/// The receipt body a provider signs for `spec` and what it served: every
/// digest computed from the served data, the charge from the job's rates.
pub fn receipt_body(
    spec: &JobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    served: &Served<'_>,
) -> ReceiptBody {
    let completion_tokens = served.completion_tokens.len() as u32;
    ReceiptBody {
        version: proofmesh_receipt::receipt::RECEIPT_VERSION,
        receipt_id: spec.receipt_id.clone(),
        job_id: spec.job_id.clone(),
        client: spec.client.clone(),
        provider_key: provider.clone(),
        coordinator_key: coordinator.clone(),
        model: spec.model.clone(),
        request_digest: spec.request_digest(),
        response_digest: response_digest(
            served.completion_tokens,
            served.text,
            served.finish_reason,
        ),
        prompt_tokens: served.prompt_tokens,
        completion_tokens,
        finish_reason: served.finish_reason.to_string(),
        sampling: spec.sampling.clone(),
        logits_digest: fingerprint_digest(served.fingerprint),
        dispatched_at_ms: spec.dispatched_at_ms,
        finished_at_ms: served.finished_at_ms,
        price: Price {
            currency: spec.price.currency.clone(),
            input_per_mtok_micros: spec.price.input_per_mtok_micros,
            output_per_mtok_micros: spec.price.output_per_mtok_micros,
            charged_micros: charge_micros(
                served.prompt_tokens,
                completion_tokens,
                spec.price.input_per_mtok_micros,
                spec.price.output_per_mtok_micros,
            ),
        },
        attestation: spec.attestation.clone(),
        zk: None,
    }
}

/// Wire chat messages as the engine's.
pub(crate) fn engine_messages(msgs: &[proofmesh_wire::ChatMessage]) -> Vec<ChatMessage> {
    msgs.iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect()
}

/// The model advert digest for an engine.
pub fn model_digest(engine: &Engine) -> Result<Digest, String> {
    Digest::try_from(engine.model_digest().to_string())
}
