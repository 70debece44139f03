//! Fuzzes `proofmesh_receipt::Signature::parse` on arbitrary UTF-8.
//!
//! Invariant: never panics; an accepted signature prints back as its input.
//!
//! Body: `proofmesh_fuzzing::signature` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::signature(data));
