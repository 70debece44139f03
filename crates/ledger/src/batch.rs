//! Settlement batches: an epoch's journal entries committed to by one Merkle
//! root, signed by the coordinator, chained to the previous batch.
//!
//! Why: settlement on a blockchain is out of scope for now, but it must stay
//! possible. A chain contract that stores a batch root can later verify any
//! single transaction with an inclusion proof of `log₂ n` hashes, without
//! seeing the rest of the epoch.
//!
//! Hashing is RFC 6962 §2.1 (as in the transparency log, `crates/tlog`):
//!
//! ```text
//! leaf(e)      = SHA-256(0x00 || entry(e))
//! node(l, r)   = SHA-256(0x01 || l || r)
//! MTH({})      = SHA-256("")
//! MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n])), k = largest power of 2 < n
//! entry(e)     = canon("proofmesh/ledger-entry/v1"; seq u64, at_ms u64, tx_hash bytes[32])
//! ```
//!
//! where `tx_hash` is [`crate::tx::Transaction::hash`], so a verifier holding
//! a transaction can recompute its leaf. Inclusion proofs are RFC 6962
//! audit paths, checked with the RFC 9162 §2.1.3.2 algorithm.
//!
//! The batch header (domain `proofmesh/settlement-batch/v1`) has, in order:
//! version, coordinator, epoch_start_s, epoch_end_s, first_seq, count, root,
//! prev_batch_hash (hex; 64 zeros for the first batch).

use proofmesh_receipt::canon::Encoder;
use proofmesh_receipt::{Identity, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::epoch::Epoch;
use crate::hash::Hash32;
use crate::ledger::JournalEntry;

/// The batch format version.
pub const BATCH_VERSION: u32 = 1;

const ENTRY_DOMAIN: &str = "proofmesh/ledger-entry/v1";
const BATCH_DOMAIN: &str = "proofmesh/settlement-batch/v1";

/// Why a batch could not be built or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Entries are not consecutive from `first_seq`.
    #[error("entry at position {position} has seq {found}, expected {expected}")]
    Sequence {
        /// Position in the slice.
        position: usize,
        /// Expected seq.
        expected: u64,
        /// Found seq.
        found: u64,
    },
    /// An entry's recorded hash is not its transaction's hash.
    #[error("entry {seq}: recorded hash does not match its transaction")]
    EntryHash {
        /// Entry.
        seq: u64,
    },
    /// An entry was applied after the batch's epoch ended.
    #[error("entry {seq} at {at_ms} ms is after the end of epoch {epoch}")]
    OutsideEpoch {
        /// Entry.
        seq: u64,
        /// Its time.
        at_ms: u64,
        /// The epoch.
        epoch: Epoch,
    },
    /// The signer is not the batch's coordinator.
    #[error("signing key {signer} is not the batch's coordinator {coordinator}")]
    WrongSigner {
        /// Signer.
        signer: String,
        /// In the body.
        coordinator: String,
    },
    /// Bad signature or version.
    #[error("batch for epoch {epoch} does not verify: {reason}")]
    Invalid {
        /// Epoch.
        epoch: Epoch,
        /// Why.
        reason: &'static str,
    },
    /// Index beyond the tree.
    #[error("leaf index {index} out of range for {size} leaves")]
    IndexOutOfRange {
        /// Index.
        index: u64,
        /// Size.
        size: u64,
    },
}

/// The RFC 6962 leaf hash of a journal entry.
pub fn entry_leaf_hash(e: &JournalEntry) -> Hash32 {
    let mut enc = Encoder::new(ENTRY_DOMAIN);
    enc.u64("seq", e.seq)
        .u64("at_ms", e.at_ms)
        .bytes("tx_hash", &e.hash.0);
    Hash32::of_parts(&[&[0x00], &enc.finish()])
}

fn node(l: &Hash32, r: &Hash32) -> Hash32 {
    Hash32::of_parts(&[&[0x01], &l.0, &r.0])
}

fn split(n: usize) -> usize {
    // Largest power of two strictly below n (n ≥ 2).
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 Merkle tree hash of leaf hashes.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => Hash32::of(b""),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The RFC 6962 audit path for leaf `index`.
pub fn inclusion_proof(leaves: &[Hash32], index: u64) -> Result<Vec<Hash32>, BatchError> {
    let size = leaves.len() as u64;
    let i = usize::try_from(index)
        .ok()
        .filter(|&i| i < leaves.len())
        .ok_or(BatchError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(i, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, d: &[Hash32], out: &mut Vec<Hash32>) {
    if d.len() <= 1 {
        return;
    }
    let k = split(d.len());
    if m < k {
        path(m, &d[..k], out);
        out.push(merkle_root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(merkle_root(&d[..k]));
    }
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    proof: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// The signed header of an epoch's settlement batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// [`BATCH_VERSION`].
    pub version: u32,
    /// Signing coordinator.
    pub coordinator: PublicKey,
    /// The epoch settled.
    pub epoch: Epoch,
    /// Seq of the first entry (the next seq if the batch is empty).
    pub first_seq: u64,
    /// Number of entries.
    pub count: u64,
    /// Merkle root of the entries' leaf hashes.
    pub root: Hash32,
    /// Hash of the previous batch body, or all zeros.
    pub prev_batch_hash: Hash32,
}

impl BatchBody {
    /// Builds the batch for `entries`, which must be consecutive from
    /// `first_seq`, carry correct hashes, and be applied before `epoch` ends.
    pub fn build(
        coordinator: &PublicKey,
        epoch: Epoch,
        first_seq: u64,
        entries: &[JournalEntry],
        prev_batch_hash: Hash32,
    ) -> Result<BatchBody, BatchError> {
        let mut leaves = Vec::with_capacity(entries.len());
        for (position, e) in entries.iter().enumerate() {
            let expected = first_seq.saturating_add(position as u64);
            if e.seq != expected {
                return Err(BatchError::Sequence {
                    position,
                    expected,
                    found: e.seq,
                });
            }
            if e.hash != e.tx.hash() {
                return Err(BatchError::EntryHash { seq: e.seq });
            }
            // A batch settles every line applied by the epoch's end that no
            // earlier batch holds; a line stamped before the epoch's start
            // (a second writer's clock, an epoch skipped in downtime)
            // belongs to the first batch after it.
            if e.at_ms >= epoch.end_ms() {
                return Err(BatchError::OutsideEpoch {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    epoch,
                });
            }
            leaves.push(entry_leaf_hash(e));
        }
        Ok(BatchBody {
            version: BATCH_VERSION,
            coordinator: coordinator.clone(),
            epoch,
            first_seq,
            count: entries.len() as u64,
            root: merkle_root(&leaves),
            prev_batch_hash,
        })
    }

    /// Canonical encoding (module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(BATCH_DOMAIN);
        e.u64("version", self.version.into())
            .str("coordinator", self.coordinator.as_str())
            .u64("epoch_start_s", self.epoch.start_s())
            .u64("epoch_end_s", self.epoch.end_s())
            .u64("first_seq", self.first_seq)
            .u64("count", self.count)
            .str("root", &self.root.to_hex())
            .str("prev_batch_hash", &self.prev_batch_hash.to_hex());
        e.finish()
    }

    /// SHA-256 of the canonical encoding (the next batch's `prev_batch_hash`).
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.canonical())
    }
}

/// A coordinator-signed batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBatch {
    /// Header.
    pub body: BatchBody,
    /// Ed25519 over `body.canonical()`.
    pub signature: Signature,
}

impl SignedBatch {
    /// Signs as `coordinator`, which must be the body's key.
    pub fn sign(body: BatchBody, coordinator: &Identity) -> Result<SignedBatch, BatchError> {
        if coordinator.public() != &body.coordinator {
            return Err(BatchError::WrongSigner {
                signer: coordinator.public().to_string(),
                coordinator: body.coordinator.to_string(),
            });
        }
        let signature = coordinator.sign(&body.canonical());
        Ok(SignedBatch { body, signature })
    }

    /// Checks version and signature.
    pub fn verify(&self) -> Result<(), BatchError> {
        let invalid = |reason| BatchError::Invalid {
            epoch: self.body.epoch,
            reason,
        };
        if self.body.version != BATCH_VERSION {
            return Err(invalid("unsupported version"));
        }
        self.body
            .coordinator
            .verify(&self.body.canonical(), &self.signature)
            .map_err(|_| invalid("signature does not verify"))
    }
}

#[cfg(test)]
mod tests;
