//! The provider registry: records, the hot per-provider state placement
//! reads, the model catalog, and the candidate indexes — kept consistent by
//! every update. All updates take `&mut self` and are cheap for the frequent
//! kinds (load, RTT samples, throughput, cooldown: O(1)); changes to what the
//! index sorts by (claims, reputation, attestation, uptime, loaded models)
//! re-index that one provider. Placement takes `&self`, so a coordinator can
//! share the registry behind a read-write lock.

use std::collections::HashMap;

use crate::config::PlacementConfig;
use crate::economics::{modelled_decode_tps, modelled_prefill_tps};
use crate::error::{ConfigError, RegistryError};
use crate::failover::{CooldownState, FailureKind};
use crate::index::{BucketKey, Entry, Index, Traits};
use crate::latency::{self, fiber_floor_rtt_ms, haversine_km, GeoPoint, LocationCheck, RttSource};
use crate::provider::{
    AttestationLevel, Claimed, Fit, Hardware, Load, Offer, Provenance, ProviderClaims, ProviderId,
    ProviderRecord,
};
use crate::score::{self, reference_capex_usd};
use crate::workload::{ClassKind, ModelSpec};

/// Reputation of a provider never scored yet, basis points.
pub const INITIAL_REPUTATION_BP: u16 = 5_000;
/// Weight of a new service-time sample in the moving average.
const SERVICE_EWMA_ALPHA: f64 = 0.2;

/// Hot per-provider state, dense by slot.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub banned: bool,
    pub cooldown_until_ms: u64,
    pub active: u32,
    pub queued: u32,
    pub max_concurrency: u32,
    pub attestation: AttestationLevel,
    pub reputation_bp: u16,
    pub uptime_bp: u16,
    pub hardware: Hardware,
    pub price_per_hour: u64,
    pub point: GeoPoint,
    pub coord_floor_ms: f64,
    pub coord_rtt: (f64, RttSource),
    pub service_ms: Option<f64>,
    /// When throughput was last measured, unix ms (0: never).
    pub measured_at_ms: u64,
}

/// One model: its spec and its index.
#[derive(Clone, Debug)]
pub(crate) struct ModelIndex {
    pub spec: ModelSpec,
    /// Whether the spec came from the coordinator (else from an offer).
    pub authoritative: bool,
    pub reference_capex: Option<u64>,
    pub cold_load_ms: f64,
    pub index: Index,
}

/// All providers and the indexes over them.
#[derive(Clone, Debug)]
pub struct Registry {
    pub(crate) cfg: PlacementConfig,
    pub(crate) coord_unit: [f64; 3],
    pub(crate) records: Vec<Option<ProviderRecord>>,
    pub(crate) live: Vec<Live>,
    free: Vec<u32>,
    pub(crate) ids: HashMap<ProviderId, u32>,
    pub(crate) models: Vec<ModelIndex>,
    pub(crate) model_ids: HashMap<String, u32>,
    pub(crate) fine_tune: Index,
    /// Per slot: (model index, entry id) of each offer entry.
    pub(crate) refs: Vec<Vec<(u32, u32)>>,
    /// Per slot: fine-tune entry id.
    pub(crate) ft_refs: Vec<Option<u32>>,
}

const MODEL_CLASSES: [bool; 3] = [true, true, false];
const FT_CLASSES: [bool; 3] = [false, false, true];

impl Registry {
    /// An empty registry; the configuration is validated here.
    pub fn new(cfg: PlacementConfig) -> Result<Registry, ConfigError> {
        cfg.validate()?;
        let coord_unit = cfg.coordinator.unit();
        Ok(Registry {
            coord_unit,
            cfg,
            records: Vec::new(),
            live: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            models: Vec::new(),
            model_ids: HashMap::new(),
            fine_tune: Index::new(FT_CLASSES, coord_unit),
            refs: Vec::new(),
            ft_refs: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PlacementConfig {
        &self.cfg
    }

    /// Providers registered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// One provider's record.
    pub fn get(&self, id: &ProviderId) -> Option<&ProviderRecord> {
        self.ids
            .get(id)
            .and_then(|&s| self.records[s as usize].as_ref())
    }

    /// Models the registry indexes (registered, or offered by a provider).
    pub fn model_count(&self) -> usize {
        self.models.len()
    }

    /// Live offers of `model` in its index: the candidates a placement for
    /// it starts from, before any filter (0 for an unknown model).
    pub fn candidates(&self, model: &str) -> usize {
        self.model_ids
            .get(model)
            .map_or(0, |&m| self.models[m as usize].index.live_entries)
    }

    /// The spec the registry uses for a model.
    pub fn model_spec(&self, model: &str) -> Option<&ModelSpec> {
        self.model_ids
            .get(model)
            .map(|&m| &self.models[m as usize].spec)
    }

    /// Every record, in slot order.
    pub(crate) fn records(&self) -> impl Iterator<Item = (u32, &ProviderRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i as u32, r)))
    }

    fn slot(&self, id: &ProviderId) -> Result<u32, RegistryError> {
        self.ids
            .get(id)
            .copied()
            .ok_or_else(|| RegistryError::UnknownProvider { id: id.clone() })
    }

    pub(crate) fn record(&self, slot: u32) -> &ProviderRecord {
        self.records[slot as usize]
            .as_ref()
            .expect("live slot has a record")
    }

    fn record_mut(&mut self, slot: u32) -> &mut ProviderRecord {
        self.records[slot as usize]
            .as_mut()
            .expect("live slot has a record")
    }

    /// Registers the coordinator's authoritative spec for a model; its
    /// index is rebuilt with it.
    pub fn register_model(&mut self, spec: ModelSpec) {
        let m = self.model_index(&spec, true);
        let holders: Vec<u32> = self.holders_of(m);
        for &slot in &holders {
            self.unindex(slot);
        }
        self.set_spec(m, spec, true);
        for &slot in &holders {
            self.index(slot);
        }
    }

    fn holders_of(&self, m: u32) -> Vec<u32> {
        let ix = &self.models[m as usize].index;
        ix.entries
            .iter()
            .filter(|e| e.alive)
            .map(|e| e.slot)
            .collect()
    }

    fn set_spec(&mut self, m: u32, spec: ModelSpec, authoritative: bool) {
        let mi = &mut self.models[m as usize];
        mi.reference_capex = reference_capex_usd(spec.vram_mib);
        mi.cold_load_ms =
            latency::cold_load_ms(spec.size_bytes, self.cfg.latency.cold_load_mb_per_s);
        mi.spec = spec;
        mi.authoritative = authoritative;
    }

    /// The index of a model, created (with `spec`) if new.
    fn model_index(&mut self, spec: &ModelSpec, authoritative: bool) -> u32 {
        if let Some(&m) = self.model_ids.get(&spec.id) {
            return m;
        }
        let m = self.models.len() as u32;
        self.models.push(ModelIndex {
            spec: spec.clone(),
            authoritative,
            reference_capex: None,
            cold_load_ms: 0.0,
            index: Index::new(MODEL_CLASSES, self.coord_unit),
        });
        self.set_spec(m, spec.clone(), authoritative);
        self.model_ids.insert(spec.id.clone(), m);
        m
    }

    /// Adds or replaces a provider's claims. `authenticated` is the identity
    /// the connection proved; it must match the claims' id, so no provider
    /// can write another's record. Measured state (RTT, load, reputation,
    /// cooldown, measured throughput) survives an update.
    pub fn upsert(
        &mut self,
        authenticated: &ProviderId,
        claims: &ProviderClaims,
        now_ms: u64,
    ) -> Result<(), RegistryError> {
        if &claims.id != authenticated {
            return Err(RegistryError::NotOwner {
                authenticated: authenticated.clone(),
                claimed: claims.id.clone(),
            });
        }
        let v = claims.validate()?;
        let coord_floor_ms =
            fiber_floor_rtt_ms(haversine_km(self.cfg.coordinator, v.location.point));
        let old = match self.ids.get(&v.id).copied() {
            Some(slot) => {
                self.unindex(slot);
                self.records[slot as usize].take()
            }
            None if self.ids.len() >= self.cfg.max_providers => {
                return Err(RegistryError::Full {
                    max: self.cfg.max_providers,
                });
            }
            None => None,
        };
        let mut offers = v.offers;
        if let Some(o) = &old {
            keep_measured_throughput(&mut offers, &o.offers);
        }
        let attestation = match &old {
            Some(o) if o.attestation.value == v.attestation => o.attestation,
            _ => Claimed::declared(v.attestation),
        };
        let rec = ProviderRecord {
            id: v.id.clone(),
            hardware: Claimed::declared(v.hardware),
            location: Claimed::declared(v.location),
            location_check: LocationCheck::Unverified,
            price_per_hour_micros: v.price_per_hour_micros,
            offers,
            attestation,
            reputation_bp: old
                .as_ref()
                .map_or(INITIAL_REPUTATION_BP, |o| o.reputation_bp),
            uptime_bp: old.as_ref().map_or(0, |o| o.uptime_bp),
            load: Load {
                max_concurrency: v.max_concurrency,
                ..old.as_ref().map(|o| o.load).unwrap_or_default()
            },
            rtt: old.as_ref().map(|o| o.rtt.clone()).unwrap_or_default(),
            client_rtt: old
                .as_ref()
                .map(|o| o.client_rtt.clone())
                .unwrap_or_default(),
            mean_service_ms: old.as_ref().and_then(|o| o.mean_service_ms),
            measured_at_ms: old.as_ref().map_or(0, |o| o.measured_at_ms),
            cooldown: old.as_ref().map(|o| o.cooldown).unwrap_or_default(),
            banned: old.as_ref().is_some_and(|o| o.banned),
            registered_at_ms: old.as_ref().map_or(now_ms, |o| o.registered_at_ms),
            updated_at_ms: now_ms,
        };
        let slot = self.store(rec, coord_floor_ms);
        self.refresh_rtt(slot);
        self.index(slot);
        Ok(())
    }

    /// Puts a record in its slot (reusing the id's slot or a free one) and
    /// rebuilds its hot state.
    fn store(&mut self, rec: ProviderRecord, coord_floor_ms: f64) -> u32 {
        let live = Live {
            banned: rec.banned,
            cooldown_until_ms: rec.cooldown.until_ms,
            active: rec.load.active,
            queued: rec.load.queued,
            max_concurrency: rec.load.max_concurrency,
            attestation: rec.effective_attestation(),
            reputation_bp: rec.reputation_bp,
            uptime_bp: rec.uptime_bp,
            hardware: rec.hardware.value,
            price_per_hour: rec.price_per_hour_micros,
            point: rec.location.value.point,
            coord_floor_ms,
            coord_rtt: (
                coord_floor_ms * self.cfg.latency.path_stretch,
                RttSource::Modelled,
            ),
            service_ms: rec.mean_service_ms,
            measured_at_ms: rec.measured_at_ms,
        };
        let slot = match self.ids.get(&rec.id) {
            Some(&s) => s,
            None => {
                let s = self.free.pop().unwrap_or_else(|| {
                    self.records.push(None);
                    self.live.push(live.clone());
                    self.refs.push(Vec::new());
                    self.ft_refs.push(None);
                    (self.records.len() - 1) as u32
                });
                self.ids.insert(rec.id.clone(), s);
                s
            }
        };
        self.live[slot as usize] = live;
        self.records[slot as usize] = Some(rec);
        slot
    }

    /// Removes a provider; returns its record.
    pub fn remove(&mut self, id: &ProviderId) -> Option<ProviderRecord> {
        let slot = self.ids.remove(id)?;
        self.unindex(slot);
        self.free.push(slot);
        self.records[slot as usize].take()
    }

    /// Adds a provider's entries to every index.
    fn index(&mut self, slot: u32) {
        let rec = self.records[slot as usize].take().expect("record present");
        let live = self.live[slot as usize].clone();
        let traits = Traits {
            point: live.point,
            attestation: live.attestation,
            reputation_bp: live.reputation_bp,
            uptime_bp: live.uptime_bp,
            box_vram_mib: live.hardware.box_vram_mib(),
        };
        let mut refs = Vec::with_capacity(rec.offers.len());
        for offer in &rec.offers {
            let spec = ModelSpec {
                id: offer.model.clone(),
                params: offer.params,
                size_bytes: offer.size_bytes,
                vram_mib: offer.vram_mib,
            };
            let m = self.model_index(&spec, false);
            let entry = self.model_entry(slot, offer, &live, m);
            let key = BucketKey::Region {
                region: rec.location.value.region.clone(),
                cold: !offer.loaded,
                gpu: live.hardware.gpu,
            };
            let id = self.models[m as usize].index.insert(key, &traits, entry);
            refs.push((m, id));
        }
        let ft = self.ft_entry(slot, &live);
        let hw = live.hardware;
        let key = BucketKey::Shape {
            gpu: hw.gpu,
            gpus: hw.gpu_count,
            interconnect: hw.interconnect,
        };
        self.ft_refs[slot as usize] = Some(self.fine_tune.insert(key, &traits, ft));
        self.refs[slot as usize] = refs;
        self.records[slot as usize] = Some(rec);
    }

    /// Removes a provider's entries from every index.
    fn unindex(&mut self, slot: u32) {
        for (m, id) in std::mem::take(&mut self.refs[slot as usize]) {
            self.models[m as usize].index.remove(id);
        }
        if let Some(id) = self.ft_refs[slot as usize].take() {
            self.fine_tune.remove(id);
        }
    }

    fn reindex(&mut self, slot: u32) {
        self.unindex(slot);
        self.index(slot);
    }

    fn model_entry(&self, slot: u32, offer: &Offer, live: &Live, m: u32) -> Entry {
        let mi = &self.models[m as usize];
        let hw = live.hardware;
        let (gpus, fits) = match hw.fit(mi.spec.vram_mib) {
            Fit::Fits { gpus } => (gpus, true),
            _ => (hw.gpu_count, false),
        };
        let (prefill, decode, source) = throughput(offer, hw, gpus);
        let cost = score::cost_score(
            score::blended_per_mtok(offer.input_per_mtok_micros, offer.output_per_mtok_micros),
            self.cfg.cost_ref_per_mtok_micros,
        );
        let reputation = score::reputation_score(live.reputation_bp);
        let tier = score::tier_score(mi.reference_capex, hw.occupied_capex_usd(mi.spec.vram_mib));
        let mut statics = [0.0; 3];
        for kind in [ClassKind::Interactive, ClassKind::Batch] {
            let p = self.cfg.policy(kind);
            let pen = if offer.loaded { 0.0 } else { p.cold_penalty };
            statics[kind as usize] = score::static_part(&p.weights, cost, reputation, tier, pen);
        }
        Entry {
            slot,
            cold: !offer.loaded,
            bucket: 0,
            input_price: offer.input_per_mtok_micros,
            output_price: offer.output_per_mtok_micros,
            prefill_tps: prefill,
            decode_tps: decode,
            tps_source: source,
            fits,
            cost,
            reputation,
            tier,
            statics,
            alive: true,
        }
    }

    fn ft_entry(&self, slot: u32, live: &Live) -> Entry {
        let cost = score::cost_score(live.price_per_hour, self.cfg.cost_ref_per_hour_micros);
        let reputation = score::reputation_score(live.reputation_bp);
        let p = self.cfg.policy(ClassKind::FineTune);
        // Tier depends on the request's VRAM need, so it is dynamic here.
        let statics = [
            0.0,
            0.0,
            score::static_part(&p.weights, cost, reputation, 0.0, 0.0),
        ];
        Entry {
            slot,
            cold: false,
            bucket: 0,
            input_price: live.price_per_hour,
            output_price: 0,
            prefill_tps: 0.0,
            decode_tps: 0.0,
            tps_source: Provenance::Modelled,
            fits: false,
            cost,
            reputation,
            tier: 0.0,
            statics,
            alive: true,
        }
    }

    /// Recomputes the effective coordinator RTT and the location check.
    fn refresh_rtt(&mut self, slot: u32) {
        let min_samples = self.cfg.latency.min_samples;
        let stretch = self.cfg.latency.path_stretch;
        let floor = self.live[slot as usize].coord_floor_ms;
        let rec = self.records[slot as usize]
            .as_mut()
            .expect("record present");
        rec.location_check = LocationCheck::judge(&rec.rtt, floor, min_samples);
        let measured = rec.rtt.median_ms(min_samples);
        self.live[slot as usize].coord_rtt = latency::leg_rtt_ms(measured, floor, stretch);
    }

    /// Records one heartbeat round trip to the coordinator, µs. Returns the
    /// location check it leads to.
    pub fn record_rtt(
        &mut self,
        id: &ProviderId,
        rtt_us: u32,
    ) -> Result<LocationCheck, RegistryError> {
        let slot = self.slot(id)?;
        check_range("rtt_us", f64::from(rtt_us), 1.0, 60e6)?;
        self.record_mut(slot).rtt.insert(rtt_us);
        self.refresh_rtt(slot);
        Ok(self.record(slot).location_check)
    }

    /// Records a round trip between a client region and the provider, µs
    /// (used by the direct topology). At most 64 client regions are kept.
    pub fn record_client_rtt(
        &mut self,
        id: &ProviderId,
        client_region: &str,
        rtt_us: u32,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        check_range("rtt_us", f64::from(rtt_us), 1.0, 60e6)?;
        let rec = self.record_mut(slot);
        if !rec.client_rtt.contains_key(client_region) && rec.client_rtt.len() >= 64 {
            return Ok(());
        }
        rec.client_rtt
            .entry(client_region.to_string())
            .or_default()
            .insert(rtt_us);
        Ok(())
    }

    /// Sets jobs running and queued.
    pub fn set_load(
        &mut self,
        id: &ProviderId,
        active: u32,
        queued: u32,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        let l = &mut self.live[slot as usize];
        l.active = active;
        l.queued = queued;
        let rec = self.record_mut(slot);
        rec.load.active = active;
        rec.load.queued = queued;
        Ok(())
    }

    /// Records measured throughput for a model (marks it `Measured`).
    pub fn record_throughput(
        &mut self,
        id: &ProviderId,
        model: &str,
        prefill_tps: Option<f64>,
        decode_tps: Option<f64>,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        for v in [prefill_tps, decode_tps].into_iter().flatten() {
            check_range("tps", v, 1e-3, crate::provider::limits::MAX_TPS)?;
        }
        let rec = self.record_mut(slot);
        let Some(i) = rec.offers.iter().position(|o| o.model == model) else {
            return Err(RegistryError::UnknownOffer {
                id: id.clone(),
                model: model.to_string(),
            });
        };
        let measured = |v| Claimed {
            value: v,
            provenance: Provenance::Measured,
        };
        let o = &mut rec.offers[i];
        if let Some(v) = prefill_tps {
            o.prefill_tps = Some(measured(v));
        }
        if let Some(v) = decode_tps {
            o.decode_tps = Some(measured(v));
        }
        let offer = o.clone();
        let hw = self.live[slot as usize].hardware;
        let m = self.model_ids[model];
        if let Some(&(_, eid)) = self.refs[slot as usize].iter().find(|&&(mm, _)| mm == m) {
            let gpus = match hw.fit(self.models[m as usize].spec.vram_mib) {
                Fit::Fits { gpus } => gpus,
                _ => hw.gpu_count,
            };
            let (p, d, src) = throughput(&offer, hw, gpus);
            self.models[m as usize].index.set_throughput(eid, p, d, src);
        }
        Ok(())
    }

    /// Folds one job's measured throughput into the moving averages (weight
    /// `latency.throughput_alpha` for the new sample; the first measurement
    /// replaces a claimed or modelled figure outright) and stamps the time,
    /// which resets the stale-estimate probe clock. Either rate may be
    /// absent (a one-token answer measures no decode rate).
    pub fn record_measurement(
        &mut self,
        id: &ProviderId,
        model: &str,
        prefill_tps: Option<f64>,
        decode_tps: Option<f64>,
        now_ms: u64,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        let alpha = self.cfg.latency.throughput_alpha;
        let rec = self.record(slot);
        let Some(o) = rec.offers.iter().find(|o| o.model == model) else {
            return Err(RegistryError::UnknownOffer {
                id: id.clone(),
                model: model.to_string(),
            });
        };
        let blend = |old: Option<Claimed<f64>>, new: Option<f64>| match (old, new) {
            (Some(c), Some(v)) if c.provenance == Provenance::Measured => {
                Some(c.value + alpha * (v - c.value))
            }
            (_, v) => v,
        };
        let p = blend(o.prefill_tps, prefill_tps);
        let d = blend(o.decode_tps, decode_tps);
        self.record_throughput(id, model, p, d)?;
        self.record_mut(slot).measured_at_ms = now_ms;
        self.live[slot as usize].measured_at_ms = now_ms;
        Ok(())
    }

    /// Folds a measured job service time (ms) into the moving average.
    pub fn record_service_time(
        &mut self,
        id: &ProviderId,
        service_ms: f64,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        check_range("service_ms", service_ms, 0.0, 86_400_000.0)?;
        let rec = self.record_mut(slot);
        let avg = match rec.mean_service_ms {
            Some(m) => m + SERVICE_EWMA_ALPHA * (service_ms - m),
            None => service_ms,
        };
        rec.mean_service_ms = Some(avg);
        self.live[slot as usize].service_ms = Some(avg);
        Ok(())
    }

    /// Sets the attestation level and its provenance (the coordinator sets
    /// `Attested` after verifying a quote).
    pub fn set_attestation(
        &mut self,
        id: &ProviderId,
        level: AttestationLevel,
        provenance: Provenance,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        let rec = self.record_mut(slot);
        rec.attestation = Claimed {
            value: level,
            provenance,
        };
        let eff = rec.effective_attestation();
        if provenance == Provenance::Attested {
            rec.hardware.provenance = Provenance::Attested;
        }
        self.live[slot as usize].attestation = eff;
        self.reindex(slot);
        Ok(())
    }

    /// Sets reputation, basis points (0..=10,000).
    pub fn set_reputation(&mut self, id: &ProviderId, bp: u16) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        check_range("reputation_bp", f64::from(bp), 0.0, 10_000.0)?;
        self.record_mut(slot).reputation_bp = bp;
        self.live[slot as usize].reputation_bp = bp;
        self.reindex(slot);
        Ok(())
    }

    /// Sets uptime, basis points (0..=10,000).
    pub fn set_uptime(&mut self, id: &ProviderId, bp: u16) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        check_range("uptime_bp", f64::from(bp), 0.0, 10_000.0)?;
        self.record_mut(slot).uptime_bp = bp;
        self.live[slot as usize].uptime_bp = bp;
        self.reindex(slot);
        Ok(())
    }

    /// Marks whether a model is loaded (moves it between warm and cold).
    pub fn set_model_loaded(
        &mut self,
        id: &ProviderId,
        model: &str,
        loaded: bool,
    ) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        let rec = self.record_mut(slot);
        let Some(o) = rec.offers.iter_mut().find(|o| o.model == model) else {
            return Err(RegistryError::UnknownOffer {
                id: id.clone(),
                model: model.to_string(),
            });
        };
        if o.loaded != loaded {
            o.loaded = loaded;
            self.reindex(slot);
        }
        Ok(())
    }

    /// Excludes a provider from scheduling, or readmits it.
    pub fn set_banned(&mut self, id: &ProviderId, banned: bool) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        self.record_mut(slot).banned = banned;
        self.live[slot as usize].banned = banned;
        Ok(())
    }

    /// Records a failed job: the provider cools down with backoff. Returns
    /// the end of the cooldown, unix ms.
    pub fn report_failure(
        &mut self,
        id: &ProviderId,
        kind: FailureKind,
        now_ms: u64,
    ) -> Result<u64, RegistryError> {
        let slot = self.slot(id)?;
        let policy = self.cfg.cooldown;
        let until = self.record_mut(slot).cooldown.fail(kind, now_ms, &policy);
        self.live[slot as usize].cooldown_until_ms = until;
        Ok(until)
    }

    /// Records a successful job: the failure streak resets.
    pub fn report_success(&mut self, id: &ProviderId) -> Result<(), RegistryError> {
        let slot = self.slot(id)?;
        self.record_mut(slot).cooldown.succeed();
        Ok(())
    }

    /// A provider's cooldown state.
    pub fn cooldown(&self, id: &ProviderId) -> Option<CooldownState> {
        self.get(id).map(|r| r.cooldown)
    }
}

/// Effective throughput of an offer: claimed/measured, else the roofline.
fn throughput(offer: &Offer, hw: Hardware, gpus: u32) -> (f64, f64, Provenance) {
    let p = offer.prefill_tps.map(|c| (c.value, c.provenance));
    let d = offer.decode_tps.map(|c| (c.value, c.provenance));
    let pm = || modelled_prefill_tps(hw.gpu, gpus, offer.params);
    let dm = || modelled_decode_tps(hw.gpu, gpus, offer.size_bytes);
    let (pv, ps) = p.unwrap_or_else(|| (pm(), Provenance::Modelled));
    let (dv, ds) = d.unwrap_or_else(|| (dm(), Provenance::Modelled));
    (pv, dv, ps.min(ds))
}

/// Carries measured throughput over to re-claimed offers of the same model.
fn keep_measured_throughput(new: &mut [Offer], old: &[Offer]) {
    for o in new.iter_mut() {
        if let Some(prev) = old.iter().find(|p| p.model == o.model) {
            let measured =
                |c: &Option<Claimed<f64>>| c.filter(|c| c.provenance == Provenance::Measured);
            o.prefill_tps = measured(&prev.prefill_tps).or(o.prefill_tps);
            o.decode_tps = measured(&prev.decode_tps).or(o.decode_tps);
        }
    }
}

fn check_range(what: &'static str, value: f64, min: f64, max: f64) -> Result<(), RegistryError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(RegistryError::MeasurementOutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}
