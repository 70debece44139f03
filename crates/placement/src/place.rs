//! Placement: filter → score, as in the Kubernetes scheduler framework, over
//! the candidate index. [`Registry::place`] is the fast path: it visits
//! buckets and entries in order of their score upper bound (or price lower
//! bound, for cheapest-first classes), stops at the first failing filter of
//! each candidate, and stops the search once nothing unvisited can enter the
//! top k — so it returns exactly what a full scan would, without building
//! any text. The explain path ([`crate::explain`]) evaluates every provider
//! with the same functions and records every rejection.
//!
//! Filters, in order: already tried, banned, cooldown, cold load allowed,
//! hardware fit (one provider's VRAM; several GPUs only over NVLink /
//! InfiniBand), attestation, reputation, uptime, price caps, capacity, SLO
//! (interactive TTFT) or deadline (batch completion).

use std::collections::BinaryHeap;

use serde::Serialize;

use crate::config::{ClassPolicy, Ranking, Topology};
use crate::error::PlacementError;
use crate::estimate::{
    estimate, micros_from_numerator, token_cost_numerator, Estimate, EstimateInputs,
};
use crate::explain::Explanation;
use crate::gpu::GpuModel;
use crate::index::{Entry, Index, Summary, DIST_SLACK_KM};
use crate::latency::{self, chord_km, fiber_floor_rtt_ms, haversine_km, GeoPoint, RttSource};
use crate::provider::{Fit, ProviderId};
use crate::rank::{BucketBound, Cand, First, Sink, TopK};
use crate::registry::{Live, ModelIndex, Registry};
use crate::rejection::{PriceKind, Rejection, RejectionCounts, RejectionKind};
use crate::score::{self, ScoreBreakdown};
use crate::workload::{ClassKind, Request, WorkloadClass};

/// Slack added to upper bounds so float rounding never prunes a tie.
const EPS: f64 = 1e-9;

/// One ranked provider for a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Choice {
    /// The provider.
    pub provider: ProviderId,
    /// 0 for the chosen one, then alternates in failover order.
    pub rank: usize,
    /// Its region.
    pub region: String,
    /// Its GPU.
    pub gpu: GpuModel,
    /// Whether the model is loaded (always true for fine-tune).
    pub model_loaded: bool,
    /// Estimates.
    pub estimate: Estimate,
    /// Score and parts.
    pub score: ScoreBreakdown,
}

/// The outcome of placing a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    /// Where to run it.
    pub chosen: Choice,
    /// Next best, in failover order.
    pub alternates: Vec<Choice>,
    /// Candidates evaluated (fast path: after pruning).
    pub examined: usize,
    /// Full explanation, on the explain path only.
    pub explanation: Option<Explanation>,
}

impl Placement {
    /// Providers in the order to try them.
    pub fn failover_order(&self) -> impl Iterator<Item = &ProviderId> {
        std::iter::once(&self.chosen.provider).chain(self.alternates.iter().map(|c| &c.provider))
    }
}

/// Everything derived from the request once.
pub(crate) struct Ctx<'a> {
    pub reg: &'a Registry,
    pub req: &'a Request,
    pub kind: ClassKind,
    pub policy: &'a ClassPolicy,
    pub model: Option<&'a ModelIndex>,
    pub need_mib: u64,
    pub min_rep: u16,
    pub min_uptime: u16,
    pub exclude: Vec<u32>,
    pub client_leg: (f64, RttSource),
    pub direct: Option<GeoPoint>,
    pub anchor: [f64; 3],
    pub lat_ref: f64,
    /// Interactive SLO, ms (∞ for other classes).
    pub slo_ms: f64,
    pub ft_hours: u32,
}

impl<'a> Ctx<'a> {
    pub fn new(reg: &'a Registry, req: &'a Request) -> Result<Ctx<'a>, PlacementError> {
        req.check()?;
        let cfg = &reg.cfg;
        let kind = req.class.kind();
        let policy = cfg.policy(kind);
        let (model, need_mib, ft_hours) = match req.class {
            WorkloadClass::FineTune {
                hours,
                min_vram_gib,
            } => (None, u64::from(min_vram_gib) * 1024, hours),
            _ => {
                let m = reg
                    .model_ids
                    .get(&req.model)
                    .map(|&m| &reg.models[m as usize])
                    .ok_or_else(|| PlacementError::UnknownModel {
                        model: req.model.clone(),
                    })?;
                (Some(m), m.spec.vram_mib, 0)
            }
        };
        let lat_ref = match req.class {
            WorkloadClass::Interactive { ttft_slo_ms } => f64::from(ttft_slo_ms.max(1)),
            _ => cfg.latency_ref_ms,
        };
        let direct = match cfg.topology {
            Topology::Direct => req.client.location,
            Topology::Relay => None,
        };
        Ok(Ctx {
            reg,
            req,
            kind,
            policy,
            model,
            need_mib,
            min_rep: req.min_reputation_bp.max(policy.min_reputation_bp),
            min_uptime: policy.min_uptime_bp,
            exclude: req
                .exclude
                .iter()
                .filter_map(|id| reg.ids.get(id).copied())
                .collect(),
            client_leg: if direct.is_some() {
                (0.0, RttSource::Unknown)
            } else {
                client_leg(reg, req)
            },
            direct,
            anchor: direct.map_or(reg.coord_unit, GeoPoint::unit),
            lat_ref,
            slo_ms: match req.class {
                WorkloadClass::Interactive { ttft_slo_ms } => f64::from(ttft_slo_ms),
                _ => f64::INFINITY,
            },
            ft_hours,
        })
    }

    /// The index this request searches.
    pub fn index(&self) -> &'a Index {
        match self.model {
            Some(m) => &m.index,
            None => &self.reg.fine_tune,
        }
    }

    fn is_ft(&self) -> bool {
        self.kind == ClassKind::FineTune
    }

    /// The provider leg of the RTT.
    fn provider_leg(&self, slot: u32, live: &Live) -> (f64, RttSource) {
        let Some(client) = self.direct else {
            return live.coord_rtt;
        };
        let cfg = &self.reg.cfg.latency;
        let floor = fiber_floor_rtt_ms(haversine_km(client, live.point));
        let measured = self.req.client.region.as_ref().and_then(|r| {
            let t = self.reg.record(slot).client_rtt.get(r)?;
            t.median_ms(cfg.min_samples)
        });
        latency::leg_rtt_ms(measured, floor, cfg.path_stretch)
    }

    /// Hard filters (everything but SLO/deadline). `None` = the sink said stop.
    fn hard_filters<S: Sink>(
        &self,
        e: &Entry,
        live: &Live,
        cost_micros: u64,
        s: &mut S,
    ) -> Option<bool> {
        let mut ok = true;
        macro_rules! fail {
            ($r:expr) => {{
                ok = false;
                if !s.reject($r) {
                    return None;
                }
            }};
        }
        if self.exclude.contains(&e.slot) {
            fail!(Rejection::AlreadyTried);
        }
        if live.banned {
            fail!(Rejection::Banned);
        }
        if live.cooldown_until_ms > self.req.now_ms {
            fail!(Rejection::Cooldown {
                until_ms: live.cooldown_until_ms
            });
        }
        if e.cold && !self.policy.allow_cold_load {
            fail!(Rejection::ColdLoadNotAllowed);
        }
        match if e.fits {
            Fit::Fits { gpus: 1 }
        } else {
            live.hardware.fit(self.need_mib)
        } {
            Fit::Fits { .. } => {}
            Fit::NeedsFastInterconnect { gpus } => fail!(Rejection::NeedsFastInterconnect {
                gpus,
                interconnect: live.hardware.interconnect
            }),
            Fit::TooLarge => fail!(Rejection::InsufficientVram {
                need_mib: self.need_mib,
                have_mib: live.hardware.box_vram_mib()
            }),
        }
        if live.attestation < self.req.min_attestation {
            fail!(Rejection::AttestationTooLow {
                need: self.req.min_attestation,
                have: live.attestation
            });
        }
        if live.reputation_bp < self.min_rep {
            fail!(Rejection::ReputationTooLow {
                need_bp: self.min_rep,
                have_bp: live.reputation_bp
            });
        }
        if live.uptime_bp < self.min_uptime {
            fail!(Rejection::UptimeTooLow {
                need_bp: self.min_uptime,
                have_bp: live.uptime_bp
            });
        }
        let market_ok = self.market_filters(e, live, cost_micros, s)?;
        Some(ok && market_ok)
    }

    /// Price caps and capacity. `None` = the sink said stop.
    fn market_filters<S: Sink>(
        &self,
        e: &Entry,
        live: &Live,
        cost_micros: u64,
        s: &mut S,
    ) -> Option<bool> {
        let mut ok = true;
        for (what, price, cap) in self.prices(e, live, cost_micros) {
            if let Some(cap_micros) = cap.filter(|&c| price > c) {
                ok = false;
                if !s.reject(Rejection::PriceAboveCap {
                    what,
                    price_micros: price,
                    cap_micros,
                }) {
                    return None;
                }
            }
        }
        let limit = live
            .max_concurrency
            .saturating_mul(self.reg.cfg.queue_factor);
        if live.active.saturating_add(live.queued) >= limit {
            ok = false;
            let r = Rejection::NoCapacity {
                active: live.active,
                queued: live.queued,
                limit,
            };
            if !s.reject(r) {
                return None;
            }
        }
        Some(ok)
    }

    /// (kind, price, cap) triples the price filter checks.
    fn prices(&self, e: &Entry, live: &Live, cost: u64) -> [(PriceKind, u64, Option<u64>); 3] {
        let cap = &self.req.price_cap;
        if self.is_ft() {
            [
                (PriceKind::PerHour, live.price_per_hour, cap.per_hour_micros),
                (PriceKind::Job, cost, cap.job_micros),
                (PriceKind::Job, cost, None),
            ]
        } else {
            [
                (
                    PriceKind::InputPerMtok,
                    e.input_price,
                    cap.input_per_mtok_micros,
                ),
                (
                    PriceKind::OutputPerMtok,
                    e.output_price,
                    cap.output_per_mtok_micros,
                ),
                (PriceKind::Job, cost, cap.job_micros),
            ]
        }
    }

    fn cost(&self, e: &Entry, live: &Live) -> (u128, u64) {
        if self.is_ft() {
            let n = u128::from(live.price_per_hour) * u128::from(self.ft_hours);
            (n, u64::try_from(n).unwrap_or(u64::MAX))
        } else {
            let n = token_cost_numerator(
                e.input_price,
                e.output_price,
                self.req.prompt_tokens,
                self.req.max_output_tokens,
            );
            (n, micros_from_numerator(n))
        }
    }

    fn estimate(&self, e: &Entry, live: &Live, cost_micros: u64) -> Estimate {
        let ft = self.is_ft();
        estimate(&EstimateInputs {
            client_rtt: self.client_leg,
            provider_rtt: self.provider_leg(e.slot, live),
            active: live.active,
            queued: live.queued,
            max_concurrency: live.max_concurrency,
            service_ms: live.service_ms,
            prefill_tps: if ft { 1.0 } else { e.prefill_tps },
            decode_tps: if ft { 1.0 } else { e.decode_tps },
            throughput_source: e.tps_source,
            cold_load_ms: match (e.cold, self.model) {
                (true, Some(m)) => m.cold_load_ms,
                _ => 0.0,
            },
            prompt_tokens: if ft { 0 } else { self.req.prompt_tokens },
            output_tokens: if ft { 0 } else { self.req.max_output_tokens },
            cost_micros,
        })
    }

    /// Evaluates one entry. `None` when the sink stopped at a rejection;
    /// otherwise the candidate, `feasible` iff nothing was rejected.
    pub fn eval<S: Sink>(&self, e: &Entry, s: &mut S) -> Option<Cand> {
        let live = &self.reg.live[e.slot as usize];
        let (cost_num, cost_micros) = self.cost(e, live);
        let mut ok = self.hard_filters(e, live, cost_micros, s)?;
        let mut est = self.estimate(e, live, cost_micros);
        match self.req.class {
            WorkloadClass::Interactive { ttft_slo_ms }
                if est.ttft_ms > f64::from(ttft_slo_ms)
                    && self.req.probe_stale
                    && self.stale(live) =>
            {
                est.probe = true;
            }
            WorkloadClass::Interactive { ttft_slo_ms }
                if est.ttft_ms > f64::from(ttft_slo_ms) && !self.req.best_effort =>
            {
                ok = false;
                if !s.reject(Rejection::SloInfeasible {
                    ttft_ms: est.ttft_ms,
                    slo_ms: ttft_slo_ms,
                }) {
                    return None;
                }
            }
            WorkloadClass::Batch { deadline_ms } if est.completion_ms > deadline_ms as f64 => {
                ok = false;
                let r = Rejection::DeadlineInfeasible {
                    completion_ms: est.completion_ms,
                    deadline_ms,
                };
                if !s.reject(r) {
                    return None;
                }
            }
            _ => {}
        }
        Some(Cand {
            slot: e.slot,
            cold: e.cold,
            score: self.score(e, live, &est),
            est,
            cost_num,
            feasible: ok,
        })
    }

    /// Whether an idle provider's throughput estimate is too old to refuse
    /// it on: it gets the job as a probe, so a bad estimate corrects itself.
    fn stale(&self, live: &Live) -> bool {
        let after = self.reg.cfg.latency.probe_after_ms;
        after > 0
            && live.active == 0
            && live.queued == 0
            && self.req.now_ms.saturating_sub(live.measured_at_ms) >= after
    }

    fn score(&self, e: &Entry, live: &Live, est: &Estimate) -> ScoreBreakdown {
        let w = &self.policy.weights;
        let lat = score::latency_score(est.ttft_ms, self.lat_ref);
        let load = score::load_score(
            live.active,
            live.queued,
            live.max_concurrency,
            self.reg.cfg.queue_factor,
        );
        let (tier, dynamic) = if self.is_ft() {
            let hw = live.hardware;
            let t = score::tier_score(
                score::reference_capex_usd(self.need_mib),
                hw.occupied_capex_usd(self.need_mib),
            );
            (t, score::dynamic_part(w, lat, load) + w.tier * t)
        } else {
            (e.tier, score::dynamic_part(w, lat, load))
        };
        ScoreBreakdown {
            cost: e.cost,
            latency: lat,
            reputation: e.reputation,
            load,
            tier,
            cold_penalty: if e.cold {
                self.policy.cold_penalty
            } else {
                0.0
            },
            weights: *w,
            total: e.statics[self.kind as usize] + dynamic,
        }
    }

    /// Lower bound on TTFT for any entry of bucket `bi` (same summation
    /// order as [`estimate`], so float rounding keeps it a bound).
    fn ttft_lower_bound(&self, ix: &Index, bi: usize) -> f64 {
        let s = &ix.summaries[bi];
        let rtt = match self.direct {
            None => s.coord_rtt_lb_ms,
            Some(_) => {
                let b = &ix.buckets[bi];
                fiber_floor_rtt_ms(
                    (chord_km(self.anchor, b.center) - b.radius_km - DIST_SLACK_KM).max(0.0),
                )
            }
        };
        let prefill = if self.is_ft() || s.max_prefill_tps <= 0.0 {
            0.0
        } else {
            latency::prefill_ms(self.req.prompt_tokens, s.max_prefill_tps)
        };
        let cold = match (s.cold, self.model) {
            (true, Some(m)) => m.cold_load_ms,
            _ => 0.0,
        };
        self.client_leg.0 + rtt + 0.0 + prefill + cold
    }

    /// Upper bound on the dynamic score part in a bucket.
    fn dynamic_upper_bound(&self, ttft_lb: f64) -> f64 {
        let w = &self.policy.weights;
        let d = score::dynamic_part(w, score::latency_score(ttft_lb, self.lat_ref), 1.0);
        if self.is_ft() {
            d + w.tier * 1.0
        } else {
            d
        }
    }

    /// A filter every member of the bucket fails, if any (aggregates are
    /// conservative, so this never drops a feasible entry).
    fn bucket_rejection(&self, s: &Summary, ttft_lb: f64) -> Option<RejectionKind> {
        let cap = &self.req.price_cap;
        let over = |min: u64, cap: Option<u64>| cap.is_some_and(|c| min > c);
        let ft = self.is_ft();
        if s.cold && !self.policy.allow_cold_load {
            Some(RejectionKind::ColdLoadNotAllowed)
        } else if s.max_box_vram_mib < self.need_mib {
            Some(RejectionKind::InsufficientVram)
        } else if s.max_attestation < self.req.min_attestation {
            Some(RejectionKind::AttestationTooLow)
        } else if s.max_reputation_bp < self.min_rep {
            Some(RejectionKind::ReputationTooLow)
        } else if s.max_uptime_bp < self.min_uptime {
            Some(RejectionKind::UptimeTooLow)
        } else if (!ft
            && (over(s.min_input, cap.input_per_mtok_micros)
                || over(s.min_output, cap.output_per_mtok_micros)))
            || (ft && over(s.min_input, cap.per_hour_micros))
        {
            Some(RejectionKind::PriceAboveCap)
        } else if ttft_lb > self.slo_ms && !self.req.probe_stale && !self.req.best_effort {
            Some(RejectionKind::SloInfeasible)
        } else {
            None
        }
    }
}

/// Client ↔ coordinator leg in relay topology: measured if given (never
/// below the floor), else modelled from coordinates, else unknown (0).
fn client_leg(reg: &Registry, req: &Request) -> (f64, RttSource) {
    let cfg = &reg.cfg;
    let floor = req
        .client
        .location
        .map(|p| fiber_floor_rtt_ms(haversine_km(p, cfg.coordinator)));
    let measured = req
        .client
        .rtt_to_coordinator_ms
        .filter(|m| m.is_finite() && *m >= 0.0);
    match (measured, floor) {
        (Some(m), f) => (m.max(f.unwrap_or(0.0)), RttSource::Measured),
        (None, Some(f)) => (f * cfg.latency.path_stretch, RttSource::Modelled),
        (None, None) => (0.0, RttSource::Unknown),
    }
}

impl Ctx<'_> {
    /// Runs the fast search; returns candidates evaluated.
    pub fn search(&self, top: &mut TopK<'_>, counts: &mut RejectionCounts) -> usize {
        match self.policy.ranking {
            Ranking::Score => self.search_by_score(top, counts),
            Ranking::CheapestFirst => self.search_cheapest(top, counts),
        }
    }

    fn try_entry(&self, e: &Entry, top: &mut TopK<'_>, counts: &mut RejectionCounts) {
        let mut first = First::default();
        match self.eval(e, &mut first) {
            Some(c) => top.push(c),
            None => counts.add(first.0.unwrap_or(RejectionKind::NoCapacity)),
        }
    }

    /// Branch-and-bound over buckets (popped from a max-heap by upper
    /// bound) and, inside each, entries by static score.
    fn search_by_score(&self, top: &mut TopK<'_>, counts: &mut RejectionCounts) -> usize {
        let ix = self.index();
        let c = self.kind as usize;
        let mut bounds: Vec<BucketBound> = Vec::with_capacity(ix.buckets.len());
        for (bi, s) in ix.summaries.iter().enumerate() {
            if s.len == 0 {
                continue;
            }
            let ttft_lb = self.ttft_lower_bound(ix, bi);
            if let Some(kind) = self.bucket_rejection(s, ttft_lb) {
                counts.add_n(kind, s.len);
                continue;
            }
            let dyn_ub = self.dynamic_upper_bound(ttft_lb);
            bounds.push(BucketBound {
                ub: s.head_static[c] + dyn_ub,
                dyn_ub,
                bucket: bi as u32,
            });
        }
        let mut heap = BinaryHeap::from(bounds);
        let mut examined = 0;
        while let Some(BucketBound { ub, dyn_ub, bucket }) = heap.pop() {
            if top.worst().is_some_and(|w| w.score.total > ub + EPS) {
                break;
            }
            for &eid in &ix.buckets[bucket as usize].orders[c] {
                let e = ix.entry(eid);
                if top
                    .worst()
                    .is_some_and(|w| w.score.total > e.statics[c] + dyn_ub + EPS)
                {
                    break;
                }
                examined += 1;
                self.try_entry(e, top, counts);
            }
        }
        examined
    }

    /// Cheapest-first by Fagin's threshold algorithm over the input- and
    /// output-price orders: an entry not yet seen in either list has both
    /// prices at least those at the current positions, so its cost is at
    /// least their weighted sum; stop once the k-th best is strictly cheaper.
    /// (Fine-tune entries carry the hourly price as "input" and 0 as output.)
    fn search_cheapest(&self, top: &mut TopK<'_>, counts: &mut RejectionCounts) -> usize {
        let ix = self.index();
        let (w_in, w_out) = if self.is_ft() {
            (u128::from(self.ft_hours), 0)
        } else {
            (
                u128::from(self.req.prompt_tokens),
                u128::from(self.req.max_output_tokens),
            )
        };
        let mut seen = vec![0u64; ix.entries.len().div_ceil(64)];
        let mut examined = 0;
        for (&a, &b) in ix.by_in.iter().zip(&ix.by_out) {
            let threshold = u128::from(ix.entry(a).input_price) * w_in
                + u128::from(ix.entry(b).output_price) * w_out;
            if top.worst().is_some_and(|w| w.cost_num < threshold) {
                break;
            }
            for id in [a, b] {
                let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    examined += 1;
                    self.try_entry(ix.entry(id), top, counts);
                }
            }
        }
        examined
    }

    /// Turns a candidate into a [`Choice`].
    pub fn choice(&self, c: &Cand, rank: usize) -> Choice {
        let rec = self.reg.record(c.slot);
        Choice {
            provider: rec.id.clone(),
            rank,
            region: rec.location.value.region.clone(),
            gpu: rec.hardware.value.gpu,
            model_loaded: !c.cold,
            estimate: c.est,
            score: c.score,
        }
    }

    /// Label for errors.
    pub fn label(&self) -> String {
        match self.model {
            Some(m) => m.spec.id.clone(),
            None => "fine-tune".to_string(),
        }
    }
}

impl Registry {
    /// Places a request (fast path, no explanation). Deterministic: the same
    /// registry state and request give the same answer.
    pub fn place(&self, req: &Request) -> Result<Placement, PlacementError> {
        let ctx = Ctx::new(self, req)?;
        let mut top = TopK::new(1 + self.cfg.alternates, ctx.policy.ranking, self);
        let mut counts = RejectionCounts::default();
        let examined = ctx.search(&mut top, &mut counts);
        let mut ranked = top.items.iter().enumerate().map(|(i, c)| ctx.choice(c, i));
        let Some(chosen) = ranked.next() else {
            return Err(PlacementError::NoFeasibleProvider {
                model: ctx.label(),
                candidates: ctx.index().live_entries,
                rejections: counts,
            });
        };
        Ok(Placement {
            chosen,
            alternates: ranked.collect(),
            examined,
            explanation: None,
        })
    }
}
