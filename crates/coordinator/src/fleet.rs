//! The one owner of provider state (issue 18): live connections and job
//! routes ([`Registry`]), the placement registry behind the [`Placer`]
//! (claims, measurements, load, cooldown), standing (reputation and uptime
//! kept across reconnects, [`Standing`]), exclusion after failed audits, and
//! the bounded wait for a provider ([`Admission`]).
//!
//! Everything else asks the fleet: the job driver begins and ends attempts
//! here (which keeps the live in-flight count and the placement load in
//! step), reports outcomes here (measurements, cooldowns), and the audit and
//! proof paths apply a provider's new audit record here (reputation,
//! exclusion). Stake is not provider state kept here: it is money, and
//! lives only in the ledger ([`crate::money::Money::stake`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use proofmesh_store::ProviderStats;
use proofmesh_wire::PriceRate;
use tokio::sync::mpsc;

use crate::admission::Admission;
use crate::placement::{JobTiming, Placer};
use crate::registry::{JobEvent, ProviderHandle, Registry};
use crate::standing::Standing;

/// Why the fleet refused a provider.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Its claims are not ones placement can hold.
    #[error("invalid provider claims from {key}: {reason}")]
    Claims {
        /// The provider.
        key: String,
        /// What placement said.
        reason: String,
    },
}

/// Provider state, owned in one place.
#[derive(Debug)]
pub struct Fleet {
    registry: Registry,
    placer: Placer,
    standing: Standing,
    admission: Admission,
}

/// One attempt's hold on a provider: the job's event route, and the load
/// it added. End it with [`Fleet::end_attempt`].
#[derive(Debug)]
pub struct AttemptSlot {
    /// The provider's events for this job.
    pub events: mpsc::Receiver<JobEvent>,
    /// Jobs the provider had in flight before this one.
    pub before: u32,
}

impl Fleet {
    /// A fleet from its parts (see `server::build_state`).
    pub fn new(
        registry: Registry,
        placer: Placer,
        standing: Standing,
        admission: Admission,
    ) -> Fleet {
        Fleet {
            registry,
            placer,
            standing,
            admission,
        }
    }

    /// Live connections and job routes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Placement: claims, measurements, load.
    pub fn placer(&self) -> &Placer {
        &self.placer
    }

    /// Reputation and uptime across reconnects.
    pub fn standing(&self) -> &Standing {
        &self.standing
    }

    /// The bounded wait for a provider.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The live offers for chat model `digest`.
    pub fn chat_offers(&self, digest: &str) -> Vec<PriceRate> {
        self.registry
            .live()
            .iter()
            .flat_map(|p| p.models.iter())
            .filter(|m| m.digest.as_str() == digest)
            .map(|m| m.price.clone())
            .collect()
    }

    /// The live offers for zk model `digest`.
    pub fn zk_offers(&self, digest: &str) -> Vec<PriceRate> {
        self.registry
            .live()
            .iter()
            .flat_map(|p| p.zk_models.iter())
            .filter(|m| m.model_digest.as_str() == digest)
            .map(|m| m.price.clone())
            .collect()
    }

    /// Routes `job_id`'s events from `p` and counts the job on it (live
    /// in-flight count and placement load together).
    pub fn begin_attempt(&self, job_id: &str, p: &ProviderHandle) -> AttemptSlot {
        let before = p.in_flight.load(Ordering::Relaxed);
        let events = self.registry.route(job_id, p);
        self.placer.set_load(p.key.as_str(), before + 1);
        AttemptSlot { events, before }
    }

    /// Ends an attempt's route and load; a slot may be free, so the
    /// longest-waiting job tries it first.
    pub fn end_attempt(&self, job_id: &str, p: &ProviderHandle) {
        self.registry.unroute(job_id, p);
        self.placer
            .set_load(p.key.as_str(), p.in_flight.load(Ordering::Relaxed));
        self.registry.capacity.notify_one();
    }

    /// An attempt succeeded: what it measured feeds the estimates.
    pub fn succeeded(&self, key: &str, model: &str, timing: &JobTiming, now_ms: u64) {
        self.placer.succeeded(key, model, timing, now_ms);
    }

    /// An attempt failed: the provider cools down.
    pub fn failed(&self, key: &str, now_ms: u64) {
        self.placer.failed(key, false, now_ms);
    }

    /// Applies a provider's audit record (after an audit report or a failed
    /// proof): its reputation, and exclusion once its record says so.
    pub fn apply_audit_record(&self, stats: &ProviderStats) {
        let bp = u16::try_from(crate::audit::reputation_milli(stats) * 10).unwrap_or(10_000);
        self.placer.set_reputation(&stats.provider_key, bp);
        if stats.excluded {
            tracing::warn!(provider = %stats.provider_key, failed = stats.audits_failed, "provider excluded from scheduling");
            self.registry.exclude(&stats.provider_key);
        }
    }

    /// Admits a provider's connection: its claims into placement, then its
    /// connection into the registry (which wakes every waiting job). The
    /// provider session calls this after the handshake; tests call it with
    /// an in-process provider.
    pub fn connect(
        &self,
        handle: Arc<ProviderHandle>,
        claims: &proofmesh_placement::ProviderClaims,
        now_ms: u64,
    ) -> Result<(), FleetError> {
        self.placer
            .upsert(handle.key.as_str(), claims, now_ms)
            .map_err(|reason| FleetError::Claims {
                key: handle.key.to_string(),
                reason,
            })?;
        self.registry.register(handle);
        Ok(())
    }

    /// The live connection of `key`, unless excluded.
    pub fn live_provider(&self, key: &str) -> Option<Arc<ProviderHandle>> {
        self.registry.live_provider(key)
    }
}
