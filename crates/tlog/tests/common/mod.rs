//! Shared test helpers: locating the golden vectors in this crate's
//! `testdata/` (copied from the project's shared test data, with their
//! SOURCES.md) and decoding their base64 hashes.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::path::{Path, PathBuf};

use base64::prelude::*;
use proofmesh_tlog::Hash;
use sha2::{Digest, Sha256};

/// `crates/tlog/testdata/<rel>`.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// Reads a golden-vector file; panics (fails the test) naming the path when
/// it is missing, never skips.
pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata(rel);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "golden vector {} is missing or unreadable: {e}",
            p.display()
        )
    })
}

/// Parses a golden-vector JSON file.
pub fn json(rel: &str) -> serde_json::Value {
    let p = testdata(rel);
    serde_json::from_slice(&read(rel))
        .unwrap_or_else(|e| panic!("golden vector {} is not JSON: {e}", p.display()))
}

/// Decodes a base64 hash; `None` when it is not 32 bytes (vectors use
/// deliberately short "don't care" placeholders, which a 32-byte hash type
/// cannot carry: a client would reject them while parsing).
pub fn try_b64_hash(s: &str) -> Option<Hash> {
    let bytes = BASE64_STANDARD.decode(s).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Hash)
}

/// Decodes a base64 hash that must be 32 bytes.
pub fn b64_hash(s: &str) -> Hash {
    try_b64_hash(s).unwrap_or_else(|| panic!("vector hash {s:?} is not 32 bytes of base64"))
}

/// Decodes a hex hash.
pub fn hex_hash(s: &str) -> Hash {
    Hash(
        hex::decode(s)
            .expect("vector hex")
            .try_into()
            .expect("32 bytes"),
    )
}

/// All `*.json` files under `crates/tlog/testdata/<rel>`, recursively, sorted.
pub fn json_files(rel: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("golden vector dir {} missing: {e}", dir.display()));
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&testdata(rel), &mut out);
    out.sort();
    out
}

/// Independent RFC 6962 §2.1 Merkle Tree Hash, straight from the definition
/// (largest power of two strictly less than n), for cross-checking.
pub fn naive_mth(leaves: &[Hash]) -> Hash {
    fn node(l: Hash, r: Hash) -> Hash {
        let mut d = Sha256::new();
        d.update([1u8]);
        d.update(l.0);
        d.update(r.0);
        Hash(d.finalize().into())
    }
    match leaves.len() {
        0 => Hash(Sha256::digest(b"").into()),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node(naive_mth(&leaves[..k]), naive_mth(&leaves[k..]))
        }
    }
}
