//! NVIDIA GPU evidence: real Hopper and Blackwell samples (hex report +
//! PEM chain, and NVIDIA's JSON format) verify to the pinned device root and
//! yield the requester nonce; invalid-signature negatives, tampering,
//! truncation, wrong root and revoked certificates fail with named errors.

use proofmesh_attest::certs::{CertError, Revocation};
use proofmesh_attest::nvidia::{self, GpuEvidence, NvidiaError, NVIDIA_DEVICE_ROOT_PEM};
use proofmesh_attest::verdict::GpuArch;

const NOW: u64 = 1_750_000_000;

fn ev(report_hex: &[u8], chain: &[u8]) -> GpuEvidence {
    GpuEvidence {
        arch: None,
        evidence: proofmesh_attest::decode_hex_or_raw(report_hex),
        cert_chain: String::from_utf8(chain.to_vec()).unwrap(),
    }
}

fn hopper() -> GpuEvidence {
    ev(
        include_bytes!("data/nvtrust/hopperAttestationReport.txt"),
        include_bytes!("data/nvtrust/hopperCertChain.txt"),
    )
}

fn verify(e: &GpuEvidence) -> Result<proofmesh_attest::GpuVerdict, NvidiaError> {
    nvidia::verify_gpu(e, NVIDIA_DEVICE_ROOT_PEM, NOW, &Revocation::default())
}

#[test]
fn nvtrust_hopper_sample_verifies_with_its_nonce() {
    let e = hopper();
    assert_eq!(e.evidence.len(), 4117);
    let v = verify(&e).unwrap();
    assert_eq!(v.arch, GpuArch::Hopper);
    assert_eq!(
        hex::encode(v.nonce),
        "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
    );
    println!(
        "driver={:?} vbios={:?} blocks={} subject={}",
        v.driver_version,
        v.vbios_version,
        v.measurements.len(),
        v.device_subject
    );
    assert!(!v.measurements.is_empty());
    assert!(v.measurements.iter().all(|m| m.value.len() == 48));
    assert!(!v.revocation_checked);
}

#[test]
fn attestation_sdk_hopper_and_blackwell_verify() {
    let h = ev(
        include_bytes!("data/attestation-sdk/hopperAttestationReport.txt"),
        include_bytes!("data/attestation-sdk/hopperCertChain.txt"),
    );
    let v = verify(&h).unwrap();
    assert!(hex::encode(v.nonce).starts_with("27a32824"));
    let b = ev(
        include_bytes!("data/attestation-sdk/blackwellAttestationReport.txt"),
        include_bytes!("data/attestation-sdk/blackwellCertChain.txt"),
    );
    let v = verify(&b).unwrap();
    println!("blackwell subject={} arch={:?}", v.device_subject, v.arch);
    assert_eq!(v.arch, GpuArch::Blackwell);
}

#[test]
fn json_evidence_formats_verify() {
    let list =
        nvidia::parse_evidence_json(include_bytes!("data/nvtrust/gpu_evidence.json")).unwrap();
    assert_eq!(list.len(), 8);
    for g in &list {
        let v = verify(g).unwrap();
        assert_eq!(
            hex::encode(v.nonce),
            "4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e"
        );
        assert_eq!(v.driver_version.as_deref(), Some("590.12"));
    }
    let one =
        nvidia::parse_evidence_json(include_bytes!("data/attestation-sdk/hopper_evidence.json"))
            .unwrap();
    let v = verify(&one[0]).unwrap();
    assert!(hex::encode(v.nonce).starts_with("e97b23a1"));
}

#[test]
fn invalid_signature_negative_is_named() {
    let e = ev(
        include_bytes!("data/attestation-sdk/hopperAttestationReportInvalidSignature.txt"),
        include_bytes!("data/attestation-sdk/hopperCertChain.txt"),
    );
    assert_eq!(verify(&e), Err(NvidiaError::BadSignature));
}

#[test]
fn evidence_with_another_gpus_chain_fails_signature() {
    let mut e = hopper();
    e.cert_chain =
        String::from_utf8(include_bytes!("data/attestation-sdk/hopperCertChain.txt").to_vec())
            .unwrap();
    assert_eq!(verify(&e), Err(NvidiaError::BadSignature));
}

#[test]
fn wrong_root_and_revocation_are_named() {
    let e = hopper();
    let intel_root = include_bytes!("data/qvl/tdx/trustedRootCaCert.pem");
    let r = nvidia::verify_gpu(&e, intel_root, NOW, &Revocation::default());
    assert_eq!(r, Err(NvidiaError::Cert(CertError::UntrustedRoot)));
    let chain = proofmesh_attest::certs::parse_pem_chain(e.cert_chain.as_bytes()).unwrap();
    let rev = Revocation {
        revoked_serials: vec![proofmesh_attest::certs::serial_hex(&chain[0])],
        complete: true,
    };
    let r = nvidia::verify_gpu(&e, NVIDIA_DEVICE_ROOT_PEM, NOW, &rev);
    assert!(
        matches!(
            r,
            Err(NvidiaError::Cert(CertError::Revoked { index: 0, .. }))
        ),
        "{r:?}"
    );
    let r = nvidia::verify_gpu(
        &e,
        NVIDIA_DEVICE_ROOT_PEM,
        1_000_000_000,
        &Revocation::default(),
    );
    assert!(
        matches!(r, Err(NvidiaError::Cert(CertError::OutsideValidity { .. }))),
        "{r:?}"
    );
}

#[test]
fn truncation_and_trailing_bytes_are_named() {
    let e = hopper();
    for len in [
        0,
        1,
        4,
        36,
        37,
        40,
        45,
        1000,
        e.evidence.len() - 96,
        e.evidence.len() - 1,
    ] {
        let mut t = e.clone();
        t.evidence.truncate(len);
        let r = verify(&t);
        assert!(
            matches!(
                r,
                Err(NvidiaError::Truncated { .. }
                    | NvidiaError::BadMeasurementBlock { .. }
                    | NvidiaError::BadOpaqueData { .. })
            ),
            "len {len}: {r:?}"
        );
    }
    let mut t = e.clone();
    t.evidence.push(0);
    assert_eq!(verify(&t), Err(NvidiaError::TrailingBytes { extra: 1 }));
}

#[test]
fn every_flipped_byte_fails_with_a_named_error() {
    let e = hopper();
    let signed = e.evidence.len() - 96;
    for pos in 0..e.evidence.len() {
        let mut t = e.clone();
        t.evidence[pos] ^= 0x01;
        let err = verify(&t).expect_err("flipped evidence verified");
        let ok = match pos {
            // Framing bytes change the parse; everything signed changes the hash.
            _ if pos >= signed => err == NvidiaError::BadSignature,
            _ => matches!(
                err,
                NvidiaError::BadSignature
                    | NvidiaError::BadFraming { .. }
                    | NvidiaError::UnsignedRequest
                    | NvidiaError::Truncated { .. }
                    | NvidiaError::TrailingBytes { .. }
                    | NvidiaError::BadMeasurementBlock { .. }
                    | NvidiaError::BadOpaqueData { .. }
            ),
        };
        assert!(ok, "pos {pos}: {err:?}");
    }
}

#[test]
fn flipped_chain_fails() {
    let e = hopper();
    let der_chain = proofmesh_attest::certs::parse_pem_chain(e.cert_chain.as_bytes()).unwrap();
    // Flip bytes inside the base64 of each certificate (skip header lines).
    let text = e.cert_chain.clone();
    let mut positions = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with("-----") && i % 3 == 0 {
            let start = text.find(line).unwrap();
            positions.push(start + line.len() / 2);
        }
    }
    assert!(positions.len() > 20 && der_chain.len() == 5);
    for pos in positions {
        let mut bytes = text.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
        let mut t = e.clone();
        t.cert_chain = String::from_utf8(bytes).unwrap();
        let r = verify(&t);
        assert!(
            matches!(
                r,
                Err(NvidiaError::Cert(_))
                    | Err(NvidiaError::BadSignature)
                    | Err(NvidiaError::BadLeafKey)
            ),
            "pos {pos}: {r:?}"
        );
    }
}

#[test]
fn parse_exposes_layout() {
    let e = hopper();
    let p = nvidia::parse_evidence(&e.evidence).unwrap();
    assert_eq!(p.spdm_version, 0x11);
    assert_eq!(p.signed_len, e.evidence.len() - 96);
    assert_eq!(&p.request_nonce[..], &e.evidence[4..36]);
    assert_ne!(p.responder_nonce, p.request_nonce);
}
