//! Intel TDX/SGX quote verification against real dcap-qvl samples and Intel
//! QVL synthetic (test-root) samples: positives at pinned times, named
//! negatives for outdated TCB, wrong root, tampering, truncation and time.

use proofmesh_attest::intel::{self, IntelError, INTEL_ROOT_CA_DER};
use proofmesh_attest::verdict::{Measurements, TcbStatus, TeeKind};
use proptest::prelude::*;

const TDX: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote");
const TDX_COLL: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote_collateral.json");
const TDX_NOW: u64 = 1_752_919_234;
const SGX: &[u8] = include_bytes!("data/dcap-qvl/sgx_quote");
const SGX_COLL: &[u8] = include_bytes!("data/dcap-qvl/sgx_quote_collateral.json");
const SGX_NOW: u64 = 1_752_919_277;
const OUTDATED: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote_outdated");
const OUTDATED_COLL: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote_outdated_collateral.json");

fn tdx_coll() -> dcap_qvl::QuoteCollateralV3 {
    intel::parse_collateral(TDX_COLL).unwrap()
}

#[test]
fn tdx_sample_verifies_up_to_date_with_measurements() {
    let v = intel::verify_quote(TDX, &tdx_coll(), TDX_NOW, INTEL_ROOT_CA_DER).unwrap();
    assert_eq!(v.kind, TeeKind::Tdx);
    assert_eq!(v.tcb_status, TcbStatus::UpToDate);
    assert!(v.advisory_ids.is_empty(), "{:?}", v.advisory_ids);
    assert!(!v.debug);
    assert_eq!(v.not_after, 1_752_919_234);
    let Measurements::Tdx(m) = &v.measurements else {
        panic!("not TDX: {:?}", v.measurements)
    };
    println!("mr_td={} rtmr0={}", hex::encode(m.mr_td), m.rtmr[0]);
    assert_ne!(m.mr_td, [0; 48]);
    assert_ne!(m.mr_seam, [0; 48]);
    // Report data is the sample's own (tappd) value, not ours.
    assert_eq!(v.report_data.len(), 64);
}

#[test]
fn sgx_sample_verifies_with_advisories() {
    let c = intel::parse_collateral(SGX_COLL).unwrap();
    let v = intel::verify_quote(SGX, &c, SGX_NOW, INTEL_ROOT_CA_DER).unwrap();
    assert_eq!(v.kind, TeeKind::Sgx);
    assert_eq!(v.tcb_status, TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert_eq!(v.advisory_ids, vec!["INTEL-SA-00289", "INTEL-SA-00615"]);
    let Measurements::Sgx(m) = &v.measurements else {
        panic!("not SGX")
    };
    println!(
        "mrenclave={} isvprodid={}",
        hex::encode(m.mr_enclave),
        m.isv_prod_id
    );
    assert_ne!(m.mr_enclave, [0; 32]);
    assert_ne!(m.mr_signer, [0; 32]);
}

#[test]
fn outdated_tdx_quote_is_rejected() {
    let c = intel::parse_collateral(OUTDATED_COLL).unwrap();
    let r = intel::verify_quote(OUTDATED, &c, 1_772_000_000, INTEL_ROOT_CA_DER);
    assert_eq!(r.unwrap_err(), IntelError::NoMatchingTcbLevel);
}

#[test]
fn outside_time_window_is_named() {
    let c = tdx_coll();
    for now in [TDX_NOW + 1, 1_700_000_000, 1_750_329_146] {
        let r = intel::verify_quote(TDX, &c, now, INTEL_ROOT_CA_DER);
        assert!(
            matches!(r, Err(IntelError::OutsideValidity { .. })),
            "{now}: {r:?}"
        );
    }
    assert!(intel::verify_quote(TDX, &c, 1_750_329_147, INTEL_ROOT_CA_DER).is_ok());
}

#[test]
fn wrong_root_is_a_cert_chain_error() {
    let qvl_root = include_bytes!("data/qvl/tdx/trustedRootCaCert.pem");
    let root = proofmesh_attest::certs::parse_one(qvl_root).unwrap();
    let der = der::Encode::to_der(&root).unwrap();
    let r = intel::verify_quote(TDX, &tdx_coll(), TDX_NOW, &der);
    assert!(matches!(r, Err(IntelError::CertChain { .. })), "{r:?}");
}

/// Build dcap-qvl collateral from Intel QVL's synthetic sample files.
fn qvl_collateral(dir: &str) -> (Vec<u8>, dcap_qvl::QuoteCollateralV3) {
    let read = |f: &str| {
        std::fs::read(format!(
            "{}/tests/data/qvl/{dir}/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let text = |f: &str| String::from_utf8(read(f)).unwrap();
    let split = |f: &str| -> (String, Vec<u8>) {
        // tcbInfo.json / qeIdentity.json: {"tcbInfo": {...}, "signature": "hex"}
        let v: serde_json::Value = serde_json::from_slice(&read(f)).unwrap();
        let key = if f.starts_with("tcb") {
            "tcbInfo"
        } else {
            "enclaveIdentity"
        };
        let body = v
            .get(key)
            .or_else(|| v.get("qeIdentity"))
            .unwrap()
            .to_string();
        (body, hex::decode(v["signature"].as_str().unwrap()).unwrap())
    };
    let (tcb_info, tcb_info_signature) = split("tcbInfo.json");
    let (qe_identity, qe_identity_signature) = split("qeIdentity.json");
    let mut pck_chain = text("pckCert.pem");
    pck_chain.push_str(&text("pckSignChain.pem"));
    let coll = dcap_qvl::QuoteCollateralV3 {
        pck_crl_issuer_chain: text("pckSignChain.pem"),
        root_ca_crl: read("rootCaCrl.der"),
        pck_crl: read("intermediateCaCrl.der"),
        tcb_info_issuer_chain: text("tcbSignChain.pem"),
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: text("tcbSignChain.pem"),
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: Some(pck_chain),
    };
    (read("quote.dat"), coll)
}

#[test]
fn intel_qvl_synthetic_quotes_are_rejected_against_the_real_root() {
    for (dir, now) in [("tdx", 1_700_000_000u64), ("sgx", 1_700_000_000)] {
        let (quote, coll) = qvl_collateral(dir);
        let r = intel::verify_quote(&quote, &coll, now, INTEL_ROOT_CA_DER);
        println!("{dir}: {r:?}");
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                IntelError::CertChain { .. }
                    | IntelError::MalformedCollateral { .. }
                    | IntelError::CollateralSignature { .. }
            ),
            "{dir}: {e:?}"
        );
    }
}

#[test]
fn truncation_is_malformed_or_signature() {
    // The sample ends in 70 bytes of zero padding (TDX quote buffers are
    // padded); cutting padding keeps a valid quote, cutting data does not.
    const END: usize = 4936;
    assert!(TDX[END..].iter().all(|b| *b == 0));
    let c = tdx_coll();
    assert!(intel::verify_quote(&TDX[..END], &c, TDX_NOW, INTEL_ROOT_CA_DER).is_ok());
    for len in [0, 10, 47, 48, 100, 631, 632, 1000, 3000, END - 2, END - 1] {
        let r = intel::verify_quote(&TDX[..len], &c, TDX_NOW, INTEL_ROOT_CA_DER);
        assert!(
            matches!(
                r,
                Err(IntelError::MalformedQuote { .. }
                    | IntelError::CertChain { .. }
                    | IntelError::QuoteSignature { .. })
            ),
            "len {len}: {r:?}"
        );
    }
}

/// Which error a flip at `pos` of the TDX v4 quote must produce.
fn expected_for(pos: usize, e: &IntelError) -> bool {
    use IntelError as E;
    match pos {
        // Header (48 B) + TD report (584 B) are signed by the attestation key.
        0..=631 => matches!(
            e,
            E::MalformedQuote { .. }
                | E::QuoteSignature { .. }
                | E::WrongTeeType { .. }
                | E::CollateralMismatch { .. }
        ),
        // Signature data: sig, attestation key, QE report, QE sig, certs.
        _ => matches!(
            e,
            E::MalformedQuote { .. }
                | E::QuoteSignature { .. }
                | E::CertChain { .. }
                | E::MalformedCollateral { .. }
                | E::CollateralMismatch { .. }
                | E::QeIdentity { .. }
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_flipped_quote_byte_fails_with_a_named_error(pos in 0usize..5006, bit in 0u8..8) {
        let c = tdx_coll();
        let mut q = TDX.to_vec();
        q[pos] ^= 1 << bit;
        let r = intel::verify_quote(&q, &c, TDX_NOW, INTEL_ROOT_CA_DER);
        let e = r.expect_err("flipped quote verified");
        prop_assert!(expected_for(pos, &e), "pos {pos}: {e:?}");
    }

    #[test]
    fn flipped_collateral_fails(field in 0usize..4, pos_seed in any::<u32>(), bit in 0u8..8) {
        let mut c = tdx_coll();
        let target: &mut Vec<u8> = match field {
            0 => &mut c.tcb_info_signature,
            1 => &mut c.qe_identity_signature,
            2 => &mut c.pck_crl,
            _ => &mut c.root_ca_crl,
        };
        let pos = pos_seed as usize % target.len();
        target[pos] ^= 1 << bit;
        let r = intel::verify_quote(TDX, &c, TDX_NOW, INTEL_ROOT_CA_DER);
        let e = r.expect_err("flipped collateral verified");
        prop_assert!(matches!(
            e,
            IntelError::CollateralSignature { .. }
                | IntelError::CertChain { .. }
                | IntelError::MalformedCollateral { .. }
                | IntelError::OutsideValidity { .. }
        ), "field {field} pos {pos}: {e:?}");
    }
}

#[test]
fn flipped_tcb_info_json_fails() {
    let mut c = tdx_coll();
    c.tcb_info = c.tcb_info.replacen("UpToDate", "UpToDatf", 1);
    let r = intel::verify_quote(TDX, &c, TDX_NOW, INTEL_ROOT_CA_DER);
    assert!(
        matches!(
            r,
            Err(IntelError::CollateralSignature { .. } | IntelError::MalformedCollateral { .. })
        ),
        "{r:?}"
    );
}

#[test]
fn hex_sample_parses() {
    let q = proofmesh_attest::decode_hex_or_raw(include_bytes!("data/dcap-qvl/tdx-quote.hex"));
    let p = intel::parse_quote(&q).unwrap();
    assert_eq!(p.header.version, 4);
    assert_eq!(p.header.tee_type, 0x81);
}
