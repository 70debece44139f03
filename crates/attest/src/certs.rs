//! X.509 helpers the vendor crates do not give us: PEM chain parsing,
//! validity periods against a caller-supplied `now`, ECDSA (P-256/P-384)
//! certificate signature checks for chains that end at a pinned root, and
//! revocation against caller-supplied (cached) data.
//!
//! RFC 5280 §4.1 (certificate fields), §6.1 (path validation, simplified: name
//! chaining, signatures, validity, basicConstraints cA for issuers).

use der::{Decode, DecodePem, Encode};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;
use x509_cert::Certificate;

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
const ECDSA_SHA256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5758 §3.2).
const ECDSA_SHA384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ce-basicConstraints (RFC 5280 §4.2.1.9).
const BASIC_CONSTRAINTS: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.19");

/// Certificate problems, each naming which certificate (0 = leaf).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate {index}: cannot parse: {detail}")]
    Parse { index: usize, detail: String },
    #[error("no certificate in input")]
    Empty,
    #[error("certificate {index} not valid at {now}: valid {not_before}..{not_after}")]
    OutsideValidity {
        index: usize,
        now: u64,
        not_before: u64,
        not_after: u64,
    },
    #[error("certificate {index}: issuer name does not match the next certificate's subject")]
    IssuerMismatch { index: usize },
    #[error("certificate {index}: signature by its issuer does not verify")]
    BadSignature { index: usize },
    #[error("certificate {index}: unsupported signature algorithm {oid}")]
    UnsupportedAlgorithm { index: usize, oid: String },
    #[error("certificate {index}: issuer is not a CA (basicConstraints)")]
    IssuerNotCa { index: usize },
    #[error("chain does not end at the pinned root")]
    UntrustedRoot,
    #[error("certificate {index}: outer signatureAlgorithm differs from the signed one")]
    AlgorithmMismatch { index: usize },
    #[error("certificate {index} (serial {serial}) is revoked")]
    Revoked { index: usize, serial: String },
}

/// Parse every `CERTIFICATE` block of a PEM text (order preserved).
pub fn parse_pem_chain(pem: &[u8]) -> Result<Vec<Certificate>, CertError> {
    let text = std::str::from_utf8(pem).map_err(|_| CertError::Parse {
        index: 0,
        detail: "PEM is not UTF-8".into(),
    })?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let tail = &rest[start..];
        let end = tail.find(END).ok_or(CertError::Parse {
            index: out.len(),
            detail: "unterminated PEM block".into(),
        })?;
        let block = &tail[..end + END.len()];
        let cert = Certificate::from_pem(block.as_bytes()).map_err(|e| CertError::Parse {
            index: out.len(),
            detail: e.to_string(),
        })?;
        out.push(cert);
        rest = &tail[end + END.len()..];
    }
    if out.is_empty() {
        return Err(CertError::Empty);
    }
    Ok(out)
}

/// Parse one certificate given as DER or PEM.
pub fn parse_one(bytes: &[u8]) -> Result<Certificate, CertError> {
    if bytes.starts_with(b"-----") || bytes.iter().take(64).all(|b| b.is_ascii()) {
        if let Ok(mut v) = parse_pem_chain(bytes) {
            if v.len() == 1 {
                return Ok(v.remove(0));
            }
        }
    }
    Certificate::from_der(bytes).map_err(|e| CertError::Parse {
        index: 0,
        detail: e.to_string(),
    })
}

/// One certificate given as DER or PEM, returned as DER.
pub fn der_of(bytes: &[u8]) -> Result<Vec<u8>, CertError> {
    parse_one(bytes)?.to_der().map_err(|e| CertError::Parse {
        index: 0,
        detail: e.to_string(),
    })
}

/// (notBefore, notAfter) in unix seconds.
pub fn validity(cert: &Certificate) -> (u64, u64) {
    let v = &cert.tbs_certificate.validity;
    (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    )
}

/// Reject a certificate that is not valid at `now` (notAfter inclusive, RFC 5280 §4.1.2.5).
pub fn check_validity(cert: &Certificate, index: usize, now: u64) -> Result<(), CertError> {
    let (not_before, not_after) = validity(cert);
    if now < not_before || now > not_after {
        return Err(CertError::OutsideValidity {
            index,
            now,
            not_before,
            not_after,
        });
    }
    Ok(())
}

/// RFC 5280 §4.1.1.2: the outer (unsigned) signatureAlgorithm must equal
/// the signed tbsCertificate.signature, or bytes outside the signature could
/// change unnoticed; likewise the signature BIT STRING has no unused bits.
pub fn check_algorithm_consistent(cert: &Certificate, index: usize) -> Result<(), CertError> {
    if cert.signature_algorithm != cert.tbs_certificate.signature
        || cert.signature.unused_bits() != 0
    {
        return Err(CertError::AlgorithmMismatch { index });
    }
    Ok(())
}

/// Whether the certificate asserts basicConstraints cA=TRUE.
fn is_ca(cert: &Certificate) -> bool {
    let Some(exts) = &cert.tbs_certificate.extensions else {
        return false;
    };
    exts.iter()
        .find(|e| e.extn_id == BASIC_CONSTRAINTS)
        .and_then(|e| {
            x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes()).ok()
        })
        .is_some_and(|bc| bc.ca)
}

/// Verify `subject`'s ECDSA signature with `issuer`'s public key. The key's
/// curve is taken from its encoding length (P-256: 65 B, P-384: 97 B SEC1).
pub fn verify_ecdsa_signed_by(
    subject: &Certificate,
    issuer: &Certificate,
    index: usize,
) -> Result<(), CertError> {
    let tbs = subject
        .tbs_certificate
        .to_der()
        .map_err(|e| CertError::Parse {
            index,
            detail: e.to_string(),
        })?;
    let alg = &subject.signature_algorithm.oid;
    let digest: Vec<u8> = if *alg == ECDSA_SHA384 {
        sha2::Sha384::digest(&tbs).to_vec()
    } else if *alg == ECDSA_SHA256 {
        sha2::Sha256::digest(&tbs).to_vec()
    } else {
        return Err(CertError::UnsupportedAlgorithm {
            index,
            oid: alg.to_string(),
        });
    };
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let sig = subject.signature.raw_bytes();
    if verify_ecdsa_prehash(key, &digest, sig) {
        Ok(())
    } else {
        Err(CertError::BadSignature { index })
    }
}

/// ECDSA verification of a DER signature over a precomputed digest with a
/// SEC1 public key of P-256 or P-384.
pub fn verify_ecdsa_prehash(sec1_key: &[u8], digest: &[u8], der_sig: &[u8]) -> bool {
    match sec1_key.len() {
        97 => {
            let Ok(k) = p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1_key) else {
                return false;
            };
            let Ok(s) = p384::ecdsa::Signature::from_der(der_sig) else {
                return false;
            };
            k.verify_prehash(digest, &s).is_ok()
        }
        65 => {
            let Ok(k) = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1_key) else {
                return false;
            };
            let Ok(s) = p256::ecdsa::Signature::from_der(der_sig) else {
                return false;
            };
            k.verify_prehash(digest, &s).is_ok()
        }
        _ => false,
    }
}

/// Serial number of a certificate as lowercase hex (no leading-zero trimming).
pub fn serial_hex(cert: &Certificate) -> String {
    hex::encode(cert.tbs_certificate.serial_number.as_bytes())
}

/// Subject name as an RFC 4514 string, for display.
pub fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// Revocation data the caller fetched and cached (e.g. from OCSP responses or
/// CRLs it validated when online). Offline we can only consult what is given.
#[derive(Debug, Clone, Default)]
pub struct Revocation {
    /// Serial numbers (lowercase hex) known revoked or on hold.
    pub revoked_serials: Vec<String>,
    /// Set when the caller asserts the cache covers every certificate in the
    /// chains it verifies (recorded in verdicts as `revocation_checked`).
    pub complete: bool,
}

impl Revocation {
    /// Reject any certificate of `chain` listed as revoked.
    pub fn check(&self, chain: &[Certificate]) -> Result<(), CertError> {
        for (index, c) in chain.iter().enumerate() {
            let s = serial_hex(c);
            if self
                .revoked_serials
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&s))
            {
                return Err(CertError::Revoked { index, serial: s });
            }
        }
        Ok(())
    }
}

/// Verify a leaf-first ECDSA chain that ends at (or is issued by) `root`:
/// names chain, every signature verifies, issuers are CAs, every certificate
/// (root included) is valid at `now`, nothing is in `revocation`. Returns the
/// earliest notAfter.
pub fn verify_chain(
    chain: &[Certificate],
    root: &Certificate,
    now: u64,
    revocation: &Revocation,
) -> Result<u64, CertError> {
    if chain.is_empty() {
        return Err(CertError::Empty);
    }
    let root_der = root.to_der().map_err(|e| CertError::Parse {
        index: chain.len(),
        detail: e.to_string(),
    })?;
    // Drop a copy of the root at the end of the chain, then require that the
    // remaining last certificate is issued by the pinned root.
    let mut certs: Vec<&Certificate> = chain.iter().collect();
    if let Some(last) = certs.last() {
        if last.to_der().ok().as_deref() == Some(root_der.as_slice()) {
            certs.pop();
        }
    }
    let mut not_after = u64::MAX;
    for (i, cert) in certs.iter().enumerate() {
        check_algorithm_consistent(cert, i)?;
        check_validity(cert, i, now)?;
        not_after = not_after.min(validity(cert).1);
        let issuer = certs.get(i + 1).copied().unwrap_or(root);
        if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
            return Err(if i + 1 == certs.len() {
                CertError::UntrustedRoot
            } else {
                CertError::IssuerMismatch { index: i }
            });
        }
        if !is_ca(issuer) {
            return Err(CertError::IssuerNotCa { index: i });
        }
        verify_ecdsa_signed_by(cert, issuer, i).map_err(|e| match e {
            CertError::BadSignature { .. } if i + 1 == certs.len() => CertError::UntrustedRoot,
            other => other,
        })?;
    }
    check_validity(root, certs.len(), now)?;
    not_after = not_after.min(validity(root).1);
    revocation.check(chain)?;
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &[u8] = include_bytes!("../tests/data/nvtrust/verifier_device_root.pem");
    const CHAIN: &[u8] = include_bytes!("../tests/data/nvtrust/hopperCertChain.txt");

    #[test]
    fn nvidia_chain_verifies_and_rejects_wrong_time_and_revoked() {
        let root = parse_one(ROOT).unwrap();
        let chain = parse_pem_chain(CHAIN).unwrap();
        assert_eq!(chain.len(), 5);
        let na = verify_chain(&chain, &root, 1_750_000_000, &Revocation::default()).unwrap();
        assert!(na > 253_000_000_000, "device chains end 9999-12-31");
        let early = verify_chain(&chain, &root, 1_000_000, &Revocation::default());
        assert!(matches!(early, Err(CertError::OutsideValidity { .. })));
        let rev = Revocation {
            revoked_serials: vec![serial_hex(&chain[1])],
            complete: true,
        };
        let r = verify_chain(&chain, &root, 1_750_000_000, &rev);
        assert!(matches!(r, Err(CertError::Revoked { index: 1, .. })));
    }

    #[test]
    fn chain_to_other_root_is_untrusted() {
        let chain = parse_pem_chain(CHAIN).unwrap();
        // Use the chain's own intermediate as a bogus "root".
        let bogus = chain[2].clone();
        let r = verify_chain(&chain[..1], &bogus, 1_750_000_000, &Revocation::default());
        assert!(matches!(r, Err(CertError::UntrustedRoot)));
    }

    #[test]
    fn garbage_pem_is_a_parse_error() {
        assert!(matches!(parse_pem_chain(b"hello"), Err(CertError::Empty)));
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse_pem_chain(bad), Err(CertError::Parse { .. })));
    }
}
