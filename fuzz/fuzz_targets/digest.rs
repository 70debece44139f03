//! Fuzzes `proofmesh_receipt::Digest::try_from(String)` on arbitrary UTF-8.
//!
//! Invariant: never panics; an accepted digest is exactly its input (`sha256:` + 64 lowercase
//! hex).
//!
//! Body: `proofmesh_fuzzing::digest` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::digest(data));
