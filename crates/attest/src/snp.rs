//! AMD SEV-SNP attestation report verification, offline.
//!
//! Spec: AMD SEV-SNP Firmware ABI Specification (pub. 56860), Table 23
//! ATTESTATION_REPORT (1184 bytes, signed over bytes 0h..29Fh), Table 3
//! TCB_VERSION, Table 10 GUEST_POLICY, Table 139 ECDSA P-384 signature
//! (R and S little-endian, zero-extended to 72 bytes, rest of the 512-byte
//! field MBZ); AMD VCEK certificate spec (pub. 57230) §3 / Table 8 for the
//! VCEK extensions (1.3.6.1.4.1.3704.1.3.x SPLs, 1.3.6.1.4.1.3704.1.4 hwID).
//!
//! The `sev` crate (pure-Rust `crypto_nossl` backend) parses the report and
//! checks ARK self-signature, ARK → ASK and ASK → VCEK (RSA-PSS/SHA-384). It
//! checks signatures only, so we add: validity periods of ARK/ASK/VCEK at
//! `now`; the VCEK → report signature over the *raw* bytes (not a
//! re-encoding) plus MBZ checks of the signature field, so that no byte of
//! the report can change unnoticed; VCEK hwID == report CHIP_ID; VCEK TCB
//! SPLs == report REPORTED_TCB. The ARK is pinned: the built-in AMD ARK of
//! the generation named by the VCEK issuer. Not checked offline: the AMD
//! KDS CRL (revocation of ASKs/VCEKs) unless the caller lists revoked
//! serials in [`Revocation`]; VLEK-signed reports (unsupported).

use crate::certs::{self, CertError, Revocation};
use crate::verdict::{Measurements, SnpMeasurements, SnpTcb, TcbStatus, TeeKind, TeeVerdict};
use der::{Decode, Encode};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use sev::certs::snp::{ca, Certificate as SevCert, Chain, Verifiable};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use sha2::Digest;
use x509_cert::Certificate;

/// Size of ATTESTATION_REPORT (Table 23).
pub const REPORT_LEN: usize = 0x4A0;
/// End of the signed part of the report.
const SIGNED_LEN: usize = 0x2A0;
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384 (Table 138).
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// Why an SNP report was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpError {
    #[error("report must be {REPORT_LEN} bytes, got {len}")]
    WrongLength { len: usize },
    #[error("report is malformed: {detail}")]
    Malformed { detail: String },
    #[error("unsupported signature algorithm {algo} (want 1 = ECDSA P-384/SHA-384)")]
    UnsupportedSigAlgo { algo: u32 },
    #[error("signature field byte {offset:#x} must be zero")]
    NonZeroSignaturePadding { offset: usize },
    #[error("VCEK issuer {issuer:?} is not a known AMD generation (Milan, Genoa, Turin)")]
    UnknownGeneration { issuer: String },
    #[error("VCEK certificate: {0}")]
    Cert(#[from] CertError),
    #[error("supplied ARK is not AMD's pinned ARK for this generation")]
    UntrustedArk,
    #[error("ARK -> ASK -> VCEK chain does not verify: {detail}")]
    ChainSignature { detail: String },
    #[error("report signature does not verify with the VCEK")]
    ReportSignature,
    #[error("VCEK extension {oid} missing or malformed")]
    MissingExtension { oid: &'static str },
    #[error("VCEK hwID does not match the report CHIP_ID")]
    ChipIdMismatch,
    #[error("VCEK {component} SPL {vcek} != report REPORTED_TCB {report}")]
    TcbMismatch {
        component: &'static str,
        vcek: u8,
        report: u8,
    },
}

/// Collateral for an SNP report: the VCEK (DER or PEM) and optionally the
/// ASK+ARK PEM chain as served by AMD KDS (`cert_chain`).
#[derive(Debug, Clone, Default)]
pub struct SnpCollateral {
    pub vcek: Vec<u8>,
    pub ask_ark_pem: Option<Vec<u8>>,
}

/// Parse a report without verifying it (for fuzzing and display).
pub fn parse_report(bytes: &[u8]) -> Result<AttestationReport, SnpError> {
    if bytes.len() != REPORT_LEN {
        return Err(SnpError::WrongLength { len: bytes.len() });
    }
    AttestationReport::from_bytes(bytes).map_err(|e| SnpError::Malformed {
        detail: e.to_string(),
    })
}

/// Verify an SNP report with its VCEK at `now` (unix seconds).
pub fn verify_report(
    report: &[u8],
    collateral: &SnpCollateral,
    now: u64,
    revocation: &Revocation,
) -> Result<TeeVerdict, SnpError> {
    let parsed = parse_report(report)?;
    if parsed.sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(SnpError::UnsupportedSigAlgo {
            algo: parsed.sig_algo,
        });
    }
    check_signature_padding(report)?;
    let vcek = certs::parse_one(&collateral.vcek)?;
    let (generation, ark, ask) = amd_roots(&vcek, collateral.ask_ark_pem.as_deref())?;
    let chain = [vcek.clone(), ask.clone(), ark.clone()];
    let mut not_after = u64::MAX;
    for (i, c) in chain.iter().enumerate() {
        certs::check_algorithm_consistent(c, i)?;
        certs::check_validity(c, i, now)?;
        not_after = not_after.min(certs::validity(c).1);
    }
    revocation.check(&chain)?;
    let sev_chain = Chain {
        ca: ca::Chain {
            ark: SevCert::from(ark),
            ask: SevCert::from(ask),
        },
        vek: SevCert::from(vcek.clone()),
    };
    (&sev_chain)
        .verify()
        .map_err(|e| SnpError::ChainSignature {
            detail: e.to_string(),
        })?;
    verify_report_signature(report, &vcek)?;
    check_vcek_matches(&vcek, &parsed)?;
    Ok(verdict(&parsed, generation, not_after, revocation.complete))
}

/// Bytes of the 512-byte SIGNATURE field that must be zero: R and S are 48
/// significant bytes zero-extended to 72, then reserved to the end.
fn check_signature_padding(report: &[u8]) -> Result<(), SnpError> {
    let r_pad = SIGNED_LEN + 48..SIGNED_LEN + 72;
    let s_pad = SIGNED_LEN + 72 + 48..SIGNED_LEN + 144;
    let tail = SIGNED_LEN + 144..REPORT_LEN;
    for range in [r_pad, s_pad, tail] {
        for offset in range {
            if report.get(offset).copied().unwrap_or(0) != 0 {
                return Err(SnpError::NonZeroSignaturePadding { offset });
            }
        }
    }
    Ok(())
}

/// ECDSA P-384 over SHA-384 of the raw signed bytes (Table 139 layout).
fn verify_report_signature(report: &[u8], vcek: &Certificate) -> Result<(), SnpError> {
    let (Some(signed), Some(r_le), Some(s_le)) = (
        report.get(..SIGNED_LEN),
        report.get(SIGNED_LEN..SIGNED_LEN + 48),
        report.get(SIGNED_LEN + 72..SIGNED_LEN + 72 + 48),
    ) else {
        return Err(SnpError::WrongLength { len: report.len() });
    };
    let mut rs = [0u8; 96];
    for (i, b) in r_le.iter().rev().chain(s_le.iter().rev()).enumerate() {
        if let Some(slot) = rs.get_mut(i) {
            *slot = *b;
        }
    }
    let sig = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| SnpError::ReportSignature)?;
    let key = vcek
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| {
        SnpError::Cert(CertError::Parse {
            index: 0,
            detail: "VCEK key is not P-384".into(),
        })
    })?;
    let digest = sha2::Sha384::digest(signed);
    key.verify_prehash(&digest, &sig)
        .map_err(|_| SnpError::ReportSignature)
}

/// Pick the pinned ARK (and ASK unless supplied) from the VCEK issuer CN.
fn amd_roots(
    vcek: &Certificate,
    supplied: Option<&[u8]>,
) -> Result<(&'static str, Certificate, Certificate), SnpError> {
    let issuer = vcek.tbs_certificate.issuer.to_string();
    let (generation, ark_pem, ask_pem) = if issuer.contains("SEV-Milan") {
        let g = sev::certs::snp::builtin::milan::ARK;
        ("Milan", g, sev::certs::snp::builtin::milan::ASK)
    } else if issuer.contains("SEV-Genoa") {
        let g = sev::certs::snp::builtin::genoa::ARK;
        ("Genoa", g, sev::certs::snp::builtin::genoa::ASK)
    } else if issuer.contains("SEV-Turin") {
        let g = sev::certs::snp::builtin::turin::ARK;
        ("Turin", g, sev::certs::snp::builtin::turin::ASK)
    } else {
        return Err(SnpError::UnknownGeneration { issuer });
    };
    let ark = certs::parse_one(ark_pem)?;
    let ask = match supplied {
        None => certs::parse_one(ask_pem)?,
        Some(pem) => {
            let chain = certs::parse_pem_chain(pem)?;
            let (Some(ask), Some(their_ark)) = (chain.first(), chain.get(1)) else {
                return Err(SnpError::UntrustedArk);
            };
            if their_ark.to_der().ok() != ark.to_der().ok() {
                return Err(SnpError::UntrustedArk);
            }
            ask.clone()
        }
    };
    Ok((generation, ark, ask))
}

/// Value of a VCEK extension by dotted OID.
fn ext<'a>(vcek: &'a Certificate, oid: &str) -> Option<&'a [u8]> {
    vcek.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id.to_string() == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn ext_u8(vcek: &Certificate, oid: &'static str) -> Result<u8, SnpError> {
    let raw = ext(vcek, oid).ok_or(SnpError::MissingExtension { oid })?;
    u8::from_der(raw).map_err(|_| SnpError::MissingExtension { oid })
}

/// VCEK hwID and TCB SPL extensions must equal the report's CHIP_ID and
/// REPORTED_TCB (the VCEK is derived from exactly that chip and TCB).
fn check_vcek_matches(vcek: &Certificate, r: &AttestationReport) -> Result<(), SnpError> {
    let raw = ext(vcek, OID_HWID).ok_or(SnpError::MissingExtension { oid: OID_HWID })?;
    let hwid: Vec<u8> = match raw.len() {
        64 | 8 => raw.to_vec(),
        _ => der::asn1::OctetString::from_der(raw)
            .map(|o| o.as_bytes().to_vec())
            .map_err(|_| SnpError::MissingExtension { oid: OID_HWID })?,
    };
    if hwid.is_empty() || r.chip_id.get(..hwid.len()) != Some(hwid.as_slice()) {
        return Err(SnpError::ChipIdMismatch);
    }
    let t = &r.reported_tcb;
    let pairs = [
        ("bootloader", OID_BL_SPL, t.bootloader),
        ("tee", OID_TEE_SPL, t.tee),
        ("snp", OID_SNP_SPL, t.snp),
        ("microcode", OID_UCODE_SPL, t.microcode),
    ];
    for (component, oid, report) in pairs {
        let v = ext_u8(vcek, oid)?;
        if v != report {
            return Err(SnpError::TcbMismatch {
                component,
                vcek: v,
                report,
            });
        }
    }
    if let Some(fmc) = t.fmc {
        let v = ext_u8(vcek, OID_FMC_SPL)?;
        if v != fmc {
            return Err(SnpError::TcbMismatch {
                component: "fmc",
                vcek: v,
                report: fmc,
            });
        }
    }
    Ok(())
}

fn tcb(t: &sev::firmware::host::TcbVersion) -> SnpTcb {
    SnpTcb {
        bootloader: t.bootloader,
        tee: t.tee,
        snp: t.snp,
        microcode: t.microcode,
        fmc: t.fmc,
    }
}

fn verdict(r: &AttestationReport, generation: &str, not_after: u64, rev: bool) -> TeeVerdict {
    let policy: u64 = r.policy.0;
    let debug = r.policy.debug_allowed();
    TeeVerdict {
        kind: TeeKind::Snp,
        tcb_status: TcbStatus::NotApplicable,
        advisory_ids: Vec::new(),
        report_data: r.report_data,
        debug,
        measurements: Measurements::Snp(SnpMeasurements {
            version: r.version,
            measurement: r.measurement,
            host_data: r.host_data,
            policy,
            debug_allowed: debug,
            vmpl: r.vmpl,
            guest_svn: r.guest_svn,
            reported_tcb: tcb(&r.reported_tcb),
            current_tcb: tcb(&r.current_tcb),
            committed_tcb: tcb(&r.committed_tcb),
            launch_tcb: tcb(&r.launch_tcb),
            id_key_digest: r.id_key_digest,
            chip_id: r.chip_id,
            generation: generation.to_string(),
        }),
        not_after,
        revocation_checked: rev,
    }
}
