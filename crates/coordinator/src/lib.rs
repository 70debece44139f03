//! The proofmesh coordinator: provider discovery over dial-out WebSockets, an
//! OpenAI-compatible gateway, receipt countersigning and storage.
//!
//! Entry point: [`server::run`], which serves on a listener until a shutdown
//! future resolves (the binary wires that to ctrl-c and SIGTERM).

pub mod admin;
pub mod admission;
pub mod attestation;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod dispatch_check;
pub mod error;
pub mod fleet;
pub mod gateway;
pub mod idempotency;
pub mod log_routes;
pub mod metrics_http;
pub mod money;
pub mod pipeline;
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
