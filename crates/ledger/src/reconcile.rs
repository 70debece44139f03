//! Reconciling a job's money with its state: which settlement steps a job
//! still needs, given its status, its audit's status and what its escrow and
//! audit-hold accounts hold now — and the invariant that both accounts are
//! empty once the job and its audit are final.
//!
//! Why a pure module: the coordinator settles a job from three places that
//! can run in any order — the job driver after completion, the audit report
//! handler, and the startup recovery sweep — and a crash can cut any of them
//! short. Whatever ran before, [`plan`] looks only at the current balances
//! and states and names what is left, and every step it names has a key
//! derived from the job id ([`crate::settle`]), so running a plan twice, or
//! concurrently with the driver building the same transaction, applies each
//! movement once. An audit report that arrives before the completion
//! settlement therefore applies that settlement itself first (issue 17).
//! `tests/reconcile.rs` drives these rules through random interleavings.
//!
//! [`check_job_accounts`] is the invariant as a rule over gathered data: the
//! store says which escrow and hold accounts hold money and what state their
//! jobs and audits are in; money left in either once both are final is a
//! [`Violation`].

use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::money::{Amount, Currency};
use crate::settle::{self, AuditDecision, JobParties, PoolShare, SettleError, Settlement};
use crate::SettlementConfig;

/// Why a stored status could not be read, or a step not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// Building the step's transaction failed.
    #[error(transparent)]
    Settle(#[from] SettleError),
    /// A step that ends an audit was asked for without the audit's id.
    #[error("job {job_id}: {step:?} needs the audit's id")]
    MissingAuditId {
        /// Job.
        job_id: String,
        /// The step.
        step: Step,
    },
    /// A job status other than `dispatched`, `completed`, `failed`.
    #[error("unknown job status {status:?}")]
    UnknownJobStatus {
        /// As stored.
        status: String,
    },
    /// An audit status other than `pending`, `passed`, `failed`.
    #[error("unknown audit status {status:?}")]
    UnknownAuditStatus {
        /// As stored.
        status: String,
    },
}

/// A job's status, as far as its money is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Running (or left running by a dead coordinator).
    Dispatched,
    /// Completed with a countersigned receipt.
    Completed,
    /// Failed without a receipt.
    Failed,
}

impl JobState {
    /// From the stored status string.
    pub fn parse(status: &str) -> Result<JobState, ReconcileError> {
        match status {
            "dispatched" => Ok(JobState::Dispatched),
            "completed" => Ok(JobState::Completed),
            "failed" => Ok(JobState::Failed),
            other => Err(ReconcileError::UnknownJobStatus {
                status: other.to_owned(),
            }),
        }
    }

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Dispatched => "dispatched",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }

    /// Whether the job can no longer change.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Dispatched)
    }
}

/// The state of a job's audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditState {
    /// No audit was scheduled (no audit row).
    NotAudited,
    /// Waiting for a verifier's report.
    Pending,
    /// The report says the job was served honestly.
    Passed,
    /// The report says it was not.
    Failed,
}

impl AuditState {
    /// From the stored audit status (`None`: no audit row).
    pub fn parse(status: Option<&str>) -> Result<AuditState, ReconcileError> {
        match status {
            None => Ok(AuditState::NotAudited),
            Some("pending") => Ok(AuditState::Pending),
            Some("passed") => Ok(AuditState::Passed),
            Some("failed") => Ok(AuditState::Failed),
            Some(other) => Err(ReconcileError::UnknownAuditStatus {
                status: other.to_owned(),
            }),
        }
    }

    /// The serialized name (`not_audited` has no stored status).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditState::NotAudited => "not_audited",
            AuditState::Pending => "pending",
            AuditState::Passed => "passed",
            AuditState::Failed => "failed",
        }
    }

    /// Whether the audit can no longer change (no audit is final too).
    pub fn is_final(self) -> bool {
        !matches!(self, AuditState::Pending)
    }
}

/// One settlement step a job still needs, in the order [`plan`] lists them.
/// Each maps onto one builder of [`crate::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The job failed: its whole escrow goes back to the client
    /// ([`crate::settle::settle_failed_job`], key `settle/<job>`).
    RefundEscrow {
        /// The escrow's balance.
        escrowed: Amount,
    },
    /// The completion settlement ([`crate::settle::settle_completed`], key
    /// `settle/<job>`) from the escrow's balance — which is exactly what was
    /// escrowed, since only this step drains it. The job driver builds the
    /// same transaction from the amount it escrowed, so whichever comes
    /// second is an idempotent no-op.
    Complete {
        /// The escrow's balance.
        escrowed: Amount,
        /// Hold the charge (an audit exists) or pay it out.
        decision: AuditDecision,
    },
    /// The audit passed: the held charge is paid out
    /// ([`crate::settle::release_held`], key `audit/<job>`).
    ReleaseHold,
    /// The audit failed: the held charge goes back to the client and the
    /// provider is slashed ([`crate::settle::refund_failed_audit`], key
    /// `audit/<job>`).
    RefundHold,
    /// A charge is held but no audit exists (a crash between the hold and
    /// the audit's creation): pay it out as an unaudited job
    /// ([`crate::settle::release_unaudited`], key `audit/<job>`).
    ReleaseUnaudited,
}

/// The steps that settle a job whose escrow holds `escrow` and whose audit
/// hold holds `hold` now.
///
/// - A running job needs nothing yet (the recovery sweep fails a job its
///   dead coordinator left running before planning it).
/// - A failed job's escrow is refunded in full.
/// - A completed job's escrow is settled first — held if an audit exists,
///   paid out if not — and then a hold (already there, or just made) is
///   released on a passed audit, refunded on a failed one, left alone while
///   the audit is pending, and released as unaudited if no audit exists.
///
/// A hold on a job that did not complete cannot arise from these steps and
/// has no rule here; [`check_job_accounts`] reports it.
pub fn plan(job: JobState, audit: AuditState, escrow: Amount, hold: Amount) -> Vec<Step> {
    let mut steps = Vec::new();
    match job {
        JobState::Dispatched => {}
        JobState::Failed => {
            if !escrow.is_zero() {
                steps.push(Step::RefundEscrow { escrowed: escrow });
            }
        }
        JobState::Completed => {
            let decision = match audit {
                AuditState::NotAudited => AuditDecision::NotAudited,
                _ => AuditDecision::Hold,
            };
            if !escrow.is_zero() {
                steps.push(Step::Complete {
                    escrowed: escrow,
                    decision,
                });
            }
            let held = !hold.is_zero() || (!escrow.is_zero() && decision == AuditDecision::Hold);
            if held {
                match audit {
                    AuditState::Pending => {}
                    AuditState::Passed => steps.push(Step::ReleaseHold),
                    AuditState::Failed => steps.push(Step::RefundHold),
                    AuditState::NotAudited => steps.push(Step::ReleaseUnaudited),
                }
            }
        }
    }
    steps
}

impl Step {
    /// Whether building it needs the provider's pool share (it pays out).
    pub fn pays_out(&self) -> bool {
        matches!(
            self,
            Step::Complete {
                decision: AuditDecision::NotAudited,
                ..
            } | Step::ReleaseHold
                | Step::ReleaseUnaudited
        )
    }

    /// Whether building it needs the provider's current stake (it slashes).
    pub fn slashes(&self) -> bool {
        matches!(self, Step::RefundHold)
    }
}

/// What building a [`Step`] needs to know about the job.
#[derive(Debug, Clone, Copy)]
pub struct StepInputs<'a> {
    /// Who the job involves.
    pub job: &'a JobParties,
    /// Its receipt.
    pub receipt_id: &'a str,
    /// Its audit, if it has one.
    pub audit_id: Option<&'a str>,
    /// The receipt's exact charge.
    pub charge: Amount,
    /// Protocol fee and slash rule.
    pub cfg: &'a SettlementConfig,
    /// The provider's pool share (needed when [`Step::pays_out`]).
    pub pool: Option<&'a PoolShare>,
    /// The provider's stake now (needed when [`Step::slashes`]).
    pub stake: Amount,
}

/// The transaction for one step. A failed job's refund needs only
/// `job`; everything else also the receipt.
pub fn build_step(step: Step, i: &StepInputs<'_>) -> Result<Settlement, ReconcileError> {
    let audit_id = || {
        i.audit_id.ok_or_else(|| ReconcileError::MissingAuditId {
            job_id: i.job.job_id.clone(),
            step,
        })
    };
    Ok(match step {
        Step::RefundEscrow { escrowed } => settle::settle_failed_job(i.job, escrowed)?,
        Step::Complete { escrowed, decision } => settle::settle_completed(
            i.job,
            i.receipt_id,
            escrowed,
            i.charge,
            i.cfg,
            i.pool,
            decision,
        )?,
        Step::ReleaseHold => settle::release_held(i.job, audit_id()?, i.charge, i.cfg, i.pool)?,
        Step::RefundHold => {
            settle::refund_failed_audit(i.job, audit_id()?, i.charge, i.stake, i.cfg)?
        }
        Step::ReleaseUnaudited => {
            settle::release_unaudited(i.job, i.receipt_id, i.charge, i.cfg, i.pool)?
        }
    })
}

/// Which of a job's two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAccountKind {
    /// `escrow:<job>`.
    Escrow,
    /// `hold:<job>`.
    Hold,
}

impl JobAccountKind {
    /// The account of this kind for `job_id`.
    pub fn account(self, job_id: &str) -> AccountId {
        match self {
            JobAccountKind::Escrow => AccountId::JobEscrow(job_id.to_owned()),
            JobAccountKind::Hold => AccountId::AuditHold(job_id.to_owned()),
        }
    }
}

/// A job account with money in it, and the state of its job and audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAccount {
    /// Escrow or hold.
    pub kind: JobAccountKind,
    /// The job.
    pub job_id: String,
    /// Currency of the balance.
    pub currency: Currency,
    /// Balance, micro-units.
    pub balance: i64,
    /// The job's state; `None` if no job row exists (e.g. the escrow of a
    /// request whose job row is not written yet).
    pub job: Option<JobState>,
    /// The job's audit.
    pub audit: AuditState,
    /// When the job and its audit both became final (the later of the two),
    /// unix ms, if they are.
    pub final_since_ms: Option<u64>,
}

/// Money left in a job account after its job and audit are final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The job.
    pub job_id: String,
    /// The account (`escrow:<job>` or `hold:<job>`).
    pub account: AccountId,
    /// Currency.
    pub currency: Currency,
    /// What is left, micro-units.
    pub balance: i64,
    /// The job's state.
    pub job: JobState,
    /// Its audit's state.
    pub audit: AuditState,
}

/// The outcome of [`check_job_accounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantReport {
    /// Funded job accounts looked at.
    pub checked: usize,
    /// Of those, accounts whose job or audit is not final yet (money may
    /// rightly be there), or whose job row does not exist.
    pub not_final: usize,
    /// Of those, accounts whose job and audit became final after the cutoff
    /// (a live coordinator may still be settling them).
    pub recent: usize,
    /// Money left where none may be.
    pub violations: Vec<Violation>,
}

impl InvariantReport {
    /// Whether no account breaks the invariant.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The invariant "every job escrow and every audit hold is zero once its job
/// and its audit are final" over the funded job accounts a store found.
/// Accounts whose job and audit became final after `final_before_ms` are
/// counted as [`InvariantReport::recent`], not as violations (a running
/// coordinator settles a job a few hundred ms after completing it); `None`
/// checks everything.
pub fn check_job_accounts(
    accounts: &[JobAccount],
    final_before_ms: Option<u64>,
) -> InvariantReport {
    let mut report = InvariantReport {
        checked: accounts.len(),
        ..InvariantReport::default()
    };
    for a in accounts {
        if a.balance == 0 {
            continue;
        }
        let Some(job) = a.job.filter(|j| j.is_final() && a.audit.is_final()) else {
            report.not_final += 1;
            continue;
        };
        let recent = match (final_before_ms, a.final_since_ms) {
            (Some(cutoff), Some(at)) => at > cutoff,
            _ => false,
        };
        if recent {
            report.recent += 1;
            continue;
        }
        report.violations.push(Violation {
            job_id: a.job_id.clone(),
            account: a.kind.account(&a.job_id),
            currency: a.currency,
            balance: a.balance,
            job,
            audit: a.audit,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(m: u64) -> Amount {
        Amount::from_micros(Currency::Usd, m).unwrap()
    }

    #[test]
    fn a_report_before_the_completion_settlement_settles_both() {
        assert_eq!(
            plan(JobState::Completed, AuditState::Passed, usd(10), usd(0)),
            vec![
                Step::Complete {
                    escrowed: usd(10),
                    decision: AuditDecision::Hold
                },
                Step::ReleaseHold
            ]
        );
        assert_eq!(
            plan(JobState::Completed, AuditState::Failed, usd(10), usd(0)),
            vec![
                Step::Complete {
                    escrowed: usd(10),
                    decision: AuditDecision::Hold
                },
                Step::RefundHold
            ]
        );
    }

    #[test]
    fn holds_wait_for_pending_audits_and_settle_on_final_ones() {
        let pending = plan(JobState::Completed, AuditState::Pending, usd(10), usd(0));
        assert_eq!(
            pending,
            vec![Step::Complete {
                escrowed: usd(10),
                decision: AuditDecision::Hold
            }]
        );
        assert!(plan(JobState::Completed, AuditState::Pending, usd(0), usd(7)).is_empty());
        assert_eq!(
            plan(JobState::Completed, AuditState::Passed, usd(0), usd(7)),
            vec![Step::ReleaseHold]
        );
        assert_eq!(
            plan(JobState::Completed, AuditState::Failed, usd(0), usd(7)),
            vec![Step::RefundHold]
        );
        assert_eq!(
            plan(JobState::Completed, AuditState::NotAudited, usd(0), usd(7)),
            vec![Step::ReleaseUnaudited]
        );
    }

    #[test]
    fn settled_jobs_need_nothing_and_failed_jobs_are_refunded() {
        for audit in [
            AuditState::NotAudited,
            AuditState::Pending,
            AuditState::Passed,
            AuditState::Failed,
        ] {
            assert!(plan(JobState::Completed, audit, usd(0), usd(0)).is_empty());
            assert!(plan(JobState::Dispatched, audit, usd(5), usd(0)).is_empty());
        }
        assert_eq!(
            plan(JobState::Completed, AuditState::NotAudited, usd(9), usd(0)),
            vec![Step::Complete {
                escrowed: usd(9),
                decision: AuditDecision::NotAudited
            }]
        );
        assert_eq!(
            plan(JobState::Failed, AuditState::NotAudited, usd(9), usd(0)),
            vec![Step::RefundEscrow { escrowed: usd(9) }]
        );
    }

    #[test]
    fn statuses_parse_and_unknown_ones_are_errors() {
        for j in [JobState::Dispatched, JobState::Completed, JobState::Failed] {
            assert_eq!(JobState::parse(j.as_str()), Ok(j));
            assert_eq!(serde_json::to_value(j).unwrap(), j.as_str());
        }
        for a in [AuditState::Pending, AuditState::Passed, AuditState::Failed] {
            assert_eq!(AuditState::parse(Some(a.as_str())), Ok(a));
        }
        for a in [AuditState::NotAudited, AuditState::Pending] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!(matches!(
            JobState::parse("done"),
            Err(ReconcileError::UnknownJobStatus { .. })
        ));
        assert_eq!(AuditState::parse(None), Ok(AuditState::NotAudited));
        assert_eq!(AuditState::parse(Some("passed")), Ok(AuditState::Passed));
        assert!(matches!(
            AuditState::parse(Some("maybe")),
            Err(ReconcileError::UnknownAuditStatus { .. })
        ));
    }

    fn account(
        kind: JobAccountKind,
        job: Option<JobState>,
        audit: AuditState,
        at: Option<u64>,
    ) -> JobAccount {
        JobAccount {
            kind,
            job_id: "j".into(),
            currency: Currency::Usd,
            balance: 5,
            job,
            audit,
            final_since_ms: at,
        }
    }

    #[test]
    fn the_invariant_flags_money_left_after_everything_is_final() {
        use JobAccountKind::*;
        let accounts = vec![
            account(
                Hold,
                Some(JobState::Completed),
                AuditState::Passed,
                Some(10),
            ),
            account(
                Escrow,
                Some(JobState::Failed),
                AuditState::NotAudited,
                Some(10),
            ),
            account(Hold, Some(JobState::Completed), AuditState::Pending, None),
            account(
                Escrow,
                Some(JobState::Dispatched),
                AuditState::NotAudited,
                None,
            ),
            account(Escrow, None, AuditState::NotAudited, None),
            account(
                Hold,
                Some(JobState::Completed),
                AuditState::Failed,
                Some(99),
            ),
        ];
        let r = check_job_accounts(&accounts, Some(50));
        assert_eq!((r.checked, r.not_final, r.recent), (6, 3, 1));
        assert_eq!(r.violations.len(), 2);
        assert!(!r.holds());
        assert_eq!(r.violations[0].account, AccountId::AuditHold("j".into()));
        assert_eq!(r.violations[0].audit, AuditState::Passed);
        assert_eq!(r.violations[1].account, AccountId::JobEscrow("j".into()));
        assert_eq!(r.violations[1].job, JobState::Failed);
        // Without a cutoff, the recent one counts too.
        assert_eq!(check_job_accounts(&accounts, None).violations.len(), 3);
        assert!(check_job_accounts(&[], None).holds());
    }
}
