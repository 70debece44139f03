//! Composable appraisal policies over verified evidence, e.g.
//! `All([Tdx { min_tcb: UpToDate, .. }, NvidiaGpu { min_gpus: 1, .. }])`.
//! Verification (signatures, chains, collateral, time) happens before; a
//! policy only judges what verified evidence says, and every rejection is a
//! named [`Rejection`] so callers can show and count exact reasons.

use crate::verdict::{GpuArch, GpuVerdict, Measurements, SnpTcb, TcbStatus, TeeKind, TeeVerdict};
use serde::{Deserialize, Serialize};

/// A policy. Serializable so operators can write it in config files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Policy {
    /// Every sub-policy must accept; all rejections are reported.
    All { of: Vec<Policy> },
    /// At least one sub-policy must accept.
    Any { of: Vec<Policy> },
    /// An Intel TDX quote with at least `min_tcb` (by [`TcbStatus::rank`]).
    Tdx {
        min_tcb: TcbStatus,
        #[serde(default)]
        allow_debug: bool,
        /// Accept only these MRTD values (hex), if non-empty.
        #[serde(default)]
        mr_td: Vec<String>,
        /// Reject if any of these advisories applies.
        #[serde(default)]
        reject_advisories: Vec<String>,
    },
    /// An Intel SGX quote with at least `min_tcb`.
    Sgx {
        min_tcb: TcbStatus,
        #[serde(default)]
        allow_debug: bool,
        /// Accept only these MRENCLAVE values (hex), if non-empty.
        #[serde(default)]
        mr_enclave: Vec<String>,
        #[serde(default)]
        reject_advisories: Vec<String>,
    },
    /// An AMD SEV-SNP report.
    Snp {
        #[serde(default)]
        allow_debug: bool,
        /// Highest acceptable VMPL (0 = most privileged; the guest kernel).
        max_vmpl: u32,
        /// Minimum REPORTED_TCB per component (None fields ignored).
        min_tcb: SnpTcb,
        /// Accept only these launch measurements (hex), if non-empty.
        #[serde(default)]
        measurement: Vec<String>,
    },
    /// At least `min_gpus` verified NVIDIA GPUs, optionally of one arch.
    /// Note: the SPDM evidence has no explicit "CC mode on" bit (NVIDIA's
    /// tools read CC mode through NVML, which is not attested); verified
    /// signed measurements from the GSP are what this policy requires.
    NvidiaGpu {
        min_gpus: usize,
        #[serde(default)]
        arch: Option<GpuArch>,
    },
}

/// A named reason a policy rejected evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    #[error("no {expected} evidence")]
    MissingTee { expected: TeeKind },
    #[error("evidence is {actual}, policy wants {expected}")]
    WrongTeeKind { expected: TeeKind, actual: TeeKind },
    #[error("TCB status {status:?} is below the minimum {min:?}")]
    TcbTooLow { status: TcbStatus, min: TcbStatus },
    #[error("advisory {id} is rejected by policy")]
    AdvisoryRejected { id: String },
    #[error("TEE debug mode is enabled")]
    DebugEnabled,
    #[error("VMPL {vmpl} exceeds the maximum {max}")]
    VmplTooHigh { vmpl: u32, max: u32 },
    #[error("SNP {component} SVN {have} is below the minimum {min}")]
    SnpTcbTooLow {
        component: String,
        have: u8,
        min: u8,
    },
    #[error("{field} is not in the allowed list")]
    MeasurementNotAllowed { field: String },
    #[error("{have} verified GPUs, policy needs {need}")]
    NotEnoughGpus { have: usize, need: usize },
    #[error("no alternative of an Any policy accepted")]
    NoAlternativeAccepted { each: Vec<Vec<Rejection>> },
}

/// What a policy judges: one optional CPU TEE verdict plus GPU verdicts.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub tee: Option<&'a TeeVerdict>,
    pub gpus: &'a [GpuVerdict],
}

impl Policy {
    /// Accept, or list every reason for rejection.
    pub fn evaluate(&self, ev: Evidence<'_>) -> Result<(), Vec<Rejection>> {
        let mut out = Vec::new();
        self.collect(ev, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    fn collect(&self, ev: Evidence<'_>, out: &mut Vec<Rejection>) {
        match self {
            Policy::All { of } => of.iter().for_each(|p| p.collect(ev, out)),
            Policy::Any { of } => {
                let mut each = Vec::new();
                for p in of {
                    match p.evaluate(ev) {
                        Ok(()) => return,
                        Err(r) => each.push(r),
                    }
                }
                out.push(Rejection::NoAlternativeAccepted { each });
            }
            Policy::Tdx {
                min_tcb,
                allow_debug,
                mr_td,
                reject_advisories,
            } => intel(
                ev,
                TeeKind::Tdx,
                *min_tcb,
                *allow_debug,
                reject_advisories,
                out,
                |m| match m {
                    Measurements::Tdx(t) => allowed(mr_td, &t.mr_td, "mr_td"),
                    _ => None,
                },
            ),
            Policy::Sgx {
                min_tcb,
                allow_debug,
                mr_enclave,
                reject_advisories,
            } => intel(
                ev,
                TeeKind::Sgx,
                *min_tcb,
                *allow_debug,
                reject_advisories,
                out,
                |m| match m {
                    Measurements::Sgx(s) => allowed(mr_enclave, &s.mr_enclave, "mr_enclave"),
                    _ => None,
                },
            ),
            Policy::Snp {
                allow_debug,
                max_vmpl,
                min_tcb,
                measurement,
            } => snp(ev, *allow_debug, *max_vmpl, min_tcb, measurement, out),
            Policy::NvidiaGpu { min_gpus, arch } => {
                let have = ev
                    .gpus
                    .iter()
                    .filter(|g| arch.is_none_or(|a| g.arch == a))
                    .count();
                if have < *min_gpus {
                    out.push(Rejection::NotEnoughGpus {
                        have,
                        need: *min_gpus,
                    });
                }
            }
        }
    }
}

fn allowed(list: &[String], value: &[u8], field: &str) -> Option<Rejection> {
    let hex = hex::encode(value);
    if list.is_empty() || list.iter().any(|v| v.eq_ignore_ascii_case(&hex)) {
        None
    } else {
        Some(Rejection::MeasurementNotAllowed {
            field: field.to_string(),
        })
    }
}

fn tee_of<'a>(
    ev: Evidence<'a>,
    expected: TeeKind,
    out: &mut Vec<Rejection>,
) -> Option<&'a TeeVerdict> {
    match ev.tee {
        None => {
            out.push(Rejection::MissingTee { expected });
            None
        }
        Some(t) if t.kind != expected => {
            out.push(Rejection::WrongTeeKind {
                expected,
                actual: t.kind,
            });
            None
        }
        Some(t) => Some(t),
    }
}

fn intel(
    ev: Evidence<'_>,
    kind: TeeKind,
    min: TcbStatus,
    allow_debug: bool,
    reject_advisories: &[String],
    out: &mut Vec<Rejection>,
    measurement_check: impl Fn(&Measurements) -> Option<Rejection>,
) {
    let Some(t) = tee_of(ev, kind, out) else {
        return;
    };
    if t.tcb_status.rank() > min.rank() || t.tcb_status.rank() == u8::MAX {
        out.push(Rejection::TcbTooLow {
            status: t.tcb_status,
            min,
        });
    }
    for id in &t.advisory_ids {
        if reject_advisories.iter().any(|r| r.eq_ignore_ascii_case(id)) {
            out.push(Rejection::AdvisoryRejected { id: id.clone() });
        }
    }
    if t.debug && !allow_debug {
        out.push(Rejection::DebugEnabled);
    }
    out.extend(measurement_check(&t.measurements));
}

fn snp(
    ev: Evidence<'_>,
    allow_debug: bool,
    max_vmpl: u32,
    min: &SnpTcb,
    measurement: &[String],
    out: &mut Vec<Rejection>,
) {
    let Some(t) = tee_of(ev, TeeKind::Snp, out) else {
        return;
    };
    let Measurements::Snp(m) = &t.measurements else {
        return;
    };
    if m.debug_allowed && !allow_debug {
        out.push(Rejection::DebugEnabled);
    }
    if m.vmpl > max_vmpl {
        out.push(Rejection::VmplTooHigh {
            vmpl: m.vmpl,
            max: max_vmpl,
        });
    }
    let r = &m.reported_tcb;
    let pairs = [
        ("bootloader", r.bootloader, min.bootloader),
        ("tee", r.tee, min.tee),
        ("snp", r.snp, min.snp),
        ("microcode", r.microcode, min.microcode),
        ("fmc", r.fmc.unwrap_or(0), min.fmc.unwrap_or(0)),
    ];
    for (component, have, min) in pairs {
        if have < min {
            out.push(Rejection::SnpTcbTooLow {
                component: component.to_string(),
                have,
                min,
            });
        }
    }
    out.extend(allowed(measurement, &m.measurement, "measurement"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::TdxMeasurements;

    fn tdx(status: TcbStatus, debug: bool) -> TeeVerdict {
        TeeVerdict {
            kind: TeeKind::Tdx,
            tcb_status: status,
            advisory_ids: vec!["INTEL-SA-00837".into()],
            report_data: [0; 64],
            debug,
            measurements: Measurements::Tdx(TdxMeasurements {
                mr_td: [1; 48],
                mr_seam: [0; 48],
                mr_signer_seam: [0; 48],
                mr_config_id: [0; 48],
                mr_owner: [0; 48],
                mr_owner_config: [0; 48],
                rtmr: Default::default(),
                tee_tcb_svn: [0; 16],
                td_attributes: [0; 8],
                xfam: [0; 8],
            }),
            not_after: 0,
            revocation_checked: true,
        }
    }

    fn tdx_policy(min: TcbStatus) -> Policy {
        Policy::Tdx {
            min_tcb: min,
            allow_debug: false,
            mr_td: vec![],
            reject_advisories: vec![],
        }
    }

    #[test]
    fn all_collects_every_reason() {
        let p = Policy::All {
            of: vec![
                tdx_policy(TcbStatus::UpToDate),
                Policy::NvidiaGpu {
                    min_gpus: 1,
                    arch: Some(GpuArch::Hopper),
                },
            ],
        };
        let t = tdx(TcbStatus::OutOfDate, true);
        let r = p
            .evaluate(Evidence {
                tee: Some(&t),
                gpus: &[],
            })
            .unwrap_err();
        assert_eq!(
            r,
            vec![
                Rejection::TcbTooLow {
                    status: TcbStatus::OutOfDate,
                    min: TcbStatus::UpToDate
                },
                Rejection::DebugEnabled,
                Rejection::NotEnoughGpus { have: 0, need: 1 },
            ]
        );
    }

    #[test]
    fn tcb_rank_and_any() {
        let t = tdx(TcbStatus::SWHardeningNeeded, false);
        let ev = Evidence {
            tee: Some(&t),
            gpus: &[],
        };
        assert!(tdx_policy(TcbStatus::SWHardeningNeeded)
            .evaluate(ev)
            .is_ok());
        assert!(tdx_policy(TcbStatus::UpToDate).evaluate(ev).is_err());
        let any = Policy::Any {
            of: vec![
                tdx_policy(TcbStatus::UpToDate),
                tdx_policy(TcbStatus::OutOfDate),
            ],
        };
        assert!(any.evaluate(ev).is_ok());
        let revoked = tdx(TcbStatus::Revoked, false);
        let r = tdx_policy(TcbStatus::Revoked).evaluate(Evidence {
            tee: Some(&revoked),
            gpus: &[],
        });
        assert!(r.is_err(), "revoked is never acceptable");
    }

    #[test]
    fn measurement_allow_list_and_advisories_and_missing_tee() {
        let t = tdx(TcbStatus::UpToDate, false);
        let ev = Evidence {
            tee: Some(&t),
            gpus: &[],
        };
        let p = Policy::Tdx {
            min_tcb: TcbStatus::UpToDate,
            allow_debug: false,
            mr_td: vec!["00".repeat(48)],
            reject_advisories: vec!["intel-sa-00837".into()],
        };
        let r = p.evaluate(ev).unwrap_err();
        assert!(r.contains(&Rejection::AdvisoryRejected {
            id: "INTEL-SA-00837".into()
        }));
        assert!(r.contains(&Rejection::MeasurementNotAllowed {
            field: "mr_td".into()
        }));
        let none = Evidence {
            tee: None,
            gpus: &[],
        };
        assert_eq!(
            tdx_policy(TcbStatus::UpToDate).evaluate(none).unwrap_err(),
            vec![Rejection::MissingTee {
                expected: TeeKind::Tdx
            }]
        );
        let sgx = Policy::Sgx {
            min_tcb: TcbStatus::UpToDate,
            allow_debug: false,
            mr_enclave: vec![],
            reject_advisories: vec![],
        };
        assert_eq!(
            sgx.evaluate(ev).unwrap_err(),
            vec![Rejection::WrongTeeKind {
                expected: TeeKind::Sgx,
                actual: TeeKind::Tdx
            }]
        );
    }

    #[test]
    fn policy_json_roundtrip() {
        let p = Policy::All {
            of: vec![
                tdx_policy(TcbStatus::UpToDate),
                Policy::NvidiaGpu {
                    min_gpus: 1,
                    arch: None,
                },
            ],
        };
        let s = serde_json::to_string(&p).unwrap();
        assert!(s.contains("\"type\":\"all\""), "{s}");
        assert_eq!(serde_json::from_str::<Policy>(&s).unwrap(), p);
    }
}
