//! SQLite implementation of [`LogStore`]: one multi-row insert plus the
//! checkpoint per batch, in one transaction (WAL, synchronous=FULL, so a
//! committed batch survives power loss).

use async_trait::async_trait;
use proofmesh_receipt::{AuditReport, Receipt};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::log::{LogRow, LogStore, StoredCheckpoint};
use crate::sqlite::{db, ms};
use crate::sqlite_audit::corrupt;
use crate::{SqliteStore, StoreError};

/// Rows per INSERT statement: 4 bound values each, well under SQLite's
/// 32,766-variable limit.
const ROWS_PER_INSERT: usize = 512;

fn hash32(what: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|v: Vec<u8>| StoreError::Corrupt {
        what,
        reason: format!("{} bytes, expected 32", v.len()),
    })
}

fn index(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn checkpoint_from(r: &sqlx::sqlite::SqliteRow) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: index(r.get(0)),
        root: hash32("checkpoint root", r.get(1))?,
        note: r.get(2),
        created_at_ms: index(r.get(3)),
    })
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn log_snapshot(&self) -> Result<(Vec<[u8; 32]>, Option<StoredCheckpoint>), StoreError> {
        // A read transaction: one WAL snapshot for both queries.
        let mut tx = self.pool.begin().await.map_err(db("begin"))?;
        let rows = sqlx::query("SELECT idx, leaf_hash FROM log_entries ORDER BY idx")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read log leaves"))?;
        let latest = sqlx::query(
            "SELECT tree_size, root, note, created_at_ms FROM log_checkpoints \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read latest checkpoint"))?;
        tx.commit().await.map_err(db("end read"))?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (want, r) in rows.iter().enumerate() {
            let idx: i64 = r.get(0);
            if index(idx) != want as u64 {
                return Err(StoreError::Corrupt {
                    what: "log",
                    reason: format!("entry {want} is missing (next stored index is {idx})"),
                });
            }
            leaves.push(hash32("log leaf hash", r.get(1))?);
        }
        Ok((leaves, latest.as_ref().map(checkpoint_from).transpose()?))
    }

    async fn log_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, root, note, created_at_ms FROM log_checkpoints \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read latest checkpoint"))?;
        row.as_ref().map(checkpoint_from).transpose()
    }

    async fn log_checkpoints(
        &self,
        from_size: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT tree_size, root, note, created_at_ms FROM log_checkpoints \
             WHERE tree_size >= ? ORDER BY tree_size LIMIT ?",
        )
        .bind(ms(from_size))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read checkpoints"))?;
        rows.iter().map(checkpoint_from).collect()
    }

    async fn log_append(
        &self,
        first_index: u64,
        rows: &[LogRow],
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let stored: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("read log size"))?;
        if index(stored) != first_index {
            return Err(StoreError::LogFork {
                first_index,
                stored_size: index(stored),
            });
        }
        for (chunk_no, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
            let base = first_index + (chunk_no * ROWS_PER_INSERT) as u64;
            let mut q: QueryBuilder<'_, Sqlite> =
                QueryBuilder::new("INSERT INTO log_entries (idx, leaf_hash, entry, entry_key) ");
            q.push_values(chunk.iter().enumerate(), |mut b, (i, row)| {
                b.push_bind(ms(base + i as u64))
                    .push_bind(&row.leaf_hash[..])
                    .push_bind(&row.entry[..])
                    .push_bind(row.key.as_deref());
            });
            q.build()
                .execute(&mut *tx)
                .await
                .map_err(db("append log entries"))?;
        }
        sqlx::query(
            "INSERT INTO log_checkpoints (tree_size, root, note, created_at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(ms(checkpoint.tree_size))
        .bind(&checkpoint.root[..])
        .bind(&checkpoint.note[..])
        .bind(ms(checkpoint.created_at_ms))
        .execute(&mut *tx)
        .await
        .map_err(db("store checkpoint"))?;
        tx.commit().await.map_err(db("commit log batch"))
    }

    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows =
            sqlx::query("SELECT entry FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx")
                .bind(ms(start))
                .bind(ms(end))
                .fetch_all(&self.pool)
                .await
                .map_err(db("read log entries"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn log_indexes_of(&self, keys: &[String]) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let mut q: QueryBuilder<'_, Sqlite> =
                QueryBuilder::new("SELECT entry_key, idx FROM log_entries WHERE entry_key IN (");
            let mut sep = q.separated(", ");
            for k in chunk {
                sep.push_bind(k);
            }
            q.push(")");
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(db("look up log keys"))?;
            out.extend(rows.iter().map(|r| (r.get(0), index(r.get(1)))));
        }
        Ok(out)
    }

    async fn log_unlogged_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.receipt_json FROM receipts r WHERE NOT EXISTS \
             (SELECT 1 FROM log_entries l WHERE l.entry_key = 'receipt:' || r.receipt_id) \
             ORDER BY r.created_at_ms, r.receipt_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read unlogged receipts"))?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.get::<String, _>(0)).map_err(corrupt("receipt")))
            .collect()
    }

    async fn log_unlogged_audits(&self) -> Result<Vec<(String, AuditReport)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.audit_id, a.report_json FROM audits a WHERE a.report_json IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM log_entries l WHERE l.entry_key = 'audit:' || a.audit_id) \
             ORDER BY a.finished_at_ms, a.audit_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("read unlogged audits"))?;
        rows.iter()
            .map(|r| {
                let report = serde_json::from_str(&r.get::<String, _>(1))
                    .map_err(corrupt("audit report"))?;
                Ok((r.get(0), report))
            })
            .collect()
    }
}
