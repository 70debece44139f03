//! Counting a chat prompt's tokens exactly, without loading the weights.
//!
//! Why: the coordinator schedules by estimated time to first token, and the
//! prefill part of that estimate is proportional to the prompt's length.
//! It must count exactly what a provider running this engine will prefill —
//! the same ChatML rendering and the same tokenizer — but it has no use for
//! the weights, so only the GGUF header (metadata + tokenizer) is read.

use std::path::Path;

use crate::chat::{render_chatml, require_markers, ChatMessage};
use crate::gguf::GgufFile;
use crate::tokenizer::GgufTokenizer;
use crate::EngineError;

/// A model's tokenizer and chat template, for counting prompt tokens.
pub struct PromptCounter {
    tokenizer: GgufTokenizer,
    digest: String,
}

impl std::fmt::Debug for PromptCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCounter")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl PromptCounter {
    /// Reads the tokenizer from a GGUF file's metadata (the weights are
    /// not read) and the file's digest (`sha256:<hex>`, the id providers
    /// advertise the model by).
    pub fn open(path: &Path) -> Result<PromptCounter, EngineError> {
        let digest = format!("sha256:{}", crate::sha256_file(path)?);
        let file = GgufFile::open(path)?;
        let tokenizer = GgufTokenizer::from_metadata(&file.metadata())?;
        require_markers(&tokenizer)?;
        Ok(PromptCounter { tokenizer, digest })
    }

    /// The model file's digest, `sha256:<hex>`.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Tokens the engine prefills for `messages`: the ChatML rendering
    /// ending with the open assistant turn, tokenized.
    pub fn count_chat(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        let prompt = render_chatml(messages)?;
        let n = self.tokenizer.encode(&prompt)?.len();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
