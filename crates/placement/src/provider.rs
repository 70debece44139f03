//! The provider model: what a provider claims ([`ProviderClaims`], untrusted
//! input with signed integers so nonsense gets a named error instead of a
//! parse failure), what survives validation ([`ValidClaims`]), and the
//! registry's record of it ([`ProviderRecord`]) with every claim marked by
//! its [`Provenance`]. Hardware-fit arithmetic ([`Hardware::fit`]) lives here
//! because both validation and placement use it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ClaimError;
use crate::failover::CooldownState;
use crate::gpu::GpuModel;
use crate::latency::{GeoPoint, LocationCheck, RttTracker};

/// Bounds applied to claims; each names the absurdity it rejects.
pub mod limits {
    /// Longest provider id (an Ed25519 key is 64 hex chars or 43 base64).
    pub const MAX_ID_LEN: usize = 256;
    /// Most GPUs in one provider (a 64-GPU NVLink/IB pod).
    pub const MAX_GPUS: i64 = 64;
    /// Claimed VRAM may exceed the table figure by this many percent
    /// (marketed "GB" vs reported "GiB").
    pub const VRAM_TOLERANCE_PCT: i64 = 5;
    /// Longest region label.
    pub const MAX_REGION_LEN: usize = 64;
    /// Highest price per GPU-hour: $100, about 8× the old AWS p5 list price
    /// per H100 ($98.32/h for 8 GPUs ≈ $12.30 per GPU).
    pub const MAX_PRICE_PER_GPU_HOUR_MICROS: i64 = 100_000_000;
    /// Highest price per 1M tokens: $1,000 (the dearest public API list
    /// price, o1-pro output, is $600/1M).
    pub const MAX_PRICE_PER_MTOK_MICROS: i64 = 1_000_000_000;
    /// Lowest price: one micro-USD (free offers are not accepted).
    pub const MIN_PRICE_MICROS: i64 = 1;
    /// Most model offers per provider.
    pub const MAX_OFFERS: usize = 256;
    /// Longest model id.
    pub const MAX_MODEL_LEN: usize = 256;
    /// Highest claimed throughput, tok/s.
    pub const MAX_TPS: f64 = 10_000_000.0;
    /// Highest max concurrency.
    pub const MAX_CONCURRENCY: i64 = 4_096;
}

/// A provider's identity (its public key in the coordinator).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderId(pub String);

impl ProviderId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ProviderId {
    fn from(s: &str) -> Self {
        ProviderId(s.to_string())
    }
}

/// How much a figure can be trusted, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Computed by us from tables and physics; nobody claimed it.
    Modelled,
    /// The provider said so.
    SelfDeclared,
    /// The coordinator measured it.
    Measured,
    /// A hardware attestation vouches for it.
    Attested,
}

/// A value and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claimed<T> {
    /// The value.
    pub value: T,
    /// Its provenance.
    pub provenance: Provenance,
}

impl<T> Claimed<T> {
    /// A self-declared value.
    pub fn declared(value: T) -> Self {
        Claimed {
            value,
            provenance: Provenance::SelfDeclared,
        }
    }
}

/// How a provider's GPUs talk to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interconnect {
    /// PCIe only: too slow for tensor parallelism across GPUs.
    Pcie,
    /// NVLink / NVSwitch.
    Nvlink,
    /// InfiniBand (or RoCE) inside one provider's cluster.
    Infiniband,
}

impl Interconnect {
    /// Fast enough to split one model across GPUs.
    pub fn is_fast(self) -> bool {
        !matches!(self, Interconnect::Pcie)
    }
}

/// Attestation level, weakest first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AttestationLevel {
    /// No hardware attestation.
    #[default]
    None,
    /// A CPU TEE (SEV-SNP / TDX) quote.
    Tee,
    /// CPU TEE plus GPU confidential-computing attestation.
    TeeGpu,
}

/// Validated hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// GPU model.
    pub gpu: GpuModel,
    /// GPUs in the box.
    pub gpu_count: u32,
    /// VRAM per GPU, MiB.
    pub vram_mib_per_gpu: u64,
    /// Interconnect between its GPUs.
    pub interconnect: Interconnect,
}

/// How a model fits a provider's hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fit")]
pub enum Fit {
    /// On `gpus` GPUs of this one provider (1 = a single GPU).
    Fits {
        /// GPUs used.
        gpus: u32,
    },
    /// Would need `gpus` GPUs, but the interconnect is PCIe.
    NeedsFastInterconnect {
        /// GPUs it would need.
        gpus: u32,
    },
    /// More than the whole box holds.
    TooLarge,
}

impl Hardware {
    /// VRAM across the box usable by one model: all GPUs with a fast
    /// interconnect, one GPU otherwise.
    pub fn box_vram_mib(&self) -> u64 {
        if self.interconnect.is_fast() {
            self.vram_mib_per_gpu * u64::from(self.gpu_count)
        } else {
            self.vram_mib_per_gpu
        }
    }

    /// Whether a model needing `need_mib` fits this one provider. A model
    /// is never split across providers (that would be tensor parallelism
    /// over WAN links).
    pub fn fit(&self, need_mib: u64) -> Fit {
        let per = self.vram_mib_per_gpu.max(1);
        let gpus = need_mib.div_ceil(per).max(1);
        if gpus > u64::from(self.gpu_count) {
            Fit::TooLarge
        } else if gpus > 1 && !self.interconnect.is_fast() {
            Fit::NeedsFastInterconnect { gpus: gpus as u32 }
        } else {
            Fit::Fits { gpus: gpus as u32 }
        }
    }

    /// Capex of the GPUs a model needing `need_mib` occupies, USD.
    pub fn occupied_capex_usd(&self, need_mib: u64) -> u64 {
        let gpus = need_mib.div_ceil(self.vram_mib_per_gpu.max(1)).max(1);
        self.gpu.spec().capex_usd * gpus.min(u64::from(self.gpu_count))
    }
}

/// Region label and coordinates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Region label, e.g. "eu-west".
    pub region: String,
    /// Coordinates.
    pub point: GeoPoint,
}

/// One model offer as claimed (untrusted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferClaim {
    /// Model id (the coordinator uses the model digest).
    pub model: String,
    /// Parameter count.
    pub params: i64,
    /// Size of the weights, bytes.
    pub size_bytes: i64,
    /// VRAM it needs, MiB.
    pub vram_mib: i64,
    /// Price per 1M input tokens, micro-USD.
    pub input_per_mtok_micros: i64,
    /// Price per 1M output tokens, micro-USD.
    pub output_per_mtok_micros: i64,
    /// Whether it is loaded now (else it can be loaded cold).
    pub loaded: bool,
    /// Claimed prefill throughput, tok/s.
    #[serde(default)]
    pub prefill_tps: Option<f64>,
    /// Claimed decode throughput, tok/s.
    #[serde(default)]
    pub decode_tps: Option<f64>,
}

/// A validated model offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Model id.
    pub model: String,
    /// Parameter count.
    pub params: u64,
    /// Size of the weights, bytes.
    pub size_bytes: u64,
    /// VRAM it needs, MiB (as claimed; the catalog's figure wins).
    pub vram_mib: u64,
    /// Price per 1M input tokens, micro-USD.
    pub input_per_mtok_micros: u64,
    /// Price per 1M output tokens, micro-USD.
    pub output_per_mtok_micros: u64,
    /// Loaded now.
    pub loaded: bool,
    /// Prefill throughput, tok/s, if claimed or measured.
    pub prefill_tps: Option<Claimed<f64>>,
    /// Decode throughput, tok/s, if claimed or measured.
    pub decode_tps: Option<Claimed<f64>>,
}

/// A provider's claims as received (untrusted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderClaims {
    /// Whose record this is.
    pub id: ProviderId,
    /// GPU model name (table name or `nvidia-smi` name).
    pub gpu: String,
    /// GPUs in the box.
    pub gpu_count: i64,
    /// VRAM per GPU, MiB.
    pub vram_mib_per_gpu: i64,
    /// Interconnect.
    pub interconnect: Interconnect,
    /// Region label.
    pub region: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Price per hour for the whole box, micro-USD.
    pub price_per_hour_micros: i64,
    /// Jobs run at once.
    pub max_concurrency: i64,
    /// Claimed attestation level (self-declared until attested).
    #[serde(default)]
    pub attestation: AttestationLevel,
    /// Models offered.
    #[serde(default)]
    pub offers: Vec<OfferClaim>,
}

/// Claims that passed [`ProviderClaims::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidClaims {
    /// Whose record.
    pub id: ProviderId,
    /// Hardware.
    pub hardware: Hardware,
    /// Location.
    pub location: Location,
    /// Price per hour, micro-USD.
    pub price_per_hour_micros: u64,
    /// Jobs at once.
    pub max_concurrency: u32,
    /// Claimed attestation.
    pub attestation: AttestationLevel,
    /// Offers.
    pub offers: Vec<Offer>,
}

fn price(field: impl FnOnce() -> String, value: i64, max: i64) -> Result<u64, ClaimError> {
    if (limits::MIN_PRICE_MICROS..=max).contains(&value) {
        Ok(value as u64)
    } else {
        Err(ClaimError::PriceOutOfRange {
            field: field(),
            value,
            min: limits::MIN_PRICE_MICROS,
            max,
        })
    }
}

fn tps(
    model: &str,
    field: &'static str,
    v: Option<f64>,
) -> Result<Option<Claimed<f64>>, ClaimError> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x > 0.0 && x <= limits::MAX_TPS => {
            Ok(Some(Claimed::declared(x)))
        }
        Some(x) => Err(ClaimError::ThroughputOutOfRange {
            model: model.to_string(),
            field,
            value: x,
            max: limits::MAX_TPS,
        }),
    }
}

fn positive(model: &str, field: &'static str, value: i64) -> Result<u64, ClaimError> {
    if value > 0 {
        Ok(value as u64)
    } else {
        Err(ClaimError::OfferFieldNotPositive {
            model: model.to_string(),
            field,
            value,
        })
    }
}

impl OfferClaim {
    fn validate(&self, hw: &Hardware) -> Result<Offer, ClaimError> {
        let m = self.model.as_str();
        if m.is_empty() || m.len() > limits::MAX_MODEL_LEN {
            return Err(ClaimError::BadModelName {
                len: m.len(),
                max: limits::MAX_MODEL_LEN,
            });
        }
        let params = positive(m, "params", self.params)?;
        let size_bytes = positive(m, "size_bytes", self.size_bytes)?;
        let vram_mib = positive(m, "vram_mib", self.vram_mib)?;
        let max = limits::MAX_PRICE_PER_MTOK_MICROS;
        let input = price(
            || format!("{m}.input_per_mtok_micros"),
            self.input_per_mtok_micros,
            max,
        )?;
        let output = price(
            || format!("{m}.output_per_mtok_micros"),
            self.output_per_mtok_micros,
            max,
        )?;
        if !matches!(hw.fit(vram_mib), Fit::Fits { .. }) {
            return Err(ClaimError::OfferDoesNotFit {
                model: m.to_string(),
                need_mib: vram_mib,
                per_gpu_mib: hw.vram_mib_per_gpu,
                box_mib: hw.box_vram_mib(),
                interconnect: hw.interconnect,
            });
        }
        Ok(Offer {
            model: m.to_string(),
            params,
            size_bytes,
            vram_mib,
            input_per_mtok_micros: input,
            output_per_mtok_micros: output,
            loaded: self.loaded,
            prefill_tps: tps(m, "prefill_tps", self.prefill_tps)?,
            decode_tps: tps(m, "decode_tps", self.decode_tps)?,
        })
    }
}

impl ProviderClaims {
    fn validate_hardware(&self) -> Result<Hardware, ClaimError> {
        let gpu = GpuModel::parse(&self.gpu).ok_or_else(|| ClaimError::UnknownGpu {
            name: self.gpu.clone(),
        })?;
        if !(1..=limits::MAX_GPUS).contains(&self.gpu_count) {
            return Err(ClaimError::GpuCountOutOfRange {
                count: self.gpu_count,
                min: 1,
                max: limits::MAX_GPUS,
            });
        }
        if self.vram_mib_per_gpu <= 0 {
            return Err(ClaimError::VramNotPositive {
                vram_mib: self.vram_mib_per_gpu,
            });
        }
        let table_mib = i64::from(gpu.spec().vram_gib) * 1024;
        let max_mib = table_mib + table_mib * limits::VRAM_TOLERANCE_PCT / 100;
        if self.vram_mib_per_gpu > max_mib {
            return Err(ClaimError::VramExceedsGpu {
                gpu,
                claimed_mib: self.vram_mib_per_gpu,
                max_mib,
            });
        }
        Ok(Hardware {
            gpu,
            gpu_count: self.gpu_count as u32,
            vram_mib_per_gpu: self.vram_mib_per_gpu as u64,
            interconnect: self.interconnect,
        })
    }

    fn validate_location(&self) -> Result<Location, ClaimError> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(ClaimError::LatitudeOutOfRange { lat: self.lat });
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(ClaimError::LongitudeOutOfRange { lon: self.lon });
        }
        let r = &self.region;
        let bad = |reason| ClaimError::BadRegion {
            region: r.clone(),
            reason,
        };
        if r.is_empty() || r.len() > limits::MAX_REGION_LEN {
            return Err(bad("must be 1..=64 bytes"));
        }
        if !r
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("only lowercase letters, digits and '-'"));
        }
        Ok(Location {
            region: r.clone(),
            point: GeoPoint::new(self.lat, self.lon),
        })
    }

    /// Checks every claim against its bounds and the GPU table; returns the
    /// typed form or the first error found.
    pub fn validate(&self) -> Result<ValidClaims, ClaimError> {
        let len = self.id.0.len();
        if len == 0 || len > limits::MAX_ID_LEN {
            return Err(ClaimError::BadProviderId {
                len,
                max: limits::MAX_ID_LEN,
            });
        }
        let hardware = self.validate_hardware()?;
        let location = self.validate_location()?;
        let hourly_max = limits::MAX_PRICE_PER_GPU_HOUR_MICROS * i64::from(hardware.gpu_count);
        let price_per_hour_micros = price(
            || "price_per_hour_micros".into(),
            self.price_per_hour_micros,
            hourly_max,
        )?;
        if !(1..=limits::MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(ClaimError::ConcurrencyOutOfRange {
                value: self.max_concurrency,
                min: 1,
                max: limits::MAX_CONCURRENCY,
            });
        }
        if self.offers.len() > limits::MAX_OFFERS {
            return Err(ClaimError::TooManyOffers {
                count: self.offers.len(),
                max: limits::MAX_OFFERS,
            });
        }
        let mut offers: Vec<Offer> = Vec::with_capacity(self.offers.len());
        for o in &self.offers {
            if offers.iter().any(|p| p.model == o.model) {
                return Err(ClaimError::DuplicateOffer {
                    model: o.model.clone(),
                });
            }
            offers.push(o.validate(&hardware)?);
        }
        Ok(ValidClaims {
            id: self.id.clone(),
            hardware,
            location,
            price_per_hour_micros,
            max_concurrency: self.max_concurrency as u32,
            attestation: self.attestation,
            offers,
        })
    }
}

/// Current load as the coordinator sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Load {
    /// Jobs running.
    pub active: u32,
    /// Jobs waiting for a slot.
    pub queued: u32,
    /// Jobs it runs at once.
    pub max_concurrency: u32,
}

/// The registry's record of one provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderRecord {
    /// Identity.
    pub id: ProviderId,
    /// Hardware, self-declared until attested.
    pub hardware: Claimed<Hardware>,
    /// Location, self-declared until checked against measured RTT.
    pub location: Claimed<Location>,
    /// Measured RTT against the claimed coordinates.
    pub location_check: LocationCheck,
    /// Price per hour for the box, micro-USD.
    pub price_per_hour_micros: u64,
    /// Models offered.
    pub offers: Vec<Offer>,
    /// Attestation level; only `Attested` provenance satisfies a trust
    /// requirement.
    pub attestation: Claimed<AttestationLevel>,
    /// Reputation, basis points (10,000 = perfect).
    pub reputation_bp: u16,
    /// Uptime, basis points.
    pub uptime_bp: u16,
    /// Load.
    pub load: Load,
    /// Heartbeat RTT to the coordinator.
    pub rtt: RttTracker,
    /// RTT from clients, by client region, where known.
    pub client_rtt: BTreeMap<String, RttTracker>,
    /// Measured mean job service time, ms.
    pub mean_service_ms: Option<f64>,
    /// When throughput was last measured, unix ms (0: never).
    pub measured_at_ms: u64,
    /// Failure cooldown.
    pub cooldown: CooldownState,
    /// Excluded from scheduling (e.g. after failed audits).
    pub banned: bool,
    /// First registration, unix ms.
    pub registered_at_ms: u64,
    /// Last claims update, unix ms.
    pub updated_at_ms: u64,
}

impl ProviderRecord {
    /// The attestation level that counts for trust filters.
    pub fn effective_attestation(&self) -> AttestationLevel {
        if self.attestation.provenance == Provenance::Attested {
            self.attestation.value
        } else {
            AttestationLevel::None
        }
    }

    /// The offer for `model`, if any.
    pub fn offer(&self, model: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.model == model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw(gpu: GpuModel, count: u32, per: u64, ic: Interconnect) -> Hardware {
        Hardware {
            gpu,
            gpu_count: count,
            vram_mib_per_gpu: per,
            interconnect: ic,
        }
    }

    #[test]
    fn fit_rules_never_split_without_fast_links() {
        let pcie = hw(GpuModel::Rtx4090, 4, 24_576, Interconnect::Pcie);
        assert_eq!(pcie.fit(10_000), Fit::Fits { gpus: 1 });
        assert_eq!(pcie.fit(30_000), Fit::NeedsFastInterconnect { gpus: 2 });
        assert_eq!(pcie.fit(200_000), Fit::TooLarge);
        let nv = hw(GpuModel::H100, 8, 81_920, Interconnect::Nvlink);
        assert_eq!(nv.fit(150_000), Fit::Fits { gpus: 2 });
        assert_eq!(nv.fit(8 * 81_920), Fit::Fits { gpus: 8 });
        assert_eq!(nv.fit(8 * 81_920 + 1), Fit::TooLarge);
        assert_eq!(nv.box_vram_mib(), 8 * 81_920);
        assert_eq!(pcie.box_vram_mib(), 24_576);
        assert_eq!(
            nv.occupied_capex_usd(150_000),
            2 * GpuModel::H100.spec().capex_usd
        );
    }
}
