//! The error types of `proofmesh-placement`, one per kind of caller mistake:
//! a bad provider claim ([`ClaimError`]), a registry operation that is not
//! allowed ([`RegistryError`]), a request that cannot be placed
//! ([`PlacementError`]), a bad workload-class string ([`WorkloadParseError`]),
//! a bad configuration ([`ConfigError`]) and a bad plan input ([`PlanError`]).
//! Fields are structured so the coordinator can map them to API errors and
//! the CLI can print them without parsing messages.

use thiserror::Error;

use crate::gpu::GpuModel;
use crate::provider::{Interconnect, ProviderId};
use crate::rejection::RejectionCounts;

/// A provider's claims were rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClaimError {
    /// The provider id is empty or too long.
    #[error("provider id must be 1..={max} bytes, got {len}")]
    BadProviderId {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The GPU name is not in the known table.
    #[error("unknown GPU model {name:?}")]
    UnknownGpu {
        /// The name as claimed.
        name: String,
    },
    /// GPU count outside the accepted range.
    #[error("GPU count {count} is outside {min}..={max}")]
    GpuCountOutOfRange {
        /// As claimed.
        count: i64,
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
    /// VRAM must be positive.
    #[error("VRAM per GPU must be positive, got {vram_mib} MiB")]
    VramNotPositive {
        /// As claimed.
        vram_mib: i64,
    },
    /// More VRAM than the named GPU has.
    #[error("{gpu} has at most {max_mib} MiB per GPU, claimed {claimed_mib}")]
    VramExceedsGpu {
        /// The GPU model.
        gpu: GpuModel,
        /// As claimed.
        claimed_mib: i64,
        /// The table figure plus tolerance.
        max_mib: i64,
    },
    /// Latitude outside [-90, 90] or not finite.
    #[error("latitude {lat} is outside [-90, 90]")]
    LatitudeOutOfRange {
        /// As claimed.
        lat: f64,
    },
    /// Longitude outside [-180, 180] or not finite.
    #[error("longitude {lon} is outside [-180, 180]")]
    LongitudeOutOfRange {
        /// As claimed.
        lon: f64,
    },
    /// Region label malformed.
    #[error("region {region:?} is invalid: {reason}")]
    BadRegion {
        /// As claimed.
        region: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A price outside the accepted bounds.
    #[error("{field} = {value} micro-USD is outside {min}..={max}")]
    PriceOutOfRange {
        /// Which price (`price_per_hour_micros`, `MODEL.input_per_mtok_micros`, ...).
        field: String,
        /// As claimed.
        value: i64,
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
    /// Too many model offers.
    #[error("{count} model offers, at most {max} allowed")]
    TooManyOffers {
        /// As claimed.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A model name is empty or too long.
    #[error("model name must be 1..={max} bytes, got {len}")]
    BadModelName {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The same model offered twice.
    #[error("model {model:?} offered more than once")]
    DuplicateOffer {
        /// The model.
        model: String,
    },
    /// A size field of an offer is not positive.
    #[error("{model}: {field} must be positive, got {value}")]
    OfferFieldNotPositive {
        /// The model.
        model: String,
        /// The field.
        field: &'static str,
        /// As claimed.
        value: i64,
    },
    /// The offered model does not fit this provider's hardware.
    #[error(
        "{model} needs {need_mib} MiB; one GPU has {per_gpu_mib} MiB and the \
         {interconnect:?} box {box_mib} MiB"
    )]
    OfferDoesNotFit {
        /// The model.
        model: String,
        /// VRAM it needs.
        need_mib: u64,
        /// VRAM of one GPU.
        per_gpu_mib: u64,
        /// VRAM usable across GPUs (only with a fast interconnect).
        box_mib: u64,
        /// The provider's interconnect.
        interconnect: Interconnect,
    },
    /// A throughput figure outside the accepted range.
    #[error("{model}: {field} = {value} tok/s is outside (0, {max}]")]
    ThroughputOutOfRange {
        /// The model.
        model: String,
        /// "prefill_tps" or "decode_tps".
        field: &'static str,
        /// As claimed.
        value: f64,
        /// The bound.
        max: f64,
    },
    /// Max concurrency outside the accepted range.
    #[error("max concurrency {value} is outside {min}..={max}")]
    ConcurrencyOutOfRange {
        /// As claimed.
        value: i64,
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
}

/// A registry operation was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RegistryError {
    /// The claims were invalid.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// A provider tried to write another provider's record.
    #[error("provider {authenticated} may not change the record of {claimed}")]
    NotOwner {
        /// Who is connected.
        authenticated: ProviderId,
        /// Whose record the claims name.
        claimed: ProviderId,
    },
    /// No such provider.
    #[error("unknown provider {id}")]
    UnknownProvider {
        /// The id.
        id: ProviderId,
    },
    /// The provider does not offer that model.
    #[error("provider {id} does not offer model {model:?}")]
    UnknownOffer {
        /// The provider.
        id: ProviderId,
        /// The model.
        model: String,
    },
    /// A measurement outside its plausible range.
    #[error("{what} = {value} is outside {min}..={max}")]
    MeasurementOutOfRange {
        /// Which measurement.
        what: &'static str,
        /// The value.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// The registry is full.
    #[error("registry holds {max} providers already")]
    Full {
        /// The bound.
        max: usize,
    },
}

/// A request could not be placed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlacementError {
    /// No provider offers the model and the catalog does not know it.
    #[error("unknown model {model:?}")]
    UnknownModel {
        /// The model id.
        model: String,
    },
    /// A token count outside the accepted range.
    #[error("{field} = {value} is outside 0..={max}")]
    TokensOutOfRange {
        /// "prompt_tokens" or "max_output_tokens".
        field: &'static str,
        /// The value.
        value: u64,
        /// The bound.
        max: u64,
    },
    /// Every candidate failed a filter.
    #[error("no feasible provider for {model:?} among {candidates} candidates ({rejections})")]
    NoFeasibleProvider {
        /// The model (or "fine-tune").
        model: String,
        /// Providers examined.
        candidates: usize,
        /// How many failed each filter first.
        rejections: RejectionCounts,
    },
    /// A job used up its attempts.
    #[error("job used {attempts} of {max} attempts")]
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
        /// The limit.
        max: u32,
    },
}

/// A workload class string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WorkloadParseError {
    /// Empty input.
    #[error("empty workload class")]
    Empty,
    /// Not "interactive", "batch" or "fine-tune".
    #[error("unknown workload class {value:?} (expected interactive, batch or fine-tune)")]
    UnknownClass {
        /// The class part of the input.
        value: String,
    },
    /// A parameter the class does not take.
    #[error("workload class {class} takes no parameter {key:?}")]
    UnknownParameter {
        /// The class.
        class: &'static str,
        /// The key.
        key: String,
    },
    /// A parameter without `=` or with a non-numeric value.
    #[error("bad parameter {param:?}")]
    BadParameter {
        /// The parameter text.
        param: String,
    },
    /// A numeric parameter outside its range.
    #[error("{key} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value.
        value: u64,
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
}

/// A configuration value is unusable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A weight is negative or not finite, or a class's weights sum to zero.
    #[error("{class} weight {component} = {value} is invalid (finite, >= 0, sum > 0)")]
    BadWeight {
        /// The class.
        class: &'static str,
        /// The component ("cost", "latency", ... or "sum").
        component: &'static str,
        /// The value.
        value: f64,
    },
    /// A numeric setting outside its range.
    #[error("{field} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// The setting.
        field: &'static str,
        /// The value.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

/// A plan input is unusable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// The fleet has no providers.
    #[error("the fleet is empty")]
    EmptyFleet,
    /// The workload mix has no items or no positive share.
    #[error("the workload mix is empty")]
    EmptyMix,
    /// A fleet entry was rejected.
    #[error("fleet entry {index}: {source}")]
    Fleet {
        /// Entry index.
        index: usize,
        /// Why.
        source: RegistryError,
    },
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
