//! The binary encoding of a proofmesh log entry (docs/LOG.md), and its
//! RFC 6962 §2.1 leaf hash.
//!
//! Why: a transparency log commits to opaque bytes, so every receipt, audit
//! report, metrics statement and heartbeat log needs exactly one byte string
//! that anyone can rebuild and hash. The layout (version 1) is:
//!
//! ```text
//! entry   := tag:u8 || version:u8 || u32be(len(json)) || json
//! tag     := 0x01 receipt (proofmesh_receipt::Receipt)
//!          | 0x02 audit report (proofmesh_receipt::AuditReport)
//!          | 0x03 metrics statement (proofmesh_ledger::SignedStatement)
//!          | 0x04 heartbeat log (proofmesh_ledger::SignedHeartbeats)
//!          | 0x05 pool charter (proofmesh_ledger::SignedCharter)
//!          | 0x06 pool unit transfer (proofmesh_ledger::SignedTransfer)
//!          | 0x07 pool distribution (proofmesh_ledger::SignedDistribution)
//!          | 0x08 settlement batch (proofmesh_ledger::SignedBatch)
//!          ; 0x00 and 0x09..=0xff are reserved and rejected
//! version := 0x01
//! json    := serde_json::to_vec(object)   (compact, fields in struct order)
//! ```
//!
//! Decoding is strict: the JSON must parse as the tagged type (whose serde
//! types deny unknown fields) AND re-serialise to the identical bytes, so one
//! object has one encoding and therefore one leaf hash. The same rule holds
//! for every tag. Decoding checks the form only: signatures (a receipt's, a
//! statement's, a heartbeat log's) are for the reader to verify. An encoded entry is at
//! most [`MAX_ENTRY_SIZE`] = 65535 bytes, because tlog-tiles entry bundles
//! prefix each entry with a big-endian uint16 length.
//!
//! The leaf hash is `SHA-256(0x00 || entry)` (RFC 6962 §2.1); it and entry
//! bundles are the spec's, in `proofmesh_tlog`, which treats entries as
//! opaque bytes. This module is pure (no I/O): offline readers of the log
//! (`proofmesh receipt verify`, `log monitor`, `covenant check`) decode with
//! it as the coordinator does.

use proofmesh_ledger::statement::evidence::EvidenceItem;
use proofmesh_ledger::{
    SignedBatch, SignedCharter, SignedDistribution, SignedHeartbeats, SignedStatement,
    SignedTransfer,
};
use proofmesh_receipt::{AuditReport, Receipt};
pub use proofmesh_tlog::MAX_ENTRY_SIZE;
use proofmesh_tlog::{Hash, TlogError};
use serde::{de::DeserializeOwned, Serialize};

/// Tag byte of a receipt entry.
pub const TAG_RECEIPT: u8 = 0x01;
/// Tag byte of an audit-report entry.
pub const TAG_AUDIT_REPORT: u8 = 0x02;
/// Tag byte of a metrics-statement entry.
pub const TAG_STATEMENT: u8 = 0x03;
/// Tag byte of a heartbeat-log entry.
pub const TAG_HEARTBEATS: u8 = 0x04;
/// Tag byte of a pool-charter entry.
pub const TAG_POOL_CHARTER: u8 = 0x05;
/// Tag byte of a pool unit-transfer entry.
pub const TAG_POOL_TRANSFER: u8 = 0x06;
/// Tag byte of a pool-distribution entry.
pub const TAG_POOL_DISTRIBUTION: u8 = 0x07;
/// Tag byte of a settlement-batch entry.
pub const TAG_SETTLEMENT_BATCH: u8 = 0x08;
/// The only entry version this build writes and reads.
pub const ENTRY_VERSION: u8 = 0x01;
/// Bytes before the JSON: tag, version, u32be length.
pub const ENTRY_HEADER_LEN: usize = 6;

/// Why bytes are not a log entry, or an entry cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// An encoded entry is shorter than its fixed header.
    #[error("entry truncated: {len} bytes, the header alone is {min}")]
    EntryTruncated {
        /// Bytes given.
        len: usize,
        /// Minimum length.
        min: usize,
    },
    /// A receipt entry carries what is never logged inside it: its own log
    /// position (circular) or audit reports (logged as their own entries).
    #[error("receipt is not in its loggable form: {reason}")]
    NotLoggable {
        /// What it carries.
        reason: &'static str,
    },
    /// An entry (or its JSON) exceeds the size bound.
    #[error("entry is {len} bytes, the limit is {max}")]
    EntryTooLarge {
        /// Size of the offending entry.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The type tag is reserved or unknown.
    #[error("unknown or reserved entry type tag {tag:#04x}")]
    UnknownEntryType {
        /// The tag byte.
        tag: u8,
    },
    /// The version byte is not one this build understands.
    #[error("unsupported version {version} for entry type {tag:#04x}")]
    UnsupportedEntryVersion {
        /// The tag byte.
        tag: u8,
        /// The version byte.
        version: u8,
    },
    /// The length prefix disagrees with the bytes that follow it.
    #[error("entry length prefix says {declared} bytes but {actual} follow")]
    EntryLengthMismatch {
        /// Length named by the prefix.
        declared: u64,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// The JSON payload does not parse as the tagged type (or cannot be produced).
    #[error("entry JSON for type {tag:#04x} is invalid: {reason}")]
    EntryJson {
        /// The tag byte.
        tag: u8,
        /// The serde_json message.
        reason: String,
    },
    /// The JSON parses but is not the exact bytes `serde_json::to_vec` yields.
    #[error("entry JSON for type {tag:#04x} is not in canonical form")]
    NonCanonicalJson {
        /// The tag byte.
        tag: u8,
    },
    /// A failure of the log spec itself (an inclusion proof, a checkpoint),
    /// from [`crate::verify_receipt_inclusion`].
    #[error(transparent)]
    Tlog(#[from] TlogError),
}

/// A decoded log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A signed receipt (tag 1).
    Receipt(Receipt),
    /// A verifier-signed audit report (tag 2).
    AuditReport(AuditReport),
    /// A coordinator-signed metrics statement (tag 3).
    Statement(SignedStatement),
    /// A coordinator-signed heartbeat log (tag 4).
    Heartbeats(SignedHeartbeats),
    /// A provider-signed revenue-share pool charter (tag 5).
    PoolCharter(SignedCharter),
    /// A holder-signed unit transfer (tag 6).
    PoolTransfer(SignedTransfer),
    /// A coordinator-signed epoch distribution of a pool (tag 7).
    PoolDistribution(SignedDistribution),
    /// A coordinator-signed epoch settlement batch (tag 8).
    SettlementBatch(SignedBatch),
}

impl LogEntry {
    /// The loggable form of a receipt: its signed body and signatures, without
    /// attached audit reports (each is logged as its own entry) or log position.
    pub fn receipt(r: &Receipt) -> LogEntry {
        let mut r = r.clone();
        r.audits.clear();
        r.log = None;
        LogEntry::Receipt(r)
    }

    /// The entry's tag byte.
    pub fn tag(&self) -> u8 {
        match self {
            LogEntry::Receipt(_) => TAG_RECEIPT,
            LogEntry::AuditReport(_) => TAG_AUDIT_REPORT,
            LogEntry::Statement(_) => TAG_STATEMENT,
            LogEntry::Heartbeats(_) => TAG_HEARTBEATS,
            LogEntry::PoolCharter(_) => TAG_POOL_CHARTER,
            LogEntry::PoolTransfer(_) => TAG_POOL_TRANSFER,
            LogEntry::PoolDistribution(_) => TAG_POOL_DISTRIBUTION,
            LogEntry::SettlementBatch(_) => TAG_SETTLEMENT_BATCH,
        }
    }

    /// Encodes the entry (version 1). Fails if the result would exceed
    /// [`MAX_ENTRY_SIZE`].
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let tag = self.tag();
        let json = match self {
            LogEntry::Receipt(r) if r.log.is_some() => {
                return Err(EntryError::NotLoggable {
                    reason: "it carries its own log inclusion",
                })
            }
            LogEntry::Receipt(r) if !r.audits.is_empty() => {
                return Err(EntryError::NotLoggable {
                    reason: "it carries audit reports",
                })
            }
            LogEntry::Receipt(r) => to_json(tag, r)?,
            LogEntry::AuditReport(a) => to_json(tag, a)?,
            LogEntry::Statement(st) => to_json(tag, st)?,
            LogEntry::Heartbeats(h) => to_json(tag, h)?,
            LogEntry::PoolCharter(c) => to_json(tag, c)?,
            LogEntry::PoolTransfer(t) => to_json(tag, t)?,
            LogEntry::PoolDistribution(d) => to_json(tag, d)?,
            LogEntry::SettlementBatch(b) => to_json(tag, b)?,
        };
        let len = ENTRY_HEADER_LEN + json.len();
        if len > MAX_ENTRY_SIZE {
            return Err(EntryError::EntryTooLarge {
                len,
                max: MAX_ENTRY_SIZE,
            });
        }
        // Cannot fail: json.len() < MAX_ENTRY_SIZE < u32::MAX.
        let json_len = u32::try_from(json.len()).map_err(|_| EntryError::EntryTooLarge {
            len,
            max: MAX_ENTRY_SIZE,
        })?;
        let mut out = Vec::with_capacity(len);
        out.push(tag);
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&json_len.to_be_bytes());
        out.extend_from_slice(&json);
        Ok(out)
    }

    /// Decodes an entry, rejecting anything [`LogEntry::encode`] would not
    /// have produced byte for byte.
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, EntryError> {
        if bytes.len() > MAX_ENTRY_SIZE {
            return Err(EntryError::EntryTooLarge {
                len: bytes.len(),
                max: MAX_ENTRY_SIZE,
            });
        }
        let (tag, json) = split_header(bytes)?;
        match tag {
            TAG_RECEIPT => {
                let e = from_json::<Receipt>(tag, json).map(LogEntry::Receipt)?;
                e.encode()?;
                Ok(e)
            }
            TAG_AUDIT_REPORT => from_json::<AuditReport>(tag, json).map(LogEntry::AuditReport),
            TAG_STATEMENT => from_json::<SignedStatement>(tag, json).map(LogEntry::Statement),
            TAG_HEARTBEATS => from_json::<SignedHeartbeats>(tag, json).map(LogEntry::Heartbeats),
            TAG_POOL_CHARTER => from_json::<SignedCharter>(tag, json).map(LogEntry::PoolCharter),
            TAG_POOL_TRANSFER => from_json::<SignedTransfer>(tag, json).map(LogEntry::PoolTransfer),
            TAG_POOL_DISTRIBUTION => {
                from_json::<SignedDistribution>(tag, json).map(LogEntry::PoolDistribution)
            }
            TAG_SETTLEMENT_BATCH => {
                from_json::<SignedBatch>(tag, json).map(LogEntry::SettlementBatch)
            }
            _ => Err(EntryError::UnknownEntryType { tag }),
        }
    }

    /// The RFC 6962 §2.1 leaf hash of this entry's encoding.
    pub fn leaf_hash(&self) -> Result<Hash, EntryError> {
        Ok(proofmesh_tlog::leaf_hash(&self.encode()?))
    }
}

/// What a metrics statement's evidence rule
/// ([`proofmesh_ledger::statement::evidence::Evidence::add`]) sees of an
/// entry: receipts, audit reports and heartbeat logs can count; nothing
/// else ever does.
impl<'a> From<&'a LogEntry> for EvidenceItem<'a> {
    fn from(entry: &'a LogEntry) -> EvidenceItem<'a> {
        match entry {
            LogEntry::Receipt(r) => EvidenceItem::Receipt(r),
            LogEntry::AuditReport(a) => EvidenceItem::AuditReport(a),
            LogEntry::Heartbeats(h) => EvidenceItem::Heartbeats(h),
            LogEntry::Statement(_)
            | LogEntry::PoolCharter(_)
            | LogEntry::PoolTransfer(_)
            | LogEntry::PoolDistribution(_)
            | LogEntry::SettlementBatch(_) => EvidenceItem::Other,
        }
    }
}

/// Checks tag, version and length prefix; returns the tag and the JSON bytes.
fn split_header(bytes: &[u8]) -> Result<(u8, &[u8]), EntryError> {
    let Some((header, json)) = bytes.split_first_chunk::<ENTRY_HEADER_LEN>() else {
        return Err(EntryError::EntryTruncated {
            len: bytes.len(),
            min: ENTRY_HEADER_LEN,
        });
    };
    let [tag, version, l0, l1, l2, l3] = *header;
    if !(TAG_RECEIPT..=TAG_SETTLEMENT_BATCH).contains(&tag) {
        return Err(EntryError::UnknownEntryType { tag });
    }
    if version != ENTRY_VERSION {
        return Err(EntryError::UnsupportedEntryVersion { tag, version });
    }
    let declared = u32::from_be_bytes([l0, l1, l2, l3]);
    if u64::from(declared) != json.len() as u64 {
        return Err(EntryError::EntryLengthMismatch {
            declared: u64::from(declared),
            actual: json.len(),
        });
    }
    Ok((tag, json))
}

fn to_json<T: Serialize>(tag: u8, value: &T) -> Result<Vec<u8>, EntryError> {
    serde_json::to_vec(value).map_err(|e| EntryError::EntryJson {
        tag,
        reason: e.to_string(),
    })
}

fn from_json<T: Serialize + DeserializeOwned>(tag: u8, json: &[u8]) -> Result<T, EntryError> {
    let value: T = serde_json::from_slice(json).map_err(|e| EntryError::EntryJson {
        tag,
        reason: e.to_string(),
    })?;
    if to_json(tag, &value)? != json {
        return Err(EntryError::NonCanonicalJson { tag });
    }
    Ok(value)
}
