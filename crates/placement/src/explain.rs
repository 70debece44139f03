//! The explain path: evaluates every registered provider against a request
//! with the same filter, estimate and score functions as the fast path,
//! records every rejection (not just the first) and the full score
//! breakdown, and ranks the feasible ones with the same total order. The
//! result serialises to JSON for `proofmesh explain JOB_ID`; its chosen
//! provider equals the fast path's (tested).

use serde::Serialize;

use crate::config::{Ranking, Topology};
use crate::error::PlacementError;
use crate::estimate::Estimate;
use crate::gpu::GpuModel;
use crate::latency::RttSource;
use crate::place::{Ctx, Placement};
use crate::provider::ProviderId;
use crate::rank::{All, Cand, TopK};
use crate::registry::Registry;
use crate::rejection::{Rejection, RejectionCounts};
use crate::score::ScoreBreakdown;
use crate::workload::Request;
use crate::Choice;

/// A provider slot, its evaluated candidate (if it offers the model), and
/// every rejection.
type Row = (u32, Option<Cand>, Vec<Rejection>);

/// What happened to one provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The provider.
    pub provider: ProviderId,
    /// Its region.
    pub region: String,
    /// Its GPU.
    pub gpu: GpuModel,
    /// Whether the model is loaded (`None` when not offered).
    pub model_loaded: Option<bool>,
    /// Every filter it failed (empty = feasible).
    pub rejections: Vec<Rejection>,
    /// Estimates (absent when the model is not offered).
    pub estimate: Option<Estimate>,
    /// Score breakdown (absent when the model is not offered).
    pub score: Option<ScoreBreakdown>,
    /// Rank among feasible providers, 0 = best.
    pub rank: Option<usize>,
}

/// A full account of one placement decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The request.
    pub request: Request,
    /// Model id, or "fine-tune".
    pub model: String,
    /// Ordering rule used.
    pub ranking: Ranking,
    /// Topology assumed.
    pub topology: Topology,
    /// Client ↔ coordinator leg, ms.
    pub client_rtt_ms: f64,
    /// Where it came from.
    pub client_rtt_source: RttSource,
    /// The chosen provider, if any is feasible.
    pub chosen: Option<ProviderId>,
    /// Chosen then alternates, in failover order.
    pub ranked: Vec<ProviderId>,
    /// Feasible providers.
    pub feasible: usize,
    /// Providers registered.
    pub providers_total: usize,
    /// Every rejection counted by kind.
    pub rejections: RejectionCounts,
    /// One verdict per provider: ranked ones first, then the rest by id.
    pub verdicts: Vec<Verdict>,
}

impl Explanation {
    /// Providers rejected only for reasons that can lift while the request
    /// waits ([`crate::RejectionKind::is_transient`]: capacity, cooldown,
    /// the TTFT objective, the deadline).
    pub fn waitable(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| {
                !v.rejections.is_empty() && v.rejections.iter().all(|r| r.kind().is_transient())
            })
            .count()
    }
}

impl Registry {
    /// Explains how a request would be placed: every provider's rejections
    /// and score. Errors only for an unknown model or bad token counts.
    pub fn explain(&self, req: &Request) -> Result<Explanation, PlacementError> {
        Ok(self.explain_inner(req)?.0)
    }

    /// Places a request on the explain path: same answer as
    /// [`Registry::place`], with the explanation attached.
    pub fn place_explained(&self, req: &Request) -> Result<Placement, PlacementError> {
        self.place_or_explain(req).map_err(|(e, _)| e)
    }

    /// [`Registry::place_explained`], returning the explanation with the
    /// error when nothing is feasible (it says which providers could take
    /// the request once a transient reason lifts: [`Explanation::waitable`]).
    pub fn place_or_explain(
        &self,
        req: &Request,
    ) -> Result<Placement, (PlacementError, Option<Box<Explanation>>)> {
        let (exp, ranked, examined) = self.explain_inner(req).map_err(|e| (e, None))?;
        let mut it = ranked.into_iter();
        let Some(chosen) = it.next() else {
            let ctx = Ctx::new(self, req).map_err(|e| (e, None))?;
            let err = PlacementError::NoFeasibleProvider {
                model: ctx.label(),
                candidates: ctx.index().live_entries,
                rejections: exp.rejections,
            };
            return Err((err, Some(Box::new(exp))));
        };
        Ok(Placement {
            chosen,
            alternates: it.collect(),
            examined,
            explanation: Some(exp),
        })
    }

    /// Evaluates every provider with every filter.
    fn evaluate_all(&self, ctx: &Ctx<'_>) -> (Vec<Row>, RejectionCounts, usize) {
        let ix = ctx.index();
        let model_ix = ctx
            .model
            .and_then(|_| self.model_ids.get(&ctx.req.model).copied());
        let mut rows: Vec<Row> = Vec::with_capacity(self.len());
        let mut counts = RejectionCounts::default();
        let mut examined = 0;
        for (slot, _) in self.records() {
            let eid = match model_ix {
                Some(m) => self.refs[slot as usize]
                    .iter()
                    .find(|&&(mm, _)| mm == m)
                    .map(|&(_, e)| e),
                None => self.ft_refs[slot as usize],
            };
            let Some(eid) = eid else {
                counts.add(Rejection::ModelNotOffered.kind());
                rows.push((slot, None, vec![Rejection::ModelNotOffered]));
                continue;
            };
            examined += 1;
            let mut all = All::default();
            let cand = ctx.eval(ix.entry(eid), &mut all);
            for r in &all.0 {
                counts.add(r.kind());
            }
            rows.push((slot, cand, all.0));
        }
        (rows, counts, examined)
    }

    /// One verdict per row, ranked ones first then by id.
    fn verdicts(&self, rows: Vec<Row>, rank_by_slot: &[Option<usize>]) -> Vec<Verdict> {
        let mut verdicts: Vec<Verdict> = rows
            .into_iter()
            .map(|(slot, cand, rejections)| {
                let rec = self.record(slot);
                Verdict {
                    provider: rec.id.clone(),
                    region: rec.location.value.region.clone(),
                    gpu: rec.hardware.value.gpu,
                    model_loaded: cand.as_ref().map(|c| !c.cold),
                    estimate: cand.as_ref().map(|c| c.est),
                    score: cand.as_ref().map(|c| c.score),
                    rank: cand
                        .as_ref()
                        .filter(|c| c.feasible)
                        .and_then(|c| rank_by_slot[c.slot as usize]),
                    rejections,
                }
            })
            .collect();
        verdicts.sort_by(|a, b| match (a.rank, b.rank) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.provider.cmp(&b.provider),
        });
        verdicts
    }

    fn explain_inner(
        &self,
        req: &Request,
    ) -> Result<(Explanation, Vec<Choice>, usize), PlacementError> {
        let ctx = Ctx::new(self, req)?;
        let (rows, counts, examined) = self.evaluate_all(&ctx);
        let ranker = TopK::new(1, ctx.policy.ranking, self);
        let mut feasible: Vec<Cand> = rows
            .iter()
            .filter_map(|(_, c, _)| c.clone().filter(|c| c.feasible))
            .collect();
        feasible.sort_by(|a, b| ranker.cmp(a, b));
        let keep = 1 + self.cfg.alternates;
        let ranked: Vec<Choice> = feasible
            .iter()
            .take(keep)
            .enumerate()
            .map(|(i, c)| ctx.choice(c, i))
            .collect();
        let mut rank_by_slot = vec![None; self.records.len()];
        for (i, c) in feasible.iter().enumerate() {
            rank_by_slot[c.slot as usize] = Some(i);
        }
        let exp = Explanation {
            request: req.clone(),
            model: ctx.label(),
            ranking: ctx.policy.ranking,
            topology: self.cfg.topology,
            client_rtt_ms: ctx.client_leg.0,
            client_rtt_source: ctx.client_leg.1,
            chosen: ranked.first().map(|c| c.provider.clone()),
            ranked: ranked.iter().map(|c| c.provider.clone()).collect(),
            feasible: feasible.len(),
            providers_total: self.len(),
            rejections: counts,
            verdicts: self.verdicts(rows, &rank_by_slot),
        };
        Ok((exp, ranked, examined))
    }
}
