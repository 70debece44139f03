//! Request validation: an OpenAI chat request in, a dispatchable plan out, or
//! a 400 naming the parameter. Pure; no I/O.

use proofmesh_receipt::SamplingRecord;
use proofmesh_wire::openai::{ChatCompletionRequest, Content};
use proofmesh_wire::ChatMessage;

use crate::config::CoordinatorConfig;
use crate::error::ApiError;

/// Most stop strings accepted (OpenAI's limit).
pub const MAX_STOP: usize = 4;
/// Longest stop string, bytes.
pub const MAX_STOP_BYTES: usize = 64;
/// Most messages in one request.
pub const MAX_MESSAGES: usize = 256;

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    /// Model name or digest as asked.
    pub model: String,
    /// Conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling, seed included.
    pub sampling: SamplingRecord,
    /// Stream or not.
    pub stream: bool,
    /// "sampled" or "always".
    pub verification: String,
    /// The client's price cap for this request, micro-units.
    pub max_price_micros: Option<u64>,
    /// The least attestation level a provider needs for this request.
    pub min_attestation: proofmesh_placement::AttestationLevel,
}

fn to_milli(v: f32) -> u32 {
    (v * 1000.0).round() as u32
}

fn text_of(content: Option<Content>, i: usize) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(s)) => Ok(s),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            for p in parts {
                let is_text = p.get("type").and_then(|t| t.as_str()) == Some("text");
                match (is_text, p.get("text").and_then(|t| t.as_str())) {
                    (true, Some(t)) => out.push_str(t),
                    _ => {
                        return Err(ApiError::invalid_param(
                            "messages",
                            format!("messages[{i}].content: only text parts are supported"),
                        ))
                    }
                }
            }
            Ok(out)
        }
    }
}

fn messages(
    req_msgs: Vec<proofmesh_wire::openai::RequestMessage>,
) -> Result<Vec<ChatMessage>, ApiError> {
    if req_msgs.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "messages must not be empty",
        ));
    }
    if req_msgs.len() > MAX_MESSAGES {
        return Err(ApiError::invalid_param(
            "messages",
            format!("at most {MAX_MESSAGES} messages"),
        ));
    }
    let mut out = Vec::with_capacity(req_msgs.len());
    for (i, m) in req_msgs.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "user" | "assistant" => m.role.clone(),
            "developer" => "system".to_string(),
            other => {
                return Err(ApiError::invalid_param(
                    "messages",
                    format!("messages[{i}].role '{other}' is not one of system, user, assistant"),
                ))
            }
        };
        out.push(ChatMessage {
            role,
            content: text_of(m.content, i)?,
        });
    }
    Ok(out)
}

fn sampling(
    cfg: &CoordinatorConfig,
    req: &ChatCompletionRequest,
) -> Result<SamplingRecord, ApiError> {
    let temperature = req.temperature.unwrap_or(cfg.default_temperature);
    if !temperature.is_finite() || !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid_param(
            "temperature",
            "temperature must be between 0 and 2",
        ));
    }
    let top_p = req.top_p.unwrap_or(1.0);
    if !top_p.is_finite() || top_p <= 0.0 || top_p > 1.0 {
        return Err(ApiError::invalid_param("top_p", "top_p must be in (0, 1]"));
    }
    let max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(cfg.default_max_tokens);
    if max_tokens == 0 || max_tokens > cfg.max_tokens_limit {
        return Err(ApiError::invalid_param(
            "max_tokens",
            format!("max_tokens must be between 1 and {}", cfg.max_tokens_limit),
        ));
    }
    let stop = req.stop.clone().map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP
        || stop
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return Err(ApiError::invalid_param(
            "stop",
            format!(
                "stop takes at most {MAX_STOP} non-empty strings of at most {MAX_STOP_BYTES} bytes"
            ),
        ));
    }
    let top_k_logits = req.top_k_logits.unwrap_or(cfg.default_top_k_logits);
    if !(1..=64).contains(&top_k_logits) {
        return Err(ApiError::invalid_param(
            "top_k_logits",
            "top_k_logits must be between 1 and 64",
        ));
    }
    let top_p_milli = to_milli(top_p).max(1);
    let seed = req.seed.unwrap_or_else(rand::random);
    Ok(SamplingRecord {
        temperature_milli: to_milli(temperature),
        top_p_milli,
        seed,
        max_tokens,
        stop,
        top_k_logits,
    })
}

/// Validates a request.
pub fn plan(cfg: &CoordinatorConfig, req: ChatCompletionRequest) -> Result<JobPlan, ApiError> {
    if let Some(n) = req.n {
        if n != 1 {
            return Err(ApiError::invalid_param("n", "only n = 1 is supported"));
        }
    }
    if req.model.is_empty() {
        return Err(ApiError::invalid_param("model", "model must not be empty"));
    }
    let sampling = sampling(cfg, &req)?;
    let stream = req.stream;
    let verification = req.verification.clone().unwrap_or_else(|| "sampled".into());
    if verification != "sampled" && verification != "always" {
        return Err(ApiError::invalid_param(
            "verification",
            "verification must be \"sampled\" or \"always\"",
        ));
    }
    let min_attestation = min_attestation(req.min_attestation.as_deref())?;
    Ok(JobPlan {
        model: req.model,
        messages: messages(req.messages)?,
        sampling,
        stream,
        verification,
        max_price_micros: req.max_price_micros,
        min_attestation,
    })
}

/// A request's `min_attestation` field (absent: `none`); 400 if unknown.
pub fn min_attestation(
    field: Option<&str>,
) -> Result<proofmesh_placement::AttestationLevel, ApiError> {
    match field {
        None => Ok(proofmesh_placement::AttestationLevel::None),
        Some(l) => crate::attestation::parse_level(l).ok_or_else(|| {
            ApiError::invalid_param(
                "min_attestation",
                "min_attestation must be \"none\", \"tee\" or \"tee+gpu\"",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    }

    #[test]
    fn defaults_apply() {
        let p = plan(&CoordinatorConfig::default(), req(base())).unwrap();
        assert_eq!(p.sampling.temperature_milli, 0);
        assert_eq!(p.sampling.top_p_milli, 1000);
        assert_eq!(p.sampling.max_tokens, 256);
        assert!(!p.stream);
    }

    #[test]
    fn out_of_range_parameters_name_the_param() {
        let cfg = CoordinatorConfig::default();
        for (k, v, param) in [
            ("temperature", serde_json::json!(2.5), "temperature"),
            ("top_p", serde_json::json!(0.0), "top_p"),
            ("max_tokens", serde_json::json!(0), "max_tokens"),
            ("max_tokens", serde_json::json!(100000), "max_tokens"),
            ("n", serde_json::json!(2), "n"),
            ("stop", serde_json::json!(["a", "b", "c", "d", "e"]), "stop"),
            ("stop", serde_json::json!(""), "stop"),
        ] {
            let mut j = base();
            j[k] = v;
            let e = plan(&cfg, req(j)).unwrap_err();
            assert_eq!(e.param, Some(param), "{k}");
            assert_eq!(e.status.as_u16(), 400);
        }
    }

    #[test]
    fn messages_are_checked() {
        let cfg = CoordinatorConfig::default();
        let mut j = base();
        j["messages"] = serde_json::json!([]);
        assert_eq!(plan(&cfg, req(j)).unwrap_err().param, Some("messages"));
        let mut j = base();
        j["messages"] = serde_json::json!([{"role": "wizard", "content": "x"}]);
        assert!(plan(&cfg, req(j)).unwrap_err().message.contains("wizard"));
        let mut j = base();
        j["messages"] = serde_json::json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]);
        assert_eq!(plan(&cfg, req(j)).unwrap().messages[0].content, "ab");
    }

    #[test]
    fn explicit_seed_and_sampling_are_recorded() {
        let mut j = base();
        j["seed"] = serde_json::json!(7);
        j["temperature"] = serde_json::json!(0.7);
        j["top_p"] = serde_json::json!(0.9);
        j["stop"] = serde_json::json!("\n");
        let p = plan(&CoordinatorConfig::default(), req(j)).unwrap();
        assert_eq!(p.sampling.seed, 7);
        assert_eq!(
            (p.sampling.temperature_milli, p.sampling.top_p_milli),
            (700, 900)
        );
        assert_eq!(p.sampling.stop, vec!["\n".to_string()]);
    }
}
