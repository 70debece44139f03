//! Fuzzes the attestation parser behind `proofmesh_attest::fuzz::intel_quote`
//! (untrusted evidence a provider sends at registration).
//!
//! Invariant: never panics. Body shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_attest::fuzz::intel_quote(data));
