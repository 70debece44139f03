//! RFC 6962 §2.1 leaf hashes and C2SP tlog-tiles entry bundles ("Log
//! entries" section).
//!
//! Why here: both are defined by the specs, for opaque entry bytes. What an
//! entry's bytes mean (proofmesh's tagged, versioned entry format) is not
//! this crate's business: it lives with the log that writes them
//! (`proofmesh_log::entry`).
//!
//! The leaf hash is `SHA-256(0x00 || entry)` (RFC 6962 §2.1), computed by
//! `tlog_tiles::record_hash`. An entry bundle is a tile's worth (at most
//! [`BUNDLE_WIDTH`]) of entries, each prefixed by its big-endian uint16
//! length, so an entry is at most [`MAX_ENTRY_SIZE`] = 65535 bytes. Bundles
//! are written by hand because tlog_tiles 0.2 has no bundle codec.

use tlog_tiles::Hash;

use crate::error::TlogError;

/// Largest entry: entry bundles use a uint16 length prefix.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;
/// Entries per full entry bundle (tile width).
pub const BUNDLE_WIDTH: usize = 256;

/// RFC 6962 §2.1 leaf hash: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(encoded_entry: &[u8]) -> Hash {
    tlog_tiles::record_hash(encoded_entry)
}

/// Builds a C2SP tlog-tiles entry bundle: each entry prefixed by its
/// big-endian uint16 length. At most [`BUNDLE_WIDTH`] entries.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TlogError> {
    if entries.len() > BUNDLE_WIDTH {
        return Err(TlogError::BundleTooLarge {
            count: entries.len(),
            max: BUNDLE_WIDTH,
        });
    }
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TlogError::EntryTooLarge {
            len: e.len(),
            max: MAX_ENTRY_SIZE,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a C2SP tlog-tiles entry bundle into its entries (borrowed).
pub fn decode_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, TlogError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let offset = bundle.len() - rest.len();
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(TlogError::BundleTruncated { offset });
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(TlogError::BundleTruncated { offset });
        }
        if entries.len() == BUNDLE_WIDTH {
            return Err(TlogError::BundleTooLarge {
                count: BUNDLE_WIDTH + 1,
                max: BUNDLE_WIDTH,
            });
        }
        let (entry, after) = tail.split_at(len);
        entries.push(entry);
        rest = after;
    }
    Ok(entries)
}
