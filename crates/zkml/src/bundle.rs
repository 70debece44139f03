//! The proof bundle the network carries, proving into one and verifying one.
//!
//! The bundle itself is plain data defined in `proofmesh_receipt::zk::bundle`
//! (so the protocol crate can carry it without arkworks) and re-exported
//! here; this module does the Groth16 parts.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, Proof};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use ark_std::rand::{CryptoRng, RngCore};
use base64::Engine as _;

use crate::circuit::{public_inputs, InferenceCircuit};
use crate::keys::{ProvingKey, VerifyingKey};
use crate::model::{Output, QuantModel};
use crate::ZkError;

pub use proofmesh_receipt::zk::bundle::{
    parse_hex32, BundleError, ProofBundle, BUNDLE_VERSION, MAX_BUNDLE_JSON, PROOF_BYTES,
};

fn bad(field: &'static str, reason: impl Into<String>) -> ZkError {
    ZkError::BadBundle {
        field,
        reason: reason.into(),
    }
}

impl From<BundleError> for ZkError {
    fn from(e: BundleError) -> ZkError {
        ZkError::BadBundle {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// Parses compressed proof bytes with curve and subgroup checks. Safe on
/// untrusted bytes.
pub fn decode_proof(bytes: &[u8]) -> Result<Proof<Bn254>, ZkError> {
    if bytes.len() != PROOF_BYTES {
        return Err(bad(
            "proof",
            format!("{} bytes, expected {PROOF_BYTES}", bytes.len()),
        ));
    }
    Proof::<Bn254>::deserialize_with_mode(bytes, Compress::Yes, Validate::Yes)
        .map_err(|e| bad("proof", e.to_string()))
}

/// Runs `model` on `input` and proves the result for job `nonce`.
pub fn prove<R: RngCore + CryptoRng>(
    pk: &ProvingKey,
    model: &QuantModel,
    input: &[i8],
    nonce: &[u8; 32],
    rng: &mut R,
) -> Result<ProofBundle, ZkError> {
    let digest = model.digest();
    if pk.model_digest != digest {
        return Err(ZkError::DigestMismatch {
            what: "model (proving key)",
            expected: hex::encode(pk.model_digest),
            got: hex::encode(digest),
        });
    }
    let out = model.evaluate(input)?;
    let circuit = InferenceCircuit {
        model,
        input: input.to_vec(),
        claimed: out.clone(),
        nonce: *nonce,
    };
    let proof = Groth16::<Bn254>::prove(&pk.pk, circuit, rng)?;
    let mut bytes = Vec::with_capacity(PROOF_BYTES);
    proof
        .serialize_compressed(&mut bytes)
        .map_err(|e| bad("proof", e.to_string()))?;
    Ok(ProofBundle {
        version: BUNDLE_VERSION,
        model_digest: hex::encode(digest),
        vk_digest: pk.verifying_key().digest_hex(),
        input: input.to_vec(),
        logits: out.logits,
        class: out.class,
        nonce: hex::encode(nonce),
        proof: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// Checks a bundle against a verifying key: version, model and VK digests,
/// widths, then the Groth16 equation over (input, logits, class, nonce).
pub fn verify_bundle(vk: &VerifyingKey, bundle: &ProofBundle) -> Result<(), ZkError> {
    if bundle.version != BUNDLE_VERSION {
        return Err(bad("version", format!("{} unsupported", bundle.version)));
    }
    let check = |what: &'static str, expected: &[u8; 32], got: &str| {
        if hex::encode(expected) != got {
            return Err(ZkError::DigestMismatch {
                what,
                expected: hex::encode(expected),
                got: got.to_string(),
            });
        }
        Ok(())
    };
    check("model", &vk.model_digest, &bundle.model_digest)?;
    check("verifying key", &vk.digest(), &bundle.vk_digest)?;
    if bundle.input.len() != vk.input_len as usize || bundle.logits.len() != vk.output_len as usize
    {
        return Err(bad("input/logits", "length does not match the model"));
    }
    let nonce = bundle.nonce_bytes()?;
    let proof = decode_proof(&bundle.proof_bytes()?)?;
    let out = Output {
        logits: bundle.logits.clone(),
        class: bundle.class,
    };
    let inputs: Vec<Fr> = public_inputs(&bundle.input, &out, &nonce);
    let ok = Groth16::<Bn254>::verify_with_processed_vk(&vk.pvk, &inputs, &proof)?;
    if ok {
        Ok(())
    } else {
        Err(ZkError::VerificationFailed)
    }
}
