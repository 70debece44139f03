//! Proved inference in the coordinator (issue 9): the registry of
//! zero-knowledge models it accepts proofs for, the checks on what proving
//! providers advertise, and the public endpoints that let anyone fetch a
//! model's verifying key and check proofs offline.
//!
//! - [`ZkModels`]: loaded at start from `zk_models` (name + VK file). The VK
//!   file commits to the model digest, so the registry entry (name → model
//!   digest → VK digest) follows from the file itself.
//! - `infer`: `POST /v1/zk/infer`, the job driver, and the consequences of a
//!   proof that fails (treated like a failed audit).
//! - `GET /v1/zk/models` and `GET /v1/zk/models/{name}/vk`.

pub mod check;
pub mod infer;

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use proofmesh_wire::ZkModelAdvert;
use proofmesh_zkml::{RegistryEntry, VerifyingKey};

use crate::config::ZkModelConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Why the zk registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZkConfigError {
    /// The verifying key file could not be read.
    #[error("zk model {name}: reading {path}: {source}")]
    Read {
        /// Registry name.
        name: String,
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a verifying key.
    #[error("zk model {name}: {path} is not a verifying key: {source}")]
    Decode {
        /// Registry name.
        name: String,
        /// The file.
        path: String,
        /// Cause.
        source: proofmesh_zkml::ZkError,
    },
    /// Two names share a model.
    #[error("zk models {a} and {b} have the same model digest {digest}")]
    Duplicate {
        /// First name.
        a: String,
        /// Second name.
        b: String,
        /// The shared digest.
        digest: String,
    },
}

/// A registered model: its entry, its verifying key and the key file.
#[derive(Debug)]
pub struct ZkModel {
    /// Name, digests, widths.
    pub entry: RegistryEntry,
    /// The key proofs are checked under.
    pub vk: VerifyingKey,
    /// The key file as published.
    pub vk_bytes: Vec<u8>,
}

impl ZkModel {
    /// A model from its registry name and verifying key file.
    pub fn from_vk(name: &str, vk_bytes: Vec<u8>) -> Result<ZkModel, proofmesh_zkml::ZkError> {
        let vk = VerifyingKey::from_bytes(&vk_bytes)?;
        let entry = RegistryEntry {
            name: name.to_string(),
            model_digest: hex::encode(vk.model_digest),
            vk_digest: vk.digest_hex(),
            input_len: vk.input_len,
            output_len: vk.output_len,
        };
        Ok(ZkModel {
            entry,
            vk,
            vk_bytes,
        })
    }

    /// The model digest as receipts name it (`sha256:<hex>`).
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.entry.model_digest)
    }
}

/// The models this coordinator accepts proofs for.
#[derive(Debug, Default)]
pub struct ZkModels {
    models: Vec<ZkModel>,
}

impl ZkModels {
    /// Loads every configured verifying key.
    pub fn load(configs: &[ZkModelConfig]) -> Result<ZkModels, ZkConfigError> {
        let mut models: Vec<ZkModel> = Vec::new();
        for c in configs {
            let path = c.vk.display().to_string();
            let bytes = std::fs::read(&c.vk).map_err(|source| ZkConfigError::Read {
                name: c.name.clone(),
                path: path.clone(),
                source,
            })?;
            let m = ZkModel::from_vk(&c.name, bytes).map_err(|source| ZkConfigError::Decode {
                name: c.name.clone(),
                path,
                source,
            })?;
            if let Some(other) = models
                .iter()
                .find(|o| o.entry.model_digest == m.entry.model_digest)
            {
                return Err(ZkConfigError::Duplicate {
                    a: other.entry.name.clone(),
                    b: c.name.clone(),
                    digest: m.entry.model_digest.clone(),
                });
            }
            models.push(m);
        }
        Ok(ZkModels { models })
    }

    /// Loads from a path list (for tools and tests).
    pub fn from_files(files: &[(&str, &Path)]) -> Result<ZkModels, ZkConfigError> {
        let cfgs: Vec<ZkModelConfig> = files
            .iter()
            .map(|(n, p)| ZkModelConfig {
                name: (*n).to_string(),
                vk: p.to_path_buf(),
            })
            .collect();
        Self::load(&cfgs)
    }

    /// All registered models.
    pub fn all(&self) -> &[ZkModel] {
        &self.models
    }

    /// The model a request names: registry name (case-insensitive), or model
    /// digest as `sha256:<hex>` or bare hex.
    pub fn resolve(&self, query: &str) -> Option<&ZkModel> {
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        self.models
            .iter()
            .find(|m| m.entry.model_digest == hex || m.entry.name.eq_ignore_ascii_case(query))
    }

    /// The model with this digest (`sha256:<hex>`).
    pub fn by_digest(&self, digest: &str) -> Option<&ZkModel> {
        let hex = digest.strip_prefix("sha256:")?;
        self.models.iter().find(|m| m.entry.model_digest == hex)
    }

    /// Checks a provider's advert against the registry; a named reason if
    /// the model is not registered here or the provider's key is not the
    /// registered one (its proofs would not verify).
    pub fn check_advert(&self, a: &ZkModelAdvert) -> Result<(), String> {
        let Some(m) = self.by_digest(a.model_digest.as_str()) else {
            return Err(format!(
                "zk model {:?} ({}) is not registered with this coordinator",
                a.name, a.model_digest
            ));
        };
        let e = &m.entry;
        if a.vk_digest != e.vk_digest {
            return Err(format!(
                "zk model {:?}: proving key is for verifying key {}, the registered one is {}",
                a.name, a.vk_digest, e.vk_digest
            ));
        }
        if (a.input_len, a.output_len) != (e.input_len, e.output_len) {
            return Err(format!(
                "zk model {:?}: widths {}x{} do not match the registered {}x{}",
                a.name, a.input_len, a.output_len, e.input_len, e.output_len
            ));
        }
        if a.price.output_per_mtok_micros != 0 {
            return Err(format!(
                "zk model {:?}: the output rate must be 0 (a proof is priced per inference)",
                a.name
            ));
        }
        Ok(())
    }
}

/// `GET /v1/zk/models`: every registered model with its digests, widths
/// and how many live providers prove it (public: what a verifier needs).
pub async fn models(State(app): State<AppState>) -> Json<serde_json::Value> {
    let live = app.fleet.registry().live();
    let data: Vec<serde_json::Value> = app
        .zk
        .all()
        .iter()
        .map(|m| {
            let digest = m.digest();
            let providers = live
                .iter()
                .filter(|p| {
                    p.zk_models
                        .iter()
                        .any(|z| z.model_digest.as_str() == digest)
                })
                .count();
            serde_json::json!({
                "name": m.entry.name,
                "object": "zk.model",
                "model_digest": digest,
                "vk_digest": m.entry.vk_digest,
                "input_len": m.entry.input_len,
                "output_len": m.entry.output_len,
                "providers": providers,
                "vk_url": format!("/v1/zk/models/{}/vk", m.entry.name),
            })
        })
        .collect();
    Json(serde_json::json!({"object": "list", "data": data}))
}

/// `GET /v1/zk/models/{name}/vk`: the verifying key file, byte for byte
/// (its SHA-256 is the registry's `vk_digest`).
pub async fn verifying_key(
    State(app): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    let m = app
        .zk
        .resolve(&name)
        .ok_or_else(|| ApiError::model_not_found(&name))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        m.vk_bytes.clone(),
    )
        .into_response())
}
