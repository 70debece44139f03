//! Named filter rejections: why a provider could not take a request. The
//! fast path counts the first rejection per provider ([`RejectionCounts`],
//! for logs and the "no feasible provider" error); the explain path records
//! every rejection with its figures ([`Rejection`]).

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::provider::{AttestationLevel, Interconnect};

/// Which price exceeded a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    /// Per 1M input tokens.
    InputPerMtok,
    /// Per 1M output tokens.
    OutputPerMtok,
    /// Per hour.
    PerHour,
    /// Estimated cost of the job.
    Job,
}

/// One failed filter, with the figures that failed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Rejection {
    /// Already tried for this job.
    AlreadyTried,
    /// Excluded from scheduling.
    Banned,
    /// Cooling down after failures.
    Cooldown {
        /// End of the cooldown, unix ms.
        until_ms: u64,
    },
    /// Does not offer the model.
    ModelNotOffered,
    /// The model is not loaded and this class does not allow cold loads.
    ColdLoadNotAllowed,
    /// Not enough VRAM in one provider.
    InsufficientVram {
        /// Needed, MiB.
        need_mib: u64,
        /// Usable in one provider, MiB.
        have_mib: u64,
    },
    /// The model needs several GPUs but they are linked by PCIe only.
    NeedsFastInterconnect {
        /// GPUs needed.
        gpus: u32,
        /// The provider's interconnect.
        interconnect: Interconnect,
    },
    /// Attestation below the requirement.
    AttestationTooLow {
        /// Required.
        need: AttestationLevel,
        /// Effective (attested) level.
        have: AttestationLevel,
    },
    /// Reputation below the requirement.
    ReputationTooLow {
        /// Required, bp.
        need_bp: u16,
        /// Actual, bp.
        have_bp: u16,
    },
    /// Uptime below the requirement.
    UptimeTooLow {
        /// Required, bp.
        need_bp: u16,
        /// Actual, bp.
        have_bp: u16,
    },
    /// A price above the request's cap.
    PriceAboveCap {
        /// Which price.
        what: PriceKind,
        /// The price, micro-USD.
        price_micros: u64,
        /// The cap, micro-USD.
        cap_micros: u64,
    },
    /// No free slot or queue room.
    NoCapacity {
        /// Jobs running.
        active: u32,
        /// Jobs queued.
        queued: u32,
        /// Jobs it accepts in all.
        limit: u32,
    },
    /// Estimated TTFT above the interactive SLO.
    SloInfeasible {
        /// Estimated TTFT, ms.
        ttft_ms: f64,
        /// SLO, ms.
        slo_ms: u32,
    },
    /// Estimated completion after the batch deadline.
    DeadlineInfeasible {
        /// Estimated completion, ms from now.
        completion_ms: f64,
        /// Deadline, ms from now.
        deadline_ms: u64,
    },
}

/// The name of a [`Rejection`] without its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// See [`Rejection::AlreadyTried`].
    AlreadyTried,
    /// See [`Rejection::Banned`].
    Banned,
    /// See [`Rejection::Cooldown`].
    Cooldown,
    /// See [`Rejection::ModelNotOffered`].
    ModelNotOffered,
    /// See [`Rejection::ColdLoadNotAllowed`].
    ColdLoadNotAllowed,
    /// See [`Rejection::InsufficientVram`].
    InsufficientVram,
    /// See [`Rejection::NeedsFastInterconnect`].
    NeedsFastInterconnect,
    /// See [`Rejection::AttestationTooLow`].
    AttestationTooLow,
    /// See [`Rejection::ReputationTooLow`].
    ReputationTooLow,
    /// See [`Rejection::UptimeTooLow`].
    UptimeTooLow,
    /// See [`Rejection::PriceAboveCap`].
    PriceAboveCap,
    /// See [`Rejection::NoCapacity`].
    NoCapacity,
    /// See [`Rejection::SloInfeasible`].
    SloInfeasible,
    /// See [`Rejection::DeadlineInfeasible`].
    DeadlineInfeasible,
}

impl RejectionKind {
    /// Every kind, in counter order.
    pub const ALL: [RejectionKind; 14] = [
        RejectionKind::AlreadyTried,
        RejectionKind::Banned,
        RejectionKind::Cooldown,
        RejectionKind::ModelNotOffered,
        RejectionKind::ColdLoadNotAllowed,
        RejectionKind::InsufficientVram,
        RejectionKind::NeedsFastInterconnect,
        RejectionKind::AttestationTooLow,
        RejectionKind::ReputationTooLow,
        RejectionKind::UptimeTooLow,
        RejectionKind::PriceAboveCap,
        RejectionKind::NoCapacity,
        RejectionKind::SloInfeasible,
        RejectionKind::DeadlineInfeasible,
    ];

    /// snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            RejectionKind::AlreadyTried => "already_tried",
            RejectionKind::Banned => "banned",
            RejectionKind::Cooldown => "cooldown",
            RejectionKind::ModelNotOffered => "model_not_offered",
            RejectionKind::ColdLoadNotAllowed => "cold_load_not_allowed",
            RejectionKind::InsufficientVram => "insufficient_vram",
            RejectionKind::NeedsFastInterconnect => "needs_fast_interconnect",
            RejectionKind::AttestationTooLow => "attestation_too_low",
            RejectionKind::ReputationTooLow => "reputation_too_low",
            RejectionKind::UptimeTooLow => "uptime_too_low",
            RejectionKind::PriceAboveCap => "price_above_cap",
            RejectionKind::NoCapacity => "no_capacity",
            RejectionKind::SloInfeasible => "slo_infeasible",
            RejectionKind::DeadlineInfeasible => "deadline_infeasible",
        }
    }
}

impl RejectionKind {
    /// What the rejected providers lacked, in words (for error messages).
    pub fn describe(self) -> &'static str {
        match self {
            RejectionKind::AlreadyTried => "already failed this job",
            RejectionKind::Banned => "excluded after failed audits",
            RejectionKind::Cooldown => "cooling down after failed jobs",
            RejectionKind::ModelNotOffered => "do not serve the model",
            RejectionKind::ColdLoadNotAllowed => "would have to load the model cold",
            RejectionKind::InsufficientVram => "lack the memory for the model",
            RejectionKind::NeedsFastInterconnect => "lack a fast interconnect for the model",
            RejectionKind::AttestationTooLow => "lack the required attestation",
            RejectionKind::ReputationTooLow => "lack the required reputation",
            RejectionKind::UptimeTooLow => "lack the required uptime",
            RejectionKind::PriceAboveCap => "charge more than the price cap",
            RejectionKind::NoCapacity => "are at capacity",
            RejectionKind::SloInfeasible => {
                "cannot start it within the time-to-first-token objective"
            }
            RejectionKind::DeadlineInfeasible => "cannot finish it before the deadline",
        }
    }

    /// Whether the rejection can lift by itself while a job waits: load
    /// falls, cooldowns end, estimates improve. The others need a
    /// different request or different providers.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            RejectionKind::Cooldown
                | RejectionKind::NoCapacity
                | RejectionKind::SloInfeasible
                | RejectionKind::DeadlineInfeasible
        )
    }
}

impl Rejection {
    /// Its kind.
    pub fn kind(&self) -> RejectionKind {
        match self {
            Rejection::AlreadyTried => RejectionKind::AlreadyTried,
            Rejection::Banned => RejectionKind::Banned,
            Rejection::Cooldown { .. } => RejectionKind::Cooldown,
            Rejection::ModelNotOffered => RejectionKind::ModelNotOffered,
            Rejection::ColdLoadNotAllowed => RejectionKind::ColdLoadNotAllowed,
            Rejection::InsufficientVram { .. } => RejectionKind::InsufficientVram,
            Rejection::NeedsFastInterconnect { .. } => RejectionKind::NeedsFastInterconnect,
            Rejection::AttestationTooLow { .. } => RejectionKind::AttestationTooLow,
            Rejection::ReputationTooLow { .. } => RejectionKind::ReputationTooLow,
            Rejection::UptimeTooLow { .. } => RejectionKind::UptimeTooLow,
            Rejection::PriceAboveCap { .. } => RejectionKind::PriceAboveCap,
            Rejection::NoCapacity { .. } => RejectionKind::NoCapacity,
            Rejection::SloInfeasible { .. } => RejectionKind::SloInfeasible,
            Rejection::DeadlineInfeasible { .. } => RejectionKind::DeadlineInfeasible,
        }
    }
}

/// How many providers each filter rejected first. Serialises as a map from
/// kind name to count (non-zero only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectionCounts([u32; 14]);

impl RejectionCounts {
    /// Counts one rejection.
    pub fn add(&mut self, kind: RejectionKind) {
        let i = kind as usize;
        self.0[i] = self.0[i].saturating_add(1);
    }

    /// Counts `n` rejections of one kind.
    pub fn add_n(&mut self, kind: RejectionKind, n: u32) {
        let i = kind as usize;
        self.0[i] = self.0[i].saturating_add(n);
    }

    /// The count of one kind.
    pub fn get(&self, kind: RejectionKind) -> u32 {
        self.0[kind as usize]
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&c| u64::from(c)).sum()
    }

    /// Whether some provider was rejected only for a reason that can lift
    /// while the job waits ([`RejectionKind::is_transient`]).
    pub fn any_transient(&self) -> bool {
        self.nonzero().any(|(k, _)| k.is_transient())
    }

    /// The counts in words, e.g. "2 providers are at capacity; 1 provider
    /// cannot start it within the time-to-first-token objective".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .nonzero()
            .map(|(k, c)| {
                let who = if c == 1 { "provider" } else { "providers" };
                format!("{c} {who} {}", k.describe())
            })
            .collect();
        if parts.is_empty() {
            "no provider serves the model".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// Kinds with a non-zero count, in counter order.
    pub fn nonzero(&self) -> impl Iterator<Item = (RejectionKind, u32)> + '_ {
        RejectionKind::ALL
            .iter()
            .map(|&k| (k, self.get(k)))
            .filter(|&(_, c)| c > 0)
    }
}

impl fmt::Display for RejectionCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, c) in self.nonzero() {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{}={c}", k.name())?;
            first = false;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl Serialize for RejectionCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, c) in self.nonzero() {
            m.serialize_entry(k.name(), &c)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_in_counter_order_and_count() {
        for (i, k) in RejectionKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        let mut c = RejectionCounts::default();
        assert_eq!(c.to_string(), "none");
        c.add(RejectionKind::Cooldown);
        c.add(RejectionKind::Cooldown);
        c.add(
            Rejection::SloInfeasible {
                ttft_ms: 1.0,
                slo_ms: 1,
            }
            .kind(),
        );
        assert_eq!(c.total(), 3);
        assert_eq!(c.to_string(), "cooldown=2, slo_infeasible=1");
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"cooldown":2,"slo_infeasible":1}"#
        );
    }
}
