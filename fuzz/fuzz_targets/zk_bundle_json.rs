//! Fuzzes a proof bundle JSON: `ProofBundle::from_json`, then its nonce and proof fields.
//!
//! Invariant: never panics.
//!
//! Body: `proofmesh_zkml::fuzz::bundle_json` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::bundle_json(data));
