//! Result types shared by every verifier: what a verified piece of evidence
//! says (measurements, TCB status, report data, validity window). Kept apart
//! from the verifiers so that policy, binding and bundle code depend only on
//! these plain data types, not on `dcap-qvl` or `sev`.

use serde::{Deserialize, Serialize};

/// Which CPU TEE produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeKind {
    /// Intel TDX (DCAP quote v4/v5, TEE type 0x81).
    Tdx,
    /// Intel SGX (DCAP quote v3, TEE type 0x00).
    Sgx,
    /// AMD SEV-SNP attestation report.
    Snp,
}

impl std::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TeeKind::Tdx => "tdx",
            TeeKind::Sgx => "sgx",
            TeeKind::Snp => "snp",
        })
    }
}

/// Intel TCB status (Intel "TCB Info" v3 `tcbStatus`, as reported by
/// `dcap-qvl`). For AMD, the status is always [`TcbStatus::NotApplicable`]:
/// AMD expresses TCB as component SVNs, which policies compare directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcbStatus {
    UpToDate,
    SWHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded,
    TDRelaunchAdvised,
    TDRelaunchAdvisedConfigurationNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    Revoked,
    NotApplicable,
}

impl TcbStatus {
    /// Badness rank used by `min_tcb` policies: a status is acceptable when its
    /// rank is at most the rank of the policy's minimum. `Revoked` and
    /// `NotApplicable` are never acceptable to an Intel policy.
    pub fn rank(self) -> u8 {
        match self {
            TcbStatus::UpToDate => 0,
            TcbStatus::SWHardeningNeeded => 1,
            TcbStatus::ConfigurationNeeded => 2,
            TcbStatus::ConfigurationAndSWHardeningNeeded => 3,
            TcbStatus::TDRelaunchAdvised => 4,
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => 5,
            TcbStatus::OutOfDate => 6,
            TcbStatus::OutOfDateConfigurationNeeded => 7,
            TcbStatus::Revoked | TcbStatus::NotApplicable => u8::MAX,
        }
    }

    /// Map `dcap-qvl`'s status.
    pub fn from_dcap(s: dcap_qvl::tcb_info::TcbStatus) -> Self {
        use dcap_qvl::tcb_info::TcbStatus as D;
        match s {
            D::UpToDate => TcbStatus::UpToDate,
            D::SWHardeningNeeded => TcbStatus::SWHardeningNeeded,
            D::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
            D::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSWHardeningNeeded,
            D::TDRelaunchAdvised => TcbStatus::TDRelaunchAdvised,
            D::TDRelaunchAdvisedConfigurationNeeded => {
                TcbStatus::TDRelaunchAdvisedConfigurationNeeded
            }
            D::OutOfDate => TcbStatus::OutOfDate,
            D::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
            D::Revoked => TcbStatus::Revoked,
        }
    }
}

/// Intel TDX TD report fields (Intel TDX DCAP Quoting Library API, quote
/// format v4 §A.3.2 "TD Report Body", v5 adds TEE_TCB_SVN_2/MRSERVICETD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxMeasurements {
    #[serde(with = "hex::serde")]
    pub mr_td: [u8; 48],
    #[serde(with = "hex::serde")]
    pub mr_seam: [u8; 48],
    #[serde(with = "hex::serde")]
    pub mr_signer_seam: [u8; 48],
    #[serde(with = "hex::serde")]
    pub mr_config_id: [u8; 48],
    #[serde(with = "hex::serde")]
    pub mr_owner: [u8; 48],
    #[serde(with = "hex::serde")]
    pub mr_owner_config: [u8; 48],
    /// RTMR0..RTMR3.
    pub rtmr: [String; 4],
    #[serde(with = "hex::serde")]
    pub tee_tcb_svn: [u8; 16],
    #[serde(with = "hex::serde")]
    pub td_attributes: [u8; 8],
    #[serde(with = "hex::serde")]
    pub xfam: [u8; 8],
}

/// Intel SGX enclave report fields (SGX quote v3, "ISV Enclave Report").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgxMeasurements {
    #[serde(with = "hex::serde")]
    pub mr_enclave: [u8; 32],
    #[serde(with = "hex::serde")]
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    #[serde(with = "hex::serde")]
    pub attributes: [u8; 16],
    #[serde(with = "hex::serde")]
    pub cpu_svn: [u8; 16],
}

/// AMD SEV-SNP TCB_VERSION (SEV-SNP ABI spec 56860, Table 3; Turin adds FMC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnpTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    pub fmc: Option<u8>,
}

/// AMD SEV-SNP attestation report fields (ABI spec 56860, Table 23
/// ATTESTATION_REPORT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpMeasurements {
    pub version: u32,
    #[serde(with = "hex::serde")]
    pub measurement: [u8; 48],
    #[serde(with = "hex::serde")]
    pub host_data: [u8; 32],
    /// Guest policy (Table 10 GUEST_POLICY), raw 64-bit value.
    pub policy: u64,
    pub debug_allowed: bool,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub reported_tcb: SnpTcb,
    pub current_tcb: SnpTcb,
    pub committed_tcb: SnpTcb,
    pub launch_tcb: SnpTcb,
    #[serde(with = "hex::serde")]
    pub id_key_digest: [u8; 48],
    #[serde(with = "hex::serde")]
    pub chip_id: [u8; 64],
    /// Processor generation chosen from the VCEK issuer ("Milan", "Genoa", "Turin").
    pub generation: String,
}

/// Measurements of a CPU TEE report, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Measurements {
    Tdx(TdxMeasurements),
    Sgx(SgxMeasurements),
    Snp(SnpMeasurements),
}

/// What a verified CPU TEE quote/report says. Produced only by the verifiers
/// after every signature, chain, collateral and time check passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeeVerdict {
    pub kind: TeeKind,
    pub tcb_status: TcbStatus,
    /// Intel security advisory ids (INTEL-SA-xxxxx) applying to the TCB level.
    pub advisory_ids: Vec<String>,
    /// The 64 bytes the TEE guest chose (our binding lives here).
    #[serde(with = "hex::serde")]
    pub report_data: [u8; 64],
    /// Whether the TEE runs in debug mode (a debug TEE is not confidential).
    pub debug: bool,
    pub measurements: Measurements,
    /// Earliest expiry (unix s) over all collateral and certificates used.
    pub not_after: u64,
    /// Whether revocation data (CRLs) was checked for every certificate.
    pub revocation_checked: bool,
}

/// GPU architecture, from the evidence envelope or the device certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GpuArch {
    Hopper,
    Blackwell,
    Unknown,
}

/// One DMTF measurement block of an SPDM MEASUREMENTS response
/// (DSP0274 1.1 §10.11.1, Table 45/46).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuMeasurement {
    pub index: u8,
    pub value_type: u8,
    #[serde(with = "hex::serde")]
    pub value: Vec<u8>,
}

/// What verified NVIDIA GPU evidence says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuVerdict {
    pub arch: GpuArch,
    /// The requester nonce the GPU signed over (GET_MEASUREMENTS bytes 4..36).
    #[serde(with = "hex::serde")]
    pub nonce: [u8; 32],
    pub measurements: Vec<GpuMeasurement>,
    /// Opaque-data driver version string, when present.
    pub driver_version: Option<String>,
    /// Opaque-data VBIOS version (hex, as NVIDIA prints it), when present.
    pub vbios_version: Option<String>,
    /// Leaf (attestation key) certificate subject, for display.
    pub device_subject: String,
    /// Earliest notAfter over the device certificate chain (unix s).
    pub not_after: u64,
    /// Whether caller-supplied revocation data covered the chain.
    pub revocation_checked: bool,
}
