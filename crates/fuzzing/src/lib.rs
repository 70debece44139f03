//! Fuzz target bodies for every parser of untrusted bytes in proofmesh.
//!
//! House rule: every parser of untrusted bytes has a fuzz target. The bodies
//! live here, once, and run in two harnesses:
//!
//! * the libFuzzer binaries in `fuzz/` (`cargo +nightly fuzz run <target>`),
//!   one thin `fuzz_target!` per body;
//! * this crate's `tests/smoke.rs`, which runs every body over a few thousand
//!   mutated seed inputs on stable Rust as part of `cargo test`.
//!
//! Each body takes arbitrary bytes and returns normally; a panic (including a
//! failed invariant `assert!`) is a finding. [`TARGETS`] lists them by the
//! name the fuzz binary uses, and [`seeds`] builds a small valid corpus.

use std::io::Write;

use proofmesh_coordinator::validate::{self, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES};
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_engine::{Engine, EngineOptions};
use proofmesh_receipt::{Digest, PublicKey, Receipt, Signature};
use proofmesh_wire::openai::ChatCompletionRequest;
use proofmesh_wire::{CoordinatorMsg, ProviderMsg};

pub mod seeds;

/// A fuzz target body: arbitrary bytes in, returns normally or panics.
pub type Body = fn(&[u8]);

/// Every target, by fuzz binary name.
pub const TARGETS: &[(&str, Body)] = &[
    ("receipt_json", receipt_json),
    ("public_key", public_key),
    ("signature", signature),
    ("digest", digest),
    ("provider_msg", provider_msg),
    ("coordinator_msg", coordinator_msg),
    ("chat_request", chat_request),
    ("zk_infer_request", zk_infer_request),
    // zkML files, keys, proofs and bundles (bodies in proofmesh_zkml::fuzz).
    ("zk_proof_bytes", proofmesh_zkml::fuzz::proof_bytes),
    ("zk_vk_bytes", proofmesh_zkml::fuzz::vk_bytes),
    ("zk_model_file", proofmesh_zkml::fuzz::model_file),
    (
        "zk_float_model_file",
        proofmesh_zkml::fuzz::float_model_file,
    ),
    ("zk_bundle_json", proofmesh_zkml::fuzz::bundle_json),
    ("zk_registry_json", proofmesh_zkml::fuzz::registry_json),
    ("api_key", api_key),
    ("gguf_load", gguf_load),
    // Attestation evidence (bodies in proofmesh_attest::fuzz).
    ("attest_intel_quote", proofmesh_attest::fuzz::intel_quote),
    (
        "attest_intel_collateral",
        proofmesh_attest::fuzz::intel_collateral,
    ),
    ("attest_snp_report", proofmesh_attest::fuzz::snp_report),
    (
        "attest_nvidia_evidence",
        proofmesh_attest::fuzz::nvidia_evidence,
    ),
    ("attest_nvidia_json", proofmesh_attest::fuzz::nvidia_json),
    ("attest_bundle_json", proofmesh_attest::fuzz::bundle_json),
    (
        "attest_cert_chain_pem",
        proofmesh_attest::fuzz::cert_chain_pem,
    ),
];

/// `Receipt::from_json`, then `verify(None)`: neither may panic. A receipt
/// that parses re-serializes to JSON that parses back to the same receipt
/// with the same verification outcome, and one that verifies also verifies
/// with its own coordinator key pinned.
pub fn receipt_json(data: &[u8]) {
    let Ok(receipt) = Receipt::from_json(data) else {
        return;
    };
    let verdict = receipt.verify(None);
    let json = receipt.to_json_pretty();
    let again = Receipt::from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("re-serialized receipt does not parse: {e}\n{json}"));
    assert_eq!(
        again, receipt,
        "receipt JSON round trip changed the receipt"
    );
    assert_eq!(
        again.verify(None),
        verdict,
        "round trip changed the verdict"
    );
    if verdict.is_ok() {
        let pinned = receipt.verify(Some(&receipt.body.coordinator_key));
        assert!(
            pinned.is_ok(),
            "verifies unpinned but not pinned: {pinned:?}"
        );
    }
}

/// `PublicKey::parse`: never panics; an accepted key prints as its input and
/// parses again to an equal key.
pub fn public_key(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = PublicKey::parse(s) else {
        return;
    };
    assert_eq!(key.as_str(), s);
    assert_eq!(key.to_string(), s);
    let again = PublicKey::parse(key.as_str()).expect("an accepted key reparses");
    assert_eq!(again, key);
    assert_eq!(again.to_bytes(), key.to_bytes());
}

/// `Signature::parse`: never panics; an accepted signature is 128 lowercase
/// hex digits and prints back as its input.
pub fn signature(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sig) = Signature::parse(s) else {
        return;
    };
    assert_eq!(
        String::from(sig),
        s,
        "signature does not print as its input"
    );
}

/// `Digest::try_from(String)`: never panics; an accepted digest is its input.
pub fn digest(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(d) = Digest::try_from(s.to_string()) else {
        return;
    };
    assert_eq!(d.as_str(), s);
    assert_eq!(s.len(), "sha256:".len() + 64);
}

/// Provider → coordinator protocol frames: `serde_json::from_slice::<ProviderMsg>`
/// never panics, and an accepted frame serializes again.
pub fn provider_msg(data: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<ProviderMsg>(data) {
        serde_json::to_vec(&msg).expect("an accepted ProviderMsg serializes");
    }
}

/// Coordinator → provider protocol frames: `serde_json::from_slice::<CoordinatorMsg>`
/// never panics, and an accepted frame serializes again.
pub fn coordinator_msg(data: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<CoordinatorMsg>(data) {
        serde_json::to_vec(&msg).expect("an accepted CoordinatorMsg serializes");
    }
}

/// A proved-inference request body: `serde_json::from_slice::<ZkInferRequest>`
/// then the coordinator's input check against a 64-wide model. Neither may
/// panic, and an accepted input has exactly 64 values, each the request's.
pub fn zk_infer_request(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<proofmesh_wire::ZkInferRequest>(data) else {
        return;
    };
    if let Ok(input) = proofmesh_coordinator::zk::infer::parse_input(&req.input, 64) {
        assert_eq!(input.len(), 64, "accepted an input of the wrong width");
        for (a, b) in input.iter().zip(&req.input) {
            assert_eq!(i64::from(*a), *b, "an input value changed");
        }
    }
}

/// A gateway request body: `serde_json::from_slice::<ChatCompletionRequest>`
/// then `validate::plan` with the default config. Neither may panic, and a
/// plan that comes out respects every documented limit.
pub fn chat_request(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<ChatCompletionRequest>(data) else {
        return;
    };
    let cfg = CoordinatorConfig::default();
    let Ok(plan) = validate::plan(&cfg, req) else {
        return;
    };
    assert!(!plan.model.is_empty(), "empty model accepted");
    assert!(
        (1..=MAX_MESSAGES).contains(&plan.messages.len()),
        "{} messages accepted",
        plan.messages.len()
    );
    for m in &plan.messages {
        assert!(
            matches!(m.role.as_str(), "system" | "user" | "assistant"),
            "role {:?} accepted",
            m.role
        );
    }
    let s = &plan.sampling;
    assert!(
        s.temperature_milli <= 2000,
        "temperature {}",
        s.temperature_milli
    );
    assert!(
        (1..=1000).contains(&s.top_p_milli),
        "top_p {}",
        s.top_p_milli
    );
    assert!(
        (1..=cfg.max_tokens_limit).contains(&s.max_tokens),
        "max_tokens {}",
        s.max_tokens
    );
    assert!(s.stop.len() <= MAX_STOP, "{} stop strings", s.stop.len());
    for stop in &s.stop {
        assert!(
            !stop.is_empty() && stop.len() <= MAX_STOP_BYTES,
            "stop {stop:?} accepted"
        );
    }
    assert!(s.top_k_logits <= 64, "top_k_logits {}", s.top_k_logits);
}

/// `proofmesh_store::parse_api_key`: never panics; an accepted key is exactly
/// `pm_<16 hex>_<64 hex>` and its parts reassemble it.
pub fn api_key(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Some(parts) = proofmesh_store::parse_api_key(s) else {
        return;
    };
    assert_eq!(parts.key_id.len(), 16);
    assert_eq!(parts.secret.len(), 64);
    assert_eq!(format!("pm_{}_{}", parts.key_id, parts.secret), s);
}

/// A GGUF model file: `Engine::load` on the bytes written to a temp file must
/// return (normally `Err`) and never panic. Unbounded allocation shows up as
/// an out-of-memory abort under libFuzzer's `-rss_limit_mb`/`-malloc_limit_mb`.
///
/// The engine exposes no lower-level GGUF entry point taking a reader or
/// bytes (its `gguf` module is private and opens a path), so this goes
/// through the public loader, which is also the path a hostile model file
/// takes in production.
pub fn gguf_load(data: &[u8]) {
    let mut file = tempfile::Builder::new()
        .prefix("proofmesh-fuzz-")
        .suffix(".gguf")
        .tempfile()
        .expect("create temp file");
    file.write_all(data).expect("write temp file");
    file.flush().expect("flush temp file");
    let _ = Engine::load(file.path(), EngineOptions::default());
}
