//! Fuzzes `proofmesh_receipt::PublicKey::parse` on arbitrary UTF-8.
//!
//! Invariant: never panics; an accepted key prints as its input and reparses to an equal key.
//!
//! Body: `proofmesh_fuzzing::public_key` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::public_key(data));
