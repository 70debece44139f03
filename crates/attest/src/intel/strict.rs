//! Strictness `dcap-qvl` does not have. It parses quotes leniently (length
//! fields, trailing bytes, certification-data types) and ignores some
//! collateral bytes (the PCK CRL issuer chain, embedded copies of the root),
//! so on its own some bytes of the evidence could change unnoticed. Here we
//! walk the quote layout exactly, require canonical PEM everywhere, pin every
//! copy of the root, tie the PCK CRL issuer chain to the PCK chain, and
//! compute the collateral validity window for a named time error. No
//! signature work: the signed parts are left to `dcap-qvl`.
//!
//! Layouts: Intel SGX ECDSA Quote Library API §A.4 (quote v3), Intel TDX
//! DCAP Quoting Library API §A.3 (v4) and its v5 typed body (TDX 1.5).

use super::IntelError;
use dcap_qvl::QuoteCollateralV3;
use der::{Decode, Encode, EncodePem};
use x509_cert::Certificate;

fn bad_layout(detail: &str) -> IntelError {
    IntelError::MalformedQuote {
        detail: detail.to_string(),
    }
}

fn malformed(what: &str, e: impl std::fmt::Display) -> IntelError {
    IntelError::MalformedCollateral {
        detail: format!("{what}: {e}"),
    }
}

/// Little-endian reader over the quote that never panics.
struct Cursor<'a>(&'a [u8], usize);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IntelError> {
        let end = self
            .1
            .checked_add(n)
            .ok_or_else(|| bad_layout("length overflow"))?;
        let s = self
            .0
            .get(self.1..end)
            .ok_or_else(|| bad_layout("truncated"))?;
        self.1 = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], IntelError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u16(&mut self) -> Result<u16, IntelError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<usize, IntelError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
}

/// Walk the quote layout exactly and require every length field to be
/// consistent, the v4/v5 certification data to be QE report data (type 6),
/// and anything after the signature data to be zero padding (TDX quotes come
/// in zero-padded buffers). Returns the embedded PCK chain if the inner
/// certification data is one (type 5; other types take the PCK chain from
/// the collateral).
pub(super) fn layout(quote: &[u8]) -> Result<Option<&[u8]>, IntelError> {
    let mut c = Cursor(quote, 0);
    let version = c.u16()?;
    c.take(46)?;
    match version {
        3 => {
            c.take(384)?;
        }
        4 => {
            c.take(584)?;
        }
        5 => {
            let _body_type = c.u16()?;
            let size = c.u32()?;
            c.take(size)?;
        }
        _ => return Err(bad_layout("unsupported quote version")),
    }
    let sig_len = c.u32()?;
    let sig_data = c.take(sig_len)?;
    if quote.get(c.1..).unwrap_or(&[]).iter().any(|b| *b != 0) {
        return Err(bad_layout("non-zero bytes after the signature data"));
    }
    let mut s = Cursor(sig_data, 0);
    s.take(128)?; // ECDSA signature + attestation public key
    if version >= 4 {
        if s.u16()? != 6 {
            return Err(bad_layout(
                "certification data is not QE report data (type 6)",
            ));
        }
        let size = s.u32()?;
        if size != sig_data.len().saturating_sub(s.1) {
            return Err(bad_layout("QE report certification data size mismatch"));
        }
    }
    s.take(384 + 64)?; // QE report + QE report signature
    let auth = s.u16()?;
    s.take(usize::from(auth))?;
    let cert_type = s.u16()?;
    let size = s.u32()?;
    let data = s.take(size)?;
    if s.1 != sig_data.len() {
        return Err(bad_layout("trailing bytes in the signature data"));
    }
    Ok((cert_type == 5).then_some(data))
}

/// Every certificate chain around a quote, parsed once.
pub(super) struct Chains {
    /// PCK chain: embedded in the quote, else from the collateral.
    pck: Vec<Certificate>,
    /// pck_crl_issuer_chain, tcb_info_issuer_chain, qe_identity_issuer_chain.
    issuers: Vec<Vec<Certificate>>,
}

/// LF-terminated, 64-column PEM of `certs`, concatenated.
fn canonical_pem(certs: &[Certificate]) -> Result<Vec<u8>, IntelError> {
    let mut out = String::new();
    for cert in certs {
        let p = cert
            .to_pem(der::pem::LineEnding::LF)
            .map_err(|e| bad_layout(&e.to_string()))?;
        out.push_str(&p);
    }
    Ok(out.into_bytes())
}

/// Parse a chain that must be canonical PEM (optionally NUL-terminated) and
/// end with the pinned root. Formatting faults are quote faults for the
/// chain embedded in the quote, collateral faults otherwise.
fn strict_chain(name: &str, pem: &[u8], root: &[u8]) -> Result<Vec<Certificate>, IntelError> {
    let in_quote = name.starts_with("embedded");
    let certs = crate::certs::parse_pem_chain(pem).map_err(|e| IntelError::CertChain {
        detail: format!("{name}: {e}"),
    })?;
    let body = pem.strip_suffix(b"\0").unwrap_or(pem);
    if body != canonical_pem(&certs)?.as_slice() {
        return Err(if in_quote {
            bad_layout("embedded PCK chain is not canonical PEM")
        } else {
            malformed(name, "not canonical PEM")
        });
    }
    if certs.last().and_then(|c| c.to_der().ok()).as_deref() != Some(root) {
        return Err(IntelError::CertChain {
            detail: format!("{name} does not end at the pinned root"),
        });
    }
    Ok(certs)
}

impl Chains {
    /// Parse and pin every chain. The PCK CRL issuer chain must be the PCK
    /// chain minus its leaf (the CRL issuer is the PCK's issuing CA), since
    /// `dcap-qvl` never looks at it; the TCB/QE signing chains are verified by
    /// `dcap-qvl` up to their root copy, which we pin here.
    pub(super) fn parse(
        embedded: Option<&[u8]>,
        c: &QuoteCollateralV3,
        root: &[u8],
    ) -> Result<Self, IntelError> {
        let pck = match (embedded, &c.pck_certificate_chain) {
            (Some(pem), _) => strict_chain("embedded PCK chain", pem, root)?,
            (None, Some(pem)) => strict_chain("pck_certificate_chain", pem.as_bytes(), root)?,
            (None, None) => return Err(IntelError::MissingPckChain),
        };
        let mut issuers: Vec<Vec<Certificate>> = Vec::with_capacity(3);
        let mut seen: Vec<&str> = Vec::with_capacity(3);
        for (name, pem) in [
            ("pck_crl_issuer_chain", &c.pck_crl_issuer_chain),
            ("tcb_info_issuer_chain", &c.tcb_info_issuer_chain),
            ("qe_identity_issuer_chain", &c.qe_identity_issuer_chain),
        ] {
            // The TCB-info and QE-identity signing chains are usually the same text.
            let same = seen.iter().position(|s| *s == pem.as_str());
            let parsed = match same.and_then(|i| issuers.get(i)) {
                Some(p) => p.clone(),
                None => strict_chain(name, pem.as_bytes(), root)?,
            };
            seen.push(pem.as_str());
            issuers.push(parsed);
        }
        if issuers.first().map(Vec::as_slice) != pck.get(1..) {
            return Err(IntelError::CertChain {
                detail: "pck_crl_issuer_chain is not the PCK certificate's issuer chain".into(),
            });
        }
        Ok(Chains { pck, issuers })
    }
}

fn rfc3339(v: Option<&serde_json::Value>) -> Option<u64> {
    crate::time::parse_rfc3339(v?.as_str()?)
}

/// The window in which every piece of collateral and every certificate is
/// valid: [max(issueDate, thisUpdate, notBefore), min(nextUpdate, notAfter)).
pub(super) fn window(c: &QuoteCollateralV3, chains: &Chains) -> Result<(u64, u64), IntelError> {
    let mut lo = 0u64;
    let mut hi = u64::MAX;
    for (name, json) in [("tcb_info", &c.tcb_info), ("qe_identity", &c.qe_identity)] {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| malformed(name, e))?;
        let issue = rfc3339(v.get("issueDate")).ok_or_else(|| malformed(name, "issueDate"))?;
        let next = rfc3339(v.get("nextUpdate")).ok_or_else(|| malformed(name, "nextUpdate"))?;
        lo = lo.max(issue);
        hi = hi.min(next);
    }
    for (name, crl) in [("root_ca_crl", &c.root_ca_crl), ("pck_crl", &c.pck_crl)] {
        let l = x509_cert::crl::CertificateList::from_der(crl).map_err(|e| malformed(name, e))?;
        lo = lo.max(l.tbs_cert_list.this_update.to_unix_duration().as_secs());
        if let Some(n) = l.tbs_cert_list.next_update {
            hi = hi.min(n.to_unix_duration().as_secs());
        }
    }
    for cert in chains.pck.iter().chain(chains.issuers.iter().flatten()) {
        let (nb, na) = crate::certs::validity(cert);
        lo = lo.max(nb);
        hi = hi.min(na);
    }
    Ok((lo, hi))
}
