//! The wall clock: Unix time in milliseconds.
//!
//! [`SystemClock`] is the only caller of `std::time::SystemTime::now` in the
//! workspace. Code that needs "now" either takes it as a parameter (pure
//! cores) or holds an `Arc<dyn Clock>` ([`system`] in production, a
//! [`ManualClock`] in tests); [`now_ms`] is the shorthand for callers that
//! just want the real time once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Milliseconds since the Unix epoch; 0 if the system clock is set
    /// before 1970, saturating at `u64::MAX`.
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the workspace's one reader of the wall clock"
    )]
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to (tests, simulations). Cloning it
/// shares nothing: wrap it in an `Arc` to hand the same clock to several
/// owners.
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            ms: AtomicU64::new(start_ms),
        }
    }

    /// Sets the reading to `ms` (it may go backwards).
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms` (saturating); returns the new reading.
    pub fn advance(&self, ms: u64) -> u64 {
        let mut cur = self.ms.load(Ordering::SeqCst);
        loop {
            let next = cur.saturating_add(ms);
            match self
                .ms
                .compare_exchange_weak(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// The system clock as a shareable `Arc<dyn Clock>`.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The current Unix time in milliseconds, from the system clock.
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// The current Unix time in whole seconds, from the system clock.
pub fn now_s() -> u64 {
    SystemClock.now_s()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020_and_does_not_run_backwards_much() {
        let a = now_ms();
        assert!(a > 1_577_836_800_000, "{a}");
        let b = system().now_ms();
        assert!(b >= a, "{a} {b}");
        assert_eq!(now_s(), now_ms() / 1000);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        assert_eq!(c.now_s(), 1);
        assert_eq!(c.advance(500), 1_500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
        c.set(u64::MAX - 1);
        assert_eq!(c.advance(5), u64::MAX);
    }

    #[test]
    fn manual_clock_is_shareable_as_dyn_clock() {
        let c = Arc::new(ManualClock::new(7));
        let dynamic: Arc<dyn Clock> = c.clone();
        c.advance(3);
        assert_eq!(dynamic.now_ms(), 10);
    }

    #[test]
    fn manual_clock_advances_atomically_across_threads() {
        let c = Arc::new(ManualClock::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.advance(1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.now_ms(), 4000);
    }
}
