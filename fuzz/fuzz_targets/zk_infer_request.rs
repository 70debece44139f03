//! Fuzzes the proved-inference request body: `serde_json::from_slice::<ZkInferRequest>` then
//! `proofmesh_coordinator::zk::infer::parse_input(&req.input, 64)`.
//!
//! Invariant: returns Ok or Err, never panics; an accepted input has exactly 64 int8 values equal
//! to the request's.
//!
//! Body: `proofmesh_fuzzing::zk_infer_request` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::zk_infer_request(data));
