//! Exhaustive tamper checks for Intel evidence: flipping bit 0 of every
//! byte of the real TDX and SGX quotes, and of (a stride through) every
//! collateral field, must fail with a named error — never verify.

use proofmesh_attest::intel::{self, IntelError, INTEL_ROOT_CA_DER};

const TDX: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote");
const TDX_COLL: &[u8] = include_bytes!("data/dcap-qvl/tdx_quote_collateral.json");
const TDX_NOW: u64 = 1_752_919_234;
const SGX: &[u8] = include_bytes!("data/dcap-qvl/sgx_quote");
const SGX_COLL: &[u8] = include_bytes!("data/dcap-qvl/sgx_quote_collateral.json");
const SGX_NOW: u64 = 1_752_919_277;

/// Errors a tampered quote may produce; all are specific variants (the
/// catch-all `Verification` is not accepted).
fn quote_error(e: &IntelError) -> bool {
    matches!(
        e,
        IntelError::MalformedQuote { .. }
            | IntelError::WrongTeeType { .. }
            | IntelError::QuoteSignature { .. }
            | IntelError::CertChain { .. }
            | IntelError::CollateralMismatch { .. }
            | IntelError::QeIdentity { .. }
            | IntelError::DebugEnabled
            // The certification data type no longer says "PCK chain".
            | IntelError::MissingPckChain
            // A flipped date in the embedded PCK certificate.
            | IntelError::OutsideValidity { .. }
    )
}

fn scan_quote(quote: &[u8], coll: &[u8], now: u64) {
    let c = intel::parse_collateral(coll).unwrap();
    assert!(intel::verify_quote(quote, &c, now, INTEL_ROOT_CA_DER).is_ok());
    for pos in 0..quote.len() {
        let mut q = quote.to_vec();
        q[pos] ^= 0x01;
        let e = intel::verify_quote(&q, &c, now, INTEL_ROOT_CA_DER)
            .expect_err("tampered quote verified");
        assert!(quote_error(&e), "pos {pos}: {e:?}");
    }
}

#[test]
fn every_tdx_quote_byte_matters() {
    scan_quote(TDX, TDX_COLL, TDX_NOW);
}

#[test]
fn every_sgx_quote_byte_matters() {
    scan_quote(SGX, SGX_COLL, SGX_NOW);
}

fn collateral_error(e: &IntelError) -> bool {
    matches!(
        e,
        IntelError::MalformedCollateral { .. }
            | IntelError::CollateralSignature { .. }
            | IntelError::CertChain { .. }
            | IntelError::OutsideValidity { .. }
            | IntelError::CollateralMismatch { .. }
            | IntelError::NoMatchingTcbLevel
            | IntelError::QeIdentity { .. }
    )
}

#[test]
fn collateral_bytes_matter() {
    let c0 = intel::parse_collateral(TDX_COLL).unwrap();
    let texts = [
        c0.pck_crl_issuer_chain.len(),
        c0.tcb_info_issuer_chain.len(),
        c0.qe_identity_issuer_chain.len(),
        c0.tcb_info.len(),
        c0.qe_identity.len(),
    ];
    for (field, len) in texts.into_iter().enumerate() {
        for pos in (0..len).step_by(3) {
            let mut c = c0.clone();
            let s = match field {
                0 => &mut c.pck_crl_issuer_chain,
                1 => &mut c.tcb_info_issuer_chain,
                2 => &mut c.qe_identity_issuer_chain,
                3 => &mut c.tcb_info,
                _ => &mut c.qe_identity,
            };
            let mut b = s.clone().into_bytes();
            b[pos] ^= 0x01;
            *s = String::from_utf8(b).unwrap();
            let e = intel::verify_quote(TDX, &c, TDX_NOW, INTEL_ROOT_CA_DER).expect_err("verified");
            assert!(collateral_error(&e), "text field {field} pos {pos}: {e:?}");
        }
    }
    let bins = [
        c0.root_ca_crl.len(),
        c0.pck_crl.len(),
        c0.tcb_info_signature.len(),
        c0.qe_identity_signature.len(),
    ];
    for (field, len) in bins.into_iter().enumerate() {
        for pos in (0..len).step_by(3) {
            let mut c = c0.clone();
            let b = match field {
                0 => &mut c.root_ca_crl,
                1 => &mut c.pck_crl,
                2 => &mut c.tcb_info_signature,
                _ => &mut c.qe_identity_signature,
            };
            b[pos] ^= 0x01;
            let e = intel::verify_quote(TDX, &c, TDX_NOW, INTEL_ROOT_CA_DER).expect_err("verified");
            assert!(
                collateral_error(&e),
                "binary field {field} pos {pos}: {e:?}"
            );
        }
    }
}
