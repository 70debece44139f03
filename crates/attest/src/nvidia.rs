//! NVIDIA Hopper/Blackwell GPU attestation evidence, verified offline.
//!
//! The evidence ("attestation report") is an SPDM 1.1 GET_MEASUREMENTS
//! request message immediately followed by the MEASUREMENTS response message
//! (DMTF DSP0274 1.1: §10.11, Table 40 request, Table 45 response, Table 46
//! measurement block, Table 47 DMTF measurement), as produced by the NVIDIA
//! driver (nvtrust `local_gpu_verifier`, attestation-sdk):
//!
//! ```text
//! request  (37 B): version 0x11 | 0xE0 | param1 | param2 | nonce[32] | slot id
//! response       : version | 0x60 | param1 | param2 | NumberOfBlocks |
//!                  MeasurementRecordLength (u24 LE) | MeasurementRecord |
//!                  responder nonce[32] | OpaqueLength (u16 LE) | OpaqueData |
//!                  Signature[96]
//! ```
//!
//! The *requester* nonce — the one the verifier chose — is at bytes 4..36 of
//! the request; the response carries the GPU's own nonce, which proves
//! nothing to us. The signature (ECDSA P-384, r‖s big-endian, last 96 bytes)
//! covers SHA-384 of request ‖ response-without-signature, so the requester
//! nonce is signed. Opaque data is NVIDIA TLV (u16 type, u16 length, value).
//!
//! Checked offline: exact framing (no trailing bytes), signature with the
//! leaf key of the device chain, chain (names, ECDSA signatures, CA flags,
//! validity at `now`) to the pinned "NVIDIA Device Identity CA", and
//! revocation against caller-cached data ([`Revocation`]). NOT checked
//! offline: live OCSP (NVIDIA's verifier insists on it; we only consult what
//! the caller cached), RIM reference-value comparison (not implemented), the
//! leaf's TCG DICE FWID extension against the opaque FWID field.

use crate::certs::{self, CertError, Revocation};
use crate::verdict::{GpuArch, GpuMeasurement, GpuVerdict};
use base64::Engine;
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;

/// NVIDIA Device Identity CA, the trust anchor for GPU device chains.
pub const NVIDIA_DEVICE_ROOT_PEM: &[u8] =
    include_bytes!("../tests/data/nvtrust/verifier_device_root.pem");

const REQUEST_LEN: usize = 37;
const SIG_LEN: usize = 96;
const GET_MEASUREMENTS: u8 = 0xE0;
const MEASUREMENTS: u8 = 0x60;
const OPAQUE_DRIVER_VERSION: u16 = 3;
const OPAQUE_VBIOS_VERSION: u16 = 6;

/// Why GPU evidence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NvidiaError {
    #[error("evidence truncated: need {need} bytes at offset {at}, have {have}")]
    Truncated { at: usize, need: usize, have: usize },
    #[error("{extra} trailing bytes after the signature")]
    TrailingBytes { extra: usize },
    #[error("not an SPDM GET_MEASUREMENTS/MEASUREMENTS pair: {detail}")]
    BadFraming { detail: String },
    #[error("request did not ask for a signed response (param1 bit 0 clear)")]
    UnsignedRequest,
    #[error("measurement block {index} is malformed")]
    BadMeasurementBlock { index: usize },
    #[error("opaque data is malformed at offset {offset}")]
    BadOpaqueData { offset: usize },
    #[error("device certificate chain: {0}")]
    Cert(#[from] CertError),
    #[error("device leaf key is not P-384")]
    BadLeafKey,
    #[error("evidence signature does not verify with the device leaf key")]
    BadSignature,
    #[error("evidence JSON is malformed: {detail}")]
    BadJson { detail: String },
}

/// Parsed (not yet verified) SPDM measurement evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpdmEvidence {
    pub spdm_version: u8,
    pub request_nonce: [u8; 32],
    pub responder_nonce: [u8; 32],
    pub blocks: Vec<GpuMeasurement>,
    /// Opaque TLVs (type, value) in order.
    pub opaque: Vec<(u16, Vec<u8>)>,
    /// Length of the signed prefix (everything before the signature).
    pub signed_len: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NvidiaError> {
        let end = self.at.checked_add(n);
        let out = end.and_then(|e| self.buf.get(self.at..e));
        match out {
            Some(s) => {
                self.at += n;
                Ok(s)
            }
            None => Err(NvidiaError::Truncated {
                at: self.at,
                need: n,
                have: self.buf.len().saturating_sub(self.at),
            }),
        }
    }
    fn u8(&mut self) -> Result<u8, NvidiaError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], NvidiaError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, NvidiaError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u24(&mut self) -> Result<usize, NvidiaError> {
        let [a, b, c] = self.array()?;
        Ok(usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16)
    }
}

fn framing(detail: &str) -> NvidiaError {
    NvidiaError::BadFraming {
        detail: detail.into(),
    }
}

/// Parse request ‖ response (DSP0274 1.1 Tables 40, 45) without verifying.
pub fn parse_evidence(ev: &[u8]) -> Result<SpdmEvidence, NvidiaError> {
    let mut r = Reader { buf: ev, at: 0 };
    let version = r.u8()?;
    if r.u8()? != GET_MEASUREMENTS {
        return Err(framing("request code is not GET_MEASUREMENTS (0xE0)"));
    }
    if r.u8()? & 1 == 0 {
        return Err(NvidiaError::UnsignedRequest);
    }
    let _param2 = r.u8()?;
    let request_nonce = r.array()?;
    let _slot = r.u8()?;
    debug_assert_eq!(r.at, REQUEST_LEN);
    if r.u8()? != version {
        return Err(framing("response SPDM version differs from request"));
    }
    if r.u8()? != MEASUREMENTS {
        return Err(framing("response code is not MEASUREMENTS (0x60)"));
    }
    let _p1 = r.u8()?;
    let _p2 = r.u8()?;
    let n_blocks = usize::from(r.u8()?);
    let record_len = r.u24()?;
    let blocks = parse_blocks(r.take(record_len)?, n_blocks)?;
    let responder_nonce = r.array()?;
    let opaque_len = usize::from(r.u16()?);
    let opaque = parse_opaque(r.take(opaque_len)?)?;
    let signed_len = r.at;
    r.take(SIG_LEN)?;
    if r.at != ev.len() {
        return Err(NvidiaError::TrailingBytes {
            extra: ev.len() - r.at,
        });
    }
    Ok(SpdmEvidence {
        spdm_version: version,
        request_nonce,
        responder_nonce,
        blocks,
        opaque,
        signed_len,
    })
}

/// Measurement blocks (Table 46) holding DMTF measurements (Table 47).
fn parse_blocks(record: &[u8], n: usize) -> Result<Vec<GpuMeasurement>, NvidiaError> {
    let mut r = Reader { buf: record, at: 0 };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let bad = |_| NvidiaError::BadMeasurementBlock { index: i };
        let index = r.u8().map_err(bad)?;
        let spec = r.u8().map_err(bad)?;
        let size = usize::from(r.u16().map_err(bad)?);
        let body = r.take(size).map_err(bad)?;
        if spec & 1 == 0 || size < 3 {
            return Err(NvidiaError::BadMeasurementBlock { index: i });
        }
        let mut b = Reader { buf: body, at: 0 };
        let value_type = b.u8().map_err(bad)?;
        let vsize = usize::from(b.u16().map_err(bad)?);
        let value = b.take(vsize).map_err(bad)?.to_vec();
        if b.at != body.len() {
            return Err(NvidiaError::BadMeasurementBlock { index: i });
        }
        out.push(GpuMeasurement {
            index,
            value_type,
            value,
        });
    }
    if r.at != record.len() {
        return Err(NvidiaError::BadMeasurementBlock { index: n });
    }
    Ok(out)
}

/// NVIDIA opaque data: a sequence of (u16 type, u16 size, value).
fn parse_opaque(data: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, NvidiaError> {
    let mut r = Reader { buf: data, at: 0 };
    let mut out = Vec::new();
    while r.at < data.len() {
        let offset = r.at;
        let bad = |_| NvidiaError::BadOpaqueData { offset };
        let t = r.u16().map_err(bad)?;
        let n = usize::from(r.u16().map_err(bad)?);
        out.push((t, r.take(n).map_err(bad)?.to_vec()));
    }
    Ok(out)
}

/// One GPU's evidence as the provider sends it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GpuEvidence {
    /// "HOPPER" / "BLACKWELL" as NVIDIA's tools label it (informational).
    #[serde(default)]
    pub arch: Option<String>,
    /// SPDM request ‖ response bytes, base64.
    #[serde(with = "crate::b64")]
    pub evidence: Vec<u8>,
    /// Device certificate chain, PEM text (leaf first).
    pub cert_chain: String,
}

#[derive(serde::Deserialize)]
struct NrasItem {
    #[serde(default)]
    arch: Option<String>,
    certificate: String,
    evidence: String,
}

/// Parse NVIDIA's JSON evidence list (`[{arch, certificate: base64(PEM),
/// evidence: base64, nonce, ...}]`, as in nvtrust/attestation-sdk); a single
/// object is accepted too.
pub fn parse_evidence_json(json: &[u8]) -> Result<Vec<GpuEvidence>, NvidiaError> {
    let bad = |e: &dyn std::fmt::Display| NvidiaError::BadJson {
        detail: e.to_string(),
    };
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| bad(&e))?;
    let items: Vec<NrasItem> = match v {
        serde_json::Value::Array(_) => serde_json::from_value(v).map_err(|e| bad(&e))?,
        other => vec![serde_json::from_value(other).map_err(|e| bad(&e))?],
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    items
        .into_iter()
        .map(|i| {
            let chain = b64.decode(i.certificate.trim()).map_err(|e| bad(&e))?;
            Ok(GpuEvidence {
                arch: i.arch,
                evidence: b64.decode(i.evidence.trim()).map_err(|e| bad(&e))?,
                cert_chain: String::from_utf8(chain).map_err(|e| bad(&e))?,
            })
        })
        .collect()
}

fn arch_of(subject: &str, label: Option<&str>) -> GpuArch {
    let l = label.unwrap_or("").to_ascii_uppercase();
    if subject.contains("GH100") || l == "HOPPER" {
        GpuArch::Hopper
    } else if subject.contains("GB10") || subject.contains("GB20") || l == "BLACKWELL" {
        GpuArch::Blackwell
    } else {
        GpuArch::Unknown
    }
}

/// Verify one GPU's evidence at `now` against the pinned device root
/// (`root_pem`, use [`NVIDIA_DEVICE_ROOT_PEM`] in production).
pub fn verify_gpu(
    ev: &GpuEvidence,
    root_pem: &[u8],
    now: u64,
    revocation: &Revocation,
) -> Result<GpuVerdict, NvidiaError> {
    let parsed = parse_evidence(&ev.evidence)?;
    let chain = certs::parse_pem_chain(ev.cert_chain.as_bytes())?;
    let root = certs::parse_one(root_pem)?;
    let leaf = chain.first().ok_or(CertError::Empty)?;
    // Signature first (cheap to fail), then the chain that vouches for the key.
    let key = leaf
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let key =
        p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| NvidiaError::BadLeafKey)?;
    let (signed, sig) = ev
        .evidence
        .split_at_checked(parsed.signed_len)
        .ok_or(NvidiaError::BadSignature)?;
    let sig = p384::ecdsa::Signature::from_slice(sig).map_err(|_| NvidiaError::BadSignature)?;
    key.verify_prehash(&sha2::Sha384::digest(signed), &sig)
        .map_err(|_| NvidiaError::BadSignature)?;
    let not_after = certs::verify_chain(&chain, &root, now, revocation)?;
    let subject = certs::subject(leaf);
    let text = |t: u16| parsed.opaque.iter().find(|(k, _)| *k == t).map(|(_, v)| v);
    Ok(GpuVerdict {
        arch: arch_of(&subject, ev.arch.as_deref()),
        nonce: parsed.request_nonce,
        driver_version: text(OPAQUE_DRIVER_VERSION).map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        }),
        vbios_version: text(OPAQUE_VBIOS_VERSION).map(hex::encode),
        measurements: parsed.blocks,
        device_subject: subject,
        not_after,
        revocation_checked: revocation.complete,
    })
}

/// Decode the hex text form NVIDIA's samples use (`hopperAttestationReport.txt`)
/// or pass raw bytes through.
pub fn decode_report_text(bytes: &[u8]) -> Vec<u8> {
    crate::decode_hex_or_raw(bytes)
}
