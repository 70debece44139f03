//! The ranking machinery shared by the fast and explain paths: rejection
//! sinks (stop at the first rejection, or keep them all), evaluated
//! candidates, the top-k list with the one total order every path ranks by
//! (score or cost, then score, then provider id), and bucket bounds for the
//! branch-and-bound heap.

use std::cmp::Ordering;

use crate::config::Ranking;
use crate::estimate::Estimate;
use crate::registry::Registry;
use crate::rejection::{Rejection, RejectionKind};
use crate::score::ScoreBreakdown;

/// Receives rejections; returns whether to keep checking filters.
pub(crate) trait Sink {
    fn reject(&mut self, r: Rejection) -> bool;
}

/// Fast path: remember the first rejection and stop.
#[derive(Default)]
pub(crate) struct First(pub Option<RejectionKind>);

impl Sink for First {
    fn reject(&mut self, r: Rejection) -> bool {
        self.0 = Some(r.kind());
        false
    }
}

/// Explain path: keep every rejection.
#[derive(Default)]
pub(crate) struct All(pub Vec<Rejection>);

impl Sink for All {
    fn reject(&mut self, r: Rejection) -> bool {
        self.0.push(r);
        true
    }
}

/// An evaluated candidate.
#[derive(Clone, Debug)]
pub(crate) struct Cand {
    pub slot: u32,
    pub cold: bool,
    pub est: Estimate,
    pub score: ScoreBreakdown,
    /// Exact cost for ranking (token-cost numerator, or hourly × hours).
    pub cost_num: u128,
    pub feasible: bool,
}

/// A bucket's score upper bound; the heap pops the highest first (ties by
/// bucket index, for determinism).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BucketBound {
    pub ub: f64,
    pub dyn_ub: f64,
    pub bucket: u32,
}

impl PartialEq for BucketBound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for BucketBound {}

impl PartialOrd for BucketBound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BucketBound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ub
            .total_cmp(&other.ub)
            .then(other.bucket.cmp(&self.bucket))
    }
}

/// The best k candidates, best first.
pub(crate) struct TopK<'a> {
    pub k: usize,
    pub items: Vec<Cand>,
    ranking: Ranking,
    reg: &'a Registry,
}

impl<'a> TopK<'a> {
    pub fn new(k: usize, ranking: Ranking, reg: &'a Registry) -> TopK<'a> {
        TopK {
            k: k.max(1),
            items: Vec::with_capacity(k.max(1) + 1),
            ranking,
            reg,
        }
    }

    /// Total order: `Less` = `a` ranks first.
    pub fn cmp(&self, a: &Cand, b: &Cand) -> Ordering {
        let by_score = b.score.total.total_cmp(&a.score.total);
        let primary = match self.ranking {
            Ranking::Score => by_score,
            Ranking::CheapestFirst => a.cost_num.cmp(&b.cost_num).then(by_score),
        };
        primary.then_with(|| self.reg.record(a.slot).id.cmp(&self.reg.record(b.slot).id))
    }

    pub fn push(&mut self, c: Cand) {
        let pos = self
            .items
            .partition_point(|x| self.cmp(x, &c) == Ordering::Less);
        if pos < self.k {
            self.items.insert(pos, c);
            self.items.truncate(self.k);
        }
    }

    pub fn worst(&self) -> Option<&Cand> {
        (self.items.len() >= self.k).then(|| &self.items[self.k - 1])
    }
}
