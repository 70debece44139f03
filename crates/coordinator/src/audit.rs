//! Audits: choosing which jobs an independent verifier re-executes, sending
//! them to verifiers, and applying the consequences of their signed reports.
//!
//! The choice is made after the job's result is committed, with the
//! coordinator's CSPRNG, so a provider cannot predict it. Rates: a base rate
//! (default 5%), higher for new providers and for providers with low
//! reputation, and 100% when the client asked for `verification: "always"`.
//! A failed audit slashes the provider's stake, records a refund of the job's
//! charge to the client, lowers its reputation, and after `max_failed_audits`
//! failures (or when the stake can no longer cover a slash) excludes it.

use std::time::Duration;

use proofmesh_receipt::{AuditReport, Receipt};
use proofmesh_store::{AuditPenalty, NewAudit, ProviderStats};
use proofmesh_wire::{AuditTask, ChatMessage, CoordinatorMsg};
use rand::Rng;

use crate::config::CoordinatorConfig;
use crate::pipeline::Pipeline;

/// An audit not reported within this long is sent again.
const AUDIT_STALE: Duration = Duration::from_secs(120);

/// Reputation in thousandths: (passed + 1) / (passed + 1 + 10 × failed).
pub fn reputation_milli(s: &ProviderStats) -> u32 {
    let good = s.audits_passed + 1;
    let total = good + 10 * s.audits_failed;
    u32::try_from(1000 * good / total).unwrap_or(1000)
}

/// The audit probability (thousandths) for a job, and why.
pub fn audit_rate(
    cfg: &CoordinatorConfig,
    stats: Option<&ProviderStats>,
    verification: &str,
) -> (u32, &'static str) {
    if verification == "always" {
        return (1000, "client requested verification: always");
    }
    let Some(s) = stats else {
        return (cfg.audit_rate_new_milli, "new provider");
    };
    let mut best = (cfg.audit_rate_milli, "sampled at the base rate");
    if s.audits_passed < u64::from(cfg.new_provider_audits) && cfg.audit_rate_new_milli > best.0 {
        best = (cfg.audit_rate_new_milli, "new provider");
    }
    if reputation_milli(s) < 900 && cfg.audit_rate_low_rep_milli > best.0 {
        best = (cfg.audit_rate_low_rep_milli, "low reputation");
    }
    best
}

/// Decides, after commit, whether to audit this job, and records it.
/// Returns whether an audit was scheduled (its charge is then held).
pub async fn maybe_audit(app: &Pipeline, receipt: &Receipt, verification: &str) -> bool {
    let provider = receipt.body.provider_key.as_str();
    let stats = match app.store.provider_stats(provider).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "read provider stats");
            return false;
        }
    };
    let (rate, why) = audit_rate(&app.config, stats.as_ref(), verification);
    let draw: u32 = rand::rngs::OsRng.gen_range(0..1000);
    if draw >= rate {
        return false;
    }
    let fee = if verification == "always" {
        let c = u128::from(receipt.body.price.charged_micros)
            * u128::from(app.config.verification_fee_bps);
        i64::try_from(c.div_ceil(10_000)).unwrap_or(i64::MAX)
    } else {
        0
    };
    let audit = NewAudit {
        audit_id: format!("aud_{}", uuid::Uuid::new_v4().simple()),
        receipt_id: receipt.body.receipt_id.clone(),
        provider_key: provider.to_string(),
        why: why.to_string(),
        fee_micros: fee,
        created_at_ms: app.clock.now_ms(),
    };
    match app.store.create_audit(&audit).await {
        Ok(()) => {
            metrics::counter!("proofmesh_audits_scheduled_total").increment(1);
            app.fleet.registry().audit_wakeup.notify_one();
            true
        }
        Err(e) => {
            tracing::error!(%e, "create audit");
            false
        }
    }
}

/// Sends pending audits to verifiers until shutdown.
pub async fn dispatch_loop(app: Pipeline, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(e) = dispatch_once(&app).await {
            tracing::error!(%e, "audit dispatch");
        }
        tokio::select! {
            _ = app.fleet.registry().audit_wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn dispatch_once(app: &Pipeline) -> Result<(), proofmesh_store::StoreError> {
    if app.fleet.registry().verifier_count() == 0 {
        return Ok(());
    }
    for p in app.store.pending_audits(32).await? {
        let Some(v) = app
            .fleet
            .registry()
            .pick_verifier(p.receipt.body.model.as_str())
        else {
            continue;
        };
        if !app
            .fleet
            .registry()
            .claim_audit(&p.audit_id, v.key.as_str(), AUDIT_STALE)
        {
            continue;
        }
        let messages: Vec<ChatMessage> = serde_json::from_str(&p.request_json).unwrap_or_default();
        let task = AuditTask {
            audit_id: p.audit_id.clone(),
            receipt: p.receipt,
            messages,
            completion_token_ids: p.evidence.completion_token_ids,
            text: p.evidence.text,
            fingerprint: hex::encode(&p.evidence.fingerprint),
        };
        if v.tx
            .send(CoordinatorMsg::Audit(Box::new(task)))
            .await
            .is_err()
        {
            app.fleet.registry().release_audit(&p.audit_id);
        }
    }
    Ok(())
}

/// Why a verifier's report was not applied (nothing is stored then).
#[derive(Debug, thiserror::Error)]
pub enum ReportRejected {
    /// The report names another verifier than the connection's.
    #[error("report names verifier {named} but came from {from}")]
    WrongVerifier {
        /// Key in the report.
        named: String,
        /// Key of the connection.
        from: String,
    },
    /// The audit was not sent to this verifier.
    #[error("audit {audit_id} was not assigned to this verifier")]
    NotAssigned {
        /// The audit.
        audit_id: String,
    },
    /// No such receipt.
    #[error("unknown receipt {receipt_id}")]
    UnknownReceipt {
        /// The receipt the report names.
        receipt_id: String,
    },
    /// The report is not a valid report about that receipt.
    #[error(transparent)]
    Invalid(#[from] proofmesh_receipt::AuditError),
    /// Storing it failed (or the audit is no longer pending).
    #[error(transparent)]
    Store(#[from] proofmesh_store::StoreError),
}

/// Handles a report from verifier `verifier`: checks it, stores it, applies
/// consequences (store, money, log, the fleet).
pub async fn on_report(
    app: &Pipeline,
    verifier: &str,
    report: &AuditReport,
) -> Result<(), ReportRejected> {
    let b = &report.body;
    if b.verifier_key.as_str() != verifier {
        return Err(ReportRejected::WrongVerifier {
            named: b.verifier_key.to_string(),
            from: verifier.to_string(),
        });
    }
    // The claim is released only once a valid report is applied, so a forged
    // report cannot free the audit for someone else.
    if app.fleet.registry().audit_claimant(&b.audit_id).as_deref() != Some(verifier) {
        return Err(ReportRejected::NotAssigned {
            audit_id: b.audit_id.clone(),
        });
    }
    let stored = app.store.get_receipt(&b.receipt_id).await?;
    let stored = stored.ok_or_else(|| ReportRejected::UnknownReceipt {
        receipt_id: b.receipt_id.clone(),
    })?;
    let (client_id, receipt) = (stored.client_id, stored.receipt);
    report.verify_for(&receipt.body)?;
    let penalty = AuditPenalty {
        slash_micros: app.config.slash_micros,
        stake_after_micros: app
            .money
            .stake_after_slash(receipt.body.provider_key.as_str())
            .await,
        refund_micros: i64::try_from(receipt.body.price.charged_micros).unwrap_or(i64::MAX),
        max_failed_audits: u64::from(app.config.max_failed_audits),
    };
    let stats = app
        .store
        .finish_audit(report, penalty, app.clock.now_ms())
        .await?;
    app.fleet.registry().release_audit(&b.audit_id);
    app.money.settle_audit(&client_id, &receipt, report).await;
    let entry = proofmesh_log::LogEntry::AuditReport(report.clone());
    let key = proofmesh_store::audit_log_key(&b.audit_id);
    if let Err(e) = app.log.append(&entry, Some(key)).await {
        // Stored already: the next start's backlog logs it.
        tracing::error!(error = %e, audit = %b.audit_id, "audit report stored but not logged");
    }
    metrics::counter!("proofmesh_audits_total", "outcome" => b.outcome.as_str()).increment(1);
    if b.outcome == proofmesh_receipt::AuditOutcome::Failed {
        tracing::warn!(provider = %stats.provider_key, reason = %b.reason, "audit FAILED");
    }
    app.fleet.apply_audit_record(&stats);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Audit stats with `passed` and `failed` audits (shared with
    /// `standing.rs`'s tests).
    pub(crate) fn stats(passed: u64, failed: u64) -> ProviderStats {
        ProviderStats {
            provider_key: "p".into(),
            jobs_completed: 0,
            audits_passed: passed,
            audits_failed: failed,
            slashed_micros: 0,
            excluded: false,
        }
    }

    #[test]
    fn rates_follow_policy() {
        let c = CoordinatorConfig::default();
        assert_eq!(audit_rate(&c, Some(&stats(50, 0)), "sampled").0, 50);
        assert_eq!(audit_rate(&c, Some(&stats(50, 0)), "always").0, 1000);
        assert_eq!(audit_rate(&c, Some(&stats(2, 0)), "sampled").0, 500);
        assert_eq!(audit_rate(&c, None, "sampled").0, 500);
        assert_eq!(
            audit_rate(&c, Some(&stats(50, 1)), "sampled"),
            (250, "low reputation")
        );
    }

    #[test]
    fn reputation_drops_with_failures() {
        assert_eq!(reputation_milli(&stats(0, 0)), 1000);
        assert!(reputation_milli(&stats(100, 1)) < 1000);
        assert!(reputation_milli(&stats(10, 1)) < 900);
    }
}
