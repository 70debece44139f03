//! Digests that receipts commit to: the request, the response and the client.
//!
//! Each is SHA-256 over a [`crate::canon`] encoding with its own domain label,
//! written as `sha256:<64 lowercase hex>`. Provider and coordinator compute them
//! independently and must agree, so their definitions live here, once.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::canon::Encoder;
use crate::receipt::SamplingRecord;

/// A `sha256:<hex>` digest string, validated on construction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest as its `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a raw lowercase hex SHA-256 (as produced by hashing a file).
    pub fn from_hex(hex_str: &str) -> Result<Self, String> {
        Digest::try_from(format!("sha256:{hex_str}"))
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let Some(h) = s.strip_prefix("sha256:") else {
            return Err(format!("digest {s:?} does not start with \"sha256:\""));
        };
        let ok = h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(format!("digest {s:?} is not 64 lowercase hex digits"));
        }
        Ok(Digest(s))
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request digest covers: the model, the conversation and the sampling.
/// A borrowed view, so callers (the dispatcher's `JobSpec`, a verifier
/// holding only the receipt and the conversation) need no common type.
#[derive(Debug, Clone, Copy)]
pub struct RequestForDigest<'a> {
    /// Model digest the request was dispatched for.
    pub model: &'a Digest,
    /// `(role, content)` pairs in order.
    pub messages: &'a [(&'a str, &'a str)],
    /// Sampling parameters, seed included.
    pub sampling: &'a SamplingRecord,
}

/// Digest of a chat request as dispatched to a provider: SHA-256 over the
/// canonical encoding (domain `proofmesh/request/v1`) of the model digest,
/// the message count, each message's role and content, and the sampling
/// record. Every party that checks a receipt's `request_digest` calls this.
pub fn request_digest(req: RequestForDigest<'_>) -> Digest {
    let mut e = Encoder::new("proofmesh/request/v1");
    e.str("model", req.model.as_str());
    e.u64("messages", req.messages.len() as u64);
    for &(role, content) in req.messages {
        e.str("role", role).str("content", content);
    }
    req.sampling.encode(&mut e);
    Digest::of(&e.finish())
}

/// Digest of a provider's answer: the token ids, the text and why it stopped.
pub fn response_digest(completion_tokens: &[u32], text: &str, finish_reason: &str) -> Digest {
    let mut e = Encoder::new("proofmesh/response/v1");
    e.u32s("tokens", completion_tokens)
        .str("text", text)
        .str("finish_reason", finish_reason);
    Digest::of(&e.finish())
}

/// The logit-fingerprint wire format the receipt's `logits_digest` commits to
/// (`Digest::of` the encoded bytes). Defined here so the coordinator can check
/// a fingerprint's shape without the verifier's engine; `proofmesh-verify`
/// encodes, decodes and checks its content. See `docs/VERIFICATION.md`.
pub mod fingerprint_format {
    /// First four bytes of every encoded fingerprint.
    pub const MAGIC: [u8; 4] = *b"PMFP";
    /// Encoding version.
    pub const VERSION: u8 = 1;
    /// Header length: magic, version, mode, k, reserved, u32 LE count.
    pub const HEADER_LEN: usize = 12;
    /// Bytes per generated token.
    pub const ENTRY_LEN: usize = 8;

    /// Whether `bytes` has the header magic and exactly one entry per token.
    pub fn has_shape(bytes: &[u8], tokens: usize) -> bool {
        bytes.starts_with(&MAGIC) && bytes.len() == HEADER_LEN + ENTRY_LEN * tokens
    }
}

/// The pseudonymous client id written into receipts: a hash, so a published
/// receipt does not reveal which account made the request.
pub fn client_hash(client_id: &str) -> Digest {
    let mut e = Encoder::new("proofmesh/client/v1");
    e.str("client", client_id);
    Digest::of(&e.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_validation() {
        assert!(Digest::try_from("sha256:".to_string() + &"a".repeat(64)).is_ok());
        assert!(Digest::try_from("sha256:".to_string() + &"A".repeat(64)).is_err());
        assert!(Digest::try_from("sha1:".to_string() + &"a".repeat(64)).is_err());
        assert!(Digest::try_from("sha256:abc".to_string()).is_err());
    }

    #[test]
    fn response_digest_covers_every_part() {
        let base = response_digest(&[1, 2], "hi", "stop");
        assert_ne!(base, response_digest(&[1, 3], "hi", "stop"));
        assert_ne!(base, response_digest(&[1, 2], "ho", "stop"));
        assert_ne!(base, response_digest(&[1, 2], "hi", "length"));
    }

    #[test]
    fn request_digest_golden_vector() {
        // Recorded from `proofmesh_wire::JobSpec::request_digest` (see
        // crates/wire/tests/request_digest.rs for more vectors).
        let sampling = SamplingRecord {
            temperature_milli: 0,
            top_p_milli: 1000,
            seed: 0,
            max_tokens: 16,
            stop: vec![],
            top_k_logits: 8,
        };
        let got = request_digest(RequestForDigest {
            model: &Digest::of(b"model"),
            messages: &[("user", "Hi")],
            sampling: &sampling,
        });
        assert_eq!(
            got.as_str(),
            "sha256:10d2efb1a2147d6e48a23f5448282246acc704f287600f90909e447d8b91d68d"
        );
    }

    #[test]
    fn sha256_known_vector() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            Digest::of(b"abc").as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
