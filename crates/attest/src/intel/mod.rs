//! Intel TDX and SGX DCAP quote verification, fully offline, on top of
//! `dcap-qvl` (no `report` feature, so it has no HTTP client): the caller
//! supplies the collateral (PCK CRL + issuer chain, root CA CRL, TCB info, QE
//! identity and their signing chains) and `now`.
//!
//! Spec: Intel SGX ECDSA Quote Library API (quote v3, SGX), Intel TDX DCAP
//! Quoting Library API (quote v4, TDX 1.0) and quote v5 (TDX 1.5), Intel PCS
//! API v4 for TCB info v3 / QE identity v2.
//!
//! Checked offline by `dcap-qvl`: PCK chain to the Intel SGX Root CA (or the
//! root the caller pins), both CRLs, TCB-info and QE-identity signatures, QE
//! report signature and hash of the attestation key, quote signature, TCB
//! level matching (status + advisories), debug attributes. We add
//! (`strict.rs`): exact quote layout (no slack in length fields, only zero
//! padding after the signature data), canonical PEM and a pinned root for
//! every chain, the PCK CRL issuer chain tied to the PCK chain — so that no
//! byte of quote or collateral can change unnoticed — plus the collateral
//! time window as a named error, structured error variants, and extraction
//! of measurements. Not checked: anything needing the network (fresher
//! collateral than what the caller passes; the caller refreshes it before
//! `TeeVerdict::not_after`).

use crate::verdict::{
    Measurements, SgxMeasurements, TcbStatus, TdxMeasurements, TeeKind, TeeVerdict,
};
use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::QuoteCollateralV3;

mod strict;

/// Intel's production SGX root CA (DER), as embedded by `dcap-qvl`.
pub const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("../../tests/data/dcap-qvl/TrustedRootCA.der");

/// Why an Intel quote was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntelError {
    #[error("quote is malformed or truncated: {detail}")]
    MalformedQuote { detail: String },
    #[error("quote TEE type {tee_type:#x} is not the expected {expected}")]
    WrongTeeType { tee_type: u32, expected: TeeKind },
    #[error("no PCK certificate chain: not embedded in the quote, none in the collateral")]
    MissingPckChain,
    #[error("collateral is malformed: {detail}")]
    MalformedCollateral { detail: String },
    #[error("collateral/certificates not valid at {now}: window {not_before}..{not_after}")]
    OutsideValidity {
        now: u64,
        not_before: u64,
        not_after: u64,
    },
    #[error("collateral signature (TCB info or QE identity) is invalid: {detail}")]
    CollateralSignature { detail: String },
    #[error("collateral does not belong to this platform: {detail}")]
    CollateralMismatch { detail: String },
    #[error("certificate chain does not verify to the pinned Intel root: {detail}")]
    CertChain { detail: String },
    #[error("quote or QE report signature is invalid: {detail}")]
    QuoteSignature { detail: String },
    #[error("no TCB level in the TCB info matches the platform")]
    NoMatchingTcbLevel,
    #[error("TCB or certificate is revoked: {detail}")]
    Revoked { detail: String },
    #[error("TEE runs with debug enabled")]
    DebugEnabled,
    #[error("QE identity check failed: {detail}")]
    QeIdentity { detail: String },
    #[error("quote verification failed: {detail}")]
    Verification { detail: String },
}

/// Parse collateral in the JSON format of `dcap-qvl`'s `QuoteCollateralV3`
/// (binary fields hex-encoded).
pub fn parse_collateral(json: &[u8]) -> Result<QuoteCollateralV3, IntelError> {
    serde_json::from_slice(json).map_err(|e| IntelError::MalformedCollateral {
        detail: e.to_string(),
    })
}

/// Parse a quote without verifying it (for fuzzing and display).
pub fn parse_quote(quote: &[u8]) -> Result<Quote, IntelError> {
    Quote::parse(quote).map_err(|e| IntelError::MalformedQuote {
        detail: format!("{e:#}"),
    })
}

/// A `dcap-qvl` policy that accepts every verified claim: our own
/// [`crate::policy::Policy`] decides afterwards, with named reasons.
struct AcceptAll;

impl dcap_qvl::Policy for AcceptAll {
    fn validate(&self, _: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Verify a TDX or SGX quote against collateral at `now` (unix seconds),
/// anchored at `root_ca_der` (use [`INTEL_ROOT_CA_DER`] in production).
pub fn verify_quote(
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    now: u64,
    root_ca_der: &[u8],
) -> Result<TeeVerdict, IntelError> {
    let parsed = parse_quote(quote)?;
    let embedded = strict::layout(quote)?;
    let chains = strict::Chains::parse(embedded, collateral, root_ca_der)?;
    let kind = match parsed.header.tee_type {
        0x0000_0000 => TeeKind::Sgx,
        0x0000_0081 => TeeKind::Tdx,
        t => {
            return Err(IntelError::WrongTeeType {
                tee_type: t,
                expected: TeeKind::Tdx,
            })
        }
    };
    let (not_before, not_after) = strict::window(collateral, &chains)?;
    if now < not_before || now >= not_after {
        return Err(IntelError::OutsideValidity {
            now,
            not_before,
            not_after,
        });
    }
    let claims = dcap_qvl::verify::QuoteVerifier::new(root_ca_der.to_vec())
        .verify_with_policy(quote, collateral.clone(), now, &AcceptAll)
        .map_err(|e| classify(&e))?;
    let (report_data, debug, measurements) = measurements(&claims.report)?;
    Ok(TeeVerdict {
        kind,
        tcb_status: TcbStatus::from_dcap(claims.tcb.status),
        advisory_ids: claims.tcb.advisory_ids.clone(),
        report_data,
        debug,
        measurements,
        not_after: not_after.saturating_sub(1),
        revocation_checked: true,
    })
}

/// Map a `dcap-qvl` error chain to a named variant. `dcap-qvl` reports
/// `anyhow` messages only, so this matches their (stable, tested) texts.
fn classify(e: &anyhow::Error) -> IntelError {
    let detail = format!("{e:#}");
    let has = |s: &str| detail.contains(s);
    if has("Failed to decode quote")
        || has("quote version")
        || has("attestation key type")
        || has("QE vendor ID")
    {
        IntelError::MalformedQuote { detail }
    } else if has("Failed to decode TcbInfo") || has("Failed to decode QeIdentity") {
        IntelError::MalformedCollateral { detail }
    } else if has("Signature is invalid for tcb_info")
        || has("Signature is invalid for qe_identity")
    {
        IntelError::CollateralSignature { detail }
    } else if has("Revoked") || has("revoked") {
        IntelError::Revoked { detail }
    } else if has("No matching TCB level") {
        IntelError::NoMatchingTcbLevel
    } else if has("Debug mode is enabled") {
        IntelError::DebugEnabled
    } else if has("Fmspc mismatch") || has("TCB info in the collateral") || has("QE Vendor") {
        IntelError::CollateralMismatch { detail }
    } else if has("Signature is invalid for qe_report")
        || has("report signature is invalid")
        || has("QE report hash mismatch")
        || has("signature")
    {
        IntelError::QuoteSignature { detail }
    } else if has("ertificate") || has("root ca") || has("CRL") || has("crl") {
        IntelError::CertChain { detail }
    } else if has("QE") {
        IntelError::QeIdentity { detail }
    } else {
        IntelError::Verification { detail }
    }
}

type Extracted = ([u8; 64], bool, Measurements);

/// Report data, debug flag and measurements of a verified report.
fn measurements(report: &Report) -> Result<Extracted, IntelError> {
    if let Some(s) = report.as_sgx() {
        // SGX ATTRIBUTES.DEBUG is bit 1 of the first byte (SDM Vol 3D §38.7.1).
        let debug = s.attributes[0] & 0x02 != 0;
        let m = SgxMeasurements {
            mr_enclave: s.mr_enclave,
            mr_signer: s.mr_signer,
            isv_prod_id: s.isv_prod_id,
            isv_svn: s.isv_svn,
            attributes: s.attributes,
            cpu_svn: s.cpu_svn,
        };
        return Ok((s.report_data, debug, Measurements::Sgx(m)));
    }
    let Some(t) = report.as_td10() else {
        return Err(IntelError::MalformedQuote {
            detail: "unknown report body".into(),
        });
    };
    // TDATTRIBUTES.DEBUG is bit 0 (TDX module ABI spec, Table "TD Attributes").
    let debug = t.td_attributes[0] & 0x01 != 0;
    let m = TdxMeasurements {
        mr_td: t.mr_td,
        mr_seam: t.mr_seam,
        mr_signer_seam: t.mr_signer_seam,
        mr_config_id: t.mr_config_id,
        mr_owner: t.mr_owner,
        mr_owner_config: t.mr_owner_config,
        rtmr: [
            hex::encode(t.rt_mr0),
            hex::encode(t.rt_mr1),
            hex::encode(t.rt_mr2),
            hex::encode(t.rt_mr3),
        ],
        tee_tcb_svn: t.tee_tcb_svn,
        td_attributes: t.td_attributes,
        xfam: t.xfam,
    };
    Ok((t.report_data, debug, Measurements::Tdx(m)))
}
