//! `proofmesh zk infer`: the client side of a proved inference. It asks the
//! network (`POST /v1/zk/infer`), and then trusts nothing it was told
//! without checking: the Groth16 proof under the model's verifying key (the
//! one the coordinator publishes, or a pinned file), the receipt's provider
//! signature and coordinator countersignature (pinned to the local
//! network's coordinator key when `client.json` names it), and that the
//! signed receipt names exactly this proof, input, output and job nonce.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_wire::ZkInferResponse;
use proofmesh_zkml::VerifyingKey;

use crate::clientcfg::{self, ApiArgs};

/// Runs one proved inference and checks it.
pub async fn run(
    model: &str,
    input: Vec<i8>,
    pinned_vk: Option<&Path>,
    saves: (Option<PathBuf>, Option<PathBuf>),
    api: ApiArgs,
) -> anyhow::Result<ExitCode> {
    let pinned_coordinator = clientcfg::load(&api.data_dir).map(|c| c.coordinator_key);
    let log = crate::cmd::log::resolve_verifier(None, &api.data_dir).transpose()?;
    let (base, key) = clientcfg::resolve(api.base_url, api.api_key, &api.data_dir)?;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/zk/infer"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": model, "input": input}))
        .send()
        .await
        .with_context(|| format!("POST {base}/zk/infer"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("reading the answer")?;
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        body["error"]["message"]
    );
    let answer: ZkInferResponse =
        serde_json::from_value(body).context("the answer is not a proved inference")?;
    let vk_bytes = match pinned_vk {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => http
            .get(format!("{base}/zk/models/{model}/vk"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .to_vec(),
    };
    let vk = VerifyingKey::from_bytes(&vk_bytes)?;
    let mut checks = check(&answer, &vk, pinned_coordinator.as_deref());
    checks.push(logged(&answer.receipt, log.as_ref()));
    if let Some(p) = &saves.0 {
        std::fs::write(p, answer.proof.to_json())?;
    }
    if let Some(p) = &saves.1 {
        std::fs::write(p, answer.receipt.to_json_pretty())?;
    }
    let mut ok = true;
    for (what, r) in &checks {
        match r {
            Ok(()) => println!("  ok    {what}"),
            Err(e) => {
                ok = false;
                println!("  FAIL  {what}: {e}");
            }
        }
    }
    let verdict = if ok { "proved" } else { "NOT PROVED" };
    println!(
        "class {} ({verdict}) by {}; receipt {}",
        answer.class, answer.receipt.body.provider_key, answer.receipt.body.receipt_id
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

type Check = (&'static str, Result<(), String>);

/// Every offline check of an answer, each with its outcome.
fn check(a: &ZkInferResponse, vk: &VerifyingKey, coordinator: Option<&str>) -> Vec<Check> {
    let r = &a.receipt;
    let zk_vk = r.body.zk.as_ref().map(|z| z.vk_digest.clone());
    let pinned = || match coordinator {
        None => Ok(()),
        Some(k) if k == r.body.coordinator_key.as_str() => Ok(()),
        Some(k) => Err(format!(
            "countersigned by {}, not the pinned {k}",
            r.body.coordinator_key
        )),
    };
    vec![
        (
            "proof verifies under the model's verifying key",
            proofmesh_zkml::verify_bundle(vk, &a.proof).map_err(|e| e.to_string()),
        ),
        (
            "receipt names that verifying key",
            if zk_vk.as_deref() == Some(vk.digest_hex().as_str()) {
                Ok(())
            } else {
                Err(format!("receipt names {zk_vk:?}"))
            },
        ),
        (
            "receipt signatures; it names this proof, input, output and nonce",
            crate::cmd::zk::receipt_binding(r, &a.proof),
        ),
        ("countersigned by the pinned coordinator", pinned()),
        (
            "answer's class and logits are the proved ones",
            if a.class == a.proof.class && a.logits == a.proof.logits {
                Ok(())
            } else {
                Err("the answer differs from the bundle".into())
            },
        ),
    ]
}

/// The receipt's inclusion proof against the log's signed checkpoint (the
/// log key from client.json), or just its presence without a key.
fn logged(
    r: &proofmesh_receipt::Receipt,
    log: Option<&proofmesh_tlog::CheckpointVerifier>,
) -> Check {
    let what = "receipt is in the transparency log";
    let outcome = match (&r.log, log) {
        (None, _) => Err("no inclusion proof attached (logged at the next start)".into()),
        (Some(_), Some(v)) => proofmesh_log::verify_receipt_inclusion(r, v)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (Some(_), None) => Ok(()),
    };
    (what, outcome)
}
