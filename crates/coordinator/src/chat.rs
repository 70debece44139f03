//! The chat job kind: an OpenAI chat completion run by one provider,
//! streamed token by token, whose result is checked against the job and
//! everything relayed before it is countersigned. The driver that runs it
//! is the shared one ([`crate::pipeline`]); this module says only what is
//! particular to chat.

use proofmesh_receipt::digest::fingerprint_format;
use proofmesh_receipt::{response_digest, AttestationRef, Digest};
use proofmesh_store::Evidence;
use proofmesh_wire::openai::ChatCompletion;
use proofmesh_wire::{CoordinatorMsg, JobResult, JobSpec, PriceRate};

use crate::dispatch_check::{mismatch, DispatchTerms};
use crate::error::ApiError;
use crate::gateway::Meta;
use crate::money::ChargeBound;
use crate::pipeline::{CheckCtx, Checked, Demand, Done, JobKind, Progress, Rejection};
use crate::registry::{JobEvent, ProviderHandle};
use crate::tokens::PromptCount;

/// A chat job.
#[derive(Debug, Clone)]
pub struct Chat {
    /// The spec as sent to providers.
    pub spec: JobSpec,
    /// "sampled" or "always".
    pub verification: String,
    /// The client's price cap, micro-units.
    pub max_price_micros: Option<u64>,
    /// The prompt's tokens, and how they were counted.
    pub prompt: PromptCount,
    /// What the response says about itself (for an idempotent replay).
    pub meta: Meta,
}

/// What a chat attempt relayed, to check against the final result.
#[derive(Debug, Default)]
pub struct Relayed {
    ids: Vec<u32>,
    text: String,
}

/// A chat job's answer: the completion text.
pub type Text = String;

impl JobKind for Chat {
    type Delta = String;
    type Result = Box<JobResult>;
    type Output = Text;
    type Relay = Relayed;

    const NAME: &'static str = "chat";
    const MEASURES_TOKENS: bool = true;

    fn request_json(&self) -> String {
        serde_json::to_string(&self.spec.messages).unwrap_or_else(|_| "[]".into())
    }

    fn verification(&self) -> &str {
        &self.verification
    }

    fn charge_bound(&self) -> ChargeBound {
        ChargeBound {
            prompt_tokens: crate::tokens::prompt_token_bound(&self.spec),
            max_completion_tokens: self.spec.sampling.max_tokens,
            max_price_micros: self.max_price_micros,
        }
    }

    fn fit_budget(&mut self, max_completion_tokens: u32) {
        let m = &mut self.spec.sampling.max_tokens;
        *m = (*m).min(max_completion_tokens);
    }

    fn demand(&self) -> Demand {
        Demand {
            prompt_tokens: self.prompt.tokens,
            prompt_source: Some(self.prompt.source),
            max_tokens: self.spec.sampling.max_tokens,
        }
    }

    fn offer<'a>(&self, p: &'a ProviderHandle) -> Option<&'a PriceRate> {
        p.models
            .iter()
            .find(|m| m.digest == self.spec.model)
            .map(|m| &m.price)
    }

    fn bind(&mut self, rate: PriceRate, attestation: Option<AttestationRef>) {
        self.spec.price = rate;
        self.spec.attestation = attestation;
    }

    fn dispatch(&self) -> CoordinatorMsg {
        CoordinatorMsg::Job(self.spec.clone())
    }

    fn on_event(&self, relayed: &mut Relayed, ev: JobEvent) -> Progress<Self> {
        match ev {
            JobEvent::Token {
                index,
                token_id,
                text,
            } => {
                if index as usize != relayed.ids.len() {
                    return Progress::Reject(format!("token index {index} out of order"));
                }
                relayed.ids.push(token_id);
                relayed.text.push_str(&text);
                // Only streaming jobs forward deltas: a non-streaming job
                // has sent nothing to its client until the end, so it stays
                // retryable.
                if self.spec.stream && !text.is_empty() {
                    Progress::Relay(text)
                } else {
                    Progress::Pending
                }
            }
            JobEvent::Failed { code, message } => match code.as_str() {
                "context_length_exceeded" => Progress::Fatal(ApiError::context_length(message)),
                "invalid_request" => Progress::Fatal(ApiError::invalid_param("messages", message)),
                _ => Progress::Retry(format!("provider reported {code}: {message}")),
            },
            JobEvent::Done(result) => Progress::Result(result),
            JobEvent::ZkDone(_) => Progress::Reject("a proof answer to a chat job".into()),
            JobEvent::ProviderGone => Progress::Retry("provider disconnected mid-job".into()),
        }
    }

    fn check(
        &self,
        ctx: CheckCtx<'_>,
        relayed: &Relayed,
        result: Box<JobResult>,
    ) -> Result<Checked<Text>, Rejection> {
        let fingerprint =
            check_result(&self.spec, ctx, &result, relayed).map_err(Rejection::Fault)?;
        let result = *result;
        Ok(Checked {
            evidence: Evidence {
                completion_token_ids: result.completion_token_ids,
                text: result.text.clone(),
                fingerprint,
            },
            receipt: result.receipt,
            output: result.text,
        })
    }

    fn auditable(&self) -> bool {
        true
    }

    fn replay_body(&self, done: &Done<Text>) -> Option<ChatCompletion> {
        Some(crate::gateway::completion_body(
            self.meta.clone(),
            &done.receipt,
            done.output.clone(),
            Some(done.timing.clone()),
        ))
    }
}

/// Every way a provider's result can disagree with the job, as a reason.
/// Returns the decoded fingerprint bytes.
fn check_result(
    spec: &JobSpec,
    ctx: CheckCtx<'_>,
    result: &JobResult,
    relayed: &Relayed,
) -> Result<Vec<u8>, String> {
    let b = &result.receipt.body;
    let same = |what: &str, ok: bool| if ok { Ok(()) } else { Err(mismatch(what)) };
    DispatchTerms {
        receipt_id: &spec.receipt_id,
        job_id: &spec.job_id,
        client: &spec.client,
        model: &spec.model,
        provider: ctx.provider,
        coordinator: ctx.coordinator,
        request_digest: spec.request_digest(),
        sampling: &spec.sampling,
        attestation: &spec.attestation,
        dispatched_at_ms: spec.dispatched_at_ms,
        price: &spec.price,
    }
    .check(&result.receipt)?;
    same("relayed tokens", relayed.ids == result.completion_token_ids)?;
    same("relayed text", relayed.text == result.text)?;
    same(
        "completion_tokens",
        b.completion_tokens as usize == result.completion_token_ids.len(),
    )?;
    // The coordinator never accepts a result after cancelling, so a
    // "cancelled" finish is a provider truncating its own output.
    same(
        "finish_reason (must be stop or length)",
        b.finish_reason == "stop" || b.finish_reason == "length",
    )?;
    let rd = response_digest(&result.completion_token_ids, &result.text, &b.finish_reason);
    same("response_digest", b.response_digest == rd)?;
    // The fingerprint's shape and digest; the verifier decodes and
    // re-derives its content on audit.
    let fp = proofmesh_wire::fingerprint_bytes(&result.fingerprint)?;
    same(
        "fingerprint shape (header + 8 bytes per token)",
        fingerprint_format::has_shape(&fp, result.completion_token_ids.len()),
    )?;
    same("logits_digest", b.logits_digest == Digest::of(&fp))?;
    Ok(fp)
}
