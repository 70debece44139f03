//! Zero-knowledge proofs of inference for small int8 classifiers.
//!
//! A provider proves `output = model(input)` for a committed model and a job
//! nonce; anyone holding the model's verifying key checks the proof in a few
//! milliseconds, trusting neither the provider nor the coordinator.
//!
//! - **Models** ([`model`]): int8 dense layers with fused requantization and
//!   ReLU, and an argmax; the fixed-point rule is in [`fixed`] and is the same
//!   in the evaluator and in the circuit. Float models import from
//!   safetensors and are quantized by [`quantize`].
//! - **Proving system**: Groth16 over BN254 (arkworks). The weights are
//!   constants of the circuit, so each model has its own keys; the model
//!   digest (SHA-256 of [`QuantModel::canonical_bytes`]) maps to the VK
//!   digest in a [`registry::Registry`]. Public inputs: input, logits, class,
//!   nonce ([`circuit`]).
//! - **Who runs what**: [`setup`] is run by the model registrant / network
//!   operator with a CSPRNG, who publishes the keys and drops the toxic
//!   waste; providers only [`prove`]; anyone can [`verify_bundle`]. See
//!   `docs/ZK.md` for the trust argument and what a multi-party ceremony
//!   would add.
//!
//! ```no_run
//! # fn main() -> Result<(), proofmesh_zkml::ZkError> {
//! use proofmesh_zkml::{digits_model, prove, setup, verify_bundle};
//! let model = digits_model()?;
//! let mut rng = proofmesh_zkml::OsRng;
//! let (pk, vk) = setup(&model, &mut rng)?; // operator, once per model
//! let bundle = prove(&pk, &model, &[0; 64], &[7; 32], &mut rng)?; // provider
//! verify_bundle(&vk, &bundle)?; // anyone
//! # Ok(()) }
//! ```

pub mod bench;
pub mod bundle;
pub mod circuit;
pub mod digits;
pub mod fixed;
pub mod fuzz;
pub mod gadgets;
pub mod keys;
pub mod model;
pub mod quantize;
pub mod registry;

pub use bundle::{prove, verify_bundle, ProofBundle, BUNDLE_VERSION};
pub use keys::{setup, ProvingKey, VerifyingKey};
pub use model::{ModelError, Output, QuantModel};
/// The OS CSPRNG to pass to [`setup`] and [`prove`] outside tests.
pub use rand_core::OsRng;
pub use registry::{Registry, RegistryEntry};

/// The committed digits MLP (64-32-10), as safetensors bytes.
pub const DIGITS_MLP: &[u8] = include_bytes!("../models/digits-mlp.safetensors");

/// Loads the committed digits MLP.
pub fn digits_model() -> Result<QuantModel, ZkError> {
    Ok(QuantModel::from_safetensors(DIGITS_MLP)?)
}

/// Errors of proving and verifying.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The model is malformed or the input does not fit it.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Bytes that do not decode (key file, proof).
    #[error("{what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A malformed bundle field.
    #[error("bundle field {field}: {reason}")]
    BadBundle {
        /// The field.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// A commitment that does not match.
    #[error("{what} digest mismatch: expected {expected}, got {got}")]
    DigestMismatch {
        /// Which digest.
        what: &'static str,
        /// The committed value.
        expected: String,
        /// The presented value.
        got: String,
    },
    /// The constraint system could not be built or proved.
    #[error("synthesis: {0}")]
    Synthesis(#[from] ark_relations::gr1cs::SynthesisError),
    /// The proof does not verify for these public inputs.
    #[error("proof does not verify")]
    VerificationFailed,
}
