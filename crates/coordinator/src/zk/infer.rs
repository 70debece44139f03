//! `POST /v1/zk/infer`: a proved inference. The client names a registered
//! zk model and gives its int8 input; a provider that advertised the model
//! runs it and proves `output = model(input)` for the job's nonce; the
//! coordinator verifies the proof against the registered verifying key
//! before it countersigns, logs and answers. The answer carries the output,
//! the proof bundle and the receipt (whose signed `zk` field names the
//! proof's digest), so the client can check it offline.
//!
//! A provider whose signed answer carries a proof that fails is treated like
//! a failed audit: the failure and its evidence are stored, its stake is
//! slashed, its reputation drops, it is excluded after `max_failed_audits`,
//! and the job is retried elsewhere (the client is charged only for the
//! proof it gets).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_receipt::{client_hash, AttestationRef, Digest};
use proofmesh_store::{Evidence, ProofFailure};
use proofmesh_wire::{
    CoordinatorMsg, PriceRate, ZkInferRequest, ZkInferResponse, ZkJobResult, ZkJobSpec,
};
use proofmesh_zkml::ProofBundle;

use super::check::{check, ZkRejection};
use super::ZkModels;
use crate::error::ApiError;
use crate::money::{ChargeBound, Quote};
use crate::pipeline::{
    CheckCtx, Checked, Demand, Event, Job, JobHead, JobKind, Progress, Rejection,
};
use crate::registry::{JobEvent, ProviderHandle};
use crate::state::AppState;

/// The handler.
pub async fn infer(State(app): State<AppState>, req: Request) -> Response {
    match handle(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The int8 input a request gives, checked against the model's width.
pub fn parse_input(values: &[i64], width: u32) -> Result<Vec<i8>, ApiError> {
    if values.len() != width as usize {
        return Err(ApiError::invalid_param(
            "input",
            format!(
                "input has {} values; the model takes exactly {width}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            i8::try_from(v).map_err(|_| {
                ApiError::invalid_param(
                    "input",
                    format!("input[{i}] = {v} is outside int8 (-128..=127)"),
                )
            })
        })
        .collect()
}

/// A proved-inference job: the kind the shared driver runs for
/// `POST /v1/zk/infer`.
#[derive(Debug, Clone)]
pub struct Zk {
    /// The spec as sent to providers.
    pub spec: ZkJobSpec,
    /// The registry its proof is checked against.
    pub models: Arc<ZkModels>,
}

async fn handle(app: AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let client = crate::auth::authenticate(&app, &parts.headers).await?;
    let bytes = crate::gateway::read_limited(&app, &parts.headers, body).await?;
    let req: ZkInferRequest = serde_json::from_slice(&bytes).map_err(ApiError::invalid_json)?;
    let (class, hard_objective) = crate::gateway::workload_class(&parts.headers)?;
    let model = app
        .zk
        .resolve(&req.model)
        .ok_or_else(|| ApiError::model_not_found(&req.model))?;
    let input = parse_input(&req.input, model.entry.input_len)?;
    let level = crate::validate::min_attestation(req.min_attestation.as_deref())?;
    let digest = Digest::try_from(model.digest()).map_err(|e| ApiError::internal("digest", e))?;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let now = app.clock.now_ms();
    let quote = Quote::ceiling(app.fleet.zk_offers(digest.as_str()));
    let spec = ZkJobSpec {
        job_id: format!("job_{uuid}"),
        receipt_id: format!("rcpt_{uuid}"),
        client: client_hash(&client.client_id),
        price: quote.rate.clone(),
        model: digest,
        input,
        dispatched_at_ms: now,
        attestation: None,
    };
    let head = JobHead {
        job_id: spec.job_id.clone(),
        receipt_id: spec.receipt_id.clone(),
        client_id: client.client_id,
        model: spec.model.to_string(),
        model_name: req.model.clone(),
        class,
        hard_objective,
        min_attestation: crate::attestation::required(level, client.min_attestation.as_deref()),
        created_at_ms: now,
        quote,
        idem: None,
    };
    let receipt_id = spec.receipt_id.clone();
    let kind = Zk {
        spec,
        models: app.zk.clone(),
    };
    let mut rx = app.pipeline.submit(Job { head, kind }).await?;
    // A proof has no deltas: the first event is the answer.
    let done = match rx.recv().await {
        Some(Event::Done(d)) => *d,
        Some(Event::Error(e)) => return Err(e),
        Some(Event::Delta(never)) => match never {},
        None => {
            return Err(ApiError::internal(
                "zk job",
                "driver ended without a result",
            ))
        }
    };
    let bundle = done.output;
    let body = ZkInferResponse {
        id: format!("zkinf-{uuid}"),
        object: "zk.inference".into(),
        model: model.entry.name.clone(),
        model_digest: model.digest(),
        class: bundle.class,
        logits: bundle.logits.clone(),
        proof: bundle,
        receipt: done.receipt,
    };
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&receipt_id) {
        resp.headers_mut().insert(crate::gateway::RECEIPT_HEADER, v);
    }
    Ok(resp)
}

impl JobKind for Zk {
    type Delta = std::convert::Infallible;
    type Result = Box<ZkJobResult>;
    type Output = ProofBundle;
    type Relay = ();

    const NAME: &'static str = "zk";
    const MEASURES_TOKENS: bool = false;

    fn request_json(&self) -> String {
        serde_json::json!({ "zk_input": self.spec.input }).to_string()
    }

    fn verification(&self) -> &str {
        "proof"
    }

    /// `rate`'s input rate is per 1M inferences: a receipt counts the
    /// inference as one prompt token.
    fn charge_bound(&self) -> ChargeBound {
        ChargeBound {
            prompt_tokens: 1,
            max_completion_tokens: 0,
            max_price_micros: None,
        }
    }

    fn fit_budget(&mut self, _max_completion_tokens: u32) {}

    fn demand(&self) -> Demand {
        Demand {
            prompt_tokens: 1,
            prompt_source: None,
            max_tokens: 0,
        }
    }

    fn serves(&self, p: &ProviderHandle) -> bool {
        p.zk_models
            .iter()
            .any(|z| z.model_digest == self.spec.model)
    }

    fn offer<'a>(&self, p: &'a ProviderHandle) -> Option<&'a PriceRate> {
        p.zk_models
            .iter()
            .find(|z| z.model_digest == self.spec.model)
            .map(|z| &z.price)
    }

    fn bind(&mut self, rate: PriceRate, attestation: Option<AttestationRef>) {
        self.spec.price = rate;
        self.spec.attestation = attestation;
    }

    fn dispatch(&self) -> CoordinatorMsg {
        CoordinatorMsg::ZkJob(self.spec.clone())
    }

    fn on_event(&self, _relay: &mut (), ev: JobEvent) -> Progress<Self> {
        match ev {
            JobEvent::ZkDone(result) => Progress::Result(result),
            JobEvent::Failed { code, message } if code == "invalid_request" => {
                Progress::Fatal(ApiError::invalid_param("input", message))
            }
            JobEvent::Failed { code, message } => {
                Progress::Retry(format!("provider reported {code}: {message}"))
            }
            JobEvent::ProviderGone => Progress::Retry("provider disconnected mid-job".into()),
            JobEvent::Token { .. } | JobEvent::Done(_) => {
                Progress::Reject("a chat answer to a proved-inference job".into())
            }
        }
    }

    /// Verifies the proof against the registered key. A Groth16
    /// verification is ~1.5 ms of CPU (three pairings): cheaper to run on
    /// the driver's task than to hand to a blocking thread.
    fn check(
        &self,
        ctx: CheckCtx<'_>,
        _relay: &(),
        result: Box<ZkJobResult>,
    ) -> Result<Checked<ProofBundle>, Rejection> {
        let Some(model) = self.models.by_digest(self.spec.model.as_str()) else {
            return Err(Rejection::Fatal(ApiError::internal(
                "zk job",
                "model left the registry",
            )));
        };
        match check(model, &self.spec, ctx.provider, ctx.coordinator, &result) {
            Ok(()) => {}
            Err(ZkRejection::Result(why)) => return Err(Rejection::Fault(why)),
            Err(ZkRejection::Proof(why)) => {
                let failure = ProofFailure {
                    job_id: self.spec.job_id.clone(),
                    provider_key: ctx.provider.to_string(),
                    reason: why.clone(),
                    receipt_json: serde_json::to_string(&result.receipt).unwrap_or_default(),
                    bundle_json: result.bundle.to_json(),
                    at_ms: ctx.now_ms,
                };
                return Err(Rejection::Fraud {
                    why,
                    failure: Box::new(failure),
                });
            }
        }
        let result = *result;
        Ok(Checked {
            evidence: Evidence {
                completion_token_ids: Vec::new(),
                text: result.bundle.to_json(),
                fingerprint: result
                    .bundle
                    .logits
                    .iter()
                    .map(|&v| v.to_le_bytes()[0])
                    .collect(),
            },
            receipt: result.receipt,
            output: result.bundle,
        })
    }

    /// The proof is the verification: no audit.
    fn auditable(&self) -> bool {
        false
    }
}
