//! Prompt token counts for placement.
//!
//! Why: the time-to-first-token estimate is dominated by prefill, which is
//! proportional to the prompt's tokens. A byte bound (one token per byte
//! plus template overhead) overstates a typical English prompt about three
//! times and refused idle providers for "missing" the objective. The
//! coordinator therefore reads the tokenizer of every model file the
//! operator names (`model_files`; only the GGUF header, not the weights)
//! and counts each prompt exactly as the engine will. For a model with no
//! file the bound is kept, and the count says so.

use std::collections::HashMap;
use std::path::PathBuf;

use proofmesh_engine::{ChatMessage, EngineError, PromptCounter};
use proofmesh_wire::JobSpec;
use serde::Serialize;

/// Why the configured model files could not be read.
#[derive(Debug, thiserror::Error)]
#[error("model file {path}: {source}")]
pub struct TokenizerError {
    /// The file.
    pub path: PathBuf,
    /// What the engine said (boxed: engine errors are large).
    #[source]
    pub source: Box<EngineError>,
}

/// Where a prompt token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// The model's own tokenizer and chat template.
    Tokenizer,
    /// An upper bound from the prompt's bytes (no tokenizer for the model).
    ByteBound,
}

/// A prompt's token count and its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PromptCount {
    /// Tokens.
    pub tokens: u32,
    /// Exact or a bound.
    pub source: CountSource,
}

/// Tokenizers by model digest.
#[derive(Debug, Default)]
pub struct PromptCounters {
    by_digest: HashMap<String, PromptCounter>,
}

impl PromptCounters {
    /// Reads the tokenizer of every file (hashing each to learn its digest).
    pub fn load(files: &[PathBuf]) -> Result<PromptCounters, TokenizerError> {
        let mut by_digest = HashMap::new();
        for path in files {
            let c = PromptCounter::open(path).map_err(|source| TokenizerError {
                path: path.clone(),
                source: Box::new(source),
            })?;
            tracing::info!(digest = c.digest(), file = %path.display(), "prompt tokenizer loaded");
            by_digest.insert(c.digest().to_string(), c);
        }
        Ok(PromptCounters { by_digest })
    }

    /// The prompt's tokens: exact when the model's tokenizer is loaded and
    /// the prompt renders, else [`prompt_token_bound`].
    pub fn count(&self, spec: &JobSpec) -> PromptCount {
        let exact = self.by_digest.get(spec.model.as_str()).and_then(|c| {
            let messages: Vec<ChatMessage> = spec
                .messages
                .iter()
                .map(|m| ChatMessage::new(m.role.clone(), m.content.clone()))
                .collect();
            c.count_chat(&messages).ok()
        });
        match exact {
            Some(tokens) => PromptCount {
                tokens,
                source: CountSource::Tokenizer,
            },
            None => PromptCount {
                tokens: prompt_token_bound(spec),
                source: CountSource::ByteBound,
            },
        }
    }
}

/// An upper bound on the prompt's tokens without tokenizing: the byte-level
/// BPE never makes a token of less than one byte, and the ChatML template
/// adds at most 8 tokens per message plus 8 for the reply prefix.
pub fn prompt_token_bound(spec: &JobSpec) -> u32 {
    let bytes: usize = spec
        .messages
        .iter()
        .map(|m| m.content.len() + m.role.len() + 8)
        .sum();
    u32::try_from(bytes + 8).unwrap_or(u32::MAX)
}
