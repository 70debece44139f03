//! Collecting hardware attestation evidence for the coordinator's nonce
//! (issue 5 §3): on a confidential VM, a TDX quote or SNP report through
//! Linux configfs-tsm whose report data binds this agent's key and the
//! nonce (`proofmesh_attest::report_data_for`); elsewhere nothing, so the
//! provider registers at trust level `none`.
//!
//! GPU evidence is not collected here: it comes from the NVIDIA driver
//! (NVML / nvtrust's SPDM request), which this agent does not link. A bundle
//! carries GPU evidence only when an operator's tooling adds it.

use std::path::PathBuf;

use proofmesh_attest::{report_data_for, Collateral, EvidenceBundle};
use proofmesh_receipt::PublicKey;

/// Where evidence comes from.
#[derive(Debug, Clone, Default)]
pub enum AttestSource {
    /// No TEE: register at trust level `none`.
    #[default]
    None,
    /// Linux configfs-tsm under `base` (normally
    /// `/sys/kernel/config/tsm/report`), with the collateral the operator
    /// fetched and cached (Intel PCS / AMD KDS; the coordinator needs it to
    /// verify offline).
    Tsm {
        /// The configfs-tsm report directory.
        base: PathBuf,
        /// Collateral to send with the evidence.
        collateral: Option<Collateral>,
    },
    /// TEST SEAM ONLY: a fixed bundle sent for every nonce. Real evidence
    /// cannot bind a fresh nonce this way, so a production coordinator
    /// rejects it; its own test seam (a pinned binding) is what accepts it.
    FixedForTesting(Box<EvidenceBundle>),
}

/// [`evidence_for`], as the protocol carries it.
pub fn wire_evidence_for(
    source: &AttestSource,
    key: &PublicKey,
    nonce_hex: &str,
) -> Result<Option<Box<proofmesh_wire::EvidenceJson>>, String> {
    let Some(b) = evidence_for(source, key, nonce_hex)? else {
        return Ok(None);
    };
    proofmesh_wire::EvidenceJson::encode(&b)
        .map(|j| Some(Box::new(j)))
        .map_err(|e| format!("encoding the evidence bundle: {e}"))
}

/// Evidence for `nonce_hex` (the coordinator's challenge or re-check nonce),
/// or None without a TEE.
pub fn evidence_for(
    source: &AttestSource,
    key: &PublicKey,
    nonce_hex: &str,
) -> Result<Option<EvidenceBundle>, String> {
    match source {
        AttestSource::None => Ok(None),
        AttestSource::FixedForTesting(b) => Ok(Some((**b).clone())),
        AttestSource::Tsm { base, collateral } => {
            let nonce: [u8; 32] = hex::decode(nonce_hex)
                .ok()
                .and_then(|n| n.try_into().ok())
                .ok_or("the coordinator's nonce is not 32 bytes of hex")?;
            let rd = report_data_for(&key.to_bytes(), &nonce);
            let report = proofmesh_attest::tsm::collect(base, &rd, None)
                .map_err(|e| format!("configfs-tsm: {e}"))?;
            let kind = report
                .kind()
                .ok_or_else(|| format!("unknown TSM provider {:?}", report.provider))?;
            let mut b = EvidenceBundle::none();
            b.kind = kind;
            b.evidence = report.outblob;
            b.collateral = collateral.clone();
            Ok(Some(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofmesh_receipt::Identity;

    #[test]
    fn none_sends_nothing_and_fixed_sends_its_bundle() {
        let k = Identity::from_seed([1; 32]);
        assert_eq!(
            evidence_for(&AttestSource::None, k.public(), "00").unwrap(),
            None
        );
        let b = EvidenceBundle::none();
        let fixed = AttestSource::FixedForTesting(Box::new(b.clone()));
        assert_eq!(evidence_for(&fixed, k.public(), "00").unwrap(), Some(b));
    }

    #[test]
    fn tsm_errors_name_the_problem() {
        let k = Identity::from_seed([1; 32]);
        let src = AttestSource::Tsm {
            base: "/nonexistent/proofmesh/tsm".into(),
            collateral: None,
        };
        let e = evidence_for(&src, k.public(), &hex::encode([9u8; 32])).unwrap_err();
        assert!(e.starts_with("configfs-tsm:"), "{e}");
        let e = evidence_for(&src, k.public(), "zz").unwrap_err();
        assert!(e.contains("nonce"), "{e}");
    }
}
