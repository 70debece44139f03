//! The model registry: which verifying key belongs to which model. The
//! network operator publishes one entry per model after running the setup;
//! a verifier looks up the bundle's model digest and insists on the VK
//! digest recorded there, so a provider cannot bring its own keys.

use std::collections::BTreeMap;

use crate::keys::VerifyingKey;
use crate::model::QuantModel;
use crate::{ProofBundle, ZkError};

/// One registered model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// Human name, e.g. `digits-mlp`.
    pub name: String,
    /// Hex SHA-256 of the model's canonical encoding.
    pub model_digest: String,
    /// Hex SHA-256 of the verifying key file.
    pub vk_digest: String,
    /// Input width.
    pub input_len: u32,
    /// Output width.
    pub output_len: u32,
}

impl RegistryEntry {
    /// The entry for `model` and its verifying key, checking they belong together.
    pub fn new(name: &str, model: &QuantModel, vk: &VerifyingKey) -> Result<Self, ZkError> {
        if vk.model_digest != model.digest() {
            return Err(ZkError::DigestMismatch {
                what: "model (verifying key)",
                expected: hex::encode(vk.model_digest),
                got: model.digest_hex(),
            });
        }
        Ok(RegistryEntry {
            name: name.to_string(),
            model_digest: model.digest_hex(),
            vk_digest: vk.digest_hex(),
            input_len: vk.input_len,
            output_len: vk.output_len,
        })
    }
}

/// Model digest → entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Registry {
    /// Entries keyed by hex model digest.
    pub entries: BTreeMap<String, RegistryEntry>,
}

impl Registry {
    /// Adds or replaces an entry.
    pub fn insert(&mut self, e: RegistryEntry) {
        self.entries.insert(e.model_digest.clone(), e);
    }

    /// The entry for a hex model digest.
    pub fn get(&self, model_digest: &str) -> Option<&RegistryEntry> {
        self.entries.get(model_digest)
    }

    /// Checks that the bundle names a registered model and that model's VK
    /// digest (and that `vk` is that key). Proof verification is separate:
    /// [`crate::verify_bundle`].
    pub fn check(&self, vk: &VerifyingKey, bundle: &ProofBundle) -> Result<(), ZkError> {
        let e = self
            .get(&bundle.model_digest)
            .ok_or_else(|| ZkError::BadBundle {
                field: "model_digest",
                reason: "model not registered".into(),
            })?;
        for (what, got) in [
            ("verifying key (bundle)", &bundle.vk_digest),
            ("verifying key (file)", &vk.digest_hex()),
        ] {
            if &e.vk_digest != got {
                return Err(ZkError::DigestMismatch {
                    what,
                    expected: e.vk_digest.clone(),
                    got: got.clone(),
                });
            }
        }
        Ok(())
    }
}
