//! Shared service state handed to every handler.

use std::sync::Arc;

use proofmesh_receipt::Identity;
use proofmesh_store::Store;
use tokio::sync::watch;

use crate::config::CoordinatorConfig;
use crate::registry::Registry;

/// Cheap to clone; everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<CoordinatorConfig>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// The coordinator's signing key.
    pub identity: Arc<Identity>,
    /// The durable ledger (escrow, settlement, stake).
    pub bank: proofmesh_settlement::Bank,
    /// The transparency log every receipt and audit report goes into.
    pub log: proofmesh_log::Log,
    /// Scheduling: provider claims, measurements, placement.
    pub placer: Arc<crate::placement::Placer>,
    /// Live providers and job routes.
    pub registry: Arc<Registry>,
    /// Providers' reputation and uptime, kept across reconnects.
    pub standing: Arc<crate::standing::Standing>,
    /// Jobs waiting for a provider.
    pub admission: Arc<crate::admission::Admission>,
    /// Exact prompt token counts, per model digest.
    pub prompts: Arc<crate::tokens::PromptCounters>,
    /// The zero-knowledge models proofs are accepted for.
    pub zk: Arc<crate::zk::ZkModels>,
    /// Flips to true when the service is shutting down.
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("identity", &self.identity.public().as_str())
            .finish()
    }
}
