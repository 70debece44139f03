//! A 32-byte SHA-256 value with a lowercase-hex string form.
//!
//! Why: transaction hashes, Merkle nodes and batch roots are raw 32-byte
//! values that get hashed again (so they must not be kept as strings), but are
//! stored and shown as hex. One type keeps both forms in step.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash32(pub [u8; 32]);

/// A string is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 lowercase hex digits, got {input:?}")]
pub struct HashParseError {
    /// The rejected input.
    pub input: String,
}

impl Hash32 {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash32 {
        Hash32(Sha256::digest(bytes).into())
    }

    /// SHA-256 of the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Hash32 {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash32(h.finalize().into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Hash32, HashParseError> {
        let err = || HashParseError { input: s.into() };
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl TryFrom<String> for Hash32 {
    type Error = HashParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Hash32::parse(&s)
    }
}

impl From<Hash32> for String {
    fn from(h: Hash32) -> String {
        h.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_round_trip() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let h = Hash32::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash32::parse(&h.to_hex()).unwrap(), h);
        assert_eq!(Hash32::of_parts(&[b"a", b"bc"]), h);
        assert!(Hash32::parse(&h.to_hex().to_uppercase()).is_err());
        assert!(Hash32::parse("abc").is_err());
    }
}
