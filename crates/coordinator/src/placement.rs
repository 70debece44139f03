//! The coordinator's side of scheduling: turns provider hellos into
//! `proofmesh-placement` claims, feeds it measurements (heartbeat RTT, load,
//! failures), and asks it where a job goes. The policy itself (filters,
//! scores, latency model, cooldowns) is the pure `proofmesh-placement` crate;
//! this file only adapts types and holds its registry behind a lock.
//!
//! Defaults for what a provider did not declare: a provider with no site is
//! placed at the coordinator's own location (region `local`) until its RTT
//! is measured; a provider with no GPU is a CPU provider whose "VRAM" is half
//! its RAM; a model advert with no size counts as 512 MiB.

use std::sync::Mutex;

use proofmesh_placement as pl;
use proofmesh_wire::{Hardware, ModelAdvert, Site};

use crate::config::CoordinatorConfig;

/// What one successful job measured at the coordinator, ms from the
/// moment its spec was sent to the provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct JobTiming {
    /// The provider already had `max_concurrent` jobs: this one queued
    /// there, so its times say nothing about the provider's rates.
    pub queued_at_provider: bool,
    /// Prompt tokens, as the receipt bills them.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// First token event received (prefill + one RTT).
    pub first_token_ms: Option<f64>,
    /// Last token event received.
    pub last_token_ms: Option<f64>,
    /// Result received.
    pub service_ms: f64,
    /// The measured RTT to the provider, subtracted from the prefill time.
    pub rtt_ms: f64,
}

/// Placement registry shared by handlers.
pub struct Placer {
    reg: Mutex<pl::Registry>,
    max_attempts: u32,
}

impl std::fmt::Debug for Placer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placer").finish_non_exhaustive()
    }
}

const MIB: u64 = 1 << 20;
const DEFAULT_MODEL_BYTES: u64 = 512 * MIB;

fn id(key: &str) -> pl::ProviderId {
    pl::ProviderId(key.to_owned())
}

fn interconnect(s: &str) -> Result<pl::Interconnect, String> {
    match s {
        "pcie" => Ok(pl::Interconnect::Pcie),
        "nvlink" => Ok(pl::Interconnect::Nvlink),
        "infiniband" => Ok(pl::Interconnect::Infiniband),
        other => Err(format!(
            "unknown interconnect {other:?} (pcie, nvlink, infiniband)"
        )),
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Size a zk model offer counts as: the proving key and model fit in a few
/// MiB, so any provider has room.
const ZK_OFFER_BYTES: u64 = 16 * MIB;

/// A hello's chat models plus its zk models, as placement offers: a zk
/// model is placed like any model, by digest (a different namespace from
/// GGUF file digests), at its per-inference rate.
pub fn with_zk_offers(
    models: &[ModelAdvert],
    zk: &[proofmesh_wire::ZkModelAdvert],
) -> Vec<ModelAdvert> {
    let mut all = models.to_vec();
    // Placement wants positive rates; a proof has no output tokens, so the
    // output rate it sees never enters a cost.
    all.extend(zk.iter().map(|z| ModelAdvert {
        digest: z.model_digest.clone(),
        name: z.name.clone(),
        context_length: z.input_len,
        price: proofmesh_wire::PriceRate {
            currency: z.price.currency.clone(),
            input_per_mtok_micros: z.price.input_per_mtok_micros.max(1),
            output_per_mtok_micros: z.price.input_per_mtok_micros.max(1),
        },
        size_bytes: ZK_OFFER_BYTES,
    }));
    all
}

/// The claims a hello makes, in placement's terms.
pub fn claims(
    key: &str,
    hardware: &Hardware,
    models: &[ModelAdvert],
    max_concurrent: u32,
    site: Option<&Site>,
) -> Result<pl::ProviderClaims, String> {
    let (gpu, count, vram_mib) = match hardware.gpus.first() {
        Some(g) => (g.model.clone(), hardware.gpus.len(), g.vram_bytes / MIB),
        None => (
            "cpu".to_owned(),
            1,
            (hardware.memory_bytes / 2 / MIB).max(1024),
        ),
    };
    let (region, lat, lon, hourly, link) = match site {
        Some(s) => (
            s.region.clone(),
            s.lat,
            s.lon,
            s.price_per_hour_micros,
            interconnect(&s.interconnect)?,
        ),
        None => {
            let here = pl::PlacementConfig::default().coordinator;
            (
                "local".to_owned(),
                here.lat,
                here.lon,
                0,
                pl::Interconnect::Pcie,
            )
        }
    };
    let offers = models
        .iter()
        .map(|m| {
            let size = if m.size_bytes == 0 {
                DEFAULT_MODEL_BYTES
            } else {
                m.size_bytes
            };
            let spec = pl::ModelSpec::from_size(m.digest.as_str(), size.saturating_mul(2), size);
            pl::OfferClaim {
                model: m.digest.to_string(),
                params: i64_of(spec.params),
                size_bytes: i64_of(spec.size_bytes),
                vram_mib: i64_of(spec.vram_mib),
                input_per_mtok_micros: i64_of(m.price.input_per_mtok_micros),
                output_per_mtok_micros: i64_of(m.price.output_per_mtok_micros),
                loaded: true,
                prefill_tps: None,
                decode_tps: None,
            }
        })
        .collect();
    Ok(pl::ProviderClaims {
        id: id(key),
        gpu,
        gpu_count: count as i64,
        vram_mib_per_gpu: i64_of(vram_mib),
        interconnect: link,
        region,
        lat,
        lon,
        // Undeclared: the minimum valid price; per-token prices drive the
        // cost of inference work, the hourly price only batch/fine-tune.
        price_per_hour_micros: i64_of(hourly).max(1),
        max_concurrency: i64::from(max_concurrent),
        attestation: pl::AttestationLevel::None,
        offers,
    })
}

impl Placer {
    /// A placer with the default placement policy.
    pub fn new(config: &CoordinatorConfig) -> Result<Placer, String> {
        let reg = pl::Registry::new(pl::PlacementConfig::default()).map_err(|e| e.to_string())?;
        Ok(Placer {
            reg: Mutex::new(reg),
            max_attempts: config.max_attempts,
        })
    }

    fn reg(&self) -> std::sync::MutexGuard<'_, pl::Registry> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or refreshes) a provider's claims; a named reason if they
    /// are invalid. Only the authenticated key's own record is written.
    pub fn upsert(
        &self,
        key: &str,
        claims: &pl::ProviderClaims,
        now_ms: u64,
    ) -> Result<(), String> {
        let mut reg = self.reg();
        for o in &claims.offers {
            if reg.model_spec(&o.model).is_none() {
                let size = u64::try_from(o.size_bytes).unwrap_or(0);
                reg.register_model(pl::ModelSpec::from_size(
                    &o.model,
                    size.saturating_mul(2),
                    size,
                ));
            }
        }
        reg.upsert(&id(key), claims, now_ms)
            .map_err(|e| e.to_string())
    }

    /// Forgets a provider (disconnected).
    pub fn remove(&self, key: &str) {
        let _ = self.reg().remove(&id(key));
    }

    /// The provider's verified attestation level (`None`: back to `none`).
    pub fn set_attestation(&self, key: &str, level: pl::AttestationLevel) {
        let provenance = if level == pl::AttestationLevel::None {
            pl::Provenance::SelfDeclared
        } else {
            pl::Provenance::Attested
        };
        let _ = self.reg().set_attestation(&id(key), level, provenance);
    }

    /// A measured round trip to the provider.
    pub fn record_rtt(&self, key: &str, rtt_us: u64) {
        let rtt = u32::try_from(rtt_us).unwrap_or(u32::MAX);
        let _ = self.reg().record_rtt(&id(key), rtt);
    }

    /// Jobs now running at the provider.
    pub fn set_load(&self, key: &str, active: u32) {
        let _ = self.reg().set_load(&id(key), active, 0);
    }

    /// A failed attempt: the provider cools down.
    pub fn failed(&self, key: &str, timeout: bool, now_ms: u64) {
        let kind = if timeout {
            pl::FailureKind::Timeout
        } else {
            pl::FailureKind::Error
        };
        let _ = self.reg().report_failure(&id(key), kind, now_ms);
    }

    /// A successful job, with what it measured (see [`JobTiming`]): the
    /// service time feeds the queue-wait model; the prefill and decode
    /// rates feed the TTFT and completion estimates, only from jobs that
    /// did not queue at the provider, so no rate includes queue time.
    pub fn succeeded(&self, key: &str, model: &str, t: &JobTiming, now_ms: u64) {
        let mut reg = self.reg();
        let _ = reg.report_success(&id(key));
        if t.service_ms > 0.0 {
            let _ = reg.record_service_time(&id(key), t.service_ms);
        }
        if t.queued_at_provider {
            return;
        }
        let rate = |tokens: u32, ms: f64| {
            let tps = f64::from(tokens) * 1000.0 / ms.max(0.05);
            (tokens > 0 && tps.is_finite() && tps > 0.0).then_some(tps)
        };
        let prefill = t
            .first_token_ms
            .and_then(|f| rate(t.prompt_tokens, f - t.rtt_ms));
        let decode = match (t.first_token_ms, t.last_token_ms) {
            (Some(f), Some(l)) if t.completion_tokens > 1 => rate(t.completion_tokens - 1, l - f),
            _ => None,
        };
        if prefill.is_some() || decode.is_some() {
            let _ = reg.record_measurement(&id(key), model, prefill, decode, now_ms);
        }
    }

    /// The provider's measured RTT median, ms (0 before enough pings).
    pub fn rtt_ms(&self, key: &str) -> f64 {
        let reg = self.reg();
        let min = reg.config().latency.min_samples;
        reg.get(&id(key))
            .and_then(|r| r.rtt.median_ms(min))
            .unwrap_or(0.0)
    }

    /// Reputation from audits, in basis points.
    pub fn set_reputation(&self, key: &str, bp: u16) {
        let _ = self.reg().set_reputation(&id(key), bp);
    }

    /// Where the next attempt of a job goes, with the explanation of the
    /// decision (for `proofmesh explain`).
    /// On failure the full evaluation comes back with the error.
    pub fn place(
        &self,
        req: &pl::Request,
        tried: &[String],
    ) -> Result<pl::Placement, (pl::PlacementError, Option<Box<pl::Explanation>>)> {
        let mut attempts = pl::Attempts::new(self.max_attempts);
        for t in tried {
            attempts.record(id(t));
        }
        if attempts.exhausted() {
            let e = pl::PlacementError::AttemptsExhausted {
                attempts: tried.len() as u32,
                max: self.max_attempts,
            };
            return Err((e, None));
        }
        let mut req = req.clone();
        req.exclude.extend(attempts.tried);
        self.reg().place_or_explain(&req)
    }

    /// `GET /v1/providers`.
    pub fn list(&self, q: &pl::ProviderQuery) -> Vec<pl::ProviderView> {
        self.reg().list(q)
    }

    /// Live uptime, in basis points (`standing.rs`).
    pub fn set_uptime(&self, key: &str, bp: u16) {
        let _ = self.reg().set_uptime(&id(key), bp);
    }
}
