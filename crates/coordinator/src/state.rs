//! The state the HTTP layer hands its handlers: the services, each with its
//! own narrow dependencies, plus what only handlers need (configuration,
//! the store for reads, the signing key). Business logic takes a service
//! (the [`Pipeline`], [`Money`], the [`Fleet`]), not this struct.

use std::sync::Arc;

use proofmesh_ambient::clock::Clock;
use proofmesh_receipt::Identity;
use proofmesh_store::Store;
use tokio::sync::watch;

use crate::config::CoordinatorConfig;
use crate::fleet::Fleet;
use crate::money::Money;
use crate::pipeline::Pipeline;

/// Cheap to clone; everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub config: Arc<CoordinatorConfig>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// The coordinator's signing key.
    pub identity: Arc<Identity>,
    /// The one owner of money.
    pub money: Money,
    /// The transparency log every receipt and audit report goes into.
    pub log: proofmesh_log::Log,
    /// The one owner of provider state.
    pub fleet: Arc<Fleet>,
    /// The job driver.
    pub pipeline: Pipeline,
    /// Exact prompt token counts, per model digest.
    pub prompts: Arc<crate::tokens::PromptCounters>,
    /// The zero-knowledge models proofs are accepted for.
    pub zk: Arc<crate::zk::ZkModels>,
    /// Wall-clock time.
    pub clock: Arc<dyn Clock>,
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
