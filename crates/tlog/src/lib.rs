//! `proofmesh-tlog`: the pure core of proofmesh's transparency log, where
//! every signed receipt, audit report, metrics statement and heartbeat log
//! is appended to an append-only Merkle log laid out per C2SP tlog-tiles and
//! committed to by C2SP tlog-checkpoint signed notes (C2SP signed-note,
//! Ed25519). Hashing is RFC 6962 §2.1.
//!
//! Why a separate crate: the log core must be checkable offline by anyone
//! (clients, monitors, `proofmesh verify`) with no I/O, so it holds no
//! storage, network or clock; and it implements the specs only, over opaque
//! entry bytes, so it depends on no other proofmesh crate. What an entry's
//! bytes mean (receipt, audit report, ledger document) is
//! `proofmesh_log::entry`. Merkle hashing, proofs and note signing come
//! from Cloudflare's `tlog_tiles` and `signed_note` (ports of Go's
//! `sumdb/tlog` and `sumdb/note`); this crate adds entry bundles, C2SP tile
//! paths, an in-memory tree, and checkpoint signing from a seed.
//!
//! - [`bundle`]: leaf hash, entry bundles.
//! - [`paths`]: `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`.
//! - [`tree`]: append, roots, inclusion/consistency proofs, tiles.
//! - [`checkpoint`]: sign and verify checkpoints.
//! - [`cosignature`]: C2SP tlog-cosignature witness cosignatures.
//! - [`inclusion`]: the base64 text form of inclusion proofs.

pub mod bundle;
pub mod checkpoint;
pub mod cosignature;
pub mod error;
pub mod inclusion;
pub mod paths;
pub mod tree;

pub use bundle::{decode_bundle, encode_bundle, leaf_hash, BUNDLE_WIDTH, MAX_ENTRY_SIZE};
pub use checkpoint::{CheckpointSigner, CheckpointVerifier, VerifiedCheckpoint};
pub use cosignature::{verify_cosigned, Cosigned, WitnessSigner, WitnessVerifier};
pub use error::TlogError;
pub use inclusion::{decode_proof, encode_proof};
pub use paths::{TileKind, TilePath};
pub use tlog_tiles::{Hash, EMPTY_HASH, HASH_SIZE};
pub use tree::{
    new_tile_paths, tile_exists, tiles_for_size, verify_consistency, verify_inclusion, Tree,
};
