//! Fuzzes a compressed Groth16 proof: `proofmesh_zkml::bundle::decode_proof`.
//!
//! Invariant: returns Ok or Err, never panics.
//!
//! Body: `proofmesh_zkml::fuzz::proof_bytes` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::proof_bytes(data));
