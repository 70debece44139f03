//! Metrics statements, the covenant oracle (issue 8 §4): per provider per
//! epoch, a coordinator-signed `SignedStatement` appended to the
//! transparency log, computed only from what the log already holds.
//!
//! Why: lenders need revenue, audit and uptime figures the operator cannot
//! inflate. Every figure follows from log entries by one rule
//! (`proofmesh_ledger::statement::evidence`; this module only reads the log
//! and feeds it), so anyone holding the log recomputes the statement and
//! catches a false one (`proofmesh covenant check`). The log is the only
//! store: previous statements (for the hash chain) are found by reading it.
//!
//! What a statement says, and where each figure comes from:
//!
//! | figure | from |
//! |---|---|
//! | `jobs_served`, `revenue_micros`, `net_revenue_micros`, `refunded_micros` | logged receipts finished in the epoch (their signed price arithmetic; net = minus the per-job protocol fee in `params`; refunded = jobs with a failed audit) |
//! | `audits_passed`, `audits_failed` | logged audit reports about those receipts, from `params.verifiers` |
//! | `heartbeats`, `uptime_ms`, `uptime_bps` | logged heartbeat logs (`statements/sampler.rs`: heartbeats sampled every `provider_timeout_ms / 2`); each covers `params.heartbeat_grace_ms` (= `provider_timeout_ms`) |
//! | `busy_ms`, `utilization_bps` | union of the receipts' `[dispatched, finished)`; ÷ uptime |
//! | `prev_statement_hash` | the provider's previous statement in the log (genesis for the first) |
//!
//! What is and is not recomputable by a third party: receipts are signed by
//! provider and coordinator and audit reports by verifiers, so their figures
//! are fully checkable. Heartbeats are only *observed* by the coordinator,
//! which signs and logs them before using them: a third party can check that
//! uptime follows from heartbeat logs committed in the append-only log before
//! the statement, but not that the provider was really up at those times.
//! Revenue is what countersigned receipts charged: a client paying its own
//! provider (wash trading) produces genuine receipts, and the log cannot
//! tell.
//! Evidence that is logged after a statement (a receipt left for the restart
//! backlog, an audit checked after the cutoff) is in no statement; a checker
//! can report it.
//!
//! Schedule ([`run`]): epochs are `[k·len, (k+1)·len)` with len
//! `statement_epoch_s` (default a UTC day). After an epoch ends and its
//! settle time ([`settle_ms`], 1 h for a day) has passed, the task
//! flushes the heartbeats up to the epoch's end, then publishes the epoch for
//! every provider registered before its end or with evidence in it, unless
//! that provider already has a statement reaching past the epoch's start.
//! After downtime it catches up at most [`CATCH_UP_EPOCHS`] epochs. Keys:
//! `statement:<provider>:<epoch_start_s>`, so publishing twice is a no-op.
//!
//! On demand: [`publish_statements`] for a running coordinator, or a
//! [`Publisher`] over a coordinator's data (tools, tests).
//!
//! Limits: publishing reads the whole log once per run, and one run holds
//! the epoch's receipts in memory.

pub mod batches;
pub mod http;
pub(crate) mod sampler;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use proofmesh_ledger::statement::evidence::{settle_ms, Evidence};
use proofmesh_ledger::{
    genesis_hash, Currency, Epoch, SignedStatement, StatementError, StatementParams,
};
use proofmesh_log::{EntryError, LogEntry};
use proofmesh_receipt::{Digest, Identity, PublicKey};
use proofmesh_store::{Store, StoreError};

use crate::state::AppState;
use sampler::Sampler;

/// Most epochs published in one run after downtime.
pub const CATCH_UP_EPOCHS: u64 = 7;
/// Heartbeats are flushed to the log at least this often, ms.
const FLUSH_EVERY_MS: u64 = 10 * 60 * 1000;
/// After a failed run, wait this long before trying again, ms.
const RETRY_MS: u64 = 60 * 1000;
/// Log entries read per store query.
const SCAN_CHUNK: u64 = 1024;

/// Why statements could not be published.
#[derive(Debug, thiserror::Error)]
pub enum StatementsError {
    /// Reading the store failed.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// The store lacks entries below the published size.
    #[error("log entries {start}..{end} are not all stored")]
    MissingEntries {
        /// First index asked for.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// A log entry does not decode.
    #[error("log entry {index} does not decode: {source}")]
    Decode {
        /// Its index.
        index: u64,
        /// Why.
        source: EntryError,
    },
    /// Appending to the log failed.
    #[error("appending to the log: {0}")]
    Log(#[from] proofmesh_log::LogError),
    /// Computing or signing a statement failed.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// The epoch has not ended yet.
    #[error("epoch {epoch} has not ended (now {now_ms} ms)")]
    Open {
        /// The epoch.
        epoch: Epoch,
        /// Now.
        now_ms: u64,
    },
    /// A configured verifier key does not parse.
    #[error("trusted verifier {key:?} is not an ed25519 key")]
    Verifier {
        /// The key.
        key: String,
    },
}

/// The log key of a provider's statement for the epoch starting at `epoch_start_s`.
pub fn statement_log_key(provider: &str, epoch_start_s: u64) -> String {
    format!("statement:{provider}:{epoch_start_s}")
}

/// The log key of a heartbeat log whose window starts at `from_ms`.
pub fn heartbeats_log_key(provider: &str, from_ms: u64) -> String {
    format!("heartbeats:{provider}:{from_ms}")
}

/// A statement as appended.
#[derive(Debug, Clone)]
pub struct Published {
    /// Its leaf index.
    pub index: u64,
    /// The statement.
    pub statement: SignedStatement,
}

/// The end and hash of a provider's latest statement.
struct Tip {
    end_s: u64,
    hash: Digest,
}

/// Everything publishing needs; [`Publisher::from_app`] for a running
/// coordinator, or built by hand over its data (tools, tests).
#[derive(Clone)]
pub struct Publisher {
    /// The store holding the log's entries and the providers.
    pub store: Arc<dyn Store>,
    /// The log statements and heartbeat logs are appended to.
    pub log: proofmesh_log::Log,
    /// The coordinator key that signs.
    pub identity: Arc<Identity>,
    /// How figures are computed (signed into every statement).
    pub params: StatementParams,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("identity", &self.identity.public().as_str())
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// The statement parameters a coordinator with this config signs: USD (the
/// currency clients are credited in), its protocol fee, a heartbeat grace of
/// `provider_timeout_ms`, and its trusted verifiers (sorted).
pub fn params(cfg: &crate::config::CoordinatorConfig) -> Result<StatementParams, StatementsError> {
    let mut verifiers = cfg
        .trusted_verifiers
        .iter()
        .map(|k| PublicKey::parse(k).map_err(|_| StatementsError::Verifier { key: k.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    verifiers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    verifiers.dedup();
    Ok(StatementParams {
        currency: Currency::Usd,
        protocol_fee_bps: cfg.protocol_fee_bps,
        heartbeat_grace_ms: cfg.provider_timeout_ms,
        verifiers,
    })
}

impl Publisher {
    /// The publisher of a running coordinator.
    pub fn from_app(app: &AppState) -> Result<Publisher, StatementsError> {
        Ok(Publisher {
            store: app.store.clone(),
            log: app.log.clone(),
            identity: app.identity.clone(),
            params: params(&app.config)?,
        })
    }

    /// Reads the published log once: evidence for each epoch, and each
    /// provider's latest statement by this coordinator.
    async fn scan(
        &self,
        epochs: &[Epoch],
    ) -> Result<(Vec<Evidence>, HashMap<String, Tip>), StatementsError> {
        let me = self.identity.public();
        let mut evidence: Vec<Evidence> = epochs
            .iter()
            .map(|e| Evidence::new(*e, me.clone()))
            .collect();
        let mut tips = HashMap::new();
        let size = self.log.checkpoint().size;
        let mut start = 0;
        while start < size {
            let end = (start + SCAN_CHUNK).min(size);
            let entries = self.store.log_entries(start, end).await?;
            if entries.len() as u64 != end - start {
                return Err(StatementsError::MissingEntries { start, end });
            }
            for (i, bytes) in entries.iter().enumerate() {
                let index = start + i as u64;
                let entry = LogEntry::decode(bytes)
                    .map_err(|source| StatementsError::Decode { index, source })?;
                if let LogEntry::Statement(s) = &entry {
                    if &s.body.coordinator == me {
                        let tip = Tip {
                            end_s: s.body.epoch.end_s(),
                            hash: s.body.hash(),
                        };
                        tips.insert(s.body.provider.to_string(), tip);
                    }
                }
                evidence.iter_mut().for_each(|ev| ev.add(&entry));
            }
            start = end;
        }
        Ok((evidence, tips))
    }

    /// Publishes statements for closed `epochs` (in ascending order) for
    /// every provider registered before an epoch's end or with evidence in
    /// it, skipping providers whose latest statement reaches past the
    /// epoch's start. Heartbeats must already be logged (the task flushes
    /// them first). Meant to run after the epoch's settle time (module docs).
    pub async fn publish(
        &self,
        epochs: &[Epoch],
        now_ms: u64,
    ) -> Result<Vec<Published>, StatementsError> {
        let mut epochs = epochs.to_vec();
        epochs.sort();
        if let Some(open) = epochs.iter().find(|e| e.end_ms() > now_ms) {
            return Err(StatementsError::Open {
                epoch: *open,
                now_ms,
            });
        }
        let (evidence, mut tips) = self.scan(&epochs).await?;
        let registered = self.store.list_providers().await?;
        let mut out = Vec::new();
        for ev in &evidence {
            let signed = self.sign_epoch(ev, &registered, &mut tips)?;
            let entries: Vec<(LogEntry, String)> = signed
                .iter()
                .map(|(k, s)| (LogEntry::Statement(s.clone()), k.clone()))
                .collect();
            let appends = entries
                .iter()
                .map(|(e, k)| self.log.append(e, Some(k.clone())));
            let results = futures::future::join_all(appends).await;
            for ((_, statement), r) in signed.into_iter().zip(results) {
                let index = r?.index;
                out.push(Published { index, statement });
            }
        }
        Ok(out)
    }

    /// Signs the epoch's statements (with their log keys) for every provider
    /// registered before its end or with evidence in it, chained to `tips`
    /// (which it advances); providers already covered are skipped.
    fn sign_epoch(
        &self,
        ev: &Evidence,
        registered: &[proofmesh_store::ProviderRecord],
        tips: &mut HashMap<String, Tip>,
    ) -> Result<Vec<(String, SignedStatement)>, StatementsError> {
        let epoch = ev.epoch();
        let mut providers: BTreeSet<String> = registered
            .iter()
            .filter(|p| p.first_seen_ms < epoch.end_ms())
            .map(|p| p.provider_key.clone())
            .collect();
        providers.extend(ev.providers());
        let mut signed = Vec::new();
        for p in providers {
            let Ok(key) = PublicKey::parse(&p) else {
                continue;
            };
            let prev = match tips.get(&p) {
                Some(t) if t.end_s > epoch.start_s() => continue,
                Some(t) => t.hash.clone(),
                None => genesis_hash(),
            };
            let body = ev.compute(&key, &self.params)?.into_body(prev);
            let s = SignedStatement::sign(body, &self.identity)?;
            let tip = Tip {
                end_s: epoch.end_s(),
                hash: s.body.hash(),
            };
            tips.insert(p.clone(), tip);
            signed.push((statement_log_key(&p, epoch.start_s()), s));
        }
        Ok(signed)
    }
}

/// Publishes the statements of one closed epoch now, from what is logged
/// (on demand: tests and operators; the task in [`run`] does this on its
/// schedule and flushes heartbeats first).
pub async fn publish_statements(
    app: &AppState,
    epoch: Epoch,
) -> Result<Vec<Published>, StatementsError> {
    Publisher::from_app(app)?
        .publish(&[epoch], app.clock.now_ms())
        .await
}

/// The epochs due at `now_ms` for `len_s`-second epochs, given that epochs
/// up to `done_s` are handled: those ending after `done_s` whose settle time
/// has passed, at most [`CATCH_UP_EPOCHS`] (the latest).
pub fn due_epochs(len_s: u64, now_ms: u64, done_s: u64) -> Vec<Epoch> {
    let Ok(probe) = Epoch::new(0, len_s) else {
        return Vec::new();
    };
    let settled_s = now_ms.saturating_sub(settle_ms(probe)) / 1000;
    let last_end = settled_s / len_s * len_s;
    let first_end = done_s
        .saturating_add(len_s)
        .max(last_end.saturating_sub((CATCH_UP_EPOCHS - 1) * len_s))
        .max(len_s);
    (0..)
        .map(|k| first_end + k * len_s)
        .take_while(|end| *end <= last_end)
        .filter_map(|end| Epoch::new(end - len_s, end).ok())
        .collect()
}

/// After statements: pays each revenue-share pool for the epochs, then
/// signs and logs their settlement batches (so a distribution made now is
/// in the next epoch's batch). Failures are logged; both steps are keyed by
/// epoch, so the next run after a restart redoes only what is missing.
async fn settle_epochs(app: &AppState, publisher: &Publisher, due: &[Epoch]) {
    for epoch in due {
        match crate::pools::distribute_epoch(app, *epoch).await {
            Ok(d) if !d.is_empty() => {
                tracing::info!(epoch = %epoch, pools = d.len(), "pool distributions paid")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(epoch = %epoch, error = %e, "pool distribution"),
        }
        match batches::publish_batch(publisher, *epoch).await {
            Ok(Some((index, b))) => {
                tracing::info!(epoch = %epoch, index, transactions = b.body.count, "settlement batch logged")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(epoch = %epoch, error = %e, "settlement batch"),
        }
    }
}

/// The statement task: samples heartbeats, flushes them, and publishes each
/// epoch once settled, until shutdown (then flushes once more).
pub async fn run(app: AppState) {
    let publisher = match Publisher::from_app(&app) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "metrics statements disabled");
            return;
        }
    };
    let len_s = app.config.statement_epoch_s;
    let period = Duration::from_millis((app.config.provider_timeout_ms / 2).max(1));
    let mut shutdown = app.shutdown.clone();
    let mut sampler = Sampler::new(app.clock.now_ms());
    let (mut done_s, mut retry_at) = (0u64, 0u64);
    let mut next_flush = app.clock.now_ms() + FLUSH_EVERY_MS;
    loop {
        sampler.poll(app.store.as_ref()).await;
        let now = app.clock.now_ms();
        let due = due_epochs(len_s, now, done_s);
        if let (Some(last), true) = (due.last(), now >= retry_at) {
            sampler.flush(&publisher, last.end_ms()).await;
            match publisher.publish(&due, now).await {
                Ok(p) => {
                    tracing::info!(epoch = %last, statements = p.len(), "metrics statements published");
                    done_s = last.end_s();
                    settle_epochs(&app, &publisher, &due).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "publishing metrics statements; will retry");
                    retry_at = now + RETRY_MS;
                }
            }
        } else if now >= next_flush {
            sampler.flush(&publisher, now).await;
            next_flush = now + FLUSH_EVERY_MS;
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => break,
        }
    }
    sampler.poll(app.store.as_ref()).await;
    sampler.flush(&publisher, app.clock.now_ms()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_epochs_wait_for_settling_and_bound_catch_up() {
        let day = 86_400u64;
        let hour_ms = 3_600_000;
        let day10 = 10 * day * 1000;
        // Day 9 ended at day10, but its hour of settling has not passed.
        assert_eq!(
            due_epochs(day, day10 + hour_ms - 1, 0)
                .last()
                .unwrap()
                .end_s(),
            9 * day
        );
        let due = due_epochs(day, day10 + hour_ms, 0);
        assert_eq!(due.len() as u64, CATCH_UP_EPOCHS);
        assert_eq!(due.last().unwrap(), &Epoch::daily(9).unwrap());
        assert!(due.windows(2).all(|w| w[0].end_s() == w[1].start_s()));
        assert!(due_epochs(day, day10 + hour_ms, 10 * day).is_empty());
        assert_eq!(
            due_epochs(day, day10 + hour_ms, 9 * day),
            vec![Epoch::daily(9).unwrap()]
        );
        // Nothing before the first epoch has ended.
        assert!(due_epochs(day, 1000, 0).is_empty());
        // Two-second epochs settle for one second.
        assert_eq!(
            due_epochs(2, 11_000, 0).last(),
            Some(&Epoch::new(8, 10).unwrap())
        );
    }

    #[test]
    fn keys_name_provider_and_start() {
        assert_eq!(
            statement_log_key("ed25519:ab", 86_400),
            "statement:ed25519:ab:86400"
        );
        assert_eq!(
            heartbeats_log_key("ed25519:ab", 5),
            "heartbeats:ed25519:ab:5"
        );
    }

    #[test]
    fn params_follow_the_config() {
        let mut cfg = crate::config::CoordinatorConfig::default();
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        cfg.trusted_verifiers = vec![
            b.public().to_string(),
            a.public().to_string(),
            b.public().to_string(),
        ];
        let p = params(&cfg).unwrap();
        assert_eq!(p.protocol_fee_bps, cfg.protocol_fee_bps);
        assert_eq!(p.heartbeat_grace_ms, cfg.provider_timeout_ms);
        let mut want = vec![a.public().clone(), b.public().clone()];
        want.sort_by(|x, y| x.as_str().cmp(y.as_str()));
        assert_eq!(p.verifiers, want);
        cfg.trusted_verifiers.push("nope".into());
        assert!(matches!(
            params(&cfg),
            Err(StatementsError::Verifier { .. })
        ));
    }
}
