//! SQLite implementation of [`BillingStore`]. Every multi-step change (a
//! claim, a unit transfer with its balance guard, a pool with its units)
//! runs in one `BEGIN IMMEDIATE` transaction.

use async_trait::async_trait;
use sqlx::Row;

use crate::billing::{
    BillingStore, FundedJob, FundedJobAccount, IdemClaim, IdemRow, PoolRow, StoredJournalLine,
    TransferOutcome, TransferRow, UnsettledJob,
};
use crate::sqlite::{db, ms};
use crate::{SqliteStore, StoreError};

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn pool_from(r: &sqlx::sqlite::SqliteRow) -> PoolRow {
    PoolRow {
        pool_id: r.get(0),
        provider_key: r.get(1),
        share_bps: u32::try_from(r.get::<i64, _>(2)).unwrap_or(0),
        currency: r.get(3),
        charter_json: r.get(4),
        created_at_ms: u(r.get(5)),
    }
}

const POOL_COLS: &str = "pool_id, provider_key, share_bps, currency, charter_json, created_at_ms";

#[async_trait]
impl BillingStore for SqliteStore {
    async fn idem_claim(
        &self,
        client_id: &str,
        key: &str,
        request_sha256: &str,
        job_id: &str,
        now_ms: u64,
    ) -> Result<IdemClaim, StoreError> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(
            "SELECT request_sha256, job_id, response_json, created_at_ms FROM idempotency_keys \
             WHERE client_id = ? AND idem_key = ?",
        )
        .bind(client_id)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read idempotency key"))?;
        if let Some(r) = existing {
            return Ok(IdemClaim::Existing(IdemRow {
                request_sha256: r.get(0),
                job_id: r.get(1),
                response_json: r.get(2),
                created_at_ms: u(r.get(3)),
            }));
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (client_id, idem_key, request_sha256, job_id, \
             created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(client_id)
        .bind(key)
        .bind(request_sha256)
        .bind(job_id)
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("claim idempotency key"))?;
        tx.commit().await.map_err(db("commit idempotency key"))?;
        Ok(IdemClaim::Fresh)
    }

    async fn idem_complete(
        &self,
        client_id: &str,
        key: &str,
        response_json: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET response_json = ? WHERE client_id = ? AND idem_key = ?",
        )
        .bind(response_json)
        .bind(client_id)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db("complete idempotency key"))?;
        Ok(())
    }

    async fn idem_release(&self, client_id: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ? \
             AND response_json IS NULL",
        )
        .bind(client_id)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db("release idempotency key"))?;
        Ok(())
    }

    async fn idem_sweep(&self, before_ms: u64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM idempotency_keys WHERE response_json IS NULL OR created_at_ms < ?",
        )
        .bind(ms(before_ms))
        .execute(&self.pool)
        .await
        .map_err(db("sweep idempotency keys"))?;
        Ok(r.rows_affected())
    }

    async fn unsettled_jobs(&self) -> Result<Vec<UnsettledJob>, StoreError> {
        // Escrow accounts sort as one key range of the balances' primary key.
        let rows = sqlx::query(
            "SELECT j.job_id, j.client_id, j.status, j.receipt_id, b.currency, b.balance \
             FROM jobs j LEFT JOIN ledger_balances b \
               ON b.account = 'escrow:' || j.job_id AND b.balance <> 0 \
             WHERE j.status = 'dispatched' OR j.job_id IN ( \
               SELECT substr(account, 8) FROM ledger_balances \
               WHERE account >= 'escrow:' AND account < 'escrow;' AND balance <> 0) \
             ORDER BY j.job_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read unsettled jobs"))?;
        let mut out: Vec<UnsettledJob> = Vec::new();
        for r in rows {
            let job_id: String = r.get(0);
            if out.last().map(|j| j.job_id != job_id).unwrap_or(true) {
                out.push(UnsettledJob {
                    job_id,
                    client_id: r.get(1),
                    status: r.get(2),
                    receipt_id: r.get(3),
                    escrow: Vec::new(),
                });
            }
            let currency: Option<String> = r.get(4);
            if let (Some(c), Some(job)) = (currency, out.last_mut()) {
                job.escrow.push((c, r.get(5)));
            }
        }
        Ok(out)
    }

    async fn funded_job_accounts(&self) -> Result<Vec<FundedJobAccount>, StoreError> {
        // Escrow and hold accounts are two key ranges of the balances'
        // primary key; each joins its job by id and the job's audit by
        // receipt (both unique).
        let rows = sqlx::query(
            "SELECT b.account, b.currency, b.balance, j.job_id, j.client_id, j.status, \
               j.receipt_id, j.finished_at_ms, a.status, a.finished_at_ms \
             FROM ledger_balances b \
             LEFT JOIN jobs j ON j.job_id = substr(b.account, instr(b.account, ':') + 1) \
             LEFT JOIN audits a ON a.receipt_id = j.receipt_id \
             WHERE b.balance <> 0 AND ( \
               (b.account >= 'escrow:' AND b.account < 'escrow;') OR \
               (b.account >= 'hold:' AND b.account < 'hold;')) \
             ORDER BY substr(b.account, instr(b.account, ':') + 1), b.account, b.currency",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read funded job accounts"))?;
        let opt_ms = |v: Option<i64>| v.map(u);
        Ok(rows
            .iter()
            .map(|r| {
                let account: String = r.get(0);
                let (kind, job_id) = account.split_once(':').unwrap_or((account.as_str(), ""));
                let job = r.get::<Option<String>, _>(3).map(|_| FundedJob {
                    client_id: r.get(4),
                    status: r.get(5),
                    receipt_id: r.get(6),
                    finished_at_ms: opt_ms(r.get(7)),
                });
                FundedJobAccount {
                    kind: kind.to_owned(),
                    job_id: job_id.to_owned(),
                    currency: r.get(1),
                    balance: r.get(2),
                    job,
                    audit_status: r.get(8),
                    audit_finished_at_ms: opt_ms(r.get(9)),
                }
            })
            .collect())
    }

    async fn journal_lines(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredJournalLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, tx_hash, tx_json, at_ms FROM ledger_journal WHERE seq >= ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(ms(from_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read journal"))?;
        rows.iter()
            .map(|r| {
                let hash: Vec<u8> = r.get(1);
                Ok(StoredJournalLine {
                    seq: u(r.get(0)),
                    hash: hash.try_into().map_err(|_| StoreError::Corrupt {
                        what: "journal hash",
                        reason: "not 32 bytes".into(),
                    })?,
                    tx_json: r.get(2),
                    at_ms: u(r.get(3)),
                })
            })
            .collect()
    }

    async fn create_pool(
        &self,
        pool: &PoolRow,
        units: &[(String, u64)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {POOL_COLS} FROM pools WHERE pool_id = ? OR provider_key = ?"
        ))
        .bind(&pool.pool_id)
        .bind(&pool.provider_key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read pool"))?;
        if let Some(r) = existing {
            let found = pool_from(&r);
            return if found.charter_json == pool.charter_json {
                Ok(false)
            } else {
                Err(StoreError::Conflict {
                    what: "pool (or the provider's pool)",
                    id: found.pool_id,
                })
            };
        }
        sqlx::query(&format!(
            "INSERT INTO pools ({POOL_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(&pool.pool_id)
        .bind(&pool.provider_key)
        .bind(i64::from(pool.share_bps))
        .bind(&pool.currency)
        .bind(&pool.charter_json)
        .bind(ms(pool.created_at_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("insert pool"))?;
        for (holder, n) in units.iter().filter(|(_, n)| *n > 0) {
            sqlx::query("INSERT INTO pool_units (pool_id, holder, units) VALUES (?, ?, ?)")
                .bind(&pool.pool_id)
                .bind(holder)
                .bind(ms(*n))
                .execute(&mut *tx)
                .await
                .map_err(db("insert pool units"))?;
        }
        tx.commit().await.map_err(db("commit pool"))?;
        Ok(true)
    }

    async fn pool(
        &self,
        pool_id: &str,
    ) -> Result<Option<(PoolRow, Vec<(String, u64)>)>, StoreError> {
        let mut conn = self.pool.begin().await.map_err(db("begin read"))?;
        let Some(r) = sqlx::query(&format!("SELECT {POOL_COLS} FROM pools WHERE pool_id = ?"))
            .bind(pool_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("read pool"))?
        else {
            return Ok(None);
        };
        let units =
            sqlx::query("SELECT holder, units FROM pool_units WHERE pool_id = ? ORDER BY holder")
                .bind(pool_id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db("read pool units"))?;
        Ok(Some((
            pool_from(&r),
            units.iter().map(|u2| (u2.get(0), u(u2.get(1)))).collect(),
        )))
    }

    async fn pool_of_provider(&self, provider_key: &str) -> Result<Option<PoolRow>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {POOL_COLS} FROM pools WHERE provider_key = ?"
        ))
        .bind(provider_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read provider pool"))?;
        Ok(r.as_ref().map(pool_from))
    }

    async fn list_pools(&self) -> Result<Vec<PoolRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {POOL_COLS} FROM pools ORDER BY pool_id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list pools"))?;
        Ok(rows.iter().map(pool_from).collect())
    }

    async fn pool_transfers(&self, pool_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT transfer_key, doc_json FROM pool_transfers WHERE pool_id = ? ORDER BY rowid",
        )
        .bind(pool_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read transfers"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn transfer_units(&self, t: &TransferRow) -> Result<TransferOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let known = sqlx::query("SELECT 1 FROM pools WHERE pool_id = ?")
            .bind(&t.pool_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("read pool"))?;
        if known.is_none() {
            return Ok(TransferOutcome::UnknownPool);
        }
        let prev: Option<String> = sqlx::query_scalar(
            "SELECT doc_json FROM pool_transfers WHERE pool_id = ? AND transfer_key = ?",
        )
        .bind(&t.pool_id)
        .bind(&t.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read transfer"))?;
        if let Some(doc) = prev {
            return Ok(if doc == t.doc_json {
                TransferOutcome::Replayed
            } else {
                TransferOutcome::Conflict
            });
        }
        let has: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT units FROM pool_units WHERE pool_id = ? AND holder = ?), 0)",
        )
        .bind(&t.pool_id)
        .bind(&t.from)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("read units"))?;
        if u(has) < t.units || t.units == 0 {
            return Ok(TransferOutcome::InsufficientUnits { has: u(has) });
        }
        let left = has - ms(t.units);
        let q = if left == 0 {
            sqlx::query("DELETE FROM pool_units WHERE pool_id = ? AND holder = ?")
                .bind(&t.pool_id)
                .bind(&t.from)
        } else {
            sqlx::query("UPDATE pool_units SET units = ? WHERE pool_id = ? AND holder = ?")
                .bind(left)
                .bind(&t.pool_id)
                .bind(&t.from)
        };
        q.execute(&mut *tx).await.map_err(db("debit units"))?;
        sqlx::query(
            "INSERT INTO pool_units (pool_id, holder, units) VALUES (?, ?, ?) \
             ON CONFLICT (pool_id, holder) DO UPDATE SET units = units + excluded.units",
        )
        .bind(&t.pool_id)
        .bind(&t.to)
        .bind(ms(t.units))
        .execute(&mut *tx)
        .await
        .map_err(db("credit units"))?;
        sqlx::query(
            "INSERT INTO pool_transfers (transfer_key, pool_id, doc_json, at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(&t.key)
        .bind(&t.pool_id)
        .bind(&t.doc_json)
        .bind(ms(t.at_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("record transfer"))?;
        tx.commit().await.map_err(db("commit transfer"))?;
        Ok(TransferOutcome::Applied)
    }

    async fn record_distribution(
        &self,
        pool_id: &str,
        epoch_start_s: u64,
        doc_json: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(doc) = doc_json {
            sqlx::query(
                "INSERT OR IGNORE INTO pool_distributions (pool_id, epoch_start_s, doc_json) \
                 VALUES (?, ?, ?)",
            )
            .bind(pool_id)
            .bind(ms(epoch_start_s))
            .bind(doc)
            .execute(&mut *tx)
            .await
            .map_err(db("record distribution"))?;
        }
        let doc: Option<String> = sqlx::query_scalar(
            "SELECT doc_json FROM pool_distributions WHERE pool_id = ? AND epoch_start_s = ?",
        )
        .bind(pool_id)
        .bind(ms(epoch_start_s))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read distribution"))?;
        tx.commit().await.map_err(db("commit distribution"))?;
        Ok(doc)
    }
}
