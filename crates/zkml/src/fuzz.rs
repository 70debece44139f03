//! Fuzz bodies for every parser of untrusted bytes in this crate, for the
//! workspace's fuzzing harnesses to wire up. Each must never panic.

use crate::bundle::{decode_proof, ProofBundle};
use crate::keys::VerifyingKey;
use crate::model::QuantModel;
use crate::quantize::FloatModel;
use crate::registry::Registry;

/// Compressed Groth16 proof bytes.
pub fn proof_bytes(data: &[u8]) {
    let _ = decode_proof(data);
}

/// A verifying key file.
pub fn vk_bytes(data: &[u8]) {
    if let Ok(vk) = VerifyingKey::from_bytes(data) {
        // The canonical re-encoding (what the digest covers) must parse back
        // to the same key. (The input itself need not be canonical: e.g. an
        // infinity flag ignores the coordinate bits.)
        let again = VerifyingKey::from_bytes(&vk.to_bytes()).expect("canonical VK re-parses");
        assert_eq!(again.digest(), vk.digest());
    }
}

/// A quantized model file; a parsed model must evaluate without panicking.
pub fn model_file(data: &[u8]) {
    if let Ok(m) = QuantModel::from_safetensors(data) {
        let _ = m.evaluate(&vec![1; m.input_len()]);
        let _ = m.digest();
    }
}

/// A float model file (import).
pub fn float_model_file(data: &[u8]) {
    let _ = FloatModel::from_safetensors(data);
}

/// A proof bundle JSON, down to its proof and nonce fields.
pub fn bundle_json(data: &[u8]) {
    if let Ok(b) = ProofBundle::from_json(data) {
        let _ = b.nonce_bytes();
        if let Ok(p) = b.proof_bytes() {
            let _ = decode_proof(&p);
        }
    }
}

/// A registry JSON.
pub fn registry_json(data: &[u8]) {
    let _ = serde_json::from_slice::<Registry>(data);
}

/// A fuzz body.
pub type Target = fn(&[u8]);

/// Every target by name (`&[(&str, fn(&[u8]))]`).
pub const TARGETS: &[(&str, Target)] = &[
    ("zk_proof_bytes", proof_bytes),
    ("zk_vk_bytes", vk_bytes),
    ("zk_model_file", model_file),
    ("zk_float_model_file", float_model_file),
    ("zk_bundle_json", bundle_json),
    ("zk_registry_json", registry_json),
];
