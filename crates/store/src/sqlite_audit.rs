//! SQLite implementation of [`AuditStore`].

use async_trait::async_trait;
use proofmesh_receipt::{AuditOutcome, AuditReport, Receipt};
use sqlx::Row;

use crate::audit::{
    AuditPenalty, AuditStore, Evidence, NewAudit, PendingAudit, ProofFailure, ProviderStats,
};
use crate::sqlite::{db, ms, SqliteStore};
use crate::StoreError;

pub(crate) fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn stats_from(r: &sqlx::sqlite::SqliteRow) -> ProviderStats {
    ProviderStats {
        provider_key: r.get(0),
        jobs_completed: r.get::<i64, _>(1).max(0) as u64,
        audits_passed: r.get::<i64, _>(2).max(0) as u64,
        audits_failed: r.get::<i64, _>(3).max(0) as u64,
        slashed_micros: r.get(4),
        excluded: r.get::<i64, _>(5) != 0,
    }
}

/// Applies one audit outcome to a provider's standing (inside `tx`): the
/// pass/fail counters, the slash, and exclusion once failures reach the
/// limit or the stake left in the ledger (`penalty.stake_after_micros`) can
/// no longer cover a slash. The `stake_micros` column is no longer written
/// or read: stake lives in the ledger.
async fn apply_outcome(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    provider: &str,
    failed: bool,
    slash: i64,
    penalty: AuditPenalty,
) -> Result<ProviderStats, StoreError> {
    let q = format!(
        "UPDATE provider_stats SET audits_passed = audits_passed + ?, \
         audits_failed = audits_failed + ?, slashed_micros = slashed_micros + ?, \
         excluded = CASE WHEN excluded = 1 OR audits_failed + ? >= ? OR ? < ? \
                    THEN 1 ELSE 0 END \
         WHERE provider_key = ? RETURNING {STATS_COLS}"
    );
    let f = i64::from(failed);
    let max_failed = i64::try_from(penalty.max_failed_audits).unwrap_or(i64::MAX);
    let stats = sqlx::query(&q)
        .bind(1 - f)
        .bind(f)
        .bind(slash)
        .bind(f)
        .bind(max_failed)
        .bind(penalty.stake_after_micros)
        .bind(if failed {
            penalty.slash_micros
        } else {
            i64::MIN
        })
        .bind(provider)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("apply audit consequences"))?
        .ok_or_else(|| StoreError::NotFound {
            what: "provider stats",
            id: provider.to_string(),
        })?;
    Ok(stats_from(&stats))
}

const STATS_COLS: &str = "provider_key, jobs_completed, audits_passed, audits_failed, \
                          slashed_micros, excluded";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn ensure_provider_stats(&self, provider_key: &str) -> Result<(), StoreError> {
        // The legacy stake column (NOT NULL) is written as 0 and never read.
        sqlx::query(
            "INSERT OR IGNORE INTO provider_stats (provider_key, stake_micros) VALUES (?, 0)",
        )
        .bind(provider_key)
        .execute(&self.pool)
        .await
        .map_err(db("create provider stats"))?;
        Ok(())
    }

    async fn provider_stats(
        &self,
        provider_key: &str,
    ) -> Result<Option<ProviderStats>, StoreError> {
        let q = format!("SELECT {STATS_COLS} FROM provider_stats WHERE provider_key = ?");
        let row = sqlx::query(&q)
            .bind(provider_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read provider stats"))?;
        Ok(row.as_ref().map(stats_from))
    }

    async fn excluded_providers(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT provider_key FROM provider_stats WHERE excluded = 1")
            .fetch_all(&self.pool)
            .await
            .map_err(db("list excluded providers"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn create_audit(&self, a: &NewAudit) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audits (audit_id, receipt_id, provider_key, status, why, fee_micros, \
             created_at_ms) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
        )
        .bind(&a.audit_id)
        .bind(&a.receipt_id)
        .bind(&a.provider_key)
        .bind(&a.why)
        .bind(a.fee_micros)
        .bind(ms(a.created_at_ms))
        .execute(&self.pool)
        .await
        .map_err(db("create audit"))?;
        Ok(())
    }

    async fn pending_audits(&self, limit: u32) -> Result<Vec<PendingAudit>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.audit_id, r.receipt_json, j.request_json, r.evidence_json, r.logits \
             FROM audits a JOIN receipts r ON r.receipt_id = a.receipt_id \
             JOIN jobs j ON j.job_id = r.job_id \
             WHERE a.status = 'pending' ORDER BY a.created_at_ms LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list pending audits"))?;
        rows.iter()
            .map(|r| {
                let receipt: Receipt =
                    serde_json::from_str(&r.get::<String, _>(1)).map_err(corrupt("receipt"))?;
                let mut evidence: Evidence =
                    serde_json::from_str(&r.get::<String, _>(3)).map_err(corrupt("evidence"))?;
                evidence.fingerprint = r.get(4);
                Ok(PendingAudit {
                    audit_id: r.get(0),
                    receipt,
                    request_json: r.get(2),
                    evidence,
                })
            })
            .collect()
    }

    async fn finish_audit(
        &self,
        report: &AuditReport,
        penalty: AuditPenalty,
        now_ms: u64,
    ) -> Result<ProviderStats, StoreError> {
        let b = &report.body;
        let failed = b.outcome == AuditOutcome::Failed;
        let json = serde_json::to_string(report).map_err(corrupt("audit report"))?;
        let (slash, refund) = if failed {
            (penalty.slash_micros, penalty.refund_micros)
        } else {
            (0, 0)
        };
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE audits SET status = ?, verifier_key = ?, report_json = ?, slash_micros = ?, \
             refund_micros = ?, finished_at_ms = ? \
             WHERE audit_id = ? AND receipt_id = ? AND status = 'pending' RETURNING provider_key",
        )
        .bind(b.outcome.as_str())
        .bind(b.verifier_key.as_str())
        .bind(&json)
        .bind(slash)
        .bind(refund)
        .bind(ms(now_ms))
        .bind(&b.audit_id)
        .bind(&b.receipt_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("finish audit"))?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: "pending audit",
                id: b.audit_id.clone(),
            });
        };
        let provider: String = row.get(0);
        let stats = apply_outcome(&mut tx, &provider, failed, slash, penalty).await?;
        tx.commit().await.map_err(db("commit audit"))?;
        Ok(stats)
    }

    async fn record_proof_failure(
        &self,
        f: &ProofFailure,
        penalty: AuditPenalty,
    ) -> Result<ProviderStats, StoreError> {
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO zk_proof_failures (job_id, provider_key, reason, receipt_json, \
             bundle_json, slash_micros, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (job_id, provider_key) DO NOTHING",
        )
        .bind(&f.job_id)
        .bind(&f.provider_key)
        .bind(&f.reason)
        .bind(&f.receipt_json)
        .bind(&f.bundle_json)
        .bind(penalty.slash_micros)
        .bind(ms(f.at_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("record proof failure"))?
        .rows_affected();
        let stats = if inserted == 1 {
            apply_outcome(
                &mut tx,
                &f.provider_key,
                true,
                penalty.slash_micros,
                penalty,
            )
            .await?
        } else {
            let q = format!("SELECT {STATS_COLS} FROM provider_stats WHERE provider_key = ?");
            let row = sqlx::query(&q)
                .bind(&f.provider_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("read provider stats"))?
                .ok_or_else(|| StoreError::NotFound {
                    what: "provider stats",
                    id: f.provider_key.clone(),
                })?;
            stats_from(&row)
        };
        tx.commit().await.map_err(db("commit proof failure"))?;
        Ok(stats)
    }

    async fn proof_failures(&self, provider_key: &str) -> Result<Vec<ProofFailure>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, provider_key, reason, receipt_json, bundle_json, at_ms \
             FROM zk_proof_failures WHERE provider_key = ? ORDER BY at_ms DESC, job_id",
        )
        .bind(provider_key)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list proof failures"))?;
        Ok(rows
            .iter()
            .map(|r| ProofFailure {
                job_id: r.get(0),
                provider_key: r.get(1),
                reason: r.get(2),
                receipt_json: r.get(3),
                bundle_json: r.get(4),
                at_ms: r.get::<i64, _>(5).max(0) as u64,
            })
            .collect())
    }

    async fn audit_reports(&self, receipt_id: &str) -> Result<Vec<AuditReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT report_json FROM audits WHERE receipt_id = ? AND report_json IS NOT NULL",
        )
        .bind(receipt_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read audit reports"))?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.get::<String, _>(0)).map_err(corrupt("audit report")))
            .collect()
    }

    async fn audit_status(&self, receipt_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM audits WHERE receipt_id = ?")
            .bind(receipt_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read audit status"))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn evidence(&self, receipt_id: &str) -> Result<Option<(String, Evidence)>, StoreError> {
        let row = sqlx::query(
            "SELECT j.request_json, r.evidence_json, r.logits FROM receipts r \
             JOIN jobs j ON j.job_id = r.job_id WHERE r.receipt_id = ?",
        )
        .bind(receipt_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read evidence"))?;
        let Some(r) = row else { return Ok(None) };
        let mut ev: Evidence =
            serde_json::from_str(&r.get::<String, _>(1)).map_err(corrupt("evidence"))?;
        ev.fingerprint = r.get(2);
        Ok(Some((r.get(0), ev)))
    }
}
