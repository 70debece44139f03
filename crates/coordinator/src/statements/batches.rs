//! Epoch settlement batches (issue 8 §6): after each epoch, the coordinator
//! signs the RFC 6962 Merkle root of the ledger journal lines applied in it
//! ([`proofmesh_ledger::SignedBatch`]) and appends it to the transparency
//! log (key `batch:<epoch start>`).
//!
//! Why: settlement onto a chain is out of scope, but a chain contract (or a
//! lender) can already check an epoch's money movements against one signed
//! 32-byte root, with an inclusion proof per transaction
//! ([`proofmesh_ledger::inclusion_proof`]). Batches chain by
//! `prev_batch_hash` and cover consecutive journal seqs, so none can be
//! dropped or reordered unseen.
//!
//! Coverage: a batch holds the consecutive journal lines from where the
//! previous batch ended up to the first line applied at or after the
//! epoch's end (its epoch starts at the previous batch's end, so epochs
//! skipped during a long downtime are covered too). The first batch starts
//! at the epoch's first journal line (earlier lines predate batching), and
//! only once an epoch has lines; after that every epoch gets a batch, empty
//! or not, so the chain has no gaps. The
//! settlement writer keeps its own stamps monotonic along seq; a line
//! stamped early by a second writer (the admin CLI) lands in the batch
//! being built when it is read. The journal is read in chunks; one batch
//! holds its entries in memory.

use proofmesh_ledger::{
    BatchBody, BatchError, Epoch, EpochError, Hash32, JournalEntry, SignedBatch, Transaction,
};
use proofmesh_log::{EntryError, LogEntry};
use proofmesh_store::{Store, StoreError};

use super::{Publisher, SCAN_CHUNK};

/// Journal lines read per query.
const JOURNAL_CHUNK: u32 = 4096;

/// Why a batch was not published.
#[derive(Debug, thiserror::Error)]
pub enum BatchPublishError {
    /// Store access failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A log entry does not decode.
    #[error("log entry {index}: {source}")]
    Decode {
        /// Index.
        index: u64,
        /// Why.
        source: EntryError,
    },
    /// A stored journal line does not decode.
    #[error("journal line {seq}: {reason}")]
    Journal {
        /// Seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// Building or signing failed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The batch's epoch is malformed.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// Appending failed.
    #[error("log: {0}")]
    Log(#[from] proofmesh_log::LogError),
}

/// The log key of the batch for the epoch ending at `end_s`.
pub fn batch_log_key(end_s: u64) -> String {
    format!("batch:{end_s}")
}

/// The end and hash of this coordinator's latest batch, and the next seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    end_s: u64,
    next_seq: u64,
    hash: Hash32,
}

async fn latest_batch(p: &Publisher) -> Result<Option<Tip>, BatchPublishError> {
    let me = p.identity.public();
    let size = p.log.checkpoint().size;
    let mut tip = None;
    let mut start = 0;
    while start < size {
        let end = (start + SCAN_CHUNK).min(size);
        for (i, bytes) in p.store.log_entries(start, end).await?.iter().enumerate() {
            let index = start + i as u64;
            let entry = LogEntry::decode(bytes)
                .map_err(|source| BatchPublishError::Decode { index, source })?;
            if let LogEntry::SettlementBatch(b) = entry {
                if &b.body.coordinator == me {
                    tip = Some(Tip {
                        end_s: b.body.epoch.end_s(),
                        next_seq: b.body.first_seq + b.body.count,
                        hash: b.body.hash(),
                    });
                }
            }
        }
        start = end;
    }
    Ok(tip)
}

/// The journal lines from `from_seq` up to (excluding) the first one
/// applied at or after `end_ms`. With `skip_before_ms` (the first batch),
/// the lines before the first one applied at or after it are skipped.
async fn lines(
    store: &dyn Store,
    mut from_seq: u64,
    end_ms: u64,
    mut skip_before_ms: Option<u64>,
) -> Result<Vec<JournalEntry>, BatchPublishError> {
    let mut out = Vec::new();
    loop {
        let chunk = store.journal_lines(from_seq, JOURNAL_CHUNK).await?;
        let full = chunk.len() == JOURNAL_CHUNK as usize;
        for l in chunk {
            if l.at_ms >= end_ms {
                return Ok(out);
            }
            from_seq = l.seq + 1;
            match skip_before_ms {
                Some(s) if l.at_ms < s => continue,
                _ => skip_before_ms = None,
            }
            let tx: Transaction =
                serde_json::from_str(&l.tx_json).map_err(|e| BatchPublishError::Journal {
                    seq: l.seq,
                    reason: e.to_string(),
                })?;
            out.push(JournalEntry {
                seq: l.seq,
                at_ms: l.at_ms,
                hash: Hash32(l.hash),
                tx,
            });
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Signs and logs the settlement batch of `epoch` (which must have ended),
/// unless this coordinator's latest batch already reaches past its start.
pub async fn publish_batch(
    p: &Publisher,
    epoch: Epoch,
) -> Result<Option<(u64, SignedBatch)>, BatchPublishError> {
    let tip = latest_batch(p).await?;
    if tip.is_some_and(|t| t.end_s > epoch.start_s()) {
        return Ok(None);
    }
    let (start_s, from_seq, prev, skip) = match tip {
        Some(t) => (t.end_s.min(epoch.start_s()), t.next_seq, t.hash, None),
        None => (epoch.start_s(), 0, Hash32([0; 32]), Some(epoch.start_ms())),
    };
    let covered = Epoch::new(start_s, epoch.end_s())?;
    let entries = lines(p.store.as_ref(), from_seq, epoch.end_ms(), skip).await?;
    if tip.is_none() && entries.is_empty() {
        // Nothing has ever been settled: no chain to start yet.
        return Ok(None);
    }
    let first_seq = entries.first().map_or(from_seq, |e| e.seq);
    let body = BatchBody::build(p.identity.public(), covered, first_seq, &entries, prev)?;
    let signed = SignedBatch::sign(body, &p.identity)?;
    let seq = p
        .log
        .append(
            &LogEntry::SettlementBatch(signed.clone()),
            Some(batch_log_key(epoch.end_s())),
        )
        .await?;
    Ok(Some((seq.index, signed)))
}
