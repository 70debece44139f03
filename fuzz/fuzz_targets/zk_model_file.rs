//! Fuzzes a quantized zk model file (safetensors): `QuantModel::from_safetensors`.
//!
//! Invariant: never panics; a parsed model evaluates and digests without panicking.
//!
//! Body: `proofmesh_zkml::fuzz::model_file` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::model_file(data));
