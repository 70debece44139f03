//! Fuzzes a zk verifying key file: `proofmesh_zkml::VerifyingKey::from_bytes`.
//!
//! Invariant: never panics; a parsed key re-encodes to bytes that parse to the same digest.
//!
//! Body: `proofmesh_zkml::fuzz::vk_bytes` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::vk_bytes(data));
