//! Fuzzes provider -> coordinator WebSocket frames:
//! `serde_json::from_slice::<proofmesh_wire::ProviderMsg>`.
//!
//! Invariant: never panics; an accepted frame serializes again.
//!
//! Body: `proofmesh_fuzzing::provider_msg` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::provider_msg(data));
