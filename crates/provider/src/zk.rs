//! Proved inference on the provider (issue 9): the models this agent can
//! prove, their adverts, and running one job into a proof bundle and a
//! provider-signed receipt that names the proof.
//!
//! The provider holds only the proving key, which is public; it never runs
//! the setup (`docs/ZK.md`, "Who runs what"). Proving is synchronous and
//! CPU-bound (tens of milliseconds for the digits MLP): called on a blocking
//! thread.

use std::path::Path;

use proofmesh_receipt::zk::{zk_logits_digest, zk_response_digest, zk_sampling, ZkRef};
use proofmesh_receipt::{charge_micros, Digest, Identity, Price, PublicKey, Receipt, ReceiptBody};
use proofmesh_wire::{PriceRate, ZkJobResult, ZkJobSpec, ZkModelAdvert};
use proofmesh_zkml::{ProofBundle, ProvingKey, QuantModel};

/// Why a prover could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZkProverError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The model or key does not decode, or they do not belong together.
    #[error("{what}: {source}")]
    Zk {
        /// Which file.
        what: String,
        /// Cause.
        source: proofmesh_zkml::ZkError,
    },
    /// The advertised price is not a per-inference price.
    #[error("zk price: {0}")]
    Price(String),
}

/// A model this provider can run and prove, with its proving key.
#[derive(Debug, Clone)]
pub struct ZkProver {
    /// Registry name to advertise.
    pub name: String,
    /// The quantized model.
    pub model: QuantModel,
    /// Its proving key (made by the operator's setup).
    pub pk: ProvingKey,
    /// Price; `input_per_mtok_micros` is per 1M proved inferences.
    pub price: PriceRate,
    vk_digest: String,
}

impl ZkProver {
    /// Loads a prover: the model (safetensors; `None` = the committed digits
    /// MLP) and the proving key file, which must have been made for it.
    pub fn load(
        name: &str,
        model: Option<&Path>,
        pk: &Path,
        price: PriceRate,
    ) -> Result<ZkProver, ZkProverError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| ZkProverError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let zk = |what: &Path| {
            let what = what.display().to_string();
            move |source| ZkProverError::Zk { what, source }
        };
        let m = match model {
            Some(p) => QuantModel::from_safetensors(&read(p)?)
                .map_err(proofmesh_zkml::ZkError::from)
                .map_err(zk(p))?,
            None => proofmesh_zkml::builtin_model(name).map_err(zk(Path::new(name)))?,
        };
        let key = ProvingKey::from_bytes(&read(pk)?).map_err(zk(pk))?;
        ZkProver::new(name, m, key, price)
    }

    /// A prover from loaded parts, checking the key was made for the model.
    pub fn new(
        name: &str,
        model: QuantModel,
        pk: ProvingKey,
        price: PriceRate,
    ) -> Result<ZkProver, ZkProverError> {
        if pk.model_digest != model.digest() {
            return Err(ZkProverError::Zk {
                what: "proving key".into(),
                source: proofmesh_zkml::ZkError::DigestMismatch {
                    what: "model (proving key)",
                    expected: hex::encode(pk.model_digest),
                    got: model.digest_hex(),
                },
            });
        }
        if price.output_per_mtok_micros != 0 {
            return Err(ZkProverError::Price(
                "a proved inference has no output tokens: the output rate must be 0".into(),
            ));
        }
        let vk_digest = pk.verifying_key().digest_hex();
        Ok(ZkProver {
            name: name.to_string(),
            model,
            pk,
            price,
            vk_digest,
        })
    }

    /// The model digest as receipts name it.
    pub fn model_digest(&self) -> Digest {
        // A hex SHA-256 always forms a valid digest.
        Digest::from_hex(&self.model.digest_hex()).unwrap_or_else(|_| Digest::of(b""))
    }

    /// What the hello advertises.
    pub fn advert(&self) -> ZkModelAdvert {
        ZkModelAdvert {
            name: self.name.clone(),
            model_digest: self.model_digest(),
            vk_digest: self.vk_digest.clone(),
            input_len: self.model.input_len() as u32,
            output_len: self.model.output_len() as u32,
            price: self.price.clone(),
        }
    }
}

/// The receipt body a provider signs for a proved inference (field meanings
/// in `proofmesh_receipt::zk`).
pub fn zk_receipt_body(
    spec: &ZkJobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    bundle: &ProofBundle,
    finished_at_ms: u64,
) -> Result<ReceiptBody, proofmesh_zkml::ZkError> {
    let proof_digest = Digest::from_hex(&hex::encode(bundle.proof_digest()?)).map_err(|e| {
        proofmesh_zkml::ZkError::BadBundle {
            field: "proof",
            reason: e,
        }
    })?;
    let p = &spec.price;
    Ok(ReceiptBody {
        version: proofmesh_receipt::receipt::RECEIPT_VERSION,
        receipt_id: spec.receipt_id.clone(),
        job_id: spec.job_id.clone(),
        client: spec.client.clone(),
        provider_key: provider.clone(),
        coordinator_key: coordinator.clone(),
        model: spec.model.clone(),
        request_digest: spec.request_digest(),
        response_digest: zk_response_digest(&bundle.logits, bundle.class),
        prompt_tokens: 1,
        completion_tokens: 0,
        finish_reason: "stop".into(),
        sampling: zk_sampling(),
        logits_digest: zk_logits_digest(&bundle.logits),
        dispatched_at_ms: spec.dispatched_at_ms,
        finished_at_ms: finished_at_ms.max(spec.dispatched_at_ms),
        price: Price {
            currency: p.currency.clone(),
            input_per_mtok_micros: p.input_per_mtok_micros,
            output_per_mtok_micros: p.output_per_mtok_micros,
            charged_micros: charge_micros(1, 0, p.input_per_mtok_micros, p.output_per_mtok_micros),
        },
        attestation: spec.attestation.clone(),
        zk: Some(ZkRef {
            vk_digest: bundle.vk_digest.clone(),
            proof_digest,
        }),
    })
}

/// Runs and proves `spec` with the matching prover, then signs the receipt.
/// Errors are a stable code (`model_not_loaded`, `invalid_request`,
/// `prover_error`) and a message.
pub fn execute_zk_job(
    provers: &[std::sync::Arc<ZkProver>],
    identity: &Identity,
    coordinator: &PublicKey,
    spec: &ZkJobSpec,
) -> Result<ZkJobResult, (&'static str, String)> {
    let Some(p) = provers.iter().find(|p| p.model_digest() == spec.model) else {
        return Err((
            "model_not_loaded",
            format!("zk model {} is not loaded here", spec.model),
        ));
    };
    if spec.input.len() != p.model.input_len() {
        return Err((
            "invalid_request",
            format!(
                "input has {} values; the model takes {}",
                spec.input.len(),
                p.model.input_len()
            ),
        ));
    }
    let mut rng = proofmesh_zkml::OsRng;
    let bundle = proofmesh_zkml::prove(&p.pk, &p.model, &spec.input, &spec.nonce(), &mut rng)
        .map_err(|e| ("prover_error", e.to_string()))?;
    let body = zk_receipt_body(
        spec,
        identity.public(),
        coordinator,
        &bundle,
        proofmesh_ambient::clock::now_ms(),
    )
    .map_err(|e| ("prover_error", e.to_string()))?;
    Ok(ZkJobResult {
        receipt: Receipt::sign_as_provider(body, identity),
        bundle,
    })
}
