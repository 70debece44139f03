//! Fuzzes GGUF model files: `proofmesh_engine::Engine::load` on arbitrary bytes written to a temp
//! file (the engine has no public reader/bytes-level GGUF entry point).
//!
//! Invariant: returns (Err for anything but a well-formed llama GGUF), never panics, never
//! allocates without bound: run with `-rss_limit_mb=2048` (the default) and e.g.
//! `-malloc_limit_mb=1024`.
//!
//! Body: `proofmesh_fuzzing::gguf_load` (shared with the stable smoke test in
//! crates/fuzzing/tests/smoke.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| proofmesh_fuzzing::gguf_load(data));
