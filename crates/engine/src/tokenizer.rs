//! Byte-level BPE tokenizer rebuilt from GGUF metadata. It exists because the
//! model file is the single source of truth (no separate tokenizer.json), and
//! candle's own GGUF tokenizer helper adds a prefix space that SmolLM2 does not
//! use. Special tokens are split out first (control tokens, then user-defined
//! ones, each leftmost-longest, as the `tokenizers` crate's added vocabulary
//! does); the rest goes through `bpe.rs`. Keeps each token's raw bytes, which
//! are both the decoder and what lets streamed text be released incrementally.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use candle_core::quantized::gguf_file::Value;

use crate::bpe::Merges;
use crate::gguf::Metadata;
use crate::EngineError;

/// GGUF `token_type` for ordinary vocabulary entries.
const TOKEN_TYPE_NORMAL: i64 = 1;
/// GGUF `token_type` for control tokens such as `<|im_start|>`.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF `token_type` for user-defined tokens, matched verbatim like specials.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// A tokenizer plus the per-token facts generation needs.
pub(crate) struct GgufTokenizer {
    merges: Merges,
    /// Control tokens, then user-defined ones.
    added: [Option<Added>; 2],
    /// Raw bytes of every token id, concatenated (what the ByteLevel
    /// decoder emits); token `i` is `token_bytes[ends[i-1]..ends[i]]`.
    /// One buffer instead of a `Vec` per token keeps the memory small.
    token_bytes: Vec<u8>,
    ends: Vec<u32>,
    pub(crate) bos_id: Option<u32>,
    pub(crate) eos_id: Option<u32>,
}

impl GgufTokenizer {
    /// Build the tokenizer from `tokenizer.ggml.*` metadata.
    pub(crate) fn from_metadata(md: &Metadata<'_>) -> Result<Self, EngineError> {
        let model = md.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(EngineError::Tokenizer {
                reason: format!("tokenizer.ggml.model is {model:?}; only \"gpt2\" (byte-level BPE) is supported"),
            });
        }
        let tokens = md.string_array("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(EngineError::InvalidMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: "empty vocabulary".into(),
            });
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(EngineError::InvalidMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!("{} tokens do not fit 32-bit ids", tokens.len()),
            });
        }
        let types = match md.get("tokenizer.ggml.token_type") {
            Some(_) => md.int_array("tokenizer.ggml.token_type")?,
            None => vec![TOKEN_TYPE_NORMAL; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(EngineError::InvalidMetadata {
                key: "tokenizer.ggml.token_type".into(),
                reason: format!("{} entries for {} tokens", types.len(), tokens.len()),
            });
        }
        let merges = match md.get("tokenizer.ggml.merges") {
            Some(_) => parse_merges(&md.string_array("tokenizer.ggml.merges")?)?,
            None => Vec::new(),
        };
        // Text → first id with that text; only needed while building.
        let mut vocab: HashMap<&str, u32> = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            vocab.entry(t.as_str()).or_insert(i as u32);
        }
        let merges = merge_ids(&vocab, &merges)?;
        let byte_ids = std::array::from_fn(|b| vocab.get(byte_token(b as u8).as_str()).copied());
        let added = [
            added_matcher(&tokens, &types, &vocab, TOKEN_TYPE_CONTROL)?,
            added_matcher(&tokens, &types, &vocab, TOKEN_TYPE_USER_DEFINED)?,
        ];
        let (mut token_bytes, mut ends) = (Vec::new(), Vec::with_capacity(tokens.len()));
        for t in &tokens {
            token_bytes.extend_from_slice(&token_to_bytes(t));
            ends.push(
                u32::try_from(token_bytes.len()).map_err(|_| EngineError::Tokenizer {
                    reason: "vocabulary text exceeds 4 GiB".into(),
                })?,
            );
        }
        token_bytes.shrink_to_fit();
        let n = tokens.len();
        Ok(Self {
            merges: Merges::new(byte_ids, &merges),
            added,
            token_bytes,
            ends,
            bos_id: optional_id(md, "tokenizer.ggml.bos_token_id", n)?,
            eos_id: optional_id(md, "tokenizer.ggml.eos_token_id", n)?,
        })
    }

    /// Number of tokens in the vocabulary.
    pub(crate) fn vocab_size(&self) -> usize {
        self.ends.len()
    }

    /// Id of a token given its exact GGUF string, if the vocabulary has it
    /// (the first id for a duplicated string): looked up by its bytes.
    /// Added (special) tokens are found in their own short list first, as
    /// the `tokenizers` crate does; other strings scan the vocabulary.
    pub(crate) fn token_id(&self, token: &str) -> Option<u32> {
        let added = self.added.iter().flatten();
        if let Some(id) = added
            .flat_map(|a| a.texts.iter().zip(&a.ids))
            .find_map(|(t, &id)| (t == token).then_some(id))
        {
            return Some(id);
        }
        let want = token_to_bytes(token);
        (0..self.vocab_size() as u32).find(|&id| self.bytes_of(id).is_ok_and(|b| b == want))
    }

    /// Encode text; special tokens written literally are recognised. No BOS.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let mut out = Vec::new();
        self.encode_added(0, text, &mut out);
        Ok(out)
    }

    /// Split `text` on the added tokens of pass `pass` (0 control, 1
    /// user-defined), encoding the gaps with the next pass, then BPE.
    fn encode_added(&self, pass: usize, text: &str, out: &mut Vec<u32>) {
        let Added { matcher, ids, .. } = match self.added.get(pass) {
            None => return self.merges.encode_into(text, out),
            Some(None) => return self.encode_added(pass + 1, text, out),
            Some(Some(added)) => added,
        };
        let mut at = 0;
        for m in matcher.find_iter(text) {
            if m.start() > at {
                self.encode_added(pass + 1, &text[at..m.start()], out);
            }
            out.push(ids[m.pattern().as_usize()]);
            at = m.end();
        }
        if at < text.len() {
            self.encode_added(pass + 1, &text[at..], out);
        }
    }

    /// Decode ids to text (special tokens are kept, invalid UTF-8 becomes U+FFFD).
    pub(crate) fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.check_ids(ids)?;
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.bytes_of(id)?);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Raw bytes of one token (the id must be valid).
    pub(crate) fn bytes_of(&self, id: u32) -> Result<&[u8], EngineError> {
        let i = id as usize;
        let end = self.ends.get(i).map(|&e| e as usize);
        let start = if i == 0 {
            Some(0)
        } else {
            self.ends.get(i - 1).map(|&e| e as usize)
        };
        start
            .zip(end)
            .map(|(s, e)| &self.token_bytes[s..e])
            .ok_or(EngineError::UnknownToken {
                id,
                vocab_size: self.vocab_size(),
            })
    }

    /// Fail with [`EngineError::UnknownToken`] on the first out-of-range id.
    pub(crate) fn check_ids(&self, ids: &[u32]) -> Result<(), EngineError> {
        match ids.iter().find(|&&id| id as usize >= self.vocab_size()) {
            Some(&id) => Err(EngineError::UnknownToken {
                id,
                vocab_size: self.vocab_size(),
            }),
            None => Ok(()),
        }
    }
}

/// Merges as `(left, right, merged)` ids, in rank order; every part must be
/// in the vocabulary (the `tokenizers` BPE refuses such files too).
fn merge_ids(
    vocab: &HashMap<&str, u32>,
    merges: &[(String, String)],
) -> Result<Vec<(u32, u32, u32)>, EngineError> {
    let id = |i: usize, s: &str| {
        vocab
            .get(s)
            .copied()
            .ok_or_else(|| EngineError::InvalidMetadata {
                key: "tokenizer.ggml.merges".into(),
                reason: format!("merge #{i} uses {s:?}, which is not in the vocabulary"),
            })
    };
    merges
        .iter()
        .enumerate()
        .map(|(i, (a, b))| Ok((id(i, a)?, id(i, b)?, id(i, &format!("{a}{b}"))?)))
        .collect()
}

/// A leftmost-longest matcher over the non-empty tokens of type `ty`, with
/// each pattern's id (the first id of its text).
/// One kind of added token: a leftmost-longest matcher over their texts,
/// and each pattern's text and id (in pattern order).
struct Added {
    matcher: AhoCorasick,
    texts: Vec<String>,
    ids: Vec<u32>,
}

fn added_matcher(
    tokens: &[String],
    types: &[i64],
    vocab: &HashMap<&str, u32>,
    ty: i64,
) -> Result<Option<Added>, EngineError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut ids = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if types[i] == ty && !t.is_empty() && !texts.contains(&t.as_str()) {
            texts.push(t);
            ids.push(vocab.get(t.as_str()).copied().unwrap_or(i as u32));
        }
    }
    if texts.is_empty() {
        return Ok(None);
    }
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&texts)
        .map(|matcher| {
            Some(Added {
                matcher,
                texts: texts.iter().map(|t| t.to_string()).collect(),
                ids,
            })
        })
        .map_err(|e| EngineError::Tokenizer {
            reason: format!("cannot index the special tokens: {e}"),
        })
}

/// Split GGUF merges ("a b") into pairs.
fn parse_merges(raw: &[String]) -> Result<Vec<(String, String)>, EngineError> {
    raw.iter()
        .enumerate()
        .map(|(i, m)| {
            let mut parts = m.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                    Ok((a.to_string(), b.to_string()))
                }
                _ => Err(EngineError::InvalidMetadata {
                    key: "tokenizer.ggml.merges".into(),
                    reason: format!("merge #{i} {m:?} is not two space-separated tokens"),
                }),
            }
        })
        .collect()
}

fn optional_id(md: &Metadata<'_>, key: &str, vocab: usize) -> Result<Option<u32>, EngineError> {
    if md.get(key).is_none() {
        return Ok(None);
    }
    let id = md.usize(key)?;
    if id >= vocab {
        return Err(EngineError::InvalidMetadata {
            key: key.into(),
            reason: format!("id {id} is outside the {vocab}-token vocabulary"),
        });
    }
    Ok(Some(id as u32))
}

/// GPT-2's byte <-> printable-char table: byte b is written as `BYTE_CHARS[b]`.
pub(crate) fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        out[b as usize] = char::from_u32(c).unwrap_or('\u{fffd}');
    }
    out
}

/// The bytes a token decodes to, mirroring the ByteLevel decoder: every char is
/// mapped back through the byte table, unless some char is not in the table, in
/// which case the token's own UTF-8 is used verbatim.
fn token_to_bytes(token: &str) -> Vec<u8> {
    thread_local! {
        static REVERSE: HashMap<char, u8> =
            byte_chars().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
    }
    REVERSE.with(|rev| {
        token
            .chars()
            .map(|c| rev.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .unwrap_or_else(|| token.as_bytes().to_vec())
    })
}

/// Helper for writers of GGUF files: the string form of a single byte token.
pub(crate) fn byte_token(b: u8) -> String {
    byte_chars()[b as usize].to_string()
}

/// Build a GGUF string-array value.
pub(crate) fn string_array<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String(s.as_ref().to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    mod oracle;

    #[test]
    fn byte_table_is_a_bijection_onto_distinct_chars() {
        let chars = byte_chars();
        let set: std::collections::HashSet<char> = chars.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(chars[b' ' as usize], 'Ġ');
        assert_eq!(chars[b'\n' as usize], 'Ċ');
        assert_eq!(chars[b'a' as usize], 'a');
    }

    #[test]
    fn token_bytes_map_back_through_the_table() {
        assert_eq!(token_to_bytes("Ġhello"), b" hello");
        assert_eq!(token_to_bytes("<|im_start|>"), b"<|im_start|>");
        // '€' is not in the byte table, so the token's own UTF-8 is used.
        assert_eq!(token_to_bytes("a€"), "a€".as_bytes());
        // 'é' (U+00E9) is the table's char for byte 0xE9.
        assert_eq!(token_to_bytes("é"), [0xe9]);
    }

    #[test]
    fn malformed_merges_are_rejected() {
        assert!(parse_merges(&["a b".into()]).is_ok());
        let err = parse_merges(&["ab".into()]).unwrap_err();
        assert!(matches!(err, EngineError::InvalidMetadata { .. }), "{err}");
        assert!(parse_merges(&["a b c".into()]).is_err());
    }
}
