//! Failover bookkeeping: a provider that errors or times out is put in
//! cooldown with exponential backoff (capped), and a job is retried on the
//! next-best provider it has not tried yet, up to an attempt limit. Pure:
//! the caller passes `now_ms`.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, PlacementError};
use crate::provider::ProviderId;
use crate::registry::Registry;
use crate::workload::Request;
use crate::Choice;

/// Why a provider failed a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// It reported an error or sent something invalid.
    Error,
    /// It did not answer in time.
    Timeout,
    /// Its connection dropped mid-job.
    Disconnected,
}

/// Cooldown after the n-th consecutive failure:
/// `min(base_ms × multiplier^(n-1), max_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownPolicy {
    /// First cooldown, ms.
    pub base_ms: u64,
    /// Growth per consecutive failure.
    pub multiplier: u32,
    /// Longest cooldown, ms.
    pub max_ms: u64,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        CooldownPolicy {
            base_ms: 5_000,
            multiplier: 2,
            max_ms: 300_000,
        }
    }
}

impl CooldownPolicy {
    /// Cooldown length after `streak` consecutive failures (0 → none).
    pub fn duration_ms(&self, streak: u32) -> u64 {
        if streak == 0 {
            return 0;
        }
        let mut d = self.base_ms;
        for _ in 1..streak {
            d = d.saturating_mul(u64::from(self.multiplier));
            if d >= self.max_ms {
                break;
            }
        }
        d.min(self.max_ms)
    }

    /// Checks the policy is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: u64, min: f64, max: f64| ConfigError::OutOfRange {
            field,
            value: value as f64,
            min,
            max,
        };
        if self.base_ms == 0 || self.base_ms > self.max_ms {
            return Err(bad(
                "cooldown.base_ms",
                self.base_ms,
                1.0,
                self.max_ms as f64,
            ));
        }
        if !(1..=100).contains(&self.multiplier) {
            return Err(bad(
                "cooldown.multiplier",
                u64::from(self.multiplier),
                1.0,
                100.0,
            ));
        }
        Ok(())
    }
}

/// One provider's failure state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownState {
    /// Consecutive failures.
    pub streak: u32,
    /// Not schedulable before this time, unix ms.
    pub until_ms: u64,
    /// The last failure, if any.
    pub last_failure: Option<FailureKind>,
}

impl CooldownState {
    /// Records a failure at `now_ms`; returns the end of the cooldown.
    pub fn fail(&mut self, kind: FailureKind, now_ms: u64, policy: &CooldownPolicy) -> u64 {
        self.streak = self.streak.saturating_add(1);
        self.until_ms = now_ms.saturating_add(policy.duration_ms(self.streak));
        self.last_failure = Some(kind);
        self.until_ms
    }

    /// Records a success: the streak resets (a running cooldown stays).
    pub fn succeed(&mut self) {
        self.streak = 0;
    }

    /// Whether the provider is cooling down at `now_ms`.
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}

/// The attempts of one job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    /// Providers tried, in order.
    pub tried: Vec<ProviderId>,
    /// Attempt limit.
    pub max_attempts: u32,
}

impl Attempts {
    /// No attempts yet.
    pub fn new(max_attempts: u32) -> Attempts {
        Attempts {
            tried: Vec::new(),
            max_attempts,
        }
    }

    /// Records that `id` was tried.
    pub fn record(&mut self, id: ProviderId) {
        self.tried.push(id);
    }

    /// Whether the limit is reached.
    pub fn exhausted(&self) -> bool {
        self.tried.len() as u64 >= u64::from(self.max_attempts)
    }
}

/// The provider for the next attempt: a fresh placement that excludes every
/// provider already tried (and, through the registry, those in cooldown).
/// Errors with [`PlacementError::AttemptsExhausted`] at the limit.
pub fn next_candidate(
    registry: &Registry,
    request: &Request,
    attempts: &Attempts,
) -> Result<Choice, PlacementError> {
    if attempts.exhausted() {
        return Err(PlacementError::AttemptsExhausted {
            attempts: attempts.tried.len() as u32,
            max: attempts.max_attempts,
        });
    }
    let mut req = request.clone();
    for t in &attempts.tried {
        if !req.exclude.contains(t) {
            req.exclude.push(t.clone());
        }
    }
    registry.place(&req).map(|p| p.chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let p = CooldownPolicy::default();
        assert_eq!(p.duration_ms(0), 0);
        assert_eq!(p.duration_ms(1), 5_000);
        assert_eq!(p.duration_ms(2), 10_000);
        assert_eq!(p.duration_ms(4), 40_000);
        assert_eq!(p.duration_ms(7), 300_000);
        assert_eq!(p.duration_ms(u32::MAX), 300_000);
        let mut s = CooldownState::default();
        assert_eq!(s.fail(FailureKind::Timeout, 1_000, &p), 6_000);
        assert!(s.active(5_999) && !s.active(6_000));
        assert_eq!(s.fail(FailureKind::Error, 7_000, &p), 17_000);
        s.succeed();
        assert_eq!(s.fail(FailureKind::Error, 20_000, &p), 25_000);
    }

    #[test]
    fn attempts_limit() {
        let mut a = Attempts::new(2);
        assert!(!a.exhausted());
        a.record("x".into());
        a.record("y".into());
        assert!(a.exhausted());
        let bad = CooldownPolicy {
            base_ms: 0,
            ..CooldownPolicy::default()
        };
        assert!(bad.validate().is_err());
    }
}
