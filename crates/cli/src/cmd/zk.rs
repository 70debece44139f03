//! `proofmesh zk`: zero-knowledge proofs of inference for small models —
//! verify a proof bundle offline against the model commitment, and the
//! registrant's and provider's steps (train, setup, prove) for the digits
//! worked model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_zkml::train::TrainConfig;
use proofmesh_zkml::{
    digits, OsRng, ProofBundle, ProvingKey, QuantModel, Registry, RegistryEntry, VerifyingKey,
};

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify a proof bundle offline: the VK file's digest and the model it
    /// was made for must match the bundle, then the Groth16 proof.
    Verify {
        /// Proof bundle JSON.
        bundle: PathBuf,
        /// Verifying key file of the model.
        #[arg(long)]
        vk: PathBuf,
        /// Quantized model file: its digest must be the bundle's (optional).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Registry JSON: the bundle's model must be registered with this VK (optional).
        #[arg(long)]
        registry: Option<PathBuf>,
        /// The receipt JSON of the proved inference: its signatures, and that
        /// it names this proof, this input and the job's nonce (optional).
        #[arg(long)]
        receipt: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Ask the network for a proved inference (`POST /v1/zk/infer`), then
    /// check the answer offline: the proof under the model's verifying key,
    /// the receipt's signatures, and that the receipt names this proof.
    Infer {
        /// Registry name of the model.
        #[arg(long, default_value = "digits-mlp")]
        model: String,
        /// Comma-separated int8 input (default: a sample 8x8 image of a 0).
        #[arg(long, allow_hyphen_values = true)]
        input: Option<String>,
        /// Verifying key file to pin (default: the one the coordinator
        /// publishes at /v1/zk/models/{name}/vk).
        #[arg(long)]
        vk: Option<PathBuf>,
        /// Where to write the proof bundle.
        #[arg(long)]
        save_bundle: Option<PathBuf>,
        /// Where to write the receipt.
        #[arg(long)]
        save_receipt: Option<PathBuf>,
        /// How to reach the API.
        #[command(flatten)]
        api: crate::clientcfg::ApiArgs,
    },
    /// Train a digits model (the 64-32-10 MLP or the CNN) deterministically
    /// and write the int8 model.
    Train {
        /// The digits CSV (see `cargo xtask fetch-digits`).
        #[arg(long, env = "PROOFMESH_DIGITS")]
        data: PathBuf,
        /// Architecture: `mlp` (digits-mlp) or `cnn` (digits-cnn).
        #[arg(long, default_value = "mlp")]
        arch: String,
        /// Output model file (safetensors).
        #[arg(long)]
        out: PathBuf,
    },
    /// Groth16 setup for a model (model registrant / network operator only:
    /// whoever runs it could forge proofs for the model).
    Setup {
        /// Quantized model file (default: the committed model named --name).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Where to write the proving key.
        #[arg(long)]
        pk: PathBuf,
        /// Where to write the verifying key.
        #[arg(long)]
        vk: PathBuf,
        /// Registry JSON to add the model to (created if absent).
        #[arg(long)]
        registry: Option<PathBuf>,
        /// Registry name of the model.
        #[arg(long, default_value = "digits-mlp")]
        name: String,
    },
    /// Run the model on an input and prove it for a job nonce.
    Prove {
        /// Quantized model file (default: the committed model named --name).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Committed model to prove when --model is absent.
        #[arg(long, default_value = "digits-mlp")]
        name: String,
        /// Proving key file.
        #[arg(long)]
        pk: PathBuf,
        /// Comma-separated int8 input values.
        #[arg(long, allow_hyphen_values = true)]
        input: String,
        /// Job nonce, 64 hex digits.
        #[arg(long)]
        nonce: String,
        /// Where to write the bundle JSON (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// The model file at `p`, or the committed model called `name`.
fn load_model(p: Option<&Path>, name: &str) -> anyhow::Result<QuantModel> {
    Ok(match p {
        Some(p) => QuantModel::from_safetensors(&read(p)?)?,
        None => proofmesh_zkml::builtin_model(name)?,
    })
}

/// Runs a subcommand.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Infer {
            model,
            input,
            vk,
            save_bundle,
            save_receipt,
            api,
        } => {
            let input = match input {
                Some(s) => parse_input(&s)?,
                None => proofmesh_zkml::digits::SAMPLE_ZERO.to_vec(),
            };
            let saves = (save_bundle, save_receipt);
            crate::cmd::zk_infer::run(&model, input, vk.as_deref(), saves, api).await
        }
        other => tokio::task::spawn_blocking(move || run_blocking(other)).await?,
    }
}

/// Comma-separated int8 values.
fn parse_input(s: &str) -> anyhow::Result<Vec<i8>> {
    s.split(',')
        .map(|v| v.trim().parse::<i8>())
        .collect::<Result<_, _>>()
        .context("--input must be comma-separated int8 values")
}

/// One committed model's local keys.
#[derive(Debug)]
pub struct LocalKeys {
    /// Registry name (`digits-mlp`, `digits-cnn`).
    pub name: &'static str,
    /// Proving key file.
    pub pk: PathBuf,
    /// Verifying key file.
    pub vk: PathBuf,
}

/// The operator's keys for every committed model in `dir` (`{name}.pk`,
/// `{name}.vk`): made once with the OS CSPRNG by whoever runs the network
/// (`proofmesh up`), reused while they still match the committed model.
pub fn ensure_local_keys(dir: &Path) -> anyhow::Result<Vec<LocalKeys>> {
    let mut out = Vec::new();
    for (name, _) in proofmesh_zkml::BUILTIN_MODELS {
        let (pk, vk) = (
            dir.join(format!("{name}.pk")),
            dir.join(format!("{name}.vk")),
        );
        let model = proofmesh_zkml::builtin_model(name)?;
        let current = std::fs::read(&vk)
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .is_some_and(|k| k.model_digest == model.digest() && pk.exists());
        if !current {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let (p, v) = proofmesh_zkml::setup(&model, &mut OsRng)?;
            std::fs::write(&pk, p.to_bytes())?;
            std::fs::write(&vk, v.to_bytes())?;
            tracing::info!(model = %model.digest_hex(), vk = %v.digest_hex(), name, "zk setup done");
        }
        out.push(LocalKeys { name, pk, vk });
    }
    Ok(out)
}

fn run_blocking(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Verify {
            bundle,
            vk,
            model,
            registry,
            receipt,
            json,
        } => {
            let extra = Extra {
                model,
                registry,
                receipt,
            };
            verify(&bundle, &vk, &extra, json)
        }
        Command::Infer { .. } => anyhow::bail!("zk infer runs on the async runtime"),
        Command::Train { data, arch, out } => {
            let cfg = match arch.as_str() {
                "mlp" => TrainConfig::mlp(),
                "cnn" => TrainConfig::cnn(),
                other => anyhow::bail!("--arch must be mlp or cnn, not {other:?}"),
            };
            let r = digits::train_digits_with(&digits::load(&data)?, &cfg)?;
            std::fs::write(&out, r.quant_model.to_safetensors()?)?;
            println!(
                "float accuracy {:.4}, int8 accuracy {:.4} ({} held out); model digest {}",
                r.float_accuracy,
                r.quant_accuracy,
                r.test_len,
                r.quant_model.digest_hex()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup {
            model,
            pk,
            vk,
            registry,
            name,
        } => {
            let m = load_model(model.as_deref(), &name)?;
            let (p, v) = proofmesh_zkml::setup(&m, &mut OsRng)?;
            std::fs::write(&pk, p.to_bytes())?;
            std::fs::write(&vk, v.to_bytes())?;
            if let Some(path) = registry {
                let mut reg: Registry = match std::fs::read(&path) {
                    Ok(b) => serde_json::from_slice(&b)?,
                    Err(_) => Registry::default(),
                };
                reg.insert(RegistryEntry::new(&name, &m, &v)?);
                std::fs::write(&path, serde_json::to_string_pretty(&reg)?)?;
            }
            println!("model {} vk {}", m.digest_hex(), v.digest_hex());
            Ok(ExitCode::SUCCESS)
        }
        Command::Prove {
            model,
            name,
            pk,
            input,
            nonce,
            out,
        } => {
            let m = load_model(model.as_deref(), &name)?;
            let pk = ProvingKey::from_bytes(&read(&pk)?)?;
            let x = parse_input(&input)?;
            let nonce = proofmesh_zkml::bundle::parse_hex32(&nonce)
                .context("--nonce must be 64 hex digits")?;
            let b = proofmesh_zkml::prove(&pk, &m, &x, &nonce, &mut OsRng)?;
            match out {
                Some(p) => std::fs::write(p, b.to_json())?,
                None => println!("{}", b.to_json()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `zk verify` may check besides the proof.
struct Extra {
    model: Option<PathBuf>,
    registry: Option<PathBuf>,
    receipt: Option<PathBuf>,
}

fn verify(bundle: &Path, vk: &Path, extra: &Extra, json: bool) -> anyhow::Result<ExitCode> {
    let b = ProofBundle::from_json(&read(bundle)?)?;
    let vk = VerifyingKey::from_bytes(&read(vk)?)?;
    let mut result = proofmesh_zkml::verify_bundle(&vk, &b).map_err(|e| e.to_string());
    if let (Ok(()), Some(p)) = (&result, &extra.model) {
        let m = QuantModel::from_safetensors(&read(p)?)?;
        if m.digest_hex() != b.model_digest {
            result = Err(proofmesh_zkml::ZkError::DigestMismatch {
                what: "model (file)",
                expected: m.digest_hex(),
                got: b.model_digest.clone(),
            }
            .to_string());
        }
    }
    if let (Ok(()), Some(p)) = (&result, &extra.registry) {
        let reg: Registry = serde_json::from_slice(&read(p)?).context("parsing the registry")?;
        result = reg.check(&vk, &b).map_err(|e| e.to_string());
    }
    if let (Ok(()), Some(p)) = (&result, &extra.receipt) {
        let r = proofmesh_receipt::Receipt::from_json(&read(p)?)?;
        result = receipt_binding(&r, &b);
    }
    let proof_sha256 = b.proof_digest().map(hex::encode).unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "ok": result.is_ok(),
            "error": result.as_ref().err(),
            "model_digest": b.model_digest,
            "vk_digest": b.vk_digest,
            "class": b.class,
            "logits": b.logits,
            "proof_sha256": proof_sha256,
        });
        println!("{v}");
    } else {
        match &result {
            Ok(()) => println!(
                "OK: class {} proved for model {} (vk {}, proof sha256 {proof_sha256})",
                b.class, b.model_digest, b.vk_digest
            ),
            Err(e) => println!("FAILED: {e}"),
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A receipt backs a bundle: both signatures, and the signed body names this
/// proof, its input, its output and the job's nonce.
pub fn receipt_binding(r: &proofmesh_receipt::Receipt, b: &ProofBundle) -> Result<(), String> {
    r.verify(None).map_err(|e| format!("receipt: {e}"))?;
    proofmesh_wire::bundle_matches_receipt(&r.body, b).map_err(|e| format!("receipt: {e}"))
}
