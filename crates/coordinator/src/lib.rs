//! The proofmesh coordinator: provider discovery over dial-out WebSockets, an
//! OpenAI-compatible gateway, receipt countersigning and storage.
//!
//! Entry points: [`server::run`], which serves on a listener until a
//! shutdown future resolves (the binary wires that to ctrl-c and SIGTERM);
//! [`server::open`], which builds the services without serving (tests);
//! [`admin`], the offline operations the CLI calls.
//!
//! Layers: the HTTP layer (`gateway`, `zk::infer`'s handler, `billing`'s
//! read endpoints, `routes`, `log_routes`, `provider_ws`) parses and
//! answers; the services below it take narrow dependencies, not
//! [`AppState`]: [`pipeline::Pipeline`] (the one job driver; `chat` and
//! `zk::infer` are its kinds), [`money::Money`] (the one owner of a job's
//! money), [`fleet::Fleet`] (the one owner of provider state). Modules are
//! private unless another crate needs them.

pub mod admin;
mod admission;
mod attestation;
mod audit;
mod auth;
pub mod billing;
mod chat;
pub mod config;
mod discovery;
mod dispatch_check;
pub mod error;
pub mod fleet;
mod gateway;
pub mod idempotency;
mod log_routes;
mod metrics_http;
pub mod money;
pub mod pipeline;
pub mod placement;
mod pools;
mod provider_ws;
pub mod registry;
mod routes;
pub mod server;
mod standing;
mod state;
pub mod statements;
mod tokens;
pub mod validate;
pub mod zk;

pub use config::{ConfigError, CoordinatorConfig};
pub use server::{run, ServerError};
pub use state::AppState;
