//! Heartbeat sampling for metrics statements: what the coordinator records
//! about provider liveness, and how it commits that record to the log.
//!
//! Why: uptime must be recomputable from the log, but heartbeats arrive every
//! few seconds from every provider and are not signed by the provider. The
//! sampler polls the store's `last_seen_ms` (written on every heartbeat and
//! at registration) every `provider_timeout_ms / 2`, and records each new
//! value as one observed heartbeat. Consecutive recorded heartbeats of a
//! live provider are then at most `provider_timeout_ms / 2 + heartbeat_ms ≤
//! provider_timeout_ms` apart, so with a grace of `provider_timeout_ms` (the
//! time after which the coordinator itself drops a silent provider) a live
//! provider is covered continuously. Recorded heartbeats stay in memory until
//! a flush signs them per provider as a `SignedHeartbeats` covering the window
//! since the previous flush and appends them to the log; the task flushes
//! every few minutes, before publishing statements, and at shutdown. A crash
//! loses the unflushed window: uptime is then under-, never over-stated.

use std::collections::{BTreeMap, HashMap};

use proofmesh_ledger::statement::heartbeats::{HEARTBEATS_VERSION, MAX_BEATS};
use proofmesh_ledger::{HeartbeatsBody, SignedHeartbeats};
use proofmesh_log::LogEntry;
use proofmesh_receipt::{Identity, PublicKey};
use proofmesh_store::Store;

use super::{heartbeats_log_key, Publisher};

/// Heartbeats recorded since the last flush.
#[derive(Debug)]
pub(crate) struct Sampler {
    window_start_ms: u64,
    last_seen: HashMap<String, u64>,
    pending: BTreeMap<String, Vec<u64>>,
}

impl Sampler {
    /// A sampler whose first window starts at `now_ms` (older `last_seen`
    /// values, e.g. from before a restart, are not recorded).
    pub(crate) fn new(now_ms: u64) -> Sampler {
        Sampler {
            window_start_ms: now_ms,
            last_seen: HashMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Records `at_ms` for `provider` if it is new and inside the window.
    pub(crate) fn observe(&mut self, provider: &str, at_ms: u64) {
        let last = self.last_seen.entry(provider.to_owned()).or_insert(0);
        if at_ms <= *last {
            return;
        }
        *last = at_ms;
        if at_ms >= self.window_start_ms {
            self.pending
                .entry(provider.to_owned())
                .or_default()
                .push(at_ms);
        }
    }

    /// Reads every provider's latest heartbeat time from the store.
    pub(crate) async fn poll(&mut self, store: &dyn Store) {
        match store.list_providers().await {
            Ok(ps) => {
                for p in ps {
                    self.observe(&p.provider_key, p.last_seen_ms);
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat sampling: reading providers"),
        }
    }

    /// Closes the window at `until_ms`: the signed heartbeat logs for every
    /// provider with heartbeats before it, split to at most [`MAX_BEATS`]
    /// each. Heartbeats at or after `until_ms` stay for the next window.
    pub(crate) fn take(
        &mut self,
        until_ms: u64,
        coordinator: &Identity,
    ) -> Vec<(String, SignedHeartbeats)> {
        if until_ms <= self.window_start_ms {
            return Vec::new();
        }
        let from_ms = std::mem::replace(&mut self.window_start_ms, until_ms);
        let mut out = Vec::new();
        for (provider, beats) in self.pending.iter_mut() {
            let later = beats.split_off(beats.partition_point(|t| *t < until_ms));
            let now = std::mem::replace(beats, later);
            let Ok(key) = PublicKey::parse(provider) else {
                continue;
            };
            for body in chunks(&key, coordinator.public(), from_ms, until_ms, &now) {
                match SignedHeartbeats::sign(body, coordinator) {
                    Ok(s) => out.push((provider.clone(), s)),
                    Err(e) => tracing::error!(error = %e, "signing a heartbeat log"),
                }
            }
        }
        self.pending.retain(|_, b| !b.is_empty());
        out
    }

    /// [`Sampler::take`]s up to `until_ms` and appends the logs.
    pub(crate) async fn flush(&mut self, publisher: &Publisher, until_ms: u64) {
        let entries: Vec<(LogEntry, String)> = self
            .take(until_ms, &publisher.identity)
            .into_iter()
            .map(|(provider, s)| {
                let key = heartbeats_log_key(&provider, s.body.from_ms);
                (LogEntry::Heartbeats(s), key)
            })
            .collect();
        let appends = entries
            .iter()
            .map(|(e, key)| publisher.log.append(e, Some(key.clone())));
        for r in futures::future::join_all(appends).await {
            if let Err(e) = r {
                tracing::error!(error = %e, "heartbeat log not appended; uptime will be understated");
            }
        }
    }
}

/// Splits `[from_ms, to_ms)` and its (ascending) beats into bodies of at
/// most [`MAX_BEATS`]; every body's window holds exactly its beats.
fn chunks(
    provider: &PublicKey,
    coordinator: &PublicKey,
    from_ms: u64,
    to_ms: u64,
    beats: &[u64],
) -> Vec<HeartbeatsBody> {
    let parts: Vec<&[u64]> = beats.chunks(MAX_BEATS).collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let start = if i == 0 { from_ms } else { part[0] };
        let end = parts.get(i + 1).map_or(to_ms, |next| next[0]);
        out.push(HeartbeatsBody {
            version: HEARTBEATS_VERSION,
            provider: provider.clone(),
            coordinator: coordinator.clone(),
            from_ms: start,
            to_ms: end,
            beats_ms: part.to_vec(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> String {
        Identity::from_seed([seed; 32]).public().to_string()
    }

    #[test]
    fn records_new_heartbeats_inside_the_window_only() {
        let coord = Identity::from_seed([9; 32]);
        let mut s = Sampler::new(1_000);
        s.observe(&key(1), 900); // before the window (e.g. before a restart)
        s.observe(&key(1), 1_100);
        s.observe(&key(1), 1_100); // not new
        s.observe(&key(1), 1_050); // older than the last seen
        s.observe(&key(1), 2_500); // after the flush point
        s.observe(&key(2), 1_700);
        let logs = s.take(2_000, &coord);
        assert_eq!(logs.len(), 2);
        for (p, l) in &logs {
            l.verify().unwrap();
            assert_eq!((l.body.from_ms, l.body.to_ms), (1_000, 2_000));
            let want: &[u64] = if *p == key(1) { &[1_100] } else { &[1_700] };
            assert_eq!(l.body.beats_ms, want);
        }
        let next = s.take(3_000, &coord);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1.body.beats_ms, [2_500]);
        assert_eq!(next[0].1.body.from_ms, 2_000);
        assert!(s.take(2_500, &coord).is_empty(), "a window never reopens");
    }

    #[test]
    fn long_windows_split_into_valid_chunks() {
        let coord = Identity::from_seed([9; 32]);
        let mut s = Sampler::new(0);
        let n = 2 * MAX_BEATS as u64 + 5;
        for t in 0..n {
            s.observe(&key(1), 10 + t * 3);
        }
        let logs = s.take(1_000_000, &coord);
        assert_eq!(logs.len(), 3);
        let mut all = Vec::new();
        let mut expect_from = 0;
        for (_, l) in &logs {
            l.verify().unwrap();
            assert_eq!(l.body.from_ms, expect_from, "windows tile the flush window");
            expect_from = l.body.to_ms;
            all.extend_from_slice(&l.body.beats_ms);
            let bytes = LogEntry::Heartbeats(l.clone()).encode().unwrap();
            assert!(bytes.len() <= proofmesh_log::entry::MAX_ENTRY_SIZE);
        }
        assert_eq!(expect_from, 1_000_000);
        assert_eq!(all, (0..n).map(|t| 10 + t * 3).collect::<Vec<_>>());
    }
}
