//! SQLite implementation of [`LedgerStore`]: one `BEGIN IMMEDIATE`
//! transaction per batch, with multi-row inserts and the balance guard
//! checked once per account for the whole batch.

use async_trait::async_trait;
use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use crate::ledger::{AccountActivity, BalanceRow, JournalRow, LedgerSnapshot, LedgerStore};
use crate::sqlite::{db, ms};
use crate::{SqliteStore, StoreError};

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Rows per multi-row statement (at most 7 bound values each, well under
/// SQLite's 32,766-variable limit).
const CHUNK: usize = 1024;

/// (account, currency) -> (balance expected before the batch, balance after).
type Net<'a> = BTreeMap<(&'a str, &'a str), (i64, i64)>;

/// Per (account, currency): the balance the batch expects to find and the
/// one it leaves, checking the batch's own changes chain (each change starts
/// where the previous one on that account ended).
fn net_changes(rows: &[JournalRow]) -> Result<Net<'_>, StoreError> {
    let mut net: Net<'_> = BTreeMap::new();
    for c in rows.iter().flat_map(|r| &r.changes) {
        let k = (c.account.as_str(), c.currency.as_str());
        match net.get_mut(&k) {
            None => {
                net.insert(k, (c.before, c.after));
            }
            Some((_, last)) if *last == c.before => *last = c.after,
            Some((_, last)) => {
                return Err(StoreError::LedgerStale {
                    account: c.account.clone(),
                    expected: c.before,
                    found: *last,
                })
            }
        }
    }
    Ok(net)
}

/// Refuses the batch unless every account still holds what the writer saw
/// (a missing row counts as 0).
async fn check_befores(
    tx: &mut Transaction<'static, Sqlite>,
    net: &Net<'_>,
) -> Result<(), StoreError> {
    let keys: Vec<_> = net.iter().collect();
    for chunk in keys.chunks(CHUNK) {
        let mut q: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT account, currency, balance FROM ledger_balances WHERE (account, currency) IN (",
        );
        let mut sep = q.separated(", ");
        for ((a, c), _) in chunk {
            sep.push("(")
                .push_bind_unseparated(*a)
                .push_unseparated(", ");
            sep.push_bind_unseparated(*c).push_unseparated(")");
        }
        q.push(")");
        let stored: BTreeMap<(String, String), i64> = q
            .build()
            .fetch_all(&mut **tx)
            .await
            .map_err(db("read balances"))?
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        for ((a, c), (before, _)) in chunk {
            let found = stored
                .get(&((*a).to_owned(), (*c).to_owned()))
                .copied()
                .unwrap_or(0);
            if found != *before {
                return Err(StoreError::LedgerStale {
                    account: (*a).to_owned(),
                    expected: *before,
                    found,
                });
            }
        }
    }
    Ok(())
}

async fn insert_rows(
    tx: &mut Transaction<'static, Sqlite>,
    rows: &[JournalRow],
    net: &Net<'_>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let mut q: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "INSERT INTO ledger_journal (seq, tx_key, tx_hash, reason, link, tx_json, at_ms) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(ms(r.seq))
                .push_bind(&r.key)
                .push_bind(&r.hash[..])
                .push_bind(&r.reason)
                .push_bind(r.link.as_deref())
                .push_bind(&r.tx_json)
                .push_bind(ms(r.at_ms));
        });
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(db("append journal"))?;
    }
    let postings: Vec<(u64, &BalanceRow)> = rows
        .iter()
        .flat_map(|r| r.changes.iter().map(move |c| (r.seq, c)))
        .collect();
    for chunk in postings.chunks(CHUNK) {
        let mut q: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("INSERT INTO ledger_postings (seq, account, currency, delta) ");
        q.push_values(chunk, |mut b, (seq, c)| {
            b.push_bind(ms(*seq))
                .push_bind(&c.account)
                .push_bind(&c.currency)
                .push_bind(c.after - c.before);
        });
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(db("write postings"))?;
    }
    let balances: Vec<_> = net.iter().collect();
    for chunk in balances.chunks(CHUNK) {
        let mut q: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("INSERT INTO ledger_balances (account, currency, balance) ");
        q.push_values(chunk, |mut b, ((a, c), (_, after))| {
            b.push_bind(*a).push_bind(*c).push_bind(*after);
        });
        q.push(" ON CONFLICT (account, currency) DO UPDATE SET balance = excluded.balance");
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(db("write balances"))?;
    }
    Ok(())
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn ledger_snapshot(&self) -> Result<LedgerSnapshot, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin"))?;
        let balances = sqlx::query("SELECT account, currency, balance FROM ledger_balances")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read balances"))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let rows = sqlx::query("SELECT tx_key, seq, tx_hash FROM ledger_journal ORDER BY seq")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read journal keys"))?;
        tx.commit().await.map_err(db("end read"))?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in &rows {
            let hash: Vec<u8> = r.get(2);
            let hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
                what: "ledger journal",
                reason: "hash is not 32 bytes".into(),
            })?;
            keys.push((r.get(0), u(r.get(1)), hash));
        }
        let next_seq = keys.last().map(|k| k.1 + 1).unwrap_or(0);
        if next_seq != keys.len() as u64 {
            return Err(StoreError::Corrupt {
                what: "ledger journal",
                reason: format!("{} rows but next seq {next_seq}", keys.len()),
            });
        }
        Ok(LedgerSnapshot {
            balances,
            keys,
            next_seq,
        })
    }

    async fn ledger_write(&self, rows: &[JournalRow]) -> Result<(), StoreError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let mut tx = self.write_tx().await?;
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_journal")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("read journal size"))?;
        if u(next) != first.seq {
            return Err(StoreError::LedgerStale {
                account: "journal".into(),
                expected: i64::try_from(first.seq).unwrap_or(i64::MAX),
                found: next,
            });
        }
        let net = net_changes(rows)?;
        check_befores(&mut tx, &net).await?;
        insert_rows(&mut tx, rows, &net).await?;
        tx.commit().await.map_err(db("commit ledger batch"))
    }

    async fn ledger_next_seq(&self) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger_journal")
            .fetch_one(&self.pool)
            .await
            .map_err(db("read journal size"))?;
        Ok(u(next))
    }

    async fn ledger_activity(
        &self,
        account: &str,
        limit: u32,
    ) -> Result<Vec<AccountActivity>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.seq, j.reason, j.link, p.currency, p.delta, j.at_ms \
             FROM ledger_postings p JOIN ledger_journal j ON j.seq = p.seq \
             WHERE p.account = ? ORDER BY p.seq DESC LIMIT ?",
        )
        .bind(account)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read account activity"))?;
        Ok(rows
            .iter()
            .map(|r| AccountActivity {
                seq: u(r.get(0)),
                reason: r.get(1),
                link: r.get(2),
                currency: r.get(3),
                delta: r.get(4),
                at_ms: u(r.get(5)),
            })
            .collect())
    }

    async fn ledger_balances(&self, account: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT currency, balance FROM ledger_balances WHERE account = ? ORDER BY currency",
        )
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read balances"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
