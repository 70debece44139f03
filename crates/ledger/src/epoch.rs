//! Accounting periods as explicit half-open intervals of unix seconds.
//!
//! Why: the ledger never reads a clock. Distributions, metrics statements and
//! settlement batches are all "for an epoch", and the caller says which one,
//! so the same inputs always give the same output on any machine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds in the default (daily) epoch.
pub const DAY_S: u64 = 86_400;

/// An epoch is empty or inverted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("epoch start {start_s} must be before end {end_s}")]
pub struct EpochError {
    /// Start.
    pub start_s: u64,
    /// End.
    pub end_s: u64,
}

/// `[start_s, end_s)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawEpoch", into = "RawEpoch")]
pub struct Epoch {
    start_s: u64,
    end_s: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEpoch {
    start_s: u64,
    end_s: u64,
}

impl TryFrom<RawEpoch> for Epoch {
    type Error = EpochError;
    fn try_from(r: RawEpoch) -> Result<Self, Self::Error> {
        Epoch::new(r.start_s, r.end_s)
    }
}

impl From<Epoch> for RawEpoch {
    fn from(e: Epoch) -> RawEpoch {
        RawEpoch {
            start_s: e.start_s,
            end_s: e.end_s,
        }
    }
}

impl Epoch {
    /// `[start_s, end_s)`; requires `start_s < end_s` and that both fit in
    /// milliseconds as u64.
    pub fn new(start_s: u64, end_s: u64) -> Result<Epoch, EpochError> {
        if start_s >= end_s || end_s.checked_mul(1000).is_none() {
            return Err(EpochError { start_s, end_s });
        }
        Ok(Epoch { start_s, end_s })
    }

    /// The UTC day `day` days after 1970-01-01.
    pub fn daily(day: u64) -> Result<Epoch, EpochError> {
        let start = day.saturating_mul(DAY_S);
        Epoch::new(start, start.saturating_add(DAY_S))
    }

    /// The UTC day containing `unix_s`.
    pub fn day_of(unix_s: u64) -> Result<Epoch, EpochError> {
        Epoch::daily(unix_s / DAY_S)
    }

    /// Start, unix seconds (inclusive).
    pub fn start_s(&self) -> u64 {
        self.start_s
    }

    /// End, unix seconds (exclusive).
    pub fn end_s(&self) -> u64 {
        self.end_s
    }

    /// Start in ms.
    pub fn start_ms(&self) -> u64 {
        self.start_s * 1000
    }

    /// End in ms.
    pub fn end_ms(&self) -> u64 {
        self.end_s * 1000
    }

    /// Length in ms.
    pub fn len_ms(&self) -> u64 {
        self.end_ms() - self.start_ms()
    }

    /// Whether a unix-ms instant falls inside.
    pub fn contains_ms(&self, ms: u64) -> bool {
        self.start_ms() <= ms && ms < self.end_ms()
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start_s, self.end_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_half_open_and_validated() {
        let e = Epoch::daily(2).unwrap();
        assert_eq!((e.start_s(), e.end_s()), (2 * DAY_S, 3 * DAY_S));
        assert!(e.contains_ms(2 * DAY_S * 1000));
        assert!(!e.contains_ms(3 * DAY_S * 1000));
        assert_eq!(e.len_ms(), DAY_S * 1000);
        assert!(Epoch::new(5, 5).is_err());
        assert!(Epoch::new(u64::MAX - 1, u64::MAX).is_err());
        assert_eq!(Epoch::day_of(2 * DAY_S + 77).unwrap(), e);
        assert!(Epoch::daily(u64::MAX / DAY_S).is_err());
        assert!(Epoch::day_of(u64::MAX).is_err());
        assert!(serde_json::from_str::<Epoch>(r#"{"start_s":9,"end_s":3}"#).is_err());
    }
}
