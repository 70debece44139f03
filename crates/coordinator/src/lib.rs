//! The proofmesh coordinator: provider discovery over dial-out WebSockets, an
//! OpenAI-compatible gateway, receipt countersigning and storage.
//!
//! Entry point: [`server::run`], which serves on a listener until a shutdown
//! future resolves (the binary wires that to ctrl-c and SIGTERM).

pub mod admission;
pub mod attestation;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod config;
pub mod discovery;
pub mod dispatch_check;
pub mod error;
pub mod gateway;
pub mod idempotency;
pub mod job;
pub mod log_routes;
pub mod metrics_http;
pub mod placement;
pub mod pools;
pub mod provider_ws;
pub mod registry;
pub mod routes;
pub mod server;
pub mod standing;
pub mod state;
pub mod statements;
pub mod tokens;
pub mod validate;
pub mod zk;

pub use config::{ConfigError, CoordinatorConfig};
pub use server::{run, ServerError};
pub use state::AppState;

/// Unix time in ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
