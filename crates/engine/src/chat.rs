//! ChatML prompt rendering (the format SmolLM2 is tuned on). Rendering is done
//! here rather than by evaluating the GGUF's Jinja template so the prompt is
//! byte-for-byte predictable; notably no default system message is inserted.

use serde::{Deserialize, Serialize};

use crate::tokenizer::GgufTokenizer;
use crate::EngineError;

/// Start-of-turn marker.
pub(crate) const IM_START: &str = "<|im_start|>";
/// End-of-turn marker (also a stop token).
pub(crate) const IM_END: &str = "<|im_end|>";

/// One turn of a conversation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    /// Convenience constructor.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Fails unless the vocabulary has the ChatML turn markers as tokens.
pub(crate) fn require_markers(tokenizer: &GgufTokenizer) -> Result<(), EngineError> {
    for marker in [IM_START, IM_END] {
        if tokenizer.token_id(marker).is_none() {
            return Err(EngineError::ChatTemplate {
                reason: format!("vocabulary has no {marker} token"),
            });
        }
    }
    Ok(())
}

/// Render `messages` as ChatML ending with an open assistant turn:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n`. Roles must be non-empty ASCII alphanumerics,
/// `_` or `-` so a role cannot smuggle in turn markers.
pub(crate) fn render_chatml(messages: &[ChatMessage]) -> Result<String, EngineError> {
    let mut out = String::new();
    for (index, m) in messages.iter().enumerate() {
        let valid_role = !m.role.is_empty()
            && m.role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_role {
            return Err(EngineError::InvalidChatMessage {
                index,
                reason: format!("role {:?} must be non-empty [A-Za-z0-9_-]", m.role),
            });
        }
        out.push_str(IM_START);
        out.push_str(&m.role);
        out.push('\n');
        out.push_str(&m.content);
        out.push_str(IM_END);
        out.push('\n');
    }
    out.push_str(IM_START);
    out.push_str("assistant\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_without_default_system_message() {
        let p = render_chatml(&[ChatMessage::new("user", "Hi")]).unwrap();
        assert_eq!(p, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        let p = render_chatml(&[
            ChatMessage::new("system", "S"),
            ChatMessage::new("user", "U"),
        ])
        .unwrap();
        assert!(p.starts_with("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n"));
    }

    #[test]
    fn rejects_roles_that_could_inject_markup() {
        for role in ["", "user\n", "<|im_start|>", "a b"] {
            let err = render_chatml(&[ChatMessage::new(role, "x")]).unwrap_err();
            assert!(
                matches!(err, EngineError::InvalidChatMessage { index: 0, .. }),
                "{err}"
            );
        }
    }
}
