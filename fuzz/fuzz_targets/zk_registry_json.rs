//! Fuzzes a zk model registry JSON.
//!
//! Invariant: returns Ok or Err, never panics.
//!
//! Body: `proofmesh_zkml::fuzz::registry_json` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::registry_json(data));
