//! Soundness on real Groth16 proofs for the committed digits MLP (and CNN): the honest
//! bundle verifies; a changed output, input or nonce, another model's key and
//! a flipped proof byte each fail. Keys come from a seeded setup (tests only).

use ark_std::rand::{rngs::StdRng, SeedableRng};
use base64::Engine as _;
use proofmesh_zkml::digits::SAMPLE_ZERO;
use proofmesh_zkml::{
    digits_cnn, digits_model, prove, setup, verify_bundle, ProofBundle, Registry, RegistryEntry,
    VerifyingKey, ZkError,
};

fn fails(vk: &VerifyingKey, b: &ProofBundle) -> ZkError {
    verify_bundle(vk, b).expect_err("tampered bundle verified")
}

#[test]
fn proofs_bind_model_input_output_and_nonce() {
    let mut rng = StdRng::seed_from_u64(9);
    let model = digits_model().unwrap();
    let (pk, vk) = setup(&model, &mut rng).unwrap();
    let nonce = [0xA5; 32];
    let b = prove(&pk, &model, &SAMPLE_ZERO, &nonce, &mut rng).unwrap();
    assert_eq!(b.class, 0, "the sample is a zero");
    assert_eq!(b.proof_bytes().unwrap().len(), 128);
    verify_bundle(&vk, &b).unwrap();
    // JSON round trip.
    let b2 = ProofBundle::from_json(b.to_json().as_bytes()).unwrap();
    verify_bundle(&vk, &b2).unwrap();

    let mut t = b.clone();
    t.logits[3] = t.logits[3].wrapping_add(1);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    t.class = 6;
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    t.input[10] = t.input[10].wrapping_add(1);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    t.nonce = hex::encode([0xA6; 32]);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    let mut n = nonce;
    n[31] ^= 1;
    t.nonce = hex::encode(n);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));

    // Every flipped proof byte (a sample of bit positions) is rejected.
    let raw = b.proof_bytes().unwrap();
    for i in (0..raw.len()).step_by(7) {
        let mut bad = raw.clone();
        bad[i] ^= 1 << (i % 8);
        let mut t = b.clone();
        t.proof = base64::engine::general_purpose::STANDARD.encode(&bad);
        fails(&vk, &t);
    }

    // Another model (one weight changed) has its own keys: the bundle names
    // the wrong model and VK for it, and even with the digests rewritten
    // the proof does not verify under that key.
    let mut other = model.clone();
    other.layers[0].weights[100] = other.layers[0].weights[100].wrapping_add(1);
    let (_, vk2) = setup(&other, &mut rng).unwrap();
    assert!(matches!(fails(&vk2, &b), ZkError::DigestMismatch { .. }));
    let mut t = b.clone();
    t.model_digest = other.digest_hex();
    t.vk_digest = vk2.digest_hex();
    assert!(matches!(fails(&vk2, &t), ZkError::VerificationFailed));
    // Same model, another setup: different VK digest, proof rejected.
    let (_, vk3) = setup(&model, &mut rng).unwrap();
    let mut t = b.clone();
    t.vk_digest = vk3.digest_hex();
    assert!(matches!(fails(&vk3, &t), ZkError::VerificationFailed));

    // Keys round trip through their files; the registry pins the VK.
    let vk_rt = VerifyingKey::from_bytes(&vk.to_bytes()).unwrap();
    assert_eq!(pk.verifying_key().digest(), vk.digest());
    assert_eq!(vk_rt.digest(), vk.digest());
    verify_bundle(&vk_rt, &b).unwrap();
    let pk_rt = proofmesh_zkml::ProvingKey::from_bytes(&pk.to_bytes()).unwrap();
    let b3 = prove(&pk_rt, &model, &SAMPLE_ZERO, &[1; 32], &mut rng).unwrap();
    verify_bundle(&vk, &b3).unwrap();
    let mut reg = Registry::default();
    reg.insert(RegistryEntry::new("digits-mlp", &model, &vk).unwrap());
    reg.check(&vk, &b).unwrap();
    assert!(reg.check(&vk3, &b).is_err());
    assert!(RegistryEntry::new("x", &other, &vk).is_err());
}

#[test]
fn key_and_proof_parsers_reject_garbage() {
    for f in proofmesh_zkml::fuzz::TARGETS {
        for data in [&b""[..], b"PMZKVK1\0", &[0xff; 200], br#"{"version":1}"#] {
            (f.1)(data);
        }
    }
    assert!(VerifyingKey::from_bytes(&[0; 100]).is_err());
    assert!(proofmesh_zkml::bundle::decode_proof(&[0xff; 128]).is_err());
}

#[test]
fn cnn_proofs_bind_output_input_weights_and_nonce() {
    let mut rng = StdRng::seed_from_u64(11);
    let model = digits_cnn().unwrap();
    let (pk, vk) = setup(&model, &mut rng).unwrap();
    let nonce = [0x3C; 32];
    let b = prove(&pk, &model, &SAMPLE_ZERO, &nonce, &mut rng).unwrap();
    assert_eq!(b.class, 0, "the sample is a zero");
    assert_eq!(b.logits, model.evaluate(&SAMPLE_ZERO).unwrap().logits);
    verify_bundle(&vk, &b).unwrap();
    let mut t = b.clone();
    t.logits[0] = t.logits[0].wrapping_sub(1);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    t.input[27] = t.input[27].wrapping_add(1);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    let mut t = b.clone();
    t.nonce = hex::encode([0x3D; 32]);
    assert!(matches!(fails(&vk, &t), ZkError::VerificationFailed));
    // A changed convolution weight is another model with other keys.
    let mut other = model.clone();
    other.layers[0].weights[4] = other.layers[0].weights[4].wrapping_add(1);
    let (_, vk2) = setup(&other, &mut rng).unwrap();
    let mut t = b.clone();
    t.model_digest = other.digest_hex();
    t.vk_digest = vk2.digest_hex();
    assert!(matches!(fails(&vk2, &t), ZkError::VerificationFailed));
    // The MLP's key never accepts a CNN proof.
    let (_, mlp_vk) = setup(&digits_model().unwrap(), &mut rng).unwrap();
    assert!(verify_bundle(&mlp_vk, &b).is_err());
}
