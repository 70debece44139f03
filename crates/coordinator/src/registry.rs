//! Live provider connections and in-flight job routes.
//!
//! Registration state that must survive a restart is in the store; this is the
//! in-memory half: who is connected right now, and which job's events come
//! from which connection. A provider can only deliver events for jobs routed
//! to its own connection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use proofmesh_receipt::PublicKey;
use proofmesh_wire::{CoordinatorMsg, Hardware, JobResult, ModelAdvert};
use tokio::sync::mpsc;

/// Capacity of a job's event channel.
const JOB_CHANNEL: usize = 256;

/// An event for a job, from its provider's connection.
#[derive(Debug)]
pub enum JobEvent {
    /// A token.
    Token {
        /// Index.
        index: u32,
        /// Id.
        token_id: u32,
        /// Text delta.
        text: String,
    },
    /// Finished.
    Done(Box<JobResult>),
    /// A proved inference finished.
    ZkDone(Box<proofmesh_wire::ZkJobResult>),
    /// Failed on the provider.
    Failed {
        /// Stable code.
        code: String,
        /// Message.
        message: String,
    },
    /// The connection dropped.
    ProviderGone,
}

/// A connected provider.
#[derive(Debug)]
pub struct ProviderHandle {
    /// Its key.
    pub key: PublicKey,
    /// Connection id (distinguishes reconnections).
    pub conn_id: u64,
    /// Outbound messages.
    pub tx: mpsc::Sender<CoordinatorMsg>,
    /// Loaded models.
    pub models: Vec<ModelAdvert>,
    /// Models it proves in zero knowledge (checked against the registry).
    pub zk_models: Vec<proofmesh_wire::ZkModelAdvert>,
    /// Hardware advert.
    pub hardware: Hardware,
    /// Concurrency it declared.
    pub max_concurrent: u32,
    /// Jobs assigned now.
    pub in_flight: AtomicU32,
    /// Its verified hardware attestation (None: trust level `none`).
    pub attestation: std::sync::RwLock<Option<Attested>>,
    /// The nonce of the re-check awaiting its evidence.
    pub pending_nonce: std::sync::Mutex<Option<[u8; 32]>>,
}

/// A provider's verified attestation, as the coordinator holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attested {
    /// `tee` or `tee+gpu`.
    pub level: String,
    /// SHA-256 (hex) of the verified evidence bundle.
    pub evidence_digest: String,
    /// When the earliest certificate, CRL or collateral in it expires, unix s.
    pub not_after_s: Option<u64>,
    /// When the coordinator verified it, unix ms.
    pub verified_at_ms: u64,
}

impl ProviderHandle {
    /// The attestation to carry on receipts now (None once expired).
    pub fn attestation_ref(&self, now_ms: u64) -> Option<proofmesh_receipt::AttestationRef> {
        let a = self.attestation.read().unwrap_or_else(|e| e.into_inner());
        a.as_ref()
            .filter(|a| {
                a.not_after_s
                    .is_none_or(|t| t.saturating_mul(1000) > now_ms)
            })
            .map(|a| proofmesh_receipt::AttestationRef {
                level: a.level.clone(),
                evidence_digest: a.evidence_digest.clone(),
            })
    }
}

struct Route {
    provider: String,
    conn_id: u64,
    tx: mpsc::Sender<JobEvent>,
}

/// Connected providers and job routes.
#[derive(Default)]
pub struct Registry {
    providers: RwLock<HashMap<String, Arc<ProviderHandle>>>,
    /// Every model (digest → name) any provider has advertised, live or not,
    /// so a request for a known model with no live provider is a 503, not a 404.
    known: RwLock<HashMap<String, String>>,
    routes: Mutex<HashMap<String, Route>>,
    next_conn: AtomicU64,
    /// Connected verifiers.
    verifiers: RwLock<HashMap<String, Arc<ProviderHandle>>>,
    /// Providers excluded from scheduling after failed audits.
    excluded: RwLock<HashSet<String>>,
    /// Audits sent to a verifier and not yet reported: id → (verifier, sent at).
    audits_in_flight: Mutex<HashMap<String, (String, std::time::Instant)>>,
    /// Wakes the audit dispatcher.
    pub audit_wakeup: tokio::sync::Notify,
    /// Wakes jobs waiting for a provider: all of them when a provider
    /// connects, the longest-waiting one when a job ends and placement has
    /// seen the lower load.
    pub capacity: tokio::sync::Notify,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("providers", &self.live_count())
            .finish()
    }
}

/// A model as served by the live network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveModel {
    /// Digest.
    pub digest: String,
    /// Name.
    pub name: String,
    /// Providers serving it.
    pub providers: u32,
}

impl Registry {
    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a connection, replacing (and orphaning the jobs of) an older one with the same key.
    pub fn register(&self, handle: Arc<ProviderHandle>) {
        self.remember_models(
            handle
                .models
                .iter()
                .map(|m| (m.digest.to_string(), m.name.clone())),
        );
        let key = handle.key.to_string();
        let old = self
            .providers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), handle);
        if let Some(old) = old {
            self.orphan_jobs(&key, old.conn_id);
        }
        metrics::gauge!("proofmesh_providers_connected").set(self.live_count() as f64);
        self.capacity.notify_waiters();
    }

    /// Removes a connection (if it is still the current one) and fails its jobs.
    pub fn unregister(&self, key: &str, conn_id: u64) {
        {
            let mut ps = self.providers.write().unwrap_or_else(|e| e.into_inner());
            if ps.get(key).is_some_and(|h| h.conn_id == conn_id) {
                ps.remove(key);
            }
        }
        self.orphan_jobs(key, conn_id);
        metrics::gauge!("proofmesh_providers_connected").set(self.live_count() as f64);
    }

    /// Records models as known (e.g. from the store at startup).
    pub fn remember_models(&self, models: impl IntoIterator<Item = (String, String)>) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        for (digest, name) in models {
            known.insert(digest, name);
        }
    }

    /// Whether `query` names a model some provider has ever advertised.
    pub fn is_known_model(&self, query: &str) -> bool {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        known
            .iter()
            .any(|(d, n)| d == query || n.eq_ignore_ascii_case(query))
    }

    /// Removes the routes of a dead connection. Dropping their senders makes
    /// each job driver's `recv()` return `None`, which it treats as "provider
    /// gone" — unlike a notice sent into the channel, this cannot be lost when
    /// the channel is full.
    fn orphan_jobs(&self, key: &str, conn_id: u64) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.retain(|_, r| !(r.provider == key && r.conn_id == conn_id));
    }

    /// Number of connected providers.
    pub fn live_count(&self) -> usize {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Snapshot of connected providers.
    pub fn live(&self) -> Vec<Arc<ProviderHandle>> {
        let ps = self.providers.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = ps.values().cloned().collect();
        v.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        v
    }

    /// Models served now, by digest.
    pub fn models(&self) -> Vec<LiveModel> {
        let mut by: HashMap<String, LiveModel> = HashMap::new();
        for p in self.live() {
            for m in &p.models {
                by.entry(m.digest.to_string())
                    .or_insert_with(|| LiveModel {
                        digest: m.digest.to_string(),
                        name: m.name.clone(),
                        providers: 0,
                    })
                    .providers += 1;
            }
        }
        let mut v: Vec<_> = by.into_values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.digest.cmp(&b.digest)));
        v
    }

    /// Resolves a model name or digest to a live model.
    pub fn resolve_model(&self, query: &str) -> Option<LiveModel> {
        let models = self.models();
        models
            .iter()
            .find(|m| m.digest == query || m.name == query)
            .or_else(|| models.iter().find(|m| m.name.eq_ignore_ascii_case(query)))
            .cloned()
    }

    /// Excludes a provider from scheduling (failed audits).
    pub fn exclude(&self, key: &str) {
        self.excluded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
    }

    /// Whether a provider is excluded.
    pub fn is_excluded(&self, key: &str) -> bool {
        self.excluded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    /// Adds a verifier connection.
    pub fn register_verifier(&self, handle: Arc<ProviderHandle>) {
        let key = handle.key.to_string();
        self.verifiers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, handle);
        self.audit_wakeup.notify_one();
    }

    /// Removes a verifier connection (if current) and forgets its in-flight audits.
    pub fn unregister_verifier(&self, key: &str, conn_id: u64) {
        let mut vs = self.verifiers.write().unwrap_or_else(|e| e.into_inner());
        if vs.get(key).is_some_and(|h| h.conn_id == conn_id) {
            vs.remove(key);
        }
        drop(vs);
        let mut inflight = self
            .audits_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        inflight.retain(|_, (v, _)| v != key);
    }

    /// Number of connected verifiers.
    pub fn verifier_count(&self) -> usize {
        self.verifiers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// A verifier that has `model` loaded, least busy first.
    pub fn pick_verifier(&self, model: &str) -> Option<Arc<ProviderHandle>> {
        let vs = self.verifiers.read().unwrap_or_else(|e| e.into_inner());
        vs.values()
            .filter(|v| v.models.iter().any(|m| m.digest.as_str() == model))
            .min_by_key(|v| (v.in_flight.load(Ordering::Relaxed), v.key.to_string()))
            .cloned()
    }

    /// Marks an audit as sent unless it already is (and not stale).
    pub fn claim_audit(
        &self,
        audit_id: &str,
        verifier: &str,
        stale_after: std::time::Duration,
    ) -> bool {
        let mut m = self
            .audits_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match m.get(audit_id) {
            Some((_, at)) if at.elapsed() < stale_after => false,
            _ => {
                m.insert(
                    audit_id.to_string(),
                    (verifier.to_string(), std::time::Instant::now()),
                );
                true
            }
        }
    }

    /// The verifier an audit was sent to.
    pub fn audit_claimant(&self, audit_id: &str) -> Option<String> {
        let m = self
            .audits_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.get(audit_id).map(|(v, _)| v.clone())
    }

    /// The verifier an audit was sent to, removing the claim.
    pub fn release_audit(&self, audit_id: &str) -> Option<String> {
        let mut m = self
            .audits_in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.remove(audit_id).map(|(v, _)| v)
    }

    /// Whether a provider with this key is connected now.
    pub fn is_live(&self, key: &str) -> bool {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    /// The live connection of provider `key`, unless excluded by audits.
    pub fn live_provider(&self, key: &str) -> Option<Arc<ProviderHandle>> {
        if self.is_excluded(key) {
            return None;
        }
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Routes a job's events from `provider` to a new receiver.
    pub fn route(&self, job_id: &str, provider: &ProviderHandle) -> mpsc::Receiver<JobEvent> {
        let (tx, rx) = mpsc::channel(JOB_CHANNEL);
        let route = Route {
            provider: provider.key.to_string(),
            conn_id: provider.conn_id,
            tx,
        };
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job_id.to_string(), route);
        provider.in_flight.fetch_add(1, Ordering::Relaxed);
        rx
    }

    /// Ends a job's route.
    pub fn unroute(&self, job_id: &str, provider: &ProviderHandle) {
        let removed = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_id);
        if removed.is_some() {
            provider.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Delivers an event from connection (`key`, `conn_id`); false if the job
    /// is not routed to that connection (a provider cannot touch others' jobs).
    pub async fn deliver(&self, key: &str, conn_id: u64, job_id: &str, ev: JobEvent) -> bool {
        let tx = {
            let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            match routes.get(job_id) {
                Some(r) if r.provider == key && r.conn_id == conn_id => r.tx.clone(),
                _ => return false,
            }
        };
        tx.send(ev).await.is_ok()
    }
}
