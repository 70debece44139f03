//! The evidence bundle a provider sends at registration (versioned JSON),
//! its verification into a [`VerifiedBundle`], the derived [`TrustLevel`],
//! the evidence digest and the earliest expiry — everything the coordinator
//! needs to admit a provider and re-check it on a schedule.
//!
//! Flow: `EvidenceBundle::from_json` → [`verify_bundle`] (signatures,
//! chains, collateral, time) → [`crate::binding::check_binding`] (key and
//! nonce) → [`crate::policy::Policy::evaluate`] → [`TrustLevel`]; [`admit`]
//! does all four.

use crate::binding::{self, BindingError};
use crate::certs::Revocation;
use crate::intel::{self, IntelError};
use crate::nvidia::{self, GpuEvidence, NvidiaError};
use crate::policy::{Evidence, Policy, Rejection};
use crate::snp::{self, SnpCollateral, SnpError};
use crate::verdict::{GpuVerdict, TeeKind, TeeVerdict};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Current bundle format version.
pub const BUNDLE_VERSION: u32 = 1;
/// Domain tag of the evidence digest.
pub const EVIDENCE_DIGEST_DOMAIN: &[u8] = b"proofmesh/attest/evidence/v1";

/// Which CPU evidence a bundle carries (`none` for providers without a TEE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    None,
    Tdx,
    Sgx,
    Snp,
}

impl EvidenceKind {
    fn tag(self) -> u8 {
        match self {
            EvidenceKind::None => 0,
            EvidenceKind::Tdx => 1,
            EvidenceKind::Sgx => 2,
            EvidenceKind::Snp => 3,
        }
    }
}

/// Collateral for the CPU evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Collateral {
    /// Intel PCS/PCCS collateral in `dcap-qvl`'s JSON layout.
    Intel(dcap_qvl::QuoteCollateralV3),
    /// AMD VCEK (DER, base64) and optionally the KDS ASK+ARK PEM chain.
    Snp {
        #[serde(with = "crate::b64")]
        vcek: Vec<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ask_ark_pem: Option<String>,
    },
}

/// What a provider sends at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceBundle {
    /// Format version, [`BUNDLE_VERSION`].
    pub version: u32,
    pub kind: EvidenceKind,
    /// The raw quote (Intel) or report (AMD), base64; empty for `none`.
    #[serde(default, with = "crate::b64")]
    pub evidence: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<Collateral>,
    /// GPU evidence, one per GPU, each carrying the nonce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuEvidence>,
}

/// Why a bundle failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle JSON is malformed: {detail}")]
    Json { detail: String },
    #[error("unsupported bundle version {version} (want {BUNDLE_VERSION})")]
    UnsupportedVersion { version: u32 },
    #[error("{kind:?} evidence needs matching collateral")]
    MissingCollateral { kind: EvidenceKind },
    #[error("quote TEE type does not match bundle kind {kind:?}")]
    KindMismatch { kind: EvidenceKind },
    #[error("Intel quote: {0}")]
    Intel(#[from] IntelError),
    #[error("SNP report: {0}")]
    Snp(#[from] SnpError),
    #[error("GPU {index}: {error}")]
    Gpu { index: usize, error: NvidiaError },
}

impl EvidenceBundle {
    /// A bundle for a provider without a TEE (trust level `none`).
    pub fn none() -> Self {
        EvidenceBundle {
            version: BUNDLE_VERSION,
            kind: EvidenceKind::None,
            evidence: Vec::new(),
            collateral: None,
            gpus: Vec::new(),
        }
    }

    /// Parse and check the version.
    pub fn from_json(json: &[u8]) -> Result<Self, BundleError> {
        let b: EvidenceBundle = serde_json::from_slice(json).map_err(|e| BundleError::Json {
            detail: e.to_string(),
        })?;
        if b.version != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion { version: b.version });
        }
        Ok(b)
    }

    /// SHA-256 over the canonical evidence bytes: domain tag, 0x00, kind tag,
    /// then u64-BE-length-prefixed CPU evidence, u64-BE GPU count and each
    /// GPU's length-prefixed evidence. Collateral and certificate chains are
    /// excluded: they are public and refreshed without the evidence changing.
    pub fn evidence_digest(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(EVIDENCE_DIGEST_DOMAIN);
        h.update([0u8, self.kind.tag()]);
        h.update((self.evidence.len() as u64).to_be_bytes());
        h.update(&self.evidence);
        h.update((self.gpus.len() as u64).to_be_bytes());
        for g in &self.gpus {
            h.update((g.evidence.len() as u64).to_be_bytes());
            h.update(&g.evidence);
        }
        h.finalize().into()
    }
}

/// Trust anchors, time and revocation data for verification.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Unix seconds at which certificates and collateral must be valid.
    pub now: u64,
    /// Intel SGX root CA, DER.
    pub intel_root_der: &'a [u8],
    /// NVIDIA device identity root, PEM.
    pub nvidia_root_pem: &'a [u8],
    /// Cached revocation data for AMD and NVIDIA chains (Intel CRLs travel in
    /// the collateral).
    pub revocation: &'a Revocation,
}

impl<'a> VerifyOptions<'a> {
    /// Production anchors (Intel SGX Root CA, NVIDIA Device Identity CA;
    /// AMD ARKs are always the built-in ones).
    pub fn production(now: u64, revocation: &'a Revocation) -> Self {
        VerifyOptions {
            now,
            intel_root_der: intel::INTEL_ROOT_CA_DER,
            nvidia_root_pem: nvidia::NVIDIA_DEVICE_ROOT_PEM,
            revocation,
        }
    }
}

/// A bundle whose every piece of evidence verified (not yet bound or judged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedBundle {
    pub tee: Option<TeeVerdict>,
    pub gpus: Vec<GpuVerdict>,
    #[serde(with = "hex::serde")]
    pub evidence_digest: [u8; 32],
    /// Earliest expiry (unix s) over all collateral and certificates; the
    /// coordinator must re-verify (with fresh collateral) before then.
    pub not_after: Option<u64>,
}

/// Verify signatures, chains, collateral and validity of every piece.
pub fn verify_bundle(
    b: &EvidenceBundle,
    o: &VerifyOptions<'_>,
) -> Result<VerifiedBundle, BundleError> {
    if b.version != BUNDLE_VERSION {
        return Err(BundleError::UnsupportedVersion { version: b.version });
    }
    let tee = match (b.kind, &b.collateral) {
        (EvidenceKind::None, _) => None,
        (k @ (EvidenceKind::Tdx | EvidenceKind::Sgx), Some(Collateral::Intel(c))) => {
            let v = intel::verify_quote(&b.evidence, c, o.now, o.intel_root_der)?;
            let want = if k == EvidenceKind::Tdx {
                TeeKind::Tdx
            } else {
                TeeKind::Sgx
            };
            if v.kind != want {
                return Err(BundleError::KindMismatch { kind: k });
            }
            Some(v)
        }
        (EvidenceKind::Snp, Some(Collateral::Snp { vcek, ask_ark_pem })) => {
            let c = SnpCollateral {
                vcek: vcek.clone(),
                ask_ark_pem: ask_ark_pem.as_ref().map(|s| s.as_bytes().to_vec()),
            };
            Some(snp::verify_report(&b.evidence, &c, o.now, o.revocation)?)
        }
        (kind, _) => return Err(BundleError::MissingCollateral { kind }),
    };
    let gpus = b
        .gpus
        .iter()
        .enumerate()
        .map(|(index, g)| {
            nvidia::verify_gpu(g, o.nvidia_root_pem, o.now, o.revocation)
                .map_err(|error| BundleError::Gpu { index, error })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let not_after = tee
        .iter()
        .map(|t| t.not_after)
        .chain(gpus.iter().map(|g| g.not_after))
        .min();
    Ok(VerifiedBundle {
        tee,
        gpus,
        evidence_digest: b.evidence_digest(),
        not_after,
    })
}

/// How much hardware backs a provider's key.
///
/// - `none`: no CPU TEE evidence (GPU evidence alone does not count: it
///   cannot show where the signing key lives).
/// - `tee`: verified CPU TEE (TDX, SGX or SNP) whose report data binds the
///   provider key and the issued nonce, accepted by the policy.
/// - `tee+gpu`: `tee`, plus at least one verified NVIDIA GPU whose signed
///   evidence carries the same nonce (every GPU in the bundle must).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TrustLevel {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "tee")]
    Tee,
    #[serde(rename = "tee+gpu")]
    TeeGpu,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::None => "none",
            TrustLevel::Tee => "tee",
            TrustLevel::TeeGpu => "tee+gpu",
        }
    }

    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(TrustLevel::None),
            "tee" => Some(TrustLevel::Tee),
            "tee+gpu" => Some(TrustLevel::TeeGpu),
            _ => None,
        }
    }
}

impl std::fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of admitting a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub trust_level: TrustLevel,
    #[serde(with = "hex::serde")]
    pub evidence_digest: [u8; 32],
    pub not_after: Option<u64>,
    pub verified: VerifiedBundle,
}

/// Why admission failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("evidence does not verify: {0}")]
    Verify(#[from] BundleError),
    #[error("evidence is not bound to this provider: {0}")]
    Binding(#[from] BindingError),
    #[error("policy rejected the evidence: {0:?}")]
    Policy(Vec<Rejection>),
}

/// Which binding the evidence must carry.
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// Production: report data = [`binding::report_data_for`]`(pubkey, nonce)`,
    /// every GPU nonce = the issued nonce. `known_keys` (other registered
    /// providers) lets a report made for another provider be named
    /// [`BindingError::WrongKey`].
    Provider {
        pubkey: &'a [u8; 32],
        nonce: &'a [u8; 32],
        known_keys: &'a [[u8; 32]],
    },
    /// TEST SEAM ONLY: real public samples carry someone else's report data
    /// and GPU nonce, which we cannot produce for our own key. Tests state
    /// the exact values instead; the same comparison code runs on the
    /// verified fields. Never construct this from network input.
    RawForTesting {
        report_data: [u8; 64],
        gpu_nonce: [u8; 32],
    },
}

impl Expected<'_> {
    fn check(&self, tee: &TeeVerdict, gpus: &[GpuVerdict]) -> Result<(), BindingError> {
        match *self {
            Expected::Provider {
                pubkey,
                nonce,
                known_keys,
            } => binding::check_binding(tee, gpus, pubkey, nonce, known_keys),
            Expected::RawForTesting {
                report_data,
                gpu_nonce,
            } => {
                if tee.report_data != report_data {
                    return Err(BindingError::WrongNonce);
                }
                binding::check_gpu_nonces(gpus, &gpu_nonce)
            }
        }
    }
}

/// Verify, bind and judge a bundle; derive the trust level. A `none` bundle
/// is admitted at [`TrustLevel::None`] without checks (the policy is not
/// consulted: callers that require attestation filter on the level).
pub fn admit(
    b: &EvidenceBundle,
    o: &VerifyOptions<'_>,
    policy: Option<&Policy>,
    provider_pubkey: &[u8; 32],
    nonce: &[u8; 32],
    known_keys: &[[u8; 32]],
) -> Result<Admission, AdmitError> {
    let expected = Expected::Provider {
        pubkey: provider_pubkey,
        nonce,
        known_keys,
    };
    admit_expecting(b, o, policy, &expected)
}

/// [`admit`] with an explicit [`Expected`] binding.
pub fn admit_expecting(
    b: &EvidenceBundle,
    o: &VerifyOptions<'_>,
    policy: Option<&Policy>,
    expected: &Expected<'_>,
) -> Result<Admission, AdmitError> {
    let verified = verify_bundle(b, o)?;
    let trust_level = match &verified.tee {
        None => TrustLevel::None,
        Some(tee) => {
            expected.check(tee, &verified.gpus)?;
            if let Some(p) = policy {
                p.evaluate(Evidence {
                    tee: Some(tee),
                    gpus: &verified.gpus,
                })
                .map_err(AdmitError::Policy)?;
            }
            if verified.gpus.is_empty() {
                TrustLevel::Tee
            } else {
                TrustLevel::TeeGpu
            }
        }
    };
    Ok(Admission {
        trust_level,
        evidence_digest: verified.evidence_digest,
        not_after: verified.not_after,
        verified,
    })
}
