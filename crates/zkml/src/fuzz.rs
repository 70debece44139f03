//! Fuzz bodies for every parser of untrusted bytes in this crate, and their
//! seed corpus, for the workspace's fuzzing harnesses (`crates/fuzzing`,
//! `fuzz/`) to wire up. Each body must never panic.

use std::sync::OnceLock;

use ark_std::rand::{rngs::StdRng, SeedableRng};

use crate::bundle::{decode_proof, ProofBundle};
use crate::fixed::Requant;
use crate::keys::VerifyingKey;
use crate::layer::{Conv2d, Op, Pool2d};
use crate::model::Layer;
use crate::model::QuantModel;
use crate::quantize::{FloatLayer, FloatModel};
use crate::registry::{Registry, RegistryEntry};
use crate::{prove, setup, DIGITS_CNN, DIGITS_MLP};

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

/// A real key, proof and registry for a tiny 4-2 model (made once, from a
/// fixed seed: the corpus is the same on every run).
struct TinyProof {
    vk: Vec<u8>,
    proof: Vec<u8>,
    bundle: Vec<u8>,
    registry: Vec<u8>,
}

fn tiny() -> Option<&'static TinyProof> {
    static TINY: OnceLock<Option<TinyProof>> = OnceLock::new();
    TINY.get_or_init(|| {
        let requant = Requant {
            multiplier: 3,
            shift: 2,
            relu: false,
        };
        let model = QuantModel {
            layers: vec![Layer::dense(
                4,
                2,
                vec![1, -2, 3, -4, 5, 6, -7, 8],
                vec![10, -10],
                requant,
            )],
        };
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let (pk, vk) = setup(&model, &mut rng).ok()?;
        let b = prove(&pk, &model, &[1, 2, 3, 4], &[9; 32], &mut rng).ok()?;
        let mut reg = Registry::default();
        reg.insert(RegistryEntry::new("tiny", &model, &vk).ok()?);
        Some(TinyProof {
            vk: vk.to_bytes(),
            proof: b.proof_bytes().ok()?,
            bundle: b.to_json().into_bytes(),
            registry: serde_json::to_vec(&reg).ok()?,
        })
    })
    .as_ref()
}

/// A float conv → pool → dense model and a float dense model, as files.
fn float_files() -> Vec<Vec<u8>> {
    let cnn = FloatModel {
        layers: vec![
            FloatLayer {
                op: Op::Conv2d(Conv2d {
                    in_c: 1,
                    in_h: 4,
                    in_w: 4,
                    out_c: 2,
                    kernel: 3,
                    stride: 1,
                    padding: 1,
                }),
                weight: (0..18).map(|i| i as f32 / 18.0).collect(),
                bias: vec![0.5, -0.5],
                relu: true,
            },
            FloatLayer {
                op: Op::AvgPool2d(Pool2d {
                    channels: 2,
                    in_h: 4,
                    in_w: 4,
                    kernel: 2,
                    stride: 2,
                }),
                weight: vec![],
                bias: vec![],
                relu: true,
            },
            FloatLayer::dense(8, 2, vec![0.25; 16], vec![0.0; 2], false),
        ],
    };
    let mlp = FloatModel {
        layers: vec![FloatLayer::dense(
            2,
            2,
            vec![1.0, -1.0, 0.5, 2.0],
            vec![0.0, 1.0],
            false,
        )],
    };
    [cnn, mlp]
        .iter()
        .filter_map(|m| m.to_safetensors().ok())
        .collect()
}

/// Valid inputs for each target in [`TARGETS`] (empty for an unknown name).
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let t = tiny();
    let pick = |f: fn(&TinyProof) -> &Vec<u8>| t.map(|t| vec![f(t).clone()]).unwrap_or_default();
    match name {
        "zk_proof_bytes" => pick(|t| &t.proof),
        "zk_vk_bytes" => pick(|t| &t.vk),
        "zk_model_file" => vec![DIGITS_MLP.to_vec(), DIGITS_CNN.to_vec()],
        "zk_float_model_file" => float_files(),
        "zk_bundle_json" => pick(|t| &t.bundle),
        "zk_registry_json" => pick(|t| &t.registry),
        _ => Vec::new(),
    }
}
