//! `proofmesh-placement`: the pure core of discovery and scheduling — which
//! provider runs a job, by latency, price, chip tier and trust, and why.
//!
//! Why a separate crate: placement policy must be testable, benchmarkable
//! and explainable on its own, so it does no I/O, spawns nothing and reads no
//! clock (the caller passes `now_ms`). The coordinator feeds it provider
//! claims and measurements and asks it for placements; `GET /v1/providers`,
//! `proofmesh providers`, `proofmesh explain` and `proofmesh plan` print
//! what it returns (all output types serialise to JSON).
//!
//! How the coordinator drives it (all calls pure; wrap the registry in a
//! lock and pass the clock in):
//!
//! ```
//! use proofmesh_placement::*;
//!
//! let mut reg = Registry::new(PlacementConfig::default()).unwrap();
//! // On a provider's hello: its claims, written only under its own identity.
//! let claims = ProviderClaims {
//!     id: ProviderId("pk-1".into()),
//!     gpu: "NVIDIA GeForce RTX 4090".into(),
//!     gpu_count: 1,
//!     vram_mib_per_gpu: 24_564,
//!     interconnect: Interconnect::Pcie,
//!     region: "us-east".into(),
//!     lat: 39.0,
//!     lon: -77.5,
//!     price_per_hour_micros: 600_000,
//!     max_concurrency: 4,
//!     attestation: AttestationLevel::None,
//!     offers: vec![OfferClaim {
//!         model: "smollm2-135m".into(),
//!         params: 135_000_000,
//!         size_bytes: 270_000_000,
//!         vram_mib: 400,
//!         input_per_mtok_micros: 20_000,
//!         output_per_mtok_micros: 80_000,
//!         loaded: true,
//!         prefill_tps: None,
//!         decode_tps: None,
//!     }],
//! };
//! let now_ms = 1_700_000_000_000;
//! reg.upsert(&claims.id, &claims, now_ms).unwrap();
//! // On heartbeats and job events: measurements.
//! reg.record_rtt(&claims.id, 4_000).unwrap();
//! reg.set_load(&claims.id, 1, 0).unwrap();
//! // On a request: class from the header, placement, failover order.
//! let class: WorkloadClass = "interactive;ttft_ms=400".parse().unwrap();
//! let req = Request::new("smollm2-135m", class, 300, 100, now_ms);
//! let placement = reg.place(&req).unwrap();
//! assert_eq!(placement.chosen.provider, claims.id);
//! assert!(placement.chosen.estimate.ttft_ms <= 400.0);
//! // On a timeout: cooldown, then the next provider not yet tried.
//! reg.report_failure(&placement.chosen.provider, FailureKind::Timeout, now_ms).unwrap();
//! let mut attempts = Attempts::new(3);
//! attempts.record(placement.chosen.provider.clone());
//! assert!(next_candidate(&reg, &req, &attempts).is_err()); // nobody else
//! // For `proofmesh explain`: every provider's verdict, as JSON.
//! let explanation = reg.explain(&req).unwrap();
//! assert!(serde_json::to_string(&explanation).unwrap().contains("\"cooldown\""));
//! ```
//!
//! Code map:
//! - [`gpu`]: the known-GPU table (architecture, year, VRAM, TDP, capex,
//!   TFLOPS, bandwidth) and name parsing (`nvidia-smi` spellings too).
//! - [`provider`]: claims (untrusted input) and their validation, the
//!   registry record with [`Provenance`] on every claim, hardware-fit rules.
//! - [`latency`]: RTT tracker (median/p90), haversine and the fiber floor,
//!   path stretch, location check, TTFT parts.
//! - [`workload`]: workload classes and their parsing, [`ModelSpec`],
//!   [`Request`].
//! - [`config`]: per-class weights and ranking, topology, reference prices.
//! - [`registry`]: [`Registry`] — records, hot state, model catalog, and
//!   the updates the coordinator calls.
//! - `index` (private): per-model buckets with score-sorted orders and
//!   conservative bounds, the structure that keeps placement fast.
//! - [`place`]: filters, estimates, scores, branch-and-bound search,
//!   [`Registry::place`] → [`Placement`].
//! - `rank` (private): rejection sinks, candidates, the top-k list and the
//!   one total order both paths rank by.
//! - [`explain`]: the explain path, [`Registry::explain`] → [`Explanation`].
//! - [`rejection`]: named filter rejections and their counts.
//! - [`score`], [`estimate`]: score components and TTFT/cost estimates.
//! - [`failover`]: cooldown with backoff, attempts, [`next_candidate`].
//! - [`economics`]: public price figures, price floors, roofline throughput,
//!   cost per 1M tokens.
//! - [`plan`]: `proofmesh plan` — a fleet and a workload mix simulated into
//!   cost, SLO attainment, tier savings, colocated vs decentralized.
//! - [`listing`]: provider queries for `GET /v1/providers`.
//! - [`synthetic`]: seeded synthetic fleets and request mixes
//!   (`proofmesh bench schedule`, `plan`, benches, tests).
//! - [`uptime`]: live per-epoch uptime from connection and heartbeat events
//!   (first and current epochs pro-rated), the figure behind `uptime_bp`.

pub mod config;
pub mod economics;
pub mod error;
pub mod estimate;
pub mod explain;
pub mod failover;
pub mod gpu;
mod index;
pub mod latency;
pub mod listing;
pub mod place;
pub mod plan;
pub mod provider;
mod rank;
pub mod registry;
pub mod rejection;
pub mod score;
pub mod synthetic;
pub mod uptime;
pub mod workload;

pub use config::{ClassPolicy, PlacementConfig, Ranking, Topology, Weights};
pub use error::{
    ClaimError, ConfigError, PlacementError, PlanError, RegistryError, WorkloadParseError,
};
pub use estimate::Estimate;
pub use explain::{Explanation, Verdict};
pub use failover::{next_candidate, Attempts, CooldownPolicy, CooldownState, FailureKind};
pub use gpu::{Architecture, GpuModel, GpuSpec, GPU_TABLE};
pub use latency::{GeoPoint, LocationCheck, RttSource, RttTracker};
pub use listing::{ProviderQuery, ProviderView};
pub use place::{Choice, Placement};
pub use provider::{
    AttestationLevel, Claimed, Hardware, Interconnect, OfferClaim, Provenance, ProviderClaims,
    ProviderId, ProviderRecord,
};
pub use registry::Registry;
pub use rejection::{Rejection, RejectionCounts, RejectionKind};
pub use workload::{ClassKind, ClientInfo, Endpoint, ModelSpec, PriceCap, Request, WorkloadClass};
