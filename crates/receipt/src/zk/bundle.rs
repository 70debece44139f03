//! The proof bundle the network carries: the JSON a proving provider sends
//! with its receipt, the gateway returns to the client and `proofmesh zk
//! verify` reads.
//!
//! Why here and not in `proofmesh-zkml`: the bundle is plain data (hex, base64
//! and int8 lists), and the protocol crate `proofmesh-wire` carries it in its
//! messages; defining it next to the receipt's zk digests lets wire (and any
//! offline reader) hold one without linking the prover. `proofmesh-zkml`
//! re-exports it as `proofmesh_zkml::ProofBundle` and does the Groth16 parts
//! (`prove`, `verify_bundle`). Parsing here is safe on untrusted bytes.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bundle format version.
pub const BUNDLE_VERSION: u32 = 1;
/// Size of a compressed BN254 Groth16 proof.
pub const PROOF_BYTES: usize = 128;
/// Largest accepted bundle JSON.
pub const MAX_BUNDLE_JSON: usize = 1 << 20;

/// A proof that `output = model(input)` for job `nonce`, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// [`BUNDLE_VERSION`].
    pub version: u32,
    /// Hex SHA-256 of the model's canonical encoding.
    pub model_digest: String,
    /// Hex SHA-256 of the verifying key file.
    pub vk_digest: String,
    /// The int8 input.
    pub input: Vec<i8>,
    /// The int8 logits.
    pub logits: Vec<i8>,
    /// Their argmax.
    pub class: u32,
    /// Hex of the 32-byte job nonce.
    pub nonce: String,
    /// Base64 (standard, padded) of the compressed Groth16 proof.
    pub proof: String,
}

/// A malformed bundle field (`proofmesh_zkml::ZkError::BadBundle` once it
/// reaches the prover's crate; same message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bundle field {field}: {reason}")]
pub struct BundleError {
    /// The field.
    pub field: &'static str,
    /// Why it is rejected.
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> BundleError {
    BundleError {
        field,
        reason: reason.into(),
    }
}

impl ProofBundle {
    /// Parses bundle JSON (size-capped). Safe on untrusted bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_JSON {
            return Err(bad("json", "too large"));
        }
        serde_json::from_slice(bytes).map_err(|e| bad("json", e.to_string()))
    }

    /// The bundle as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The raw proof bytes.
    pub fn proof_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(&self.proof)
            .map_err(|e| bad("proof", e.to_string()))?;
        if b.len() != PROOF_BYTES {
            return Err(bad(
                "proof",
                format!("{} bytes, expected {PROOF_BYTES}", b.len()),
            ));
        }
        Ok(b)
    }

    /// SHA-256 of the raw proof bytes (what a receipt carries).
    pub fn proof_digest(&self) -> Result<[u8; 32], BundleError> {
        Ok(Sha256::digest(self.proof_bytes()?).into())
    }

    /// The decoded nonce.
    pub fn nonce_bytes(&self) -> Result<[u8; 32], BundleError> {
        parse_hex32(&self.nonce).ok_or_else(|| bad("nonce", "not 64 hex digits"))
    }
}

/// 64 hex digits to 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProofBundle {
        ProofBundle {
            version: BUNDLE_VERSION,
            model_digest: "ab".repeat(32),
            vk_digest: "cd".repeat(32),
            input: vec![-128, 0, 127],
            logits: vec![5, -3],
            class: 0,
            nonce: "07".repeat(32),
            proof: base64::engine::general_purpose::STANDARD.encode([9u8; PROOF_BYTES]),
        }
    }

    #[test]
    fn json_shape_is_fixed() {
        let b = sample();
        let json = b.to_json();
        assert_eq!(
            json,
            format!(
                r#"{{"version":1,"model_digest":"{}","vk_digest":"{}","input":[-128,0,127],"logits":[5,-3],"class":0,"nonce":"{}","proof":"{}"}}"#,
                "ab".repeat(32),
                "cd".repeat(32),
                "07".repeat(32),
                b.proof
            )
        );
        assert_eq!(ProofBundle::from_json(json.as_bytes()).unwrap(), b);
    }

    #[test]
    fn fields_are_checked() {
        let mut b = sample();
        assert_eq!(b.nonce_bytes().unwrap(), [7; 32]);
        assert_eq!(b.proof_bytes().unwrap(), vec![9; PROOF_BYTES]);
        b.nonce = "07".into();
        assert_eq!(b.nonce_bytes().unwrap_err().field, "nonce");
        b.proof = "AAAA".into();
        let e = b.proof_bytes().unwrap_err();
        assert_eq!(e.to_string(), "bundle field proof: 3 bytes, expected 128");
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["extra"] = serde_json::Value::Bool(true);
        assert_eq!(
            ProofBundle::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .field,
            "json"
        );
        let huge = vec![b' '; MAX_BUNDLE_JSON + 1];
        assert_eq!(
            ProofBundle::from_json(&huge).unwrap_err().reason,
            "too large"
        );
    }
}
