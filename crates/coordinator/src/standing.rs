//! A provider's standing — audit reputation and live uptime — kept across
//! reconnects (issue 17).
//!
//! Why: the placement registry forgets a provider when it disconnects, so a
//! reconnect used to start from the initial reputation (5,000 bp) and 0%
//! uptime, and the fine-tune class (98% uptime, 90% reputation) could never
//! place a job. Here, per provider key, the coordinator keeps an
//! [`Uptime`] tracker for as long as it runs (disconnected time counts as
//! down), and on every (re)connect it writes both figures back into the
//! fresh registry record:
//!
//! - **reputation** from the durable audit stats
//!   ([`crate::audit::reputation_milli`] over `provider_stats`, the figure
//!   an audit report sets); a provider never audited keeps the registry's
//!   initial value;
//! - **uptime** from the tracker (epoch = `statement_epoch_s`, grace =
//!   `provider_timeout_ms`, as in the metrics statements; the definition is
//!   in `proofmesh_placement::uptime`).
//!
//! Each heartbeat is recorded and the registry's uptime refreshed when the
//! figure changed (a provider up all along stays at 10,000 bp and costs no
//! registry write). The trackers live in memory, O(1) each (about 100 bytes
//! plus the key) for every key connected since start; after a coordinator
//! restart every provider starts again from its first connection.
//!
//! One [`Standing`] per coordinator lives in `AppState::standing`.

use std::collections::HashMap;
use std::sync::Mutex;

use proofmesh_placement::uptime::{Uptime, UptimeConfig, UptimeError};

use crate::placement::Placer;
use crate::state::AppState;

/// One provider's tracker and the uptime last written to the registry.
#[derive(Debug)]
struct Entry {
    uptime: Uptime,
    pushed_bp: Option<u16>,
}

/// Every provider's standing at one coordinator.
#[derive(Debug)]
pub struct Standing {
    cfg: UptimeConfig,
    book: Mutex<HashMap<String, Entry>>,
}

impl Standing {
    /// Standing with the coordinator's epoch and heartbeat grace.
    pub fn new(config: &crate::CoordinatorConfig) -> Result<Standing, UptimeError> {
        let cfg = UptimeConfig::new(
            config.statement_epoch_s.saturating_mul(1000),
            config.provider_timeout_ms,
        )?;
        Ok(Standing {
            cfg,
            book: Mutex::new(HashMap::new()),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider connected at `now_ms` (its registry record was just
    /// written): the tracker records it and the registry gets its uptime.
    pub(crate) fn connect(&self, placer: &Placer, key: &str, now_ms: u64) -> u16 {
        let mut book = self.book();
        let entry = book.entry(key.to_owned()).or_insert_with(|| Entry {
            uptime: Uptime::new(self.cfg, now_ms),
            pushed_bp: None,
        });
        entry.uptime.connect(now_ms);
        let bp = entry.uptime.uptime_bp(now_ms);
        // A fresh record holds 0: always write.
        placer.set_uptime(key, bp);
        entry.pushed_bp = Some(bp);
        bp
    }

    /// A heartbeat at `now_ms`: recorded, and the registry's uptime
    /// refreshed if the figure moved.
    pub(crate) fn heartbeat(&self, placer: &Placer, key: &str, now_ms: u64) {
        let mut book = self.book();
        let Some(entry) = book.get_mut(key) else {
            return;
        };
        entry.uptime.heartbeat(now_ms);
        let bp = entry.uptime.uptime_bp(now_ms);
        if entry.pushed_bp != Some(bp) {
            placer.set_uptime(key, bp);
            entry.pushed_bp = Some(bp);
        }
    }

    /// The provider's last connection ended at `now_ms`: down until it
    /// connects again.
    pub(crate) fn disconnect(&self, key: &str, now_ms: u64) {
        if let Some(entry) = self.book().get_mut(key) {
            entry.uptime.disconnect(now_ms);
            entry.pushed_bp = None;
        }
    }
}

/// Reputation in basis points from durable audit stats; `None` for a
/// provider never audited (it keeps the registry's initial value).
fn reputation_bp(stats: &proofmesh_store::ProviderStats) -> Option<u16> {
    if stats.audits_passed == 0 && stats.audits_failed == 0 {
        return None;
    }
    let milli = crate::audit::reputation_milli(stats).min(1000);
    Some(u16::try_from(milli * 10).unwrap_or(10_000))
}

/// On a provider's (re)connect, after its registry record was written:
/// restores its reputation from the store and its uptime from the tracker.
pub(crate) async fn on_connect(app: &AppState, key: &str) {
    match app.store.provider_stats(key).await {
        Ok(Some(stats)) => {
            if let Some(bp) = reputation_bp(&stats) {
                app.fleet.placer().set_reputation(key, bp);
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(provider = key, error = %e, "reading audit stats; reputation left at the registry's")
        }
    }
    let bp = app
        .fleet
        .standing()
        .connect(app.fleet.placer(), key, app.clock.now_ms());
    tracing::debug!(provider = key, uptime_bp = bp, "standing restored");
}

/// On a provider heartbeat.
pub(crate) fn on_heartbeat(app: &AppState, key: &str) {
    app.fleet
        .standing()
        .heartbeat(app.fleet.placer(), key, app.clock.now_ms());
}

/// When a provider's last connection has ended.
pub(crate) fn on_disconnect(app: &AppState, key: &str) {
    app.fleet.standing().disconnect(key, app.clock.now_ms());
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::audit::tests::stats;

    #[test]
    fn reputation_comes_from_audits_and_only_from_audits() {
        assert_eq!(reputation_bp(&stats(0, 0)), None);
        assert_eq!(reputation_bp(&stats(3, 0)), Some(10_000));
        // (0 + 1) / (0 + 1 + 10) = 90 ‰.
        assert_eq!(reputation_bp(&stats(0, 1)), Some(900));
        assert_eq!(reputation_bp(&stats(999, 1)), Some(9_900));
    }

    #[test]
    fn uptime_survives_a_reconnect_and_counts_the_gap() {
        let cfg = crate::CoordinatorConfig {
            statement_epoch_s: 60,
            provider_timeout_ms: 1_000,
            ..Default::default()
        };
        let s = Standing::new(&cfg).unwrap();
        let placer = Placer::new(&cfg).unwrap();
        let t0 = 60_000 * 1_000;
        assert_eq!(s.connect(&placer, "pk", t0), 10_000);
        for t in (t0..t0 + 10_000).step_by(200) {
            s.heartbeat(&placer, "pk", t);
        }
        s.disconnect("pk", t0 + 10_000);
        // Away 10 s of 20.
        assert_eq!(s.connect(&placer, "pk", t0 + 20_000), 5_000);
        // A provider never seen before starts at 100%.
        assert_eq!(s.connect(&placer, "other", t0 + 20_000), 10_000);
    }
}
