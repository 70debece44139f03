//! Zero-knowledge proofs of inference for small int8 classifiers.
//!
//! A provider proves `output = model(input)` for a committed model and a job
//! nonce; anyone holding the model's verifying key checks the proof in a few
//! milliseconds, trusting neither the provider nor the coordinator.
//!
//! - **Models** ([`model`]): int8 dense, conv2d and avgpool2d layers
//!   ([`layer`]) with fused requantization and ReLU, and an argmax; the
//!   fixed-point rule is in [`fixed`] and is the same in the evaluator and in
//!   the circuit. Float models import from safetensors and are quantized by
//!   [`quantize`].
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

pub mod bundle;
pub mod circuit;
pub mod digits;
pub mod fixed;
pub mod fuzz;
pub mod gadgets;
pub mod keys;
pub mod layer;
pub mod model;
mod model_file;
pub mod quantize;
pub mod registry;
pub mod train;

pub use bundle::{prove, verify_bundle, ProofBundle, BUNDLE_VERSION};
pub use keys::{setup, ProvingKey, VerifyingKey};
pub use model::{Layer, ModelError, Output, QuantModel};
/// The OS CSPRNG to pass to [`setup`] and [`prove`] outside tests.
pub use rand_core::OsRng;
pub use registry::{Registry, RegistryEntry};

/// The committed digits MLP (64-32-10), as safetensors bytes.
pub const DIGITS_MLP: &[u8] = include_bytes!("../models/digits-mlp.safetensors");
/// The committed digits CNN (conv 3×3×8 → avgpool 2×2 → dense 72-10), as
/// safetensors bytes.
pub const DIGITS_CNN: &[u8] = include_bytes!("../models/digits-cnn.safetensors");
/// The committed worked models by registry name.
pub const BUILTIN_MODELS: &[(&str, &[u8])] =
    &[("digits-mlp", DIGITS_MLP), ("digits-cnn", DIGITS_CNN)];

/// Loads the committed digits MLP.
pub fn digits_model() -> Result<QuantModel, ZkError> {
    Ok(QuantModel::from_safetensors(DIGITS_MLP)?)
}

/// Loads the committed digits CNN.
pub fn digits_cnn() -> Result<QuantModel, ZkError> {
    Ok(QuantModel::from_safetensors(DIGITS_CNN)?)
}

/// Loads a committed worked model by name (`digits-mlp`, `digits-cnn`).
pub fn builtin_model(name: &str) -> Result<QuantModel, ZkError> {
    let (_, bytes) = BUILTIN_MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| ZkError::Decode {
            what: "model name",
            reason: format!(
                "{name:?} is not a built-in model (known: {})",
                BUILTIN_MODELS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    Ok(QuantModel::from_safetensors(bytes)?)
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
