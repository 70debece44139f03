//! Provider listing for `GET /v1/providers` and `proofmesh providers`: a
//! query with filters and paging, and a view that adds derived fields
//! (architecture, year, effective attestation, cooldown) to the record, so
//! every claim is shown with its provenance.

use serde::{Deserialize, Serialize};

use crate::gpu::{Architecture, GpuModel};
use crate::provider::{AttestationLevel, ProviderRecord};
use crate::registry::Registry;

/// Filters for a listing; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderQuery {
    /// Offers this model.
    pub model: Option<String>,
    /// Has it loaded (with `model`).
    pub loaded_only: bool,
    /// In this region.
    pub region: Option<String>,
    /// With this GPU.
    pub gpu: Option<GpuModel>,
    /// Architecture at least this new.
    pub min_architecture: Option<Architecture>,
    /// Effective (attested) level at least this.
    pub min_attestation: Option<AttestationLevel>,
    /// At least this much VRAM usable by one model, MiB.
    pub min_vram_mib: Option<u64>,
    /// At most this price per hour, micro-USD.
    pub max_price_per_hour_micros: Option<u64>,
    /// Only those schedulable now (not banned, not cooling down, room left).
    pub available_only: bool,
    /// Now, unix ms (for cooldowns).
    pub now_ms: u64,
    /// Skip this many (after filtering, by id).
    pub offset: usize,
    /// Return at most this many (0 = 100).
    pub limit: usize,
}

/// A record plus derived fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderView {
    /// The record (every claim with its provenance).
    #[serde(flatten)]
    pub record: ProviderRecord,
    /// Architecture of its GPU.
    pub architecture: Architecture,
    /// Year its GPU entered service.
    pub gpu_year: u16,
    /// The attestation level that counts.
    pub effective_attestation: AttestationLevel,
    /// Whether it is cooling down now.
    pub in_cooldown: bool,
}

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 1_000;

impl ProviderQuery {
    fn matches(&self, r: &ProviderRecord, queue_factor: u32) -> bool {
        let hw = &r.hardware.value;
        let spec = hw.gpu.spec();
        let offer_ok = self
            .model
            .as_ref()
            .is_none_or(|m| r.offer(m).is_some_and(|o| o.loaded || !self.loaded_only));
        let room =
            r.load.active + r.load.queued < r.load.max_concurrency.saturating_mul(queue_factor);
        let available = !r.banned && !r.cooldown.active(self.now_ms) && room;
        offer_ok
            && self
                .region
                .as_ref()
                .is_none_or(|x| *x == r.location.value.region)
            && self.gpu.is_none_or(|g| g == hw.gpu)
            && self.min_architecture.is_none_or(|a| spec.architecture >= a)
            && self
                .min_attestation
                .is_none_or(|a| r.effective_attestation() >= a)
            && self.min_vram_mib.is_none_or(|v| hw.box_vram_mib() >= v)
            && self
                .max_price_per_hour_micros
                .is_none_or(|p| r.price_per_hour_micros <= p)
            && (!self.available_only || available)
    }
}

impl Registry {
    /// Providers matching `q`, sorted by id, paged.
    pub fn list(&self, q: &ProviderQuery) -> Vec<ProviderView> {
        let qf = self.config().queue_factor;
        let mut rows: Vec<&ProviderRecord> = self
            .records()
            .map(|(_, r)| r)
            .filter(|r| q.matches(r, qf))
            .collect();
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        let limit = if q.limit == 0 {
            100
        } else {
            q.limit.min(MAX_LIMIT)
        };
        rows.into_iter()
            .skip(q.offset)
            .take(limit)
            .map(|r| ProviderView {
                architecture: r.hardware.value.gpu.spec().architecture,
                gpu_year: r.hardware.value.gpu.spec().year,
                effective_attestation: r.effective_attestation(),
                in_cooldown: r.cooldown.active(q.now_ms),
                record: r.clone(),
            })
            .collect()
    }
}
