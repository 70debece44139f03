//! Fuzz bodies for every parser of untrusted bytes in this crate. The
//! cargo-fuzz targets (fuzz/) and the stable-toolchain smoke runner
//! (crates/fuzzing) call these; each must never panic on any input.

use crate::{bundle, certs, intel, nvidia, snp};

/// (name, body) of one fuzz target; `TARGETS` is `&[(&str, fn(&[u8]))]`.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// Every fuzz target.
pub const TARGETS: &[FuzzTarget] = &[
    ("attest_intel_quote", intel_quote),
    ("attest_intel_collateral", intel_collateral),
    ("attest_snp_report", snp_report),
    ("attest_nvidia_evidence", nvidia_evidence),
    ("attest_nvidia_json", nvidia_json),
    ("attest_bundle_json", bundle_json),
    ("attest_cert_chain_pem", cert_chain_pem),
    ("attest_hex_or_raw", hex_or_raw),
];

/// Intel quote parser.
pub fn intel_quote(data: &[u8]) {
    let _ = intel::parse_quote(data);
}

/// Intel collateral JSON.
pub fn intel_collateral(data: &[u8]) {
    let _ = intel::parse_collateral(data);
}

/// SNP report parser (any length; only 1184-byte inputs reach `sev`).
pub fn snp_report(data: &[u8]) {
    let _ = snp::parse_report(data);
}

/// SPDM request ‖ response parser.
pub fn nvidia_evidence(data: &[u8]) {
    let _ = nvidia::parse_evidence(data);
}

/// NVIDIA JSON evidence list.
pub fn nvidia_json(data: &[u8]) {
    let _ = nvidia::parse_evidence_json(data);
}

/// Evidence bundle JSON, then the digest over whatever parsed.
pub fn bundle_json(data: &[u8]) {
    if let Ok(b) = bundle::EvidenceBundle::from_json(data) {
        let _ = b.evidence_digest();
    }
}

/// PEM certificate chains and single DER/PEM certificates.
pub fn cert_chain_pem(data: &[u8]) {
    let _ = certs::parse_pem_chain(data);
    let _ = certs::parse_one(data);
}

/// Hex-or-raw decoding used by the CLI.
pub fn hex_or_raw(data: &[u8]) {
    let _ = crate::decode_hex_or_raw(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_target_survives_simple_inputs() {
        for (_, f) in super::TARGETS {
            for input in [&b""[..], b"\x00", b"{}", b"[]", &[0xffu8; 2000][..]] {
                f(input);
            }
        }
    }
}
