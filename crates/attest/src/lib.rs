//! proofmesh-attest: pure, offline verification of hardware attestation
//! evidence — Intel TDX/SGX DCAP quotes, AMD SEV-SNP reports, NVIDIA
//! Hopper/Blackwell GPU SPDM evidence — and its binding to a provider's
//! signing key (issue 5). Bytes, collateral and `now` in; a verdict with
//! named reasons out. No network and no file I/O, except the clearly
//! separated [`tsm`] collection module (feature `tsm`) used on TEE hosts.
//!
//! Entry points: [`bundle::admit`] (verify + bind + policy → trust level),
//! or the pieces [`bundle::verify_bundle`], [`binding::check_binding`],
//! [`policy::Policy::evaluate`]; per-kind verifiers [`intel::verify_quote`],
//! [`snp::verify_report`], [`nvidia::verify_gpu`].
//!
//! What is and is not checked offline is documented at the top of each
//! verifier module.

pub mod binding;
pub mod bundle;
pub mod certs;
pub mod fuzz;
pub mod intel;
pub mod nvidia;
pub mod policy;
pub mod snp;
pub mod time;
#[cfg(feature = "tsm")]
pub mod tsm;
pub mod verdict;

pub use binding::{check_binding, report_data_for, BindingError};
pub use bundle::{
    admit, admit_expecting, verify_bundle, Admission, AdmitError, BundleError, Collateral,
    EvidenceBundle, EvidenceKind, Expected, TrustLevel, VerifiedBundle, VerifyOptions,
};
pub use certs::Revocation;
pub use policy::{Policy, Rejection};
pub use verdict::{GpuVerdict, Measurements, TcbStatus, TeeKind, TeeVerdict};

/// Decode evidence given either as hex text (optional `0x` prefix,
/// whitespace ignored) or as raw bytes (returned unchanged).
pub fn decode_hex_or_raw(bytes: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let text = text
        .strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
        .unwrap_or(&text);
    if !text.is_empty() && text.len() % 2 == 0 && text.iter().all(u8::is_ascii_hexdigit) {
        if let Ok(v) = hex::decode(text) {
            return v;
        }
    }
    bytes.to_vec()
}

/// Serde helper: `Vec<u8>` as standard base64.
pub(crate) mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_or_raw() {
        assert_eq!(super::decode_hex_or_raw(b"0x0a0B\n"), vec![0x0a, 0x0b]);
        assert_eq!(super::decode_hex_or_raw(b"\x04\x00"), vec![4, 0]);
        assert_eq!(super::decode_hex_or_raw(b"abc"), b"abc".to_vec());
    }
}
