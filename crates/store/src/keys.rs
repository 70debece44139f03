//! API key format: `pm_<key id: 16 hex>_<secret: 64 hex>`.
//!
//! Only the key id and SHA-256 of the secret are stored; the key id is safe to
//! log, the secret never is.

use sha2::{Digest, Sha256};

/// A presented key split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyParts<'a> {
    /// Public id.
    pub key_id: &'a str,
    /// Secret part.
    pub secret: &'a str,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a key; `None` if it is not in the proofmesh format.
pub fn parse_api_key(key: &str) -> Option<ApiKeyParts<'_>> {
    let rest = key.strip_prefix("pm_")?;
    let (key_id, secret) = rest.split_once('_')?;
    (is_hex(key_id, 16) && is_hex(secret, 64)).then_some(ApiKeyParts { key_id, secret })
}

pub(crate) fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn new_key() -> (String, String, String) {
    use rand::RngCore;
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    (format!("pm_{id}_{secret}"), id, secret_hash(&secret))
}

/// Equality that takes the same time wherever the first difference is.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse() {
        let (key, id, hash) = new_key();
        let p = parse_api_key(&key).unwrap();
        assert_eq!(p.key_id, id);
        assert_eq!(secret_hash(p.secret), hash);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        assert!(parse_api_key("").is_none());
        assert!(parse_api_key("sk-abc").is_none());
        assert!(parse_api_key(&format!("pm_{}_{}", "0".repeat(16), "0".repeat(63))).is_none());
        assert!(parse_api_key(&format!("pm_{}_{}", "G".repeat(16), "0".repeat(64))).is_none());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
