//! The recomputation rule of metrics statements: which log entries count as
//! evidence for a provider's statement of one epoch — the rule lenders check
//! covenants against.
//!
//! Why one definition, here: the coordinator publishes with it and
//! `proofmesh covenant check` recomputes with it, so an honest statement
//! always recomputes to itself and any difference is a real discrepancy.
//! It is pure (entries are fed in; reading the log is the caller's), so a
//! lender's checker needs neither the coordinator nor a database. Log
//! entries reach it as [`EvidenceItem`]s (`proofmesh_log` converts its
//! `LogEntry`). The rule, for a statement of epoch `E = [start, end)` signed
//! by coordinator `C` and logged at index `M`:
//!
//! - only entries at index `< M` are read (a statement covers what was logged
//!   before it);
//! - **receipts** finished in `E` (then [`compute_statement`]
//!   keeps those of the provider, countersigned by `C`, with valid
//!   signatures and price arithmetic);
//! - **audit reports** checked (`checked_at_ms`, signed by the verifier) in
//!   `[start, cutoff)` with `cutoff = end + settle` and
//!   `settle = clamp(len(E) / 24, 1 s, 1 h)` ([`settle_ms`]); the coordinator
//!   publishes only after the cutoff, so every such report is already logged
//!   and the rule does not depend on what else is appended while a statement
//!   is being written. `compute_statement` keeps those about counted receipts
//!   from the statement's trusted verifiers;
//! - **heartbeats** from heartbeat logs signed by `C` whose signature
//!   verifies, with arrival time in `E`.
//!
//! Evidence about `E` logged after the statement (or audits checked after the
//! cutoff) is in no statement; [`Evidence::without_cutoff`] lets a checker
//! report it.

use std::collections::BTreeSet;

use proofmesh_receipt::{AuditReport, PublicKey, Receipt};

use super::compute::{compute_statement, Computed, Heartbeat};
use super::heartbeats::SignedHeartbeats;
use super::{StatementError, StatementParams};
use crate::epoch::Epoch;

/// Shortest settle time after an epoch: 1 s.
const MIN_SETTLE_MS: u64 = 1_000;
/// Longest settle time after an epoch: 1 h.
const MAX_SETTLE_MS: u64 = 3_600_000;

/// How long after an epoch ends its audit reports still count and before
/// its statements are published: `len / 24`, clamped to 1 s ..= 1 h (one
/// hour for daily epochs).
pub fn settle_ms(epoch: Epoch) -> u64 {
    (epoch.len_ms() / 24).clamp(MIN_SETTLE_MS, MAX_SETTLE_MS)
}

/// Audit reports checked at or after this instant do not count for `epoch`.
pub fn audit_cutoff_ms(epoch: Epoch) -> u64 {
    epoch.end_ms().saturating_add(settle_ms(epoch))
}

/// A log entry as the evidence rule sees it: the kinds that can count, and
/// everything else.
#[derive(Debug, Clone, Copy)]
pub enum EvidenceItem<'a> {
    /// A countersigned receipt.
    Receipt(&'a Receipt),
    /// A verifier-signed audit report.
    AuditReport(&'a AuditReport),
    /// A coordinator-signed heartbeat log.
    Heartbeats(&'a SignedHeartbeats),
    /// Any other entry (statements, pool documents, batches): never evidence.
    Other,
}

/// Evidence for one epoch and coordinator, collected from log entries fed in
/// any order.
#[derive(Debug, Clone)]
pub struct Evidence {
    epoch: Epoch,
    coordinator: PublicKey,
    audit_cutoff_ms: u64,
    receipts: Vec<Receipt>,
    audits: Vec<AuditReport>,
    beats: Vec<Heartbeat>,
}

impl Evidence {
    /// Evidence by the rule in the module docs.
    pub fn new(epoch: Epoch, coordinator: PublicKey) -> Evidence {
        Evidence {
            epoch,
            coordinator,
            audit_cutoff_ms: audit_cutoff_ms(epoch),
            receipts: Vec::new(),
            audits: Vec::new(),
            beats: Vec::new(),
        }
    }

    /// Like [`Evidence::new`] but counting audits checked any time after the
    /// epoch started: what the figures would be with late evidence.
    pub fn without_cutoff(epoch: Epoch, coordinator: PublicKey) -> Evidence {
        Evidence {
            audit_cutoff_ms: u64::MAX,
            ..Evidence::new(epoch, coordinator)
        }
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Takes in one log entry (anything that converts to an
    /// [`EvidenceItem`], such as `&proofmesh_log::LogEntry`), keeping it if
    /// it is evidence for the epoch.
    pub fn add<'a>(&mut self, entry: impl Into<EvidenceItem<'a>>) {
        match entry.into() {
            EvidenceItem::Receipt(r) if self.epoch.contains_ms(r.body.finished_at_ms) => {
                self.receipts.push(r.clone());
            }
            EvidenceItem::AuditReport(a) => {
                let t = a.body.checked_at_ms;
                if self.epoch.start_ms() <= t && t < self.audit_cutoff_ms {
                    self.audits.push(a.clone());
                }
            }
            EvidenceItem::Heartbeats(h)
                if h.body.coordinator == self.coordinator
                    && h.body.from_ms < self.epoch.end_ms()
                    && h.body.to_ms > self.epoch.start_ms()
                    && h.verify().is_ok() =>
            {
                let epoch = self.epoch;
                self.beats
                    .extend(h.heartbeats().filter(|b| epoch.contains_ms(b.at_ms)));
            }
            _ => {}
        }
    }

    /// Every provider with a receipt or a heartbeat in the evidence.
    pub fn providers(&self) -> BTreeSet<String> {
        let receipts = self
            .receipts
            .iter()
            .map(|r| r.body.provider_key.to_string());
        let beats = self.beats.iter().map(|b| b.provider.to_string());
        receipts.chain(beats).collect()
    }

    /// The provider's figures for the epoch, computed with `params`.
    pub fn compute(
        &self,
        provider: &PublicKey,
        params: &StatementParams,
    ) -> Result<Computed, StatementError> {
        compute_statement(
            provider,
            &self.coordinator,
            self.epoch,
            params,
            &self.receipts,
            &self.audits,
            &self.beats,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_scales_with_the_epoch_and_is_clamped() {
        let day = Epoch::daily(1).unwrap();
        assert_eq!(settle_ms(day), 3_600_000);
        assert_eq!(audit_cutoff_ms(day), day.end_ms() + 3_600_000);
        assert_eq!(settle_ms(Epoch::new(0, 2).unwrap()), 1_000);
        assert_eq!(settle_ms(Epoch::new(0, 240).unwrap()), 10_000);
        assert_eq!(settle_ms(Epoch::new(0, 30 * 86_400).unwrap()), 3_600_000);
    }
}
