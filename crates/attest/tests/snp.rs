//! AMD SEV-SNP: the real Milan sample verifies (chain, validity, VCEK
//! extensions, raw-byte signature); policy on debug/VMPL/TCB; named errors
//! for tampering, truncation, time, wrong VCEK and untrusted ARK.

use proofmesh_attest::certs::{CertError, Revocation};
use proofmesh_attest::policy::{Evidence, Policy, Rejection};
use proofmesh_attest::snp::{self, SnpCollateral, SnpError};
use proofmesh_attest::verdict::{Measurements, SnpTcb, TeeKind};

const REPORT_HEX: &[u8] = include_bytes!("data/sev/report_milan.hex");
const VCEK: &[u8] = include_bytes!("data/sev/vcek_milan.der");
const VCEK_TURIN: &[u8] = include_bytes!("data/sev/vcek_turin.der");
const CHAIN: &[u8] = include_bytes!("data/sev/cert_chain_milan");
const NOW: u64 = 1_750_000_000;

fn report() -> Vec<u8> {
    proofmesh_attest::decode_hex_or_raw(REPORT_HEX)
}

fn coll() -> SnpCollateral {
    SnpCollateral {
        vcek: VCEK.to_vec(),
        ask_ark_pem: None,
    }
}

fn verify(r: &[u8], now: u64) -> Result<proofmesh_attest::TeeVerdict, SnpError> {
    snp::verify_report(r, &coll(), now, &Revocation::default())
}

#[test]
fn milan_sample_verifies() {
    let r = report();
    assert_eq!(r.len(), snp::REPORT_LEN);
    let v = verify(&r, NOW).unwrap();
    assert_eq!(v.kind, TeeKind::Snp);
    let Measurements::Snp(m) = &v.measurements else {
        panic!("not SNP")
    };
    println!(
        "measurement={} policy={:#x} vmpl={}",
        hex::encode(m.measurement),
        m.policy,
        m.vmpl
    );
    assert_eq!(m.version, 2);
    assert_eq!(m.generation, "Milan");
    assert_eq!(
        m.reported_tcb,
        SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73,
            fmc: None
        }
    );
    assert_ne!(m.measurement, [0; 48]);
    // VCEK valid 2023-04-03 → 2030-04-03; ARK/ASK later.
    assert!(v.not_after > 1_900_000_000 && v.not_after < 1_900_000_000 + 86_400 * 30);
}

#[test]
fn supplied_kds_chain_is_accepted_and_foreign_ark_is_not() {
    let r = report();
    let c = SnpCollateral {
        vcek: VCEK.to_vec(),
        ask_ark_pem: Some(CHAIN.to_vec()),
    };
    assert!(snp::verify_report(&r, &c, NOW, &Revocation::default()).is_ok());
    let genoa = include_bytes!("data/sev/builtin_genoa_ark.pem");
    let mut fake = include_bytes!("data/sev/builtin_milan_ask.pem").to_vec();
    fake.extend_from_slice(genoa);
    let c = SnpCollateral {
        vcek: VCEK.to_vec(),
        ask_ark_pem: Some(fake),
    };
    assert_eq!(
        snp::verify_report(&r, &c, NOW, &Revocation::default()),
        Err(SnpError::UntrustedArk)
    );
}

#[test]
fn outside_validity_is_named() {
    for now in [1_600_000_000, 1_680_000_000, 1_950_000_000] {
        let e = verify(&report(), now).unwrap_err();
        assert!(
            matches!(e, SnpError::Cert(CertError::OutsideValidity { .. })),
            "{now}: {e:?}"
        );
    }
}

#[test]
fn truncation_and_extension_are_named() {
    let r = report();
    for len in [0, 4, 0x2A0, 1183] {
        assert_eq!(verify(&r[..len], NOW), Err(SnpError::WrongLength { len }));
    }
    let mut long = r.clone();
    long.push(0);
    assert_eq!(verify(&long, NOW), Err(SnpError::WrongLength { len: 1185 }));
}

#[test]
fn wrong_vcek_is_rejected() {
    let c = SnpCollateral {
        vcek: VCEK_TURIN.to_vec(),
        ask_ark_pem: None,
    };
    let e = snp::verify_report(&report(), &c, NOW, &Revocation::default()).unwrap_err();
    // The Turin VCEK chains to Turin's ARK, but did not sign this report.
    assert_eq!(e, SnpError::ReportSignature);
}

#[test]
fn revoked_vcek_is_rejected() {
    let vcek = proofmesh_attest::certs::parse_one(VCEK).unwrap();
    let rev = Revocation {
        revoked_serials: vec![proofmesh_attest::certs::serial_hex(&vcek)],
        complete: true,
    };
    let e = snp::verify_report(&report(), &coll(), NOW, &rev).unwrap_err();
    assert!(
        matches!(e, SnpError::Cert(CertError::Revoked { index: 0, .. })),
        "{e:?}"
    );
}

/// The error a flip at `pos` must produce (ABI 56860 Table 23 layout).
fn expected(pos: usize, e: &SnpError) -> bool {
    match pos {
        0x34..=0x37 => matches!(
            e,
            SnpError::UnsupportedSigAlgo { .. } | SnpError::ReportSignature
        ),
        0..=0x29F => matches!(e, SnpError::ReportSignature | SnpError::Malformed { .. }),
        0x2A0..=0x2CF | 0x2E8..=0x317 => matches!(e, SnpError::ReportSignature),
        _ => matches!(e, SnpError::NonZeroSignaturePadding { offset } if *offset == pos),
    }
}

#[test]
fn every_flipped_byte_fails_with_its_named_error() {
    let r = report();
    for pos in 0..r.len() {
        let mut t = r.clone();
        t[pos] ^= 0x01;
        let e = verify(&t, NOW).expect_err("flipped report verified");
        assert!(expected(pos, &e), "pos {pos:#x}: {e:?}");
    }
}

#[test]
fn every_flipped_vcek_byte_fails() {
    let r = report();
    for pos in 0..VCEK.len() {
        let mut v = VCEK.to_vec();
        v[pos] ^= 0x01;
        let c = SnpCollateral {
            vcek: v,
            ask_ark_pem: None,
        };
        let e = snp::verify_report(&r, &c, NOW, &Revocation::default()).expect_err("verified");
        assert!(
            matches!(
                e,
                SnpError::Cert(_)
                    | SnpError::ChainSignature { .. }
                    | SnpError::ReportSignature
                    | SnpError::UnknownGeneration { .. }
                    | SnpError::MissingExtension { .. }
                    | SnpError::ChipIdMismatch
                    | SnpError::TcbMismatch { .. }
            ),
            "VCEK flip at {pos}: {e:?}"
        );
    }
}

#[test]
fn policy_on_debug_vmpl_and_tcb() {
    let v = verify(&report(), NOW).unwrap();
    let Measurements::Snp(m) = &v.measurements else {
        panic!()
    };
    let ev = Evidence {
        tee: Some(&v),
        gpus: &[],
    };
    let ok = Policy::Snp {
        allow_debug: false,
        max_vmpl: 3,
        min_tcb: SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 0x73,
            fmc: None,
        },
        measurement: vec![hex::encode(m.measurement)],
    };
    if m.debug_allowed {
        assert_eq!(ok.evaluate(ev).unwrap_err(), vec![Rejection::DebugEnabled]);
    } else {
        ok.evaluate(ev).unwrap();
    }
    let strict = Policy::Snp {
        allow_debug: true,
        max_vmpl: 0,
        min_tcb: SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 9,
            microcode: 0x73,
            fmc: None,
        },
        measurement: vec![],
    };
    let r = strict.evaluate(ev).unwrap_err();
    assert!(r.contains(&Rejection::SnpTcbTooLow {
        component: "snp".into(),
        have: 8,
        min: 9
    }));
    if m.vmpl > 0 {
        assert!(r.contains(&Rejection::VmplTooHigh {
            vmpl: m.vmpl,
            max: 0
        }));
    }
}
