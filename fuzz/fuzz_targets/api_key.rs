//! Fuzzes `proofmesh_store::parse_api_key` on arbitrary UTF-8.
//!
//! Invariant: never panics; an accepted key is exactly `pm_<16 hex>_<64 hex>` and its parts
//! reassemble it.
//!
//! Body: `proofmesh_fuzzing::api_key` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::api_key(data));
