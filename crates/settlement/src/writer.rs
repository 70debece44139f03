//! The writer task: takes whatever is queued (up to `max_batch`), validates
//! each transaction against the mirror in order, writes the batch in one
//! store transaction, and only then answers. Group commit: while one batch is
//! being written, the next one accumulates, so throughput grows with load
//! and an idle request waits for one commit only.
//!
//! If the store refuses the batch as stale (another writer, e.g. the admin
//! CLI crediting an account), the mirror is reloaded and the batch re-run;
//! any other failure fails the batch and reloads the mirror, so memory never
//! holds what the store does not.

use std::sync::Arc;

use proofmesh_ledger::{Applied, Checked, Ledger, LedgerError, Transaction};
use proofmesh_store::{BalanceRow, JournalRow, LedgerStore, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::bank::{mirror, BankConfig, BankError};

type Reply = oneshot::Sender<Result<Applied, BankError>>;

pub(crate) enum Msg {
    Apply {
        tx: Transaction,
        at_ms: u64,
        reply: Reply,
    },
    Close(oneshot::Sender<()>),
}

/// Reloads of a stale mirror per batch before the batch fails.
const MAX_RELOADS: u32 = 8;

pub(crate) async fn run(
    store: Arc<dyn LedgerStore>,
    mut ledger: Ledger,
    mut rx: mpsc::Receiver<Msg>,
    config: BankConfig,
) {
    let mut closing: Option<oneshot::Sender<()>> = None;
    let mut last_at_ms = 0u64;
    while closing.is_none() {
        let mut batch = match rx.recv().await {
            Some(Msg::Apply { tx, at_ms, reply }) => vec![(tx, at_ms, reply)],
            Some(Msg::Close(done)) => {
                closing = Some(done);
                break;
            }
            None => break,
        };
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(Msg::Apply { tx, at_ms, reply }) => batch.push((tx, at_ms, reply)),
                Ok(Msg::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        ledger = commit_batch(&*store, ledger, batch, &mut last_at_ms).await;
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// What one transaction of a batch came to in the mirror.
enum Outcome {
    Refused(BankError),
    Done(Applied),
}

impl Outcome {
    fn is_insufficient(&self) -> bool {
        matches!(
            self,
            Outcome::Refused(BankError::Refused(LedgerError::InsufficientFunds { .. }))
        )
    }
}

async fn commit_batch(
    store: &dyn LedgerStore,
    mut ledger: Ledger,
    batch: Vec<(Transaction, u64, Reply)>,
    last_at_ms: &mut u64,
) -> Ledger {
    let mut reloads = 0;
    loop {
        let durable_len = ledger.len();
        let (outcomes, rows) = stage(&mut ledger, &batch, last_at_ms);
        // A refusal for lack of funds may come from a stale mirror (credit
        // written by another process): if the store's journal moved, reload
        // and re-run the batch before refusing anyone.
        if reloads < MAX_RELOADS && outcomes.iter().any(Outcome::is_insufficient) {
            if let Ok(n) = store.ledger_next_seq().await {
                if n != durable_len {
                    if let Ok(fresh) = store
                        .ledger_snapshot()
                        .await
                        .map_err(BankError::from)
                        .and_then(mirror)
                    {
                        ledger = fresh;
                        reloads += 1;
                        continue;
                    }
                }
            }
        }
        match store.ledger_write(&rows).await {
            Ok(()) => {
                metrics::counter!("proofmesh_ledger_transactions_total")
                    .increment(rows.len() as u64);
                for ((_, _, reply), o) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(match o {
                        Outcome::Done(a) => Ok(a),
                        Outcome::Refused(e) => Err(e),
                    });
                }
                return ledger;
            }
            Err(e) => {
                let stale = matches!(e, StoreError::LedgerStale { .. });
                tracing::warn!(error = %e, stale, "ledger batch not committed; reloading");
                match store
                    .ledger_snapshot()
                    .await
                    .map_err(BankError::from)
                    .and_then(mirror)
                {
                    Ok(fresh) => ledger = fresh,
                    Err(reload) => {
                        tracing::error!(error = %reload, "ledger reload failed");
                        fail(batch, &e.to_string());
                        // Keep serving from what we had; the next write's
                        // guard refuses anything stale.
                        return ledger;
                    }
                }
                reloads += 1;
                if !stale || reloads > MAX_RELOADS {
                    fail(batch, &e.to_string());
                    return ledger;
                }
            }
        }
    }
}

/// Validates and applies each transaction in the mirror, in order; returns
/// each outcome and the rows to write for the new ones.
fn stage(
    ledger: &mut Ledger,
    batch: &[(Transaction, u64, Reply)],
    last_at_ms: &mut u64,
) -> (Vec<Outcome>, Vec<JournalRow>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut rows = Vec::new();
    for (tx, at_ms, _) in batch {
        // Journal times never go backwards along seq (callers stamp before
        // queueing, so concurrent callers may arrive out of order): epoch
        // settlement batches are then contiguous seq ranges.
        *last_at_ms = (*at_ms).max(*last_at_ms);
        let at_ms = &*last_at_ms;
        let outcome = match ledger.check(tx) {
            Err(e) => Outcome::Refused(e.into()),
            Ok(Checked::AlreadyApplied(a)) => Outcome::Done(a),
            Ok(Checked::Fresh(fx)) => {
                let row = JournalRow {
                    seq: fx.seq,
                    key: tx.key.clone(),
                    hash: fx.hash.0,
                    reason: tx.reason.as_str().to_owned(),
                    link: tx.link.as_ref().map(|l| l.to_string()),
                    tx_json: serde_json::to_string(tx).unwrap_or_default(),
                    at_ms: *at_ms,
                    changes: fx
                        .changes
                        .iter()
                        .map(|c| BalanceRow {
                            account: c.account.to_string(),
                            currency: c.currency.code().to_owned(),
                            before: c.before,
                            after: c.after,
                        })
                        .collect(),
                };
                match ledger.commit(fx, tx.clone(), *at_ms) {
                    Ok(a) => {
                        rows.push(row);
                        Outcome::Done(a)
                    }
                    Err(e) => Outcome::Refused(e.into()),
                }
            }
        };
        outcomes.push(outcome);
    }
    (outcomes, rows)
}

fn fail(batch: Vec<(Transaction, u64, Reply)>, reason: &str) {
    for (_, _, reply) in batch {
        let _ = reply.send(Err(BankError::CommitFailed {
            reason: reason.to_owned(),
        }));
    }
}
