//! Fuzzes `proofmesh_receipt::Receipt::from_json` on arbitrary bytes, then
//! `Receipt::verify(None)`.
//!
//! Invariant: neither panics; a receipt that parses survives a JSON round trip unchanged with the
//! same verdict, and one that verifies also verifies with its coordinator key pinned.
//!
//! Body: `proofmesh_fuzzing::receipt_json` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::receipt_json(data));
