//! Evidence bundles end to end with real samples: JSON round trip, version
//! check, trust levels (none / tee / tee+gpu), composed policies, evidence
//! digest, earliest expiry, and binding rejections (wrong key, wrong nonce,
//! evidence moved from another provider, GPU nonce mismatch).

use base64::Engine;
use proofmesh_attest::binding::{self, BindingError};
use proofmesh_attest::bundle::{
    admit, admit_expecting, verify_bundle, AdmitError, BundleError, Collateral, EvidenceBundle,
    EvidenceKind, Expected, TrustLevel, VerifyOptions, BUNDLE_VERSION,
};
use proofmesh_attest::nvidia::GpuEvidence;
use proofmesh_attest::policy::{Policy, Rejection};
use proofmesh_attest::verdict::{GpuArch, SnpTcb, TcbStatus};
use proofmesh_attest::{intel, Revocation};

const TDX_NOW: u64 = 1_752_919_234;

fn tdx_bundle() -> EvidenceBundle {
    EvidenceBundle {
        version: BUNDLE_VERSION,
        kind: EvidenceKind::Tdx,
        evidence: include_bytes!("data/dcap-qvl/tdx_quote").to_vec(),
        collateral: Some(Collateral::Intel(
            intel::parse_collateral(include_bytes!("data/dcap-qvl/tdx_quote_collateral.json"))
                .unwrap(),
        )),
        gpus: vec![],
    }
}

fn hopper() -> GpuEvidence {
    GpuEvidence {
        arch: Some("HOPPER".into()),
        evidence: proofmesh_attest::decode_hex_or_raw(include_bytes!(
            "data/nvtrust/hopperAttestationReport.txt"
        )),
        cert_chain: String::from_utf8(include_bytes!("data/nvtrust/hopperCertChain.txt").to_vec())
            .unwrap(),
    }
}

fn snp_bundle() -> EvidenceBundle {
    EvidenceBundle {
        version: BUNDLE_VERSION,
        kind: EvidenceKind::Snp,
        evidence: proofmesh_attest::decode_hex_or_raw(include_bytes!("data/sev/report_milan.hex")),
        collateral: Some(Collateral::Snp {
            vcek: include_bytes!("data/sev/vcek_milan.der").to_vec(),
            ask_ark_pem: None,
        }),
        gpus: vec![],
    }
}

fn tdx_and_gpu_policy() -> Policy {
    Policy::All {
        of: vec![
            Policy::Tdx {
                min_tcb: TcbStatus::UpToDate,
                allow_debug: false,
                mr_td: vec![],
                reject_advisories: vec![],
            },
            Policy::NvidiaGpu {
                min_gpus: 1,
                arch: Some(GpuArch::Hopper),
            },
        ],
    }
}

#[test]
fn json_round_trip_and_version() {
    let mut b = tdx_bundle();
    b.gpus.push(hopper());
    let json = serde_json::to_vec(&b).unwrap();
    assert_eq!(EvidenceBundle::from_json(&json).unwrap(), b);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["kind"], "tdx");
    assert_eq!(v["collateral"]["type"], "intel");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["evidence"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b.evidence);
    let mut v2 = v.clone();
    v2["version"] = 2.into();
    assert_eq!(
        EvidenceBundle::from_json(&serde_json::to_vec(&v2).unwrap()),
        Err(BundleError::UnsupportedVersion { version: 2 })
    );
    assert!(matches!(
        EvidenceBundle::from_json(b"{"),
        Err(BundleError::Json { .. })
    ));
}

#[test]
fn tdx_plus_gpu_admits_at_tee_gpu_with_real_samples() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(TDX_NOW, &rev);
    let mut b = tdx_bundle();
    b.gpus.push(hopper());
    let verified = verify_bundle(&b, &o).unwrap();
    let tee = verified.tee.clone().unwrap();
    let gpu_nonce = verified.gpus[0].nonce;
    let expected = Expected::RawForTesting {
        report_data: tee.report_data,
        gpu_nonce,
    };
    let a = admit_expecting(&b, &o, Some(&tdx_and_gpu_policy()), &expected).unwrap();
    assert_eq!(a.trust_level, TrustLevel::TeeGpu);
    assert_eq!(a.evidence_digest, b.evidence_digest());
    // Earliest expiry is the Intel collateral's (GPU chains end in 9999).
    assert_eq!(a.not_after, Some(TDX_NOW));
    assert_eq!(serde_json::to_value(a.trust_level).unwrap(), "tee+gpu");

    // The same TEE evidence without GPUs is `tee`, and the GPU policy rejects it.
    let plain = tdx_bundle();
    let a = admit_expecting(&plain, &o, None, &expected).unwrap();
    assert_eq!(a.trust_level, TrustLevel::Tee);
    let r = admit_expecting(&plain, &o, Some(&tdx_and_gpu_policy()), &expected);
    assert_eq!(
        r.unwrap_err(),
        AdmitError::Policy(vec![Rejection::NotEnoughGpus { have: 0, need: 1 }])
    );
}

#[test]
fn real_evidence_is_not_bound_to_our_key() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(TDX_NOW, &rev);
    let r = admit(&tdx_bundle(), &o, None, &[1; 32], &[2; 32], &[]);
    assert_eq!(
        r.unwrap_err(),
        AdmitError::Binding(BindingError::WrongNonce)
    );
}

#[test]
fn binding_rejections_are_named_on_verified_fields() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(TDX_NOW, &rev);
    let mut b = tdx_bundle();
    b.gpus.push(hopper());
    let verified = verify_bundle(&b, &o).unwrap();
    let mut tee = verified.tee.clone().unwrap();
    let (alice, bob, nonce) = ([0xA1; 32], [0xB0; 32], [0x42; 32]);
    // Seam: give the verified report the report data Alice's TEE would produce.
    tee.report_data = binding::report_data_for(&alice, &nonce);
    let mut gpus = verified.gpus.clone();
    gpus[0].nonce = binding::gpu_nonce_for(&nonce);
    assert_eq!(
        binding::check_binding(&tee, &gpus, &alice, &nonce, &[bob]),
        Ok(())
    );
    // Moved to Bob: the report names Alice.
    assert_eq!(
        binding::check_binding(&tee, &gpus, &bob, &nonce, &[alice]),
        Err(BindingError::WrongKey)
    );
    // Replayed at a later registration with a fresh nonce.
    assert_eq!(
        binding::check_binding(&tee, &gpus, &alice, &[0x43; 32], &[bob]),
        Err(BindingError::WrongNonce)
    );
    // GPU evidence from another session (the real sample's nonce).
    assert_eq!(
        binding::check_binding(&tee, &verified.gpus, &alice, &nonce, &[]),
        Err(BindingError::GpuWrongNonce { index: 0 })
    );
    // Through admit_expecting with the sample's real values but a wrong GPU nonce.
    let expected = Expected::RawForTesting {
        report_data: verified.tee.as_ref().unwrap().report_data,
        gpu_nonce: [0; 32],
    };
    assert_eq!(
        admit_expecting(&b, &o, None, &expected).unwrap_err(),
        AdmitError::Binding(BindingError::GpuWrongNonce { index: 0 })
    );
}

#[test]
fn snp_bundle_admits_at_tee_and_policy_composes() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(1_750_000_000, &rev);
    let b = snp_bundle();
    let v = verify_bundle(&b, &o).unwrap();
    let expected = Expected::RawForTesting {
        report_data: v.tee.as_ref().unwrap().report_data,
        gpu_nonce: [0; 32],
    };
    let p = Policy::Any {
        of: vec![
            Policy::Tdx {
                min_tcb: TcbStatus::UpToDate,
                allow_debug: false,
                mr_td: vec![],
                reject_advisories: vec![],
            },
            Policy::Snp {
                allow_debug: false,
                max_vmpl: 0,
                min_tcb: SnpTcb::default(),
                measurement: vec![],
            },
        ],
    };
    let a = admit_expecting(&b, &o, Some(&p), &expected).unwrap();
    assert_eq!(a.trust_level, TrustLevel::Tee);
    assert!(a.not_after.is_some());
}

#[test]
fn none_bundle_and_missing_collateral() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(TDX_NOW, &rev);
    let a = admit(&EvidenceBundle::none(), &o, None, &[1; 32], &[2; 32], &[]).unwrap();
    assert_eq!(a.trust_level, TrustLevel::None);
    assert_eq!(a.not_after, None);
    let mut b = tdx_bundle();
    b.collateral = None;
    assert_eq!(
        verify_bundle(&b, &o),
        Err(BundleError::MissingCollateral {
            kind: EvidenceKind::Tdx
        })
    );
    let mut b = tdx_bundle();
    b.kind = EvidenceKind::Sgx;
    assert_eq!(
        verify_bundle(&b, &o),
        Err(BundleError::KindMismatch {
            kind: EvidenceKind::Sgx
        })
    );
}

#[test]
fn bad_gpu_in_bundle_is_named_by_index() {
    let rev = Revocation::default();
    let o = VerifyOptions::production(TDX_NOW, &rev);
    let mut b = tdx_bundle();
    b.gpus.push(hopper());
    let mut bad = hopper();
    let n = bad.evidence.len();
    bad.evidence[n - 1] ^= 1;
    b.gpus.push(bad);
    assert_eq!(
        verify_bundle(&b, &o),
        Err(BundleError::Gpu {
            index: 1,
            error: proofmesh_attest::nvidia::NvidiaError::BadSignature
        })
    );
}

#[test]
fn evidence_digest_covers_cpu_and_gpu_evidence_only() {
    let a = tdx_bundle();
    let mut b = a.clone();
    b.collateral = None;
    assert_eq!(
        a.evidence_digest(),
        b.evidence_digest(),
        "collateral excluded"
    );
    b.gpus.push(hopper());
    assert_ne!(a.evidence_digest(), b.evidence_digest());
    let mut c = a.clone();
    c.evidence[100] ^= 1;
    assert_ne!(a.evidence_digest(), c.evidence_digest());
}
