//! Live uptime per provider: how much of the current epoch it was up, from
//! the connection and heartbeat events the coordinator sees.
//!
//! Why: placement filters on uptime (the fine-tune class needs 98%), so the
//! figure must exist for every connected provider, survive reconnects, and be
//! cheap enough to refresh on every heartbeat. The metrics statements compute
//! uptime per epoch from the *logged* heartbeats after the fact; this is the
//! same rule kept live, in O(1) memory per provider, with no clock reads (the
//! caller passes every timestamp, like the rest of the crate).
//!
//! # Definition
//!
//! Epochs are the half-open windows `[k·E, (k+1)·E)` of unix ms, `E` the
//! epoch length, as in the statements (`proofmesh-ledger`'s `Epoch`).
//!
//! - **Coverage** (the statements' rule): a heartbeat at `t` proves the
//!   provider up over `[t, t + grace)`; a connection counts as a heartbeat.
//!   Unlike the after-the-fact statement, a live tracker also sees the
//!   disconnect: it ends coverage at once (the grace after the last
//!   heartbeat is not credited to a provider known to be gone), so the live
//!   figure is never above the one a statement would give for the same
//!   heartbeats.
//! - **Observed time** of an epoch runs from the later of its start and the
//!   moment the provider was first seen, to the earlier of its end and `now`:
//!   the first partial epoch is pro-rated from first sight and the current
//!   one up to `now`. Time disconnected after first sight is observed and not
//!   covered, i.e. down.
//! - **Epoch uptime** is covered ÷ observed, in basis points, rounded down.
//!
//! # The figure placement uses
//!
//! [`Uptime::uptime_bp`] blends the current epoch with the one before it,
//! weighting the previous epoch by the share of an epoch that the current
//! one has not yet run: at `now = k·E + e`,
//!
//! ```text
//!            cov_cur · E + cov_prev · (E − e)
//! uptime = ─────────────────────────────────────
//!            obs_cur · E + obs_prev · (E − e)
//! ```
//!
//! That approximates "uptime over the last epoch length" with two epochs of
//! state, so a provider is judged by a full epoch's history even minutes
//! after a boundary (a one-minute outage then does not read as 0%), and the
//! previous epoch fades out linearly as the current one fills. At the end of
//! an epoch the figure is that epoch's own uptime. When nothing has been
//! observed yet (`now` is the first sight), the figure is 100% if the
//! provider is covered at `now` and 0% otherwise.
//!
//! Consequences, checked by the property tests (`tests/uptime.rs`): a
//! provider connected since first sight whose heartbeats are at most `grace`
//! apart scores 10,000 bp at every `now` (≥ 9,990 as the issue asks, for any
//! epoch length), including the instant it first connects; a provider down
//! for a fraction `f` of an epoch it was otherwise up for scores
//! `(1 − f)` at the epoch's end, within `(grace + heartbeat interval) ÷ E`
//! when the outage is silence rather than a disconnect.
//!
//! Bad input never panics: a timestamp earlier than one already seen counts
//! as that later time (clocks may step back), gaps of any length are
//! crossed in O(1) (the epochs skipped are down unless a grace covers them),
//! and all arithmetic saturates.

/// Basis points in 100%.
pub const FULL_BP: u16 = 10_000;

/// Longest epoch a tracker accepts (366 days), so every product in the
/// blend fits a `u128` with room to spare.
pub const MAX_EPOCH_MS: u64 = 366 * 86_400_000;

/// A tracker configuration that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UptimeError {
    /// The epoch length is zero or longer than [`MAX_EPOCH_MS`].
    #[error("uptime epoch must be 1..={max} ms, got {got}")]
    Epoch {
        /// What was asked for.
        got: u64,
        /// The longest accepted.
        max: u64,
    },
    /// A heartbeat must prove the provider up for some time.
    #[error("heartbeat grace must be positive")]
    Grace,
}

/// Epoch length and heartbeat grace, both in ms; validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptimeConfig {
    epoch_ms: u64,
    grace_ms: u64,
}

impl UptimeConfig {
    /// Epochs of `epoch_ms` (1..=[`MAX_EPOCH_MS`]); each heartbeat covers
    /// `grace_ms` (> 0) from its arrival.
    pub fn new(epoch_ms: u64, grace_ms: u64) -> Result<UptimeConfig, UptimeError> {
        if epoch_ms == 0 || epoch_ms > MAX_EPOCH_MS {
            return Err(UptimeError::Epoch {
                got: epoch_ms,
                max: MAX_EPOCH_MS,
            });
        }
        if grace_ms == 0 {
            return Err(UptimeError::Grace);
        }
        Ok(UptimeConfig { epoch_ms, grace_ms })
    }

    /// The epoch length, ms.
    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// How long one heartbeat proves the provider up, ms.
    pub fn grace_ms(&self) -> u64 {
        self.grace_ms
    }
}

/// One epoch's figures so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochUptime {
    /// Which epoch: it spans `[epoch · E, (epoch + 1) · E)` unix ms.
    pub epoch: u64,
    /// Time covered by heartbeats while connected, ms.
    pub covered_ms: u64,
    /// Time observed (since first sight, up to now), ms.
    pub observed_ms: u64,
}

impl EpochUptime {
    fn empty(epoch: u64) -> EpochUptime {
        EpochUptime {
            epoch,
            covered_ms: 0,
            observed_ms: 0,
        }
    }

    /// Covered ÷ observed in basis points (rounded down); `None` before
    /// anything was observed.
    pub fn bp(&self) -> Option<u16> {
        ratio_bp(u128::from(self.covered_ms), u128::from(self.observed_ms))
    }
}

fn ratio_bp(num: u128, den: u128) -> Option<u16> {
    if den == 0 {
        return None;
    }
    let bp = (num.saturating_mul(u128::from(FULL_BP)) / den).min(u128::from(FULL_BP));
    Some(u16::try_from(bp).unwrap_or(FULL_BP))
}

/// One provider's uptime state: two epochs of figures and where coverage
/// ends, a fixed ~100 bytes whatever the history (module docs for the
/// definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uptime {
    cfg: UptimeConfig,
    /// Everything before this instant is accounted into `cur`/`prev`; the
    /// latest time any event or query has carried the tracker to.
    at_ms: u64,
    /// `[at_ms, cover_end_ms)` is covered (empty when `cover_end_ms ≤ at_ms`).
    cover_end_ms: u64,
    /// The epoch containing `at_ms`.
    cur: EpochUptime,
    /// The epoch just before `cur`, if any of it was observed.
    prev: Option<EpochUptime>,
}

impl Uptime {
    /// A provider first seen at `first_seen_ms`, with nothing covered yet
    /// (call [`Uptime::connect`] for the connection itself).
    pub fn new(cfg: UptimeConfig, first_seen_ms: u64) -> Uptime {
        Uptime {
            cfg,
            at_ms: first_seen_ms,
            cover_end_ms: first_seen_ms,
            cur: EpochUptime::empty(first_seen_ms / cfg.epoch_ms),
            prev: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> UptimeConfig {
        self.cfg
    }

    /// The provider (re)connected at `at_ms`: that counts as a heartbeat.
    pub fn connect(&mut self, at_ms: u64) {
        self.heartbeat(at_ms);
    }

    /// A heartbeat arrived at `at_ms`: up for the grace from then.
    pub fn heartbeat(&mut self, at_ms: u64) {
        let t = at_ms.max(self.at_ms);
        self.advance(t);
        self.cover_end_ms = self.cover_end_ms.max(t.saturating_add(self.cfg.grace_ms));
    }

    /// The provider disconnected at `at_ms`: down from then until it
    /// connects again.
    pub fn disconnect(&mut self, at_ms: u64) {
        let t = at_ms.max(self.at_ms);
        self.advance(t);
        self.cover_end_ms = self.cover_end_ms.min(t);
    }

    /// Whether the provider counts as up at `now_ms` (a heartbeat's grace
    /// covers it and it has not disconnected since).
    pub fn is_covered(&self, now_ms: u64) -> bool {
        now_ms.max(self.at_ms) < self.cover_end_ms
    }

    /// The figure placement uses at `now_ms`, basis points: the current
    /// epoch blended with the previous one (module docs).
    pub fn uptime_bp(&self, now_ms: u64) -> u16 {
        let mut s = *self;
        s.advance(now_ms);
        let e = u128::from(s.cfg.epoch_ms);
        let elapsed = u128::from(s.at_ms - s.cur.epoch * s.cfg.epoch_ms);
        let w = e.saturating_sub(elapsed);
        let (pc, po) = s
            .prev
            .filter(|p| p.epoch.checked_add(1) == Some(s.cur.epoch))
            .map_or((0, 0), |p| {
                (u128::from(p.covered_ms), u128::from(p.observed_ms))
            });
        let num = u128::from(s.cur.covered_ms) * e + pc * w;
        let den = u128::from(s.cur.observed_ms) * e + po * w;
        ratio_bp(num, den).unwrap_or(if s.is_covered(s.at_ms) { FULL_BP } else { 0 })
    }

    /// The current epoch's figures at `now_ms` (pro-rated from first sight,
    /// up to `now_ms`).
    pub fn current(&self, now_ms: u64) -> EpochUptime {
        let mut s = *self;
        s.advance(now_ms);
        s.cur
    }

    /// The last complete epoch's figures at `now_ms`, if any of it was
    /// observed.
    pub fn previous(&self, now_ms: u64) -> Option<EpochUptime> {
        let mut s = *self;
        s.advance(now_ms);
        s.prev
    }

    /// Accounts `[at_ms, to)` into the epochs it crosses, in O(1) however
    /// many epochs that is. Earlier `to` is a no-op.
    fn advance(&mut self, to: u64) {
        if to <= self.at_ms {
            return;
        }
        let len = self.cfg.epoch_ms;
        let to_epoch = to / len;
        if to_epoch > self.cur.epoch {
            // `(cur + 1) · len ≤ to_epoch · len ≤ to`: no overflow.
            let cur_end = (self.cur.epoch + 1) * len;
            self.accrue(cur_end);
            let last_whole = to_epoch - 1;
            self.prev = Some(if last_whole > self.cur.epoch {
                // Whole epochs skipped: the last one before `to_epoch` was
                // observed in full, covered only as far as the grace ran.
                let start = last_whole * len;
                EpochUptime {
                    epoch: last_whole,
                    covered_ms: self.cover_end_ms.clamp(start, start + len) - start,
                    observed_ms: len,
                }
            } else {
                self.cur
            });
            self.cur = EpochUptime::empty(to_epoch);
            self.at_ms = to_epoch * len;
        }
        self.accrue(to);
    }

    /// Accounts `[at_ms, stop)` into `cur`; `stop` is in `cur`'s epoch (or
    /// its end).
    fn accrue(&mut self, stop: u64) {
        let span = stop.saturating_sub(self.at_ms);
        let covered = self.cover_end_ms.min(stop).saturating_sub(self.at_ms);
        self.cur.observed_ms = self.cur.observed_ms.saturating_add(span);
        self.cur.covered_ms = self.cur.covered_ms.saturating_add(covered);
        self.at_ms = self.at_ms.max(stop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn cfg(epoch_ms: u64, grace_ms: u64) -> UptimeConfig {
        UptimeConfig::new(epoch_ms, grace_ms).unwrap()
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(
            UptimeConfig::new(0, 1),
            Err(UptimeError::Epoch { got: 0, .. })
        ));
        assert!(UptimeConfig::new(MAX_EPOCH_MS + 1, 1).is_err());
        assert_eq!(UptimeConfig::new(1, 0), Err(UptimeError::Grace));
        assert!(UptimeConfig::new(MAX_EPOCH_MS, u64::MAX).is_ok());
    }

    #[test]
    fn a_new_connection_is_up_and_an_unconnected_one_is_not() {
        let t0 = 10 * MIN + 123;
        let u = Uptime::new(cfg(MIN, 1_000), t0);
        assert_eq!(u.uptime_bp(t0), 0);
        assert_eq!(u.uptime_bp(t0 + 5_000), 0);
        let mut u = Uptime::new(cfg(MIN, 1_000), t0);
        u.connect(t0);
        assert_eq!(u.uptime_bp(t0), FULL_BP);
        assert_eq!(u.uptime_bp(t0 + 999), FULL_BP);
        // Silent past the grace: the uncovered tail counts as down.
        assert_eq!(u.uptime_bp(t0 + 2_000), 5_000);
    }

    #[test]
    fn the_first_epoch_is_pro_rated_from_first_sight() {
        // First seen 45 s into a 60 s epoch, up 10 s of the 15 s left.
        let t0 = 5 * MIN + 45_000;
        let mut u = Uptime::new(cfg(MIN, 1_000), t0);
        u.connect(t0);
        for t in (t0..t0 + 10_000).step_by(500) {
            u.heartbeat(t);
        }
        u.disconnect(t0 + 10_000);
        let cur = u.current(6 * MIN - 1);
        assert_eq!(cur.epoch, 5);
        assert_eq!((cur.covered_ms, cur.observed_ms), (10_000, 14_999));
        assert_eq!(u.uptime_bp(6 * MIN - 1), 6_667);
        // Into the next epoch, down all along: the old epoch fades out.
        let prev = u.previous(6 * MIN + 30_000).unwrap();
        assert_eq!(
            (prev.epoch, prev.covered_ms, prev.observed_ms),
            (5, 10_000, 15_000)
        );
        // (0·60 + 10·30) / (30·60 + 15·30) = 300 / 2250
        assert_eq!(u.uptime_bp(6 * MIN + 30_000), 1_333);
    }

    #[test]
    fn a_disconnect_ends_coverage_and_a_reconnect_resumes_it() {
        let mut u = Uptime::new(cfg(MIN, 10_000), 0);
        u.connect(0);
        u.heartbeat(5_000);
        u.disconnect(6_000);
        assert!(!u.is_covered(6_000));
        u.connect(36_000);
        u.heartbeat(45_000);
        u.heartbeat(55_000);
        // Down 6 s..36 s: 30 of 60 s.
        assert_eq!(u.current(59_999).covered_ms, 29_999);
        assert_eq!(u.uptime_bp(60_000), 5_000);
    }

    #[test]
    fn long_gaps_are_crossed_at_once_and_count_as_down() {
        let mut u = Uptime::new(cfg(MIN, 90_000), 0);
        u.connect(0);
        // A grace longer than the epoch covers into the next one.
        let p = u.previous(MIN + 1).unwrap();
        assert_eq!((p.covered_ms, p.observed_ms), (MIN, MIN));
        assert_eq!(u.current(2 * MIN).covered_ms, 0);
        let p = u.previous(2 * MIN).unwrap();
        assert_eq!((p.epoch, p.covered_ms, p.observed_ms), (1, 30_000, MIN));
        // A year later: the skipped epoch before now is fully down.
        let later = 525_600 * MIN + 10;
        let p = u.previous(later).unwrap();
        assert_eq!((p.epoch, p.covered_ms, p.observed_ms), (525_599, 0, MIN));
        assert_eq!(u.uptime_bp(later), 0);
        u.connect(later);
        assert!(u.uptime_bp(later + 1) < 10, "{}", u.uptime_bp(later + 1));
    }

    #[test]
    fn extreme_and_backward_timestamps_do_not_panic() {
        let mut u = Uptime::new(cfg(1, u64::MAX), u64::MAX - 5);
        u.connect(u64::MAX - 5);
        u.heartbeat(0);
        u.heartbeat(u64::MAX);
        u.disconnect(3);
        assert!(u.uptime_bp(u64::MAX) <= FULL_BP);
        let mut u = Uptime::new(cfg(MAX_EPOCH_MS, 1), 0);
        u.connect(u64::MAX);
        u.heartbeat(7);
        assert!(u.uptime_bp(0) <= FULL_BP);
        assert!(u.uptime_bp(u64::MAX) <= FULL_BP);
        // Backward time counts as the latest time seen.
        let mut u = Uptime::new(cfg(MIN, 1_000), 10_000);
        u.connect(10_000);
        u.heartbeat(20_000);
        u.heartbeat(15_000);
        assert_eq!(u.current(0).observed_ms, 10_000);
    }
}
