//! Recomputing a provider's epoch figures from the log alone.
//!
//! Why: the oracle is only tamper-evident if the figures follow from evidence
//! anyone can hold. [`compute_statement`] takes receipts, audit reports and
//! heartbeat observations (in any order, duplicates allowed) and derives every
//! figure with these rules:
//!
//! - **Receipts** count if they name the provider, finished in the epoch
//!   (`finished_at_ms ∈ [start, end)`), pass the consistency check and both
//!   signatures, are countersigned by the statement's coordinator, and are
//!   priced in the statement's currency. Others of this provider in the epoch
//!   are listed in [`Computed::ignored`] with the reason. One receipt id
//!   counts once.
//! - **Audits** (attached to receipts or given separately) count if they are
//!   about a counted receipt, verify for it, and come from a verifier in
//!   `params.verifiers`; one audit id counts once. A job with any failed audit
//!   is refunded: its charge moves from revenue to `refunded_micros`.
//! - **Net revenue** subtracts the protocol fee per job, rounded down, as the
//!   settlement flows do.
//! - **Uptime**: each heartbeat of the provider covers
//!   `[at, at + heartbeat_grace_ms)`; uptime is the length of the union of
//!   those intervals inside the epoch. Heartbeats count if `at` is in the epoch.
//! - **Busy time**: the union of counted receipts' `[dispatched, finished)`
//!   inside the epoch; utilization is busy ÷ uptime.

use std::collections::{BTreeMap, BTreeSet};

use proofmesh_receipt::{AuditOutcome, AuditReport, Digest, PublicKey, Receipt};
use serde::{Deserialize, Serialize};

use super::{StatementBody, StatementError, StatementFigures, StatementParams, STATEMENT_VERSION};
use crate::epoch::Epoch;
use crate::money::{Amount, BPS_DENOMINATOR};
use crate::pricing::receipt_charge;

/// A heartbeat the coordinator observed (and logged) from a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The provider.
    pub provider: PublicKey,
    /// Unix ms when it arrived.
    pub at_ms: u64,
}

/// A piece of evidence that did not count, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ignored {
    /// `"receipt"` or `"audit"`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Why it was left out.
    pub reason: String,
}

/// The outcome of [`compute_statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computed {
    /// Provider.
    pub provider: PublicKey,
    /// Coordinator whose countersignature counted.
    pub coordinator: PublicKey,
    /// Epoch.
    pub epoch: Epoch,
    /// Parameters used.
    pub params: StatementParams,
    /// The figures.
    pub figures: StatementFigures,
    /// Evidence about this provider and epoch that did not count.
    pub ignored: Vec<Ignored>,
}

impl Computed {
    /// The statement body to sign, chained to `prev_statement_hash`.
    pub fn into_body(self, prev_statement_hash: Digest) -> StatementBody {
        StatementBody {
            version: STATEMENT_VERSION,
            provider: self.provider,
            coordinator: self.coordinator,
            epoch: self.epoch,
            params: self.params,
            figures: self.figures,
            prev_statement_hash,
        }
    }
}

fn ignore(out: &mut Vec<Ignored>, kind: &str, id: &str, reason: impl ToString) {
    out.push(Ignored {
        kind: kind.into(),
        id: id.into(),
        reason: reason.to_string(),
    });
}

/// Counted receipts by id, with their charges.
fn select_receipts<'a>(
    provider: &PublicKey,
    coordinator: &PublicKey,
    epoch: Epoch,
    params: &StatementParams,
    receipts: impl IntoIterator<Item = &'a Receipt>,
    ignored: &mut Vec<Ignored>,
) -> BTreeMap<&'a str, (&'a Receipt, Amount)> {
    let mut out: BTreeMap<&'a str, (&'a Receipt, Amount)> = BTreeMap::new();
    for r in receipts {
        let b = &r.body;
        if &b.provider_key != provider || !epoch.contains_ms(b.finished_at_ms) {
            continue;
        }
        let id = b.receipt_id.as_str();
        if let Some((seen, _)) = out.get(id) {
            if seen.body != r.body {
                ignore(
                    ignored,
                    "receipt",
                    id,
                    "a different receipt with this id already counted",
                );
            }
            continue;
        }
        let checks = b
            .check_consistency()
            .and_then(|_| r.verify_provider_signature())
            .and_then(|_| r.verify_coordinator_signature());
        if let Err(e) = checks {
            ignore(ignored, "receipt", id, e);
            continue;
        }
        if &b.coordinator_key != coordinator {
            ignore(
                ignored,
                "receipt",
                id,
                "countersigned by another coordinator",
            );
            continue;
        }
        match receipt_charge(b) {
            Ok(charge) if charge.currency() == params.currency => {
                out.insert(id, (r, charge));
            }
            Ok(charge) => ignore(
                ignored,
                "receipt",
                id,
                format!("priced in {}", charge.currency()),
            ),
            Err(e) => ignore(ignored, "receipt", id, e),
        }
    }
    out
}

/// (receipt ids with a failed audit, passed count, failed count).
fn count_audits<'a>(
    counted: &BTreeMap<&'a str, (&'a Receipt, Amount)>,
    extra: impl IntoIterator<Item = &'a AuditReport>,
    params: &StatementParams,
    ignored: &mut Vec<Ignored>,
) -> (BTreeSet<&'a str>, u64, u64) {
    let embedded = counted.values().flat_map(|(r, _)| r.audits.iter());
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut failed_jobs = BTreeSet::new();
    let (mut passed, mut failed) = (0u64, 0u64);
    for a in embedded.chain(extra) {
        let Some(&(r, _)) = counted.get(a.body.receipt_id.as_str()) else {
            continue;
        };
        let id = a.body.audit_id.as_str();
        if seen.contains(id) {
            continue;
        }
        if let Err(e) = a.verify_for(&r.body) {
            ignore(ignored, "audit", id, e);
            continue;
        }
        if !params.verifiers.contains(&a.body.verifier_key) {
            ignore(ignored, "audit", id, "verifier is not in the trusted list");
            continue;
        }
        seen.insert(id);
        match a.body.outcome {
            AuditOutcome::Passed => passed += 1,
            AuditOutcome::Failed => {
                failed += 1;
                failed_jobs.insert(r.body.receipt_id.as_str());
            }
        }
    }
    (failed_jobs, passed, failed)
}

/// Length of the union of `[start, end)` intervals clipped to the epoch.
fn union_ms(mut intervals: Vec<(u64, u64)>, epoch: Epoch) -> u64 {
    let (lo, hi) = (epoch.start_ms(), epoch.end_ms());
    intervals.retain_mut(|(s, e)| {
        *s = (*s).max(lo);
        *e = (*e).min(hi);
        s < e
    });
    intervals.sort_unstable();
    let mut total = 0u64;
    let mut cur: Option<(u64, u64)> = None;
    for (s, e) in intervals {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total // ≤ epoch length
}

fn ratio_bps(num: u64, den: u64) -> u32 {
    if den == 0 {
        return 0;
    }
    let r = u128::from(num) * u128::from(BPS_DENOMINATOR) / u128::from(den);
    u32::try_from(r.min(u128::from(BPS_DENOMINATOR))).unwrap_or(BPS_DENOMINATOR)
}

fn to_u64(v: u128, figure: &'static str) -> Result<u64, StatementError> {
    u64::try_from(v).map_err(|_| StatementError::Overflow { figure })
}

/// Computes a provider's figures for an epoch from the evidence (module docs
/// give the rules). Deterministic: the order of the inputs does not matter.
pub fn compute_statement<'a>(
    provider: &PublicKey,
    coordinator: &PublicKey,
    epoch: Epoch,
    params: &StatementParams,
    receipts: impl IntoIterator<Item = &'a Receipt>,
    audits: impl IntoIterator<Item = &'a AuditReport>,
    heartbeats: impl IntoIterator<Item = &'a Heartbeat>,
) -> Result<Computed, StatementError> {
    let mut ignored = Vec::new();
    let counted = select_receipts(provider, coordinator, epoch, params, receipts, &mut ignored);
    let (failed_jobs, audits_passed, audits_failed) =
        count_audits(&counted, audits, params, &mut ignored);
    let (mut revenue, mut net, mut refunded) = (0u128, 0u128, 0u128);
    let mut busy = Vec::with_capacity(counted.len());
    for (id, (r, charge)) in &counted {
        busy.push((r.body.dispatched_at_ms, r.body.finished_at_ms));
        if failed_jobs.contains(id) {
            refunded += u128::from(charge.micros());
            continue;
        }
        let fee =
            charge
                .bps_floor(params.protocol_fee_bps)
                .map_err(|_| StatementError::Overflow {
                    figure: "protocol fee",
                })?;
        revenue += u128::from(charge.micros());
        net += u128::from(charge.micros() - fee.micros());
    }
    let mut beats: Vec<u64> = heartbeats
        .into_iter()
        .filter(|h| &h.provider == provider && epoch.contains_ms(h.at_ms))
        .map(|h| h.at_ms)
        .collect();
    beats.sort_unstable();
    beats.dedup();
    let grace = params.heartbeat_grace_ms;
    let uptime_ms = union_ms(
        beats
            .iter()
            .map(|&t| (t, t.saturating_add(grace)))
            .collect(),
        epoch,
    );
    let busy_ms = union_ms(busy, epoch);
    let figures = StatementFigures {
        revenue_micros: to_u64(revenue, "revenue")?,
        net_revenue_micros: to_u64(net, "net revenue")?,
        refunded_micros: to_u64(refunded, "refunds")?,
        jobs_served: counted.len() as u64,
        audits_passed,
        audits_failed,
        heartbeats: beats.len() as u64,
        uptime_ms,
        uptime_bps: ratio_bps(uptime_ms, epoch.len_ms()),
        busy_ms,
        utilization_bps: ratio_bps(busy_ms, uptime_ms),
    };
    Ok(Computed {
        provider: provider.clone(),
        coordinator: coordinator.clone(),
        epoch,
        params: params.clone(),
        figures,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_overlaps_and_clips_to_the_epoch() {
        let e = Epoch::new(10, 20).unwrap(); // [10 000, 20 000) ms
        let got = union_ms(
            vec![
                (9_000, 11_000),
                (10_500, 12_000),
                (15_000, 16_000),
                (19_500, 30_000),
            ],
            e,
        );
        assert_eq!(got, 2_000 + 1_000 + 500);
        assert_eq!(union_ms(vec![(0, 5_000)], e), 0);
        assert_eq!(union_ms(vec![(0, u64::MAX)], e), 10_000);
    }

    #[test]
    fn ratio_floors_caps_and_handles_zero() {
        assert_eq!(ratio_bps(1, 3), 3_333);
        assert_eq!(ratio_bps(5, 4), 10_000);
        assert_eq!(ratio_bps(5, 0), 0);
    }
}
