//! Autoregressive generation: one prefill pass over the prompt, then one
//! token at a time against the KV cache, sampling each token with
//! [`sample_token`], streaming text deltas, and stopping on EOS, a stop
//! string, `max_tokens` or a callback request.

use std::ops::ControlFlow;
use std::time::Instant;

use crate::attention::KvCache;
use crate::engine::Engine;
use crate::forward::{Output, Want};
use crate::sampling::{sample_token, SamplingParams, TopKLogits};
use crate::stream::{Release, TextStream};
use crate::EngineError;

/// A generation request over already-tokenized input.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    pub prompt_tokens: Vec<u32>,
    pub sampling: SamplingParams,
}

/// One generated token, as streamed to the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenEvent {
    /// 0-based index among generated tokens (the sampling position).
    pub index: usize,
    pub token_id: u32,
    /// Text released with this token (may be empty while text is held back).
    pub text_delta: String,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// EOS / `<|im_end|>` or a stop string.
    Stop,
    /// `max_tokens` (or the context window) reached.
    Length,
    /// The token callback returned `ControlFlow::Break`.
    Cancelled,
}

impl FinishReason {
    /// `"stop"`, `"length"` or `"cancelled"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// The result of [`Engine::generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub prompt_tokens: Vec<u32>,
    /// Every sampled token, including a final EOS or stop-string token.
    pub completion_tokens: Vec<u32>,
    /// Completion text: EOS tokens and anything from a stop string on are
    /// excluded; equals the concatenated `text_delta`s.
    pub text: String,
    pub finish_reason: FinishReason,
    /// One entry per completion token: top-k of the logits it was sampled from.
    pub logits: Vec<TopKLogits>,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

/// An incremental forward-pass session with its own KV cache. Exposed for
/// benchmarks and verification tools.
#[doc(hidden)]
pub struct Session<'e> {
    engine: &'e Engine,
    cache: KvCache,
}

impl<'e> Session<'e> {
    /// Start an empty session.
    pub fn new(engine: &'e Engine) -> Self {
        Self {
            engine,
            cache: engine.model.new_cache(),
        }
    }

    /// Positions processed so far.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.cache.len() == 0
    }

    /// Feed `tokens` in one pass; returns the full logits after the last one.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.engine.tokenizer.check_ids(tokens)?;
        match self.engine.run(tokens, &mut self.cache, Want::LastLogits)? {
            Output::Logits(l) => Ok(l),
            Output::TopK(_) => unreachable!("asked for logits"),
        }
    }
}

/// Behaviour switches not exposed in the public request.
#[derive(Clone, Copy, Default)]
pub(crate) struct GenOptions {
    /// Keep generating through EOS tokens (benchmarks).
    pub ignore_eos: bool,
}

impl Engine {
    /// Generate a completion, calling `on_token` for every sampled token.
    pub fn generate(
        &self,
        req: &GenerateRequest,
        on_token: &mut dyn FnMut(&TokenEvent) -> ControlFlow<()>,
    ) -> Result<Generation, EngineError> {
        self.generate_with(req, on_token, GenOptions::default())
    }

    pub(crate) fn generate_with(
        &self,
        req: &GenerateRequest,
        on_token: &mut dyn FnMut(&TokenEvent) -> ControlFlow<()>,
        opts: GenOptions,
    ) -> Result<Generation, EngineError> {
        let sp = &req.sampling;
        sp.validate()?;
        self.check_sequence(&req.prompt_tokens)?;
        let mut gen = Generation {
            prompt_tokens: req.prompt_tokens.clone(),
            completion_tokens: Vec::new(),
            text: String::new(),
            finish_reason: FinishReason::Length,
            logits: Vec::new(),
            prefill_ms: 0.0,
            decode_ms: 0.0,
        };
        if sp.max_tokens == 0 {
            return Ok(gen);
        }
        let t0 = Instant::now();
        let mut session = Session::new(self);
        let mut logits = session.feed(&req.prompt_tokens)?;
        gen.prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let mut stream = TextStream::new(&sp.stop);
        let max_tokens = sp.max_tokens as usize;
        loop {
            let index = gen.completion_tokens.len();
            let token = sample_token(&logits, sp.temperature, sp.top_p, sp.seed, index as u64);
            gen.logits
                .push(TopKLogits::from_logits(&logits, sp.top_k_logits));
            gen.completion_tokens.push(token);
            let out_of_room = index + 1 >= max_tokens || session.len() >= self.max_sequence_len();
            let (delta, finish) = self.advance(&mut stream, token, out_of_room, opts)?;
            let flow = on_token(&TokenEvent {
                index,
                token_id: token,
                text_delta: delta,
            });
            if let Some(reason) = finish {
                gen.finish_reason = reason;
                break;
            }
            if flow.is_break() {
                gen.finish_reason = FinishReason::Cancelled;
                break;
            }
            logits = session.feed(&[token])?;
        }
        gen.text = stream.released().to_string();
        gen.decode_ms = t1.elapsed().as_secs_f64() * 1e3;
        Ok(gen)
    }

    /// Feed one sampled token's text to the stream; returns the delta to emit
    /// and, if generation ends with this token, why.
    fn advance(
        &self,
        stream: &mut TextStream,
        token: u32,
        out_of_room: bool,
        opts: GenOptions,
    ) -> Result<(String, Option<FinishReason>), EngineError> {
        if !opts.ignore_eos && self.stop_ids.contains(&token) {
            return Ok((stream.finish().delta, Some(FinishReason::Stop)));
        }
        let Release { mut delta, stopped } = stream.push(self.tokenizer.bytes_of(token)?);
        if stopped {
            return Ok((delta, Some(FinishReason::Stop)));
        }
        if out_of_room {
            let last = stream.finish();
            delta.push_str(&last.delta);
            let reason = if last.stopped {
                FinishReason::Stop
            } else {
                FinishReason::Length
            };
            return Ok((delta, Some(reason)));
        }
        Ok((delta, None))
    }
}
