//! Fuzzes the gateway request body: `serde_json::from_slice::<ChatCompletionRequest>` then
//! `proofmesh_coordinator::validate::plan(&CoordinatorConfig::default(), req)`.
//!
//! Invariant: returns Ok or Err, never panics; an accepted plan respects every limit (1..=256
//! messages with known roles, temperature <= 2, top_p in (0, 1], 1..=max_tokens_limit tokens, <= 4
//! non-empty stop strings of <= 64 bytes, top_k_logits <= 64).
//!
//! Body: `proofmesh_fuzzing::chat_request` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::chat_request(data));
