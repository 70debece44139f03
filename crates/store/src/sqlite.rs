//! SQLite implementation of [`Store`] (sqlx, WAL mode, embedded migrations).

use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use proofmesh_receipt::Receipt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::keys::{ct_eq, new_key, parse_api_key, secret_hash};
use crate::{
    Client, Evidence, JobRecord, JobStatus, NewApiKey, ProviderRecord, Store, StoreError,
    StoredReceipt,
};

/// Coordinator state in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { op, source }
}

pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(db("parse database path"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged receipt survives power loss, not just a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(db("open database"))?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`: it takes SQLite's
    /// write lock up front (waiting up to the busy timeout), instead of
    /// reading first and failing with SQLITE_BUSY when a concurrent writer
    /// committed in between, which a deferred `BEGIN` does without retrying.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin write transaction"))
    }

    /// Closes the pool, flushing WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The error for a refused state transition: names the job's actual
    /// status, or says it does not exist.
    async fn refused(&self, job_id: &str, action: &'static str) -> StoreError {
        match self.current_status(job_id).await {
            Ok(status) => StoreError::InvalidTransition {
                job_id: job_id.into(),
                status,
                action,
            },
            Err(e) => e,
        }
    }

    async fn current_status(&self, job_id: &str) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT status FROM jobs WHERE job_id = ?")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read job status"))?;
        match row {
            Some(r) => Ok(r.get::<String, _>(0)),
            None => Err(StoreError::NotFound {
                what: "job",
                id: job_id.to_string(),
            }),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_api_key(
        &self,
        client_id: Option<&str>,
        label: &str,
        now_ms: u64,
    ) -> Result<NewApiKey, StoreError> {
        let (key, key_id, hash) = new_key();
        let client_id = match client_id {
            Some(c) => c.to_string(),
            None => format!("client_{}", &key_id),
        };
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT OR IGNORE INTO clients (client_id, created_at_ms) VALUES (?, ?)")
            .bind(&client_id)
            .bind(ms(now_ms))
            .execute(&mut *tx)
            .await
            .map_err(db("insert client"))?;
        sqlx::query(
            "INSERT INTO api_keys (key_id, client_id, secret_sha256, label, created_at_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key_id)
        .bind(&client_id)
        .bind(&hash)
        .bind(label)
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("insert api key"))?;
        tx.commit().await.map_err(db("commit api key"))?;
        Ok(NewApiKey {
            key,
            key_id,
            client_id,
        })
    }

    async fn authenticate(&self, presented: &str) -> Result<Option<Client>, StoreError> {
        let Some(parts) = parse_api_key(presented) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT client_id, secret_sha256, min_attestation FROM api_keys \
             WHERE key_id = ? AND revoked_at_ms IS NULL",
        )
        .bind(parts.key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look up api key"))?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.get(1);
        if !ct_eq(stored.as_bytes(), secret_hash(parts.secret).as_bytes()) {
            return Ok(None);
        }
        Ok(Some(Client {
            client_id: row.get(0),
            key_id: parts.key_id.to_string(),
            min_attestation: row.get(2),
        }))
    }

    async fn set_key_min_attestation(
        &self,
        key_id: &str,
        level: Option<&str>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE api_keys SET min_attestation = ? WHERE key_id = ?")
            .bind(level)
            .bind(key_id)
            .execute(&self.pool)
            .await
            .map_err(db("set key policy"))?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_provider_attestation(
        &self,
        provider_key: &str,
        attestation_json: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE providers SET attestation_json = ? WHERE provider_key = ?")
            .bind(attestation_json)
            .bind(provider_key)
            .execute(&self.pool)
            .await
            .map_err(db("set provider attestation"))?;
        Ok(())
    }

    async fn upsert_provider(&self, rec: &ProviderRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO providers (provider_key, hardware_json, models_json, agent_version, \
             first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT(provider_key) DO UPDATE SET hardware_json = excluded.hardware_json, \
             models_json = excluded.models_json, agent_version = excluded.agent_version, \
             last_seen_ms = excluded.last_seen_ms",
        )
        .bind(&rec.provider_key)
        .bind(&rec.hardware_json)
        .bind(&rec.models_json)
        .bind(&rec.agent_version)
        .bind(ms(rec.first_seen_ms))
        .bind(ms(rec.last_seen_ms))
        .execute(&self.pool)
        .await
        .map_err(db("upsert provider"))?;
        Ok(())
    }

    async fn touch_provider(&self, provider_key: &str, now_ms: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE providers SET last_seen_ms = ? WHERE provider_key = ?")
            .bind(ms(now_ms))
            .bind(provider_key)
            .execute(&self.pool)
            .await
            .map_err(db("touch provider"))?;
        Ok(())
    }

    async fn list_providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider_key, hardware_json, models_json, agent_version, first_seen_ms, \
             last_seen_ms FROM providers ORDER BY provider_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list providers"))?;
        Ok(rows
            .into_iter()
            .map(|r| ProviderRecord {
                provider_key: r.get(0),
                hardware_json: r.get(1),
                models_json: r.get(2),
                agent_version: r.get(3),
                first_seen_ms: r.get::<i64, _>(4).max(0) as u64,
                last_seen_ms: r.get::<i64, _>(5).max(0) as u64,
            })
            .collect())
    }

    async fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO jobs (job_id, receipt_id, client_id, model, status, created_at_ms, \
             request_json, verification) VALUES (?, ?, ?, ?, 'dispatched', ?, ?, ?)",
        )
        .bind(&job.job_id)
        .bind(&job.receipt_id)
        .bind(&job.client_id)
        .bind(&job.model)
        .bind(ms(job.created_at_ms))
        .bind(&job.request_json)
        .bind(&job.verification)
        .execute(&self.pool)
        .await
        .map_err(db("insert job"))?;
        Ok(())
    }

    async fn assign_job(&self, job_id: &str, provider_key: &str) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE jobs SET provider_key = ?, attempts = attempts + 1 \
             WHERE job_id = ? AND status = 'dispatched'",
        )
        .bind(provider_key)
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(db("assign job"))?
        .rows_affected();
        if n == 0 {
            return Err(self.refused(job_id, "assign").await);
        }
        Ok(())
    }

    async fn complete_job(
        &self,
        job_id: &str,
        client_id: &str,
        receipt: &Receipt,
        evidence: &Evidence,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(receipt).map_err(|e| StoreError::Corrupt {
            what: "receipt",
            reason: e.to_string(),
        })?;
        let evidence_json = serde_json::to_string(evidence).map_err(|e| StoreError::Corrupt {
            what: "evidence",
            reason: e.to_string(),
        })?;
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE jobs SET status = 'completed', provider_key = ?, finished_at_ms = ? \
             WHERE job_id = ? AND status = 'dispatched' AND receipt_id = ?",
        )
        .bind(receipt.body.provider_key.as_str())
        .bind(ms(now_ms))
        .bind(job_id)
        .bind(&receipt.body.receipt_id)
        .execute(&mut *tx)
        .await
        .map_err(db("complete job"))?
        .rows_affected();
        if n == 0 {
            drop(tx);
            return Err(self.refused(job_id, "complete").await);
        }
        sqlx::query(
            "INSERT INTO receipts (receipt_id, job_id, client_id, receipt_json, logits, \
             evidence_json, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&receipt.body.receipt_id)
        .bind(job_id)
        .bind(client_id)
        .bind(&json)
        .bind(&evidence.fingerprint)
        .bind(&evidence_json)
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("insert receipt"))?;
        sqlx::query(
            "UPDATE provider_stats SET jobs_completed = jobs_completed + 1 WHERE provider_key = ?",
        )
        .bind(receipt.body.provider_key.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db("count job"))?;
        tx.commit().await.map_err(db("commit receipt"))
    }

    async fn fail_job(&self, job_id: &str, reason: &str, now_ms: u64) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE jobs SET status = 'failed', error = ?, finished_at_ms = ? \
             WHERE job_id = ? AND status = 'dispatched'",
        )
        .bind(reason)
        .bind(ms(now_ms))
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(db("fail job"))?
        .rows_affected();
        if n == 0 {
            return Err(self.refused(job_id, "fail").await);
        }
        Ok(())
    }

    async fn job_status(&self, job_id: &str) -> Result<Option<JobStatus>, StoreError> {
        let row =
            sqlx::query("SELECT status, provider_key, attempts, error FROM jobs WHERE job_id = ?")
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("read job"))?;
        Ok(row.map(|r| JobStatus {
            status: r.get(0),
            provider_key: r.get(1),
            attempts: r.get::<i64, _>(2).max(0) as u32,
            error: r.get(3),
        }))
    }

    async fn get_receipt(&self, receipt_id: &str) -> Result<Option<StoredReceipt>, StoreError> {
        let row = sqlx::query("SELECT client_id, receipt_json FROM receipts WHERE receipt_id = ?")
            .bind(receipt_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read receipt"))?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.get(1);
        let receipt = Receipt::from_json(json.as_bytes()).map_err(|e| StoreError::Corrupt {
            what: "receipt",
            reason: e.to_string(),
        })?;
        Ok(Some(StoredReceipt {
            client_id: row.get(0),
            receipt,
        }))
    }

    async fn record_placement(&self, job_id: &str, decision_json: &str) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE jobs SET placement_json = json_insert(placement_json, '$[#]', json(?)) \
             WHERE job_id = ?",
        )
        .bind(decision_json)
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(db("record placement"))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "job",
                id: job_id.to_owned(),
            });
        }
        Ok(())
    }

    async fn job_placements(&self, job_id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT client_id, placement_json FROM jobs WHERE job_id = ?")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read placement"))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn count_receipts(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM receipts")
            .fetch_one(&self.pool)
            .await
            .map_err(db("count receipts"))?;
        Ok(n.max(0) as u64)
    }
}
