//! The append-only Merkle tree core: RFC 6962 §2.1 Merkle Tree Hash, §2.1.1
//! inclusion proofs ("Merkle audit paths"), §2.1.2 consistency proofs, their
//! verification, and the C2SP tlog-tiles hash tiles ("Merkle Tree" section).
//!
//! Why: the log must answer "what is the root at size n", "prove leaf i is in
//! tree n" and "prove tree m is a prefix of tree n", and publish tiles from
//! which clients compute those proofs themselves. All hashing and proof
//! construction/checking is tlog_tiles' (a port of Go's sumdb/tlog): leaf and
//! interior hashes are kept in its "stored hash" order, which [`Tree`] feeds
//! back through tlog_tiles' `HashReader`. Written here: the in-memory storage,
//! input bounds (so adversarial sizes/proofs cannot reach tlog_tiles'
//! internal asserts or cost unbounded work), the empty-tree consistency
//! policy, and the mapping from tree size to C2SP tile coordinates.
//!
//! Consistency policy for old size 0 (RFC 6962/9162 leave it undefined): as in
//! C2SP tlog-witness, any tree extends the empty tree, so the proof must be
//! empty and the old root must be the empty-tree hash `SHA-256("")`.

use tlog_tiles::{Hash, HashReader, Tile, EMPTY_HASH};

use crate::error::TlogError;
use crate::paths::{TileKind, TilePath, TILE_HEIGHT, TILE_WIDTH};

/// Longest inclusion proof in a tree of at most 2^64 - 1 leaves.
pub const MAX_INCLUSION_PROOF_LEN: usize = 64;
/// Longest consistency proof in such a tree (RFC 9162 §2.1.4.1 bound).
pub const MAX_CONSISTENCY_PROOF_LEN: usize = 65;

/// A tile to publish and, for hash tiles, its bytes (`None` for entry
/// bundles, whose bytes the caller holds).
pub type NewTile = (TilePath, Option<Vec<u8>>);

/// An in-memory, append-only RFC 6962 Merkle tree over leaf hashes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Every leaf and complete-subtree hash, in tlog_tiles' stored-hash order.
    stored: Vec<Hash>,
    size: u64,
}

/// Read access to `stored` for tlog_tiles; errors rather than panics.
struct Stored<'a>(&'a [Hash]);

impl HashReader for Stored<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn internal(e: tlog_tiles::Error) -> TlogError {
    TlogError::Internal {
        reason: e.to_string(),
    }
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash (see [`crate::bundle::leaf_hash`]); returns its index.
    pub fn append(&mut self, leaf_hash: Hash) -> Result<u64, TlogError> {
        let n = self.size;
        if n == u64::MAX {
            return Err(TlogError::TreeFull { size: n });
        }
        let new = tlog_tiles::stored_hashes_for_record_hash(n, leaf_hash, &Stored(&self.stored))
            .map_err(internal)?;
        self.stored.extend(new);
        self.size = n + 1;
        Ok(n)
    }

    /// Drops every leaf at or after `size` (no-op if `size >= self.size()`).
    /// For a sequencer whose durable write failed: the in-memory tree goes
    /// back to what storage holds, so no unpersisted leaf is ever proven.
    pub fn truncate(&mut self, size: u64) {
        if size >= self.size {
            return;
        }
        let keep = usize::try_from(tlog_tiles::stored_hash_count(size)).unwrap_or(usize::MAX);
        self.stored.truncate(keep);
        self.size = size;
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, TlogError> {
        self.check_index(index, self.size)?;
        let i = tlog_tiles::stored_hash_index(0, index);
        Stored(&self.stored)
            .read_hashes(&[i])
            .map_err(internal)?
            .pop()
            .ok_or(TlogError::Internal {
                reason: "no hash read".into(),
            })
    }

    /// The current root (MTH of all leaves; `SHA-256("")` when empty).
    pub fn root(&self) -> Hash {
        // Cannot fail: size is the current size and storage is complete.
        self.root_at(self.size).unwrap_or(EMPTY_HASH)
    }

    /// The root of the tree's first `size` leaves (RFC 6962 §2.1 MTH).
    pub fn root_at(&self, size: u64) -> Result<Hash, TlogError> {
        self.check_size(size)?;
        tlog_tiles::tree_hash(size, &Stored(&self.stored)).map_err(internal)
    }

    /// RFC 6962 §2.1.1 audit path for leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(size)?;
        self.check_index(index, size)?;
        tlog_tiles::prove_record(size, index, &Stored(&self.stored)).map_err(internal)
    }

    /// RFC 6962 §2.1.2 consistency proof from `old` to `new` leaves
    /// (empty when `old` is 0 or equals `new`).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, TlogError> {
        self.check_size(new)?;
        if old > new {
            return Err(TlogError::SizesOutOfOrder { old, new });
        }
        if old == 0 {
            return Ok(Vec::new());
        }
        tlog_tiles::prove_tree(new, old, &Stored(&self.stored)).map_err(internal)
    }

    /// Data of the hash tile `tile` as of tree size `size`: `width` 32-byte
    /// hashes. The tile must exist at that size (see [`tile_exists`]).
    pub fn tile_data(&self, size: u64, tile: TilePath) -> Result<Vec<u8>, TlogError> {
        self.check_size(size)?;
        let TileKind::Hashes { level } = tile.kind() else {
            return Err(bad_tile(tile, "entry bundles hold entries, not hashes"));
        };
        if !tile_exists(size, level, tile.index(), tile.width()) {
            return Err(bad_tile(tile, "tile does not exist at this tree size"));
        }
        Tile::new(TILE_HEIGHT, level, tile.index(), tile.width(), false)
            .read_data(&Stored(&self.stored))
            .map_err(internal)
    }

    /// Tiles (hash tiles and entry bundles) a log publishes when growing from
    /// `old` to `new` leaves, with the data of the hash tiles (`None` for
    /// entry bundles, whose bytes the caller holds).
    pub fn new_tiles(&self, old: u64, new: u64) -> Result<Vec<NewTile>, TlogError> {
        self.check_size(new)?;
        if old > new {
            return Err(TlogError::SizesOutOfOrder { old, new });
        }
        let mut out = Vec::new();
        for t in new_tile_paths(old, new)? {
            let data = match t.kind() {
                TileKind::Hashes { .. } => Some(self.tile_data(new, t)?),
                TileKind::Entries => None,
            };
            out.push((t, data));
        }
        Ok(out)
    }

    fn check_size(&self, size: u64) -> Result<(), TlogError> {
        if size > self.size {
            return Err(TlogError::SizeOutOfRange {
                requested: size,
                current: self.size,
            });
        }
        Ok(())
    }

    fn check_index(&self, index: u64, size: u64) -> Result<(), TlogError> {
        if index >= size {
            return Err(TlogError::IndexOutOfRange { index, size });
        }
        Ok(())
    }
}

fn bad_tile(tile: TilePath, reason: &'static str) -> TlogError {
    TlogError::BadTile {
        level: match tile.kind() {
            TileKind::Hashes { level } => Some(level),
            TileKind::Entries => None,
        },
        index: tile.index(),
        width: tile.width(),
        reason,
    }
}

/// Every tile of a tree of `size` leaves, per C2SP tlog-tiles "Partial
/// Tiles": at level l there are `floor(s/256^l) / 256` full tiles and, when
/// `floor(s/256^l) mod 256 > 0`, one partial tile of that width. Entry
/// bundles mirror level 0.
pub fn tiles_for_size(size: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    let mut level: u8 = 0;
    let mut level_size = size;
    while level_size > 0 {
        let full = level_size / u64::from(TILE_WIDTH);
        let partial = u32::try_from(level_size % u64::from(TILE_WIDTH)).unwrap_or(0);
        let mut push = |kind, index, width| {
            if let Ok(t) = TilePath::new(kind, index, width) {
                out.push(t);
            }
        };
        for kind in kinds_at(level) {
            for n in 0..full {
                push(kind, n, TILE_WIDTH);
            }
            if partial > 0 {
                push(kind, full, partial);
            }
        }
        level += 1;
        level_size >>= TILE_HEIGHT;
    }
    out
}

/// Tiles that change when the tree grows from `old` to `new` leaves:
/// per level, the full tiles completed since `old` and the new partial tile
/// (Go `tlog.NewTiles` with height 8).
pub fn new_tile_paths(old: u64, new: u64) -> Result<Vec<TilePath>, TlogError> {
    if old > new {
        return Err(TlogError::SizesOutOfOrder { old, new });
    }
    let mut out = Vec::new();
    for (level, index, width) in changed_tiles(TILE_HEIGHT, old, new) {
        for kind in kinds_at(level) {
            out.push(TilePath::new(kind, index, width)?);
        }
    }
    Ok(out)
}

/// `(level, index, width)` of the tiles of height `h` (1..=30) that change
/// between sizes `old <= new`. Hand-written instead of tlog_tiles'
/// `Tile::new_tiles` because that shifts a u64 by `h * level` without a
/// bound and so panics for trees of 2^56 leaves or more.
pub(crate) fn changed_tiles(h: u8, old: u64, new: u64) -> Vec<(u8, u64, u32)> {
    let mut out = Vec::new();
    let mut level: u8 = 0;
    let mut shift = 0u32;
    while shift < 64 && new >> shift > 0 {
        let (old_n, new_n) = (old >> shift, new >> shift);
        if old_n != new_n {
            for n in (old_n >> h)..(new_n >> h) {
                out.push((level, n, 1u32 << h));
            }
            let n = new_n >> h;
            let w = new_n - (n << h);
            if let Ok(w @ 1..) = u32::try_from(w) {
                out.push((level, n, w));
            }
        }
        level += 1;
        shift += u32::from(h);
    }
    out
}

/// Whether the tile (`level`, `index`) with `width` hashes (or, at level 0,
/// entries) exists in the tree of `size` leaves: any prefix of a full tile,
/// or any prefix of the current partial tile, whose width is
/// `floor(size / 256^level) mod 256`. A prefix was itself the partial tile at
/// some earlier size, and its hashes never change, so clients holding an
/// older checkpoint can still fetch exactly the tiles it implies.
pub fn tile_exists(size: u64, level: u8, index: u64, width: u32) -> bool {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    if shift >= 64 {
        return false;
    }
    let level_size = size >> shift;
    let full = level_size / u64::from(TILE_WIDTH);
    let partial = level_size % u64::from(TILE_WIDTH);
    index < full || (index == full && u64::from(width) <= partial)
}

fn kinds_at(level: u8) -> Vec<TileKind> {
    if level == 0 {
        vec![TileKind::Hashes { level }, TileKind::Entries]
    } else {
        vec![TileKind::Hashes { level }]
    }
}

/// Verifies an RFC 6962 §2.1.1 inclusion proof of `leaf_hash` at `index` in
/// the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::IndexOutOfRange { index, size });
    }
    if proof.len() > MAX_INCLUSION_PROOF_LEN {
        return Err(TlogError::ProofTooLong {
            len: proof.len(),
            max: MAX_INCLUSION_PROOF_LEN,
        });
    }
    tlog_tiles::check_record(&proof.to_vec(), size, *root, index, *leaf_hash)
        .map_err(|_| TlogError::InclusionProofInvalid { index, size })
}

/// Verifies an RFC 6962 §2.1.2 consistency proof that the tree of `old`
/// leaves with root `old_root` is a prefix of the tree of `new` leaves with
/// root `new_root`. Old size 0: see the module docs.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), TlogError> {
    if old > new {
        return Err(TlogError::SizesOutOfOrder { old, new });
    }
    if proof.len() > MAX_CONSISTENCY_PROOF_LEN {
        return Err(TlogError::ProofTooLong {
            len: proof.len(),
            max: MAX_CONSISTENCY_PROOF_LEN,
        });
    }
    let invalid = TlogError::ConsistencyProofInvalid { old, new };
    if old == 0 {
        let new_ok = new > 0 || *new_root == EMPTY_HASH;
        return if proof.is_empty() && *old_root == EMPTY_HASH && new_ok {
            Ok(())
        } else {
            Err(invalid)
        };
    }
    tlog_tiles::check_tree(&proof.to_vec(), new, *new_root, old, *old_root).map_err(|_| invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go sumdb/tlog `TestNewTiles` counts (height 10) for the hand-written
    /// tile enumeration, and agreement with tlog_tiles' `Tile::new_tiles`.
    #[test]
    fn changed_tiles_match_go_vectors_and_tlog_tiles() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/mod/sumdb_tlog_vectors.json");
        let bytes = std::fs::read(&p)
            .unwrap_or_else(|e| panic!("golden vector {} is missing: {e}", p.display()));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let cases = v["new_tiles_count_h10"].as_array().unwrap();
        assert!(cases.len() >= 7);
        for c in cases {
            let (old, new, want) = (
                c[0].as_u64().unwrap(),
                c[1].as_u64().unwrap(),
                c[2].as_u64(),
            );
            assert_eq!(
                Some(changed_tiles(10, old, new).len() as u64),
                want,
                "{old}->{new}"
            );
        }
        for (old, new) in [
            (0u64, 1u64),
            (0, 70_000),
            (255, 256),
            (65_535, 65_537),
            (1000, 1000),
        ] {
            let lib: Vec<_> = Tile::new_tiles(TILE_HEIGHT, old, new)
                .into_iter()
                .map(|t| (t.level(), t.level_index(), t.width()))
                .collect();
            assert_eq!(changed_tiles(TILE_HEIGHT, old, new), lib, "{old}->{new}");
        }
        // Beyond 2^56 leaves tlog_tiles would overflow a shift; we do not.
        assert!(!changed_tiles(TILE_HEIGHT, u64::MAX - 1, u64::MAX).is_empty());
    }
}
