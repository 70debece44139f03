//! Fuzzes a float model file for quantization: `FloatModel::from_safetensors`.
//!
//! Invariant: returns Ok or Err, never panics.
//!
//! Body: `proofmesh_zkml::fuzz::float_model_file` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_zkml::fuzz::float_model_file(data));
