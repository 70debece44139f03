//! The sequencer task: collects appends into batches, assigns indexes, signs
//! the new checkpoint and commits entries + checkpoint in one store
//! transaction. Only then are the callers answered and the checkpoint
//! published, so an acknowledged entry is durable and covered. A failed
//! commit rolls the in-memory tree back and fails the whole batch.
//!
//! Batching is adaptive (group commit): an append that finds the sequencer
//! idle is committed at once, with whatever else is already queued; appends
//! that arrive while a commit is in flight queue up and form the next batch
//! (at most `batch_max_entries`). An idle log therefore adds one store
//! commit to an append, and a busy one amortises a commit over many entries
//! without a timer. `batch_max_age_ms` > 0 restores the Tessera-style
//! linger: wait up to that long after a batch's first entry for more.
//!
//! One task owns all writes, so concurrent appends form a single linear
//! history; the store additionally refuses a batch that does not start at its
//! current size.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofmesh_ambient::clock::now_ms;
use proofmesh_store::{LogRow, StoreError, StoredCheckpoint};
use proofmesh_tlog::Hash;
use tokio::sync::{mpsc, oneshot};

use crate::config::LogConfig;
use crate::error::LogError;
use crate::service::{Sequenced, Shared, SignedCheckpoint};

/// How often one batch may reload a store that another writer advanced.
const MAX_RESYNCS: u32 = 32;

/// One append waiting to be sequenced.
pub(crate) struct Pending {
    pub(crate) entry: Vec<u8>,
    pub(crate) leaf: Hash,
    pub(crate) key: Option<String>,
    pub(crate) reply: oneshot::Sender<Result<Sequenced, LogError>>,
    pub(crate) enqueued: Instant,
}

pub(crate) enum Msg {
    Append(Pending),
    Close,
}

/// Runs until [`Msg::Close`] (after committing everything before it) or
/// until every handle is dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>, config: LogConfig) {
    let max_age = Duration::from_millis(config.batch_max_age_ms);
    let mut closing = false;
    while !closing {
        let first = match rx.recv().await {
            Some(Msg::Append(p)) => p,
            Some(Msg::Close) | None => break,
        };
        let mut batch = vec![first];
        closing = gather(&mut rx, &mut batch, config.batch_max_entries, max_age).await;
        commit(&shared, batch).await;
    }
    tracing::info!("log sequencer stopped");
}

/// Adds to `batch` what is already queued and, with a linger, what arrives
/// within `linger` of the first entry, up to `max` entries. Returns whether
/// the sequencer was told to close (or every handle is gone).
async fn gather(
    rx: &mut mpsc::Receiver<Msg>,
    batch: &mut Vec<Pending>,
    max: usize,
    linger: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < max {
        let msg = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(mpsc::error::TryRecvError::Empty) if linger.is_zero() => return false,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => return false,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        };
        match msg {
            Some(Msg::Append(p)) => batch.push(p),
            Some(Msg::Close) | None => return true,
        }
    }
    false
}

/// Where each pending append goes, by position among the batch's new rows.
enum Slot {
    /// A new leaf.
    New(usize),
    /// The same key as an earlier new row of this batch.
    SameAs(usize),
    /// Already logged at this index.
    Existing(u64),
}

async fn commit(shared: &Shared, batch: Vec<Pending>) {
    let mut outcome = try_commit(shared, &batch).await;
    let mut resyncs = 0;
    while let Err(LogError::Store(StoreError::LogFork { .. })) = &outcome {
        // The store moved past us (another writer on the same database): it
        // is the authority, so reload from it, re-check, and try again. The
        // store's size check inside its write lock keeps history linear.
        resyncs += 1;
        if resyncs > MAX_RESYNCS {
            break;
        }
        tracing::warn!("log store is ahead of the sequencer; resynchronizing");
        metrics::counter!("proofmesh_log_resyncs_total").increment(1);
        outcome = match crate::service::resync(shared).await {
            Ok(()) => try_commit(shared, &batch).await,
            Err(e) => Err(e),
        };
    }
    let (slots, base, new_rows, checkpoint) = match outcome {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "log batch not committed");
            metrics::counter!("proofmesh_log_commit_failures_total").increment(1);
            return fail_all(batch, &e.to_string());
        }
    };
    let published_size = base;
    metrics::counter!("proofmesh_log_entries_total").increment(new_rows as u64);
    metrics::gauge!("proofmesh_log_tree_size").set(checkpoint.size as f64);
    for (p, slot) in batch.into_iter().zip(slots) {
        metrics::histogram!("proofmesh_log_append_seconds")
            .record(p.enqueued.elapsed().as_secs_f64());
        let (index, duplicate) = match slot {
            Slot::New(i) => (published_size + i as u64, false),
            Slot::SameAs(i) => (published_size + i as u64, true),
            Slot::Existing(i) => (i, true),
        };
        let _ = p.reply.send(Ok(Sequenced {
            index,
            checkpoint: checkpoint.clone(),
            duplicate,
        }));
    }
}

/// What a committed batch gives: each append's slot, the tree size before
/// the batch, the number of new rows, and the covering checkpoint.
type Committed = (Vec<Slot>, u64, usize, Arc<SignedCheckpoint>);

async fn try_commit(shared: &Shared, batch: &[Pending]) -> Result<Committed, LogError> {
    let slots = assign_slots(shared, batch).await?;
    let rows: Vec<&Pending> = batch
        .iter()
        .zip(&slots)
        .filter_map(|(p, s)| matches!(s, Slot::New(_)).then_some(p))
        .collect();
    let published = shared.published();
    let checkpoint = if rows.is_empty() {
        published.clone()
    } else {
        write_rows(shared, published.size, &rows).await?
    };
    Ok((slots, published.size, rows.len(), checkpoint))
}

/// Dedups keyed entries against the store and within the batch.
async fn assign_slots(shared: &Shared, batch: &[Pending]) -> Result<Vec<Slot>, LogError> {
    let keys: Vec<String> = batch.iter().filter_map(|p| p.key.clone()).collect();
    let logged: HashMap<String, u64> = if keys.is_empty() {
        HashMap::new()
    } else {
        shared
            .store
            .log_indexes_of(&keys)
            .await?
            .into_iter()
            .collect()
    };
    let mut in_batch: HashMap<&str, usize> = HashMap::new();
    let mut next = 0usize;
    let mut slots = Vec::with_capacity(batch.len());
    for p in batch {
        let slot = match p.key.as_deref() {
            Some(k) if logged.contains_key(k) => Slot::Existing(logged[k]),
            Some(k) if in_batch.contains_key(k) => Slot::SameAs(in_batch[k]),
            Some(k) => {
                in_batch.insert(k, next);
                next += 1;
                Slot::New(next - 1)
            }
            None => {
                next += 1;
                Slot::New(next - 1)
            }
        };
        slots.push(slot);
    }
    Ok(slots)
}

/// Appends the new leaves to the tree, signs and stores the checkpoint with
/// the rows; rolls the tree back on failure.
async fn write_rows(
    shared: &Shared,
    old_size: u64,
    rows: &[&Pending],
) -> Result<Arc<SignedCheckpoint>, LogError> {
    let (size, root) = {
        let mut tree = shared.tree_mut();
        for p in rows {
            if let Err(e) = tree.append(p.leaf) {
                tree.truncate(old_size);
                return Err(e.into());
            }
        }
        (tree.size(), tree.root())
    };
    let result = async {
        let note = shared.signer.sign(size, &root, &[])?;
        let stored = StoredCheckpoint {
            tree_size: size,
            root: root.0,
            note: note.clone(),
            created_at_ms: now_ms(),
        };
        let rows: Vec<LogRow> = rows
            .iter()
            .map(|p| LogRow {
                leaf_hash: p.leaf.0,
                entry: p.entry.clone(),
                key: p.key.clone(),
            })
            .collect();
        shared
            .store
            .log_append(old_size, &rows, &stored)
            .await
            .map_err(|e| match e {
                fork @ StoreError::LogFork { .. } => LogError::Store(fork),
                other => LogError::CommitFailed {
                    reason: other.to_string(),
                },
            })?;
        let note = String::from_utf8(note).map_err(|_| LogError::CommitFailed {
            reason: "checkpoint note is not UTF-8".into(),
        })?;
        Ok(Arc::new(SignedCheckpoint { size, root, note }))
    }
    .await;
    match result {
        Ok(cp) => {
            *shared.published.write().unwrap_or_else(|e| e.into_inner()) = cp.clone();
            Ok(cp)
        }
        Err(e) => {
            shared.tree_mut().truncate(old_size);
            Err(e)
        }
    }
}

fn fail_all(batch: Vec<Pending>, reason: &str) {
    for p in batch {
        let _ = p.reply.send(Err(LogError::CommitFailed {
            reason: reason.to_owned(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        let (reply, _) = oneshot::channel();
        Pending {
            entry: vec![1],
            leaf: proofmesh_tlog::EMPTY_HASH,
            key: None,
            reply,
            enqueued: Instant::now(),
        }
    }

    /// With no linger, a batch is whatever is queued, taken at once: the
    /// sequencer never waits on a timer (the old 250 ms batch age).
    #[tokio::test]
    async fn group_commit_takes_what_is_queued_without_waiting() {
        let (tx, mut rx) = mpsc::channel(16);
        for _ in 0..3 {
            assert!(tx.try_send(Msg::Append(pending())).is_ok());
        }
        let started = tokio::time::Instant::now();
        let mut batch = vec![pending()];
        let closing = gather(&mut rx, &mut batch, 256, Duration::ZERO).await;
        assert!(!closing);
        assert_eq!(batch.len(), 4);
        // Returned without waiting for more (the channel is still open).
        assert!(started.elapsed() < Duration::from_millis(200));
        // The bound still holds.
        for _ in 0..5 {
            assert!(tx.try_send(Msg::Append(pending())).is_ok());
        }
        let mut batch = vec![pending()];
        gather(&mut rx, &mut batch, 3, Duration::ZERO).await;
        assert_eq!(batch.len(), 3);
        // A linger waits for more, up to its length.
        let mut batch = vec![pending()];
        rx.try_recv().ok();
        rx.try_recv().ok();
        rx.try_recv().ok();
        let started = tokio::time::Instant::now();
        gather(&mut rx, &mut batch, 256, Duration::from_millis(250)).await;
        assert!(started.elapsed() >= Duration::from_millis(250));
        // Close is seen.
        assert!(tx.try_send(Msg::Close).is_ok());
        let mut batch = vec![pending()];
        assert!(gather(&mut rx, &mut batch, 256, Duration::ZERO).await);
    }
}
