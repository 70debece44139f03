//! Proved inference through the whole network (issue 9): a real provider
//! agent proves the committed digits MLP (and CNN) for `POST /v1/zk/infer`; the client
//! gets the output, a proof that verifies offline under the published
//! verifying key, and a countersigned, logged receipt naming the proof. A
//! provider whose signed answer carries a failing proof is treated like a
//! failed audit. Bad requests and bad adverts get named errors.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use common::*;
use proofmesh_coordinator::config::ZkModelConfig;
use proofmesh_receipt::zk::zk_job_nonce;
use proofmesh_receipt::{Identity, Receipt};
use proofmesh_store::AuditStore;
use proofmesh_wire::{CoordinatorMsg, PriceRate, ProviderMsg, ZkJobResult, ZkJobSpec};
use proofmesh_zkml::{ProofBundle, ProvingKey, QuantModel, VerifyingKey};
use rand::SeedableRng;
use serde_json::{json, Value};

/// The digits model and keys from one seeded setup (a test-only setup: a
/// seeded setup's keys must never be registered for real use).
struct Keys {
    model: QuantModel,
    pk: ProvingKey,
    vk: VerifyingKey,
    vk_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// A seeded setup of `model`, its VK written to a temp file.
fn seeded_keys(model: QuantModel, seed: u64) -> Keys {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (pk, vk) = proofmesh_zkml::setup(&model, &mut rng).expect("setup");
    let dir = tempfile::tempdir().expect("temp dir");
    let vk_file = dir.path().join("model.vk");
    std::fs::write(&vk_file, vk.to_bytes()).expect("write vk");
    Keys {
        model,
        pk,
        vk,
        vk_file,
        _dir: dir,
    }
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        seeded_keys(
            proofmesh_zkml::digits_model().expect("committed digits model"),
            20261202,
        )
    })
}

/// Per-inference price the test providers ask: 3 micro-USD.
fn zk_price() -> PriceRate {
    PriceRate {
        currency: "USD".into(),
        input_per_mtok_micros: 3_000_000,
        output_per_mtok_micros: 0,
    }
}

fn prover() -> Arc<proofmesh_provider::ZkProver> {
    let k = keys();
    let p =
        proofmesh_provider::ZkProver::new("digits-mlp", k.model.clone(), k.pk.clone(), zk_price())
            .expect("prover");
    Arc::new(p)
}

async fn zk_coordinator(
    adjust: impl FnOnce(&mut proofmesh_coordinator::CoordinatorConfig),
) -> Coordinator {
    let vk = keys().vk_file.clone();
    Coordinator::start_with(move |c| {
        c.zk_models = vec![ZkModelConfig {
            name: "digits-mlp".into(),
            vk,
        }];
        adjust(c);
    })
    .await
}

/// An 8x8 "image": a diagonal stroke.
fn image() -> Vec<i8> {
    (0..64)
        .map(|i| if i % 9 == 0 { 100 } else { -20 })
        .collect()
}

async fn infer(c: &Coordinator, key: &str, body: &Value) -> reqwest::Response {
    c.http
        .post(format!("{}/v1/zk/infer", c.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST /v1/zk/infer")
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("error JSON");
    (status, v["error"].clone())
}

#[tokio::test]
async fn proved_inference_end_to_end() {
    bounded(async {
        let c = zk_coordinator(|_| {}).await;
        let prov = TestProvider::start_zk(&c, Identity::generate(), vec![prover()]);
        c.wait_providers(1).await;
        let (key, client) = c.api_key_with_client().await;
        let before = usd(&c.get_json(Some(&key), "/v1/balance").await, "balances");

        let input = image();
        let r = infer(&c, &key, &json!({"model": "digits-mlp", "input": input})).await;
        assert_eq!(r.status(), 200);
        let rid = r.headers()["x-proofmesh-receipt-id"]
            .to_str()
            .unwrap()
            .to_string();
        let v: Value = r.json().await.unwrap();

        // The output is the model's, and the proof verifies offline under
        // the verifying key the coordinator publishes.
        let expected = keys().model.evaluate(&input).unwrap();
        assert_eq!(v["class"], expected.class);
        let bundle: ProofBundle = serde_json::from_value(v["proof"].clone()).unwrap();
        assert_eq!(bundle.logits, expected.logits);
        assert_eq!(bundle.input, input);
        let vk_bytes = c
            .http
            .get(format!("{}/v1/zk/models/digits-mlp/vk", c.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let published = VerifyingKey::from_bytes(&vk_bytes).unwrap();
        assert_eq!(published.digest_hex(), keys().vk.digest_hex());
        proofmesh_zkml::verify_bundle(&published, &bundle).unwrap();

        // The receipt: countersigned, for this provider, naming this proof,
        // bound to this job's nonce, charged one inference, in the log.
        let receipt: Receipt = serde_json::from_value(v["receipt"].clone()).unwrap();
        receipt.verify(Some(&c.coordinator_key().await)).unwrap();
        assert_eq!(receipt.body.receipt_id, rid);
        assert_eq!(&receipt.body.provider_key, prov.key());
        let zk = receipt.body.zk.as_ref().expect("zk reference");
        assert_eq!(
            zk.proof_digest.as_str(),
            format!("sha256:{}", hex::encode(bundle.proof_digest().unwrap()))
        );
        assert_eq!(zk.vk_digest, keys().vk.digest_hex());
        assert_eq!(
            bundle.nonce,
            hex::encode(zk_job_nonce(&receipt.body.job_id))
        );
        assert_eq!(receipt.body.price.charged_micros, 3);
        let info = c.info().await;
        let verifier = proofmesh_tlog::CheckpointVerifier::new(
            info["log_origin"].as_str().unwrap(),
            info["log_key"].as_str().unwrap(),
        )
        .unwrap();
        proofmesh_log::verify_receipt_inclusion(&receipt, &verifier).unwrap();

        // The owner reads it back; the money moved exactly once.
        let stored = c.get_receipt(&key, &rid).await;
        assert_eq!(stored.status(), 200);
        let stored: Receipt = stored.json().await.unwrap();
        assert_eq!(stored.body, receipt.body);
        let other = c.api_key().await;
        assert_eq!(c.get_receipt(&other, &rid).await.status(), 404);
        let after = usd(&c.get_json(Some(&key), "/v1/balance").await, "balances");
        assert_eq!(before - after, 3, "client {client} charged one inference");

        // Discovery lists the model, its key digest and the live prover.
        let models = c.get_json(None, "/v1/zk/models").await;
        let m = &models["data"][0];
        assert_eq!(m["name"], "digits-mlp");
        assert_eq!(m["providers"], 1);
        assert_eq!(m["vk_digest"], keys().vk.digest_hex());
        prov.kill().await;
        c.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_named_errors() {
    bounded(async {
        let c = zk_coordinator(|_| {}).await;
        let key = c.api_key().await;
        let ok_input: Vec<i64> = vec![0; 64];
        // No provider proves it yet: 503, and nothing is charged.
        let (s, e) =
            error_of(infer(&c, &key, &json!({"model": "digits-mlp", "input": ok_input})).await)
                .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (503, Some("no_provider_available"))
        );
        let cases = [
            (
                json!({"model": "nope", "input": ok_input}),
                404,
                "model_not_found",
            ),
            (
                json!({"model": "digits-mlp", "input": [1, 2, 3]}),
                400,
                "invalid_parameter",
            ),
            (
                json!({"model": "digits-mlp", "input": vec![200; 64]}),
                400,
                "invalid_parameter",
            ),
            (
                json!({"model": "digits-mlp", "input": ok_input, "min_attestation": "gold"}),
                400,
                "invalid_parameter",
            ),
            (
                json!({"model": "digits-mlp", "input": ok_input, "extra": 1}),
                400,
                "invalid_json",
            ),
        ];
        for (body, status, code) in cases {
            let (s, e) = error_of(infer(&c, &key, &body).await).await;
            assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{body}");
        }
        let (s, e) = error_of(
            infer(
                &c,
                &key,
                &json!({"model": "digits-mlp", "input": vec![200; 64]}),
            )
            .await,
        )
        .await;
        assert!(
            e["message"].as_str().unwrap().contains("input[0] = 200"),
            "{s} {e}"
        );
        let r = c
            .http
            .post(format!("{}/v1/zk/infer", c.base))
            .json(&json!({"model": "digits-mlp", "input": ok_input}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.0, 401);
        let (s, _) = error_of(
            c.http
                .get(format!("{}/v1/zk/models/nope/vk", c.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 404);
        c.stop().await;
    })
    .await;
}

/// A raw provider that advertises the digits model with `advert_vk` as its
/// key digest; returns the socket after the coordinator's answer to hello.
async fn raw_zk_provider(
    c: &Coordinator,
    identity: &Identity,
    adjust: impl FnOnce(&mut proofmesh_wire::ZkModelAdvert),
) -> (RawSocket, Result<CoordinatorMsg, WsEnd>) {
    let (mut ws, nonce, ck) = raw_connect(c).await;
    let mut h = hello(identity, &nonce, &ck, 1);
    if let ProviderMsg::Hello { zk_models, .. } = &mut h {
        let mut a = prover().advert();
        adjust(&mut a);
        zk_models.push(a);
    }
    send_msg(&mut ws, &h).await;
    let answer = next_coordinator_msg(&mut ws).await;
    (ws, answer)
}

#[tokio::test]
async fn adverts_for_unregistered_models_or_foreign_keys_are_refused() {
    bounded(async {
        let c = zk_coordinator(|_| {}).await;
        let id = Identity::generate();
        let (_ws, end) = raw_zk_provider(&c, &id, |a| {
            a.model_digest = proofmesh_receipt::Digest::of(b"another model");
        })
        .await;
        match end {
            Err(WsEnd::Closed(_, why)) => assert!(why.contains("not registered"), "{why}"),
            other => panic!("expected a close, got {other:?}"),
        }
        let (_ws, end) = raw_zk_provider(&c, &id, |a| a.vk_digest = "00".repeat(32)).await;
        match end {
            Err(WsEnd::Closed(_, why)) => assert!(why.contains("proving key is for"), "{why}"),
            other => panic!("expected a close, got {other:?}"),
        }
        let (_ws, end) = raw_zk_provider(&c, &id, |_| {}).await;
        assert!(matches!(end, Ok(CoordinatorMsg::Welcome { .. })), "{end:?}");
        c.stop().await;
    })
    .await;
}

/// Waits for the next zk job on a raw socket.
async fn next_zk_job(ws: &mut RawSocket) -> ZkJobSpec {
    loop {
        match next_coordinator_msg(ws).await {
            Ok(CoordinatorMsg::ZkJob(spec)) => return spec,
            Ok(_) => continue,
            Err(e) => panic!("socket ended waiting for a zk job: {e:?}"),
        }
    }
}

/// A cheating answer: a genuine proof, then the logits and class changed
/// to a made-up answer, and a receipt signed for that made-up answer.
fn forged(identity: &Identity, ck: &proofmesh_receipt::PublicKey, spec: &ZkJobSpec) -> ZkJobResult {
    let k = keys();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut bundle =
        proofmesh_zkml::prove(&k.pk, &k.model, &spec.input, &spec.nonce(), &mut rng).unwrap();
    bundle.class = (bundle.class + 1) % 10;
    bundle.logits[bundle.class as usize] = 127;
    let body = proofmesh_provider::zk_receipt_body(
        spec,
        identity.public(),
        ck,
        &bundle,
        spec.dispatched_at_ms + 1,
    )
    .unwrap();
    ZkJobResult {
        receipt: Receipt::sign_as_provider(body, identity),
        bundle,
    }
}

#[tokio::test]
async fn a_forged_proof_is_a_failed_audit() {
    bounded(async {
        keys();
        // The raw socket is not read while the test works, so it answers no
        // pings: a long silence limit keeps it connected.
        let c = zk_coordinator(|cfg| {
            cfg.max_failed_audits = 1;
            cfg.slash_micros = 500_000;
            cfg.provider_timeout_ms = 20_000;
        })
        .await;
        let cheat = Identity::generate();
        let (mut ws, welcome) = raw_zk_provider(&c, &cheat, |_| {}).await;
        assert!(matches!(welcome, Ok(CoordinatorMsg::Welcome { .. })));
        c.wait_providers(1).await;
        let (key, _) = c.api_key_with_client().await;
        let before = usd(&c.get_json(Some(&key), "/v1/balance").await, "balances");
        let body = json!({"model": "digits-mlp", "input": image()});
        let req = tokio::spawn({
            let (http, base, key, body) =
                (c.http.clone(), c.base.clone(), key.clone(), body.clone());
            async move {
                http.post(format!("{base}/v1/zk/infer"))
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        });
        let spec = next_zk_job(&mut ws).await;
        let ck = c.coordinator_key().await;
        let result = forged(&cheat, &ck, &spec);
        send_msg(
            &mut ws,
            &ProviderMsg::ZkDone {
                job_id: spec.job_id.clone(),
                result: Box::new(result),
            },
        )
        .await;
        // The only provider lied: no answer, nothing charged.
        let (s, e) = error_of(req.await.unwrap()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (502, Some("provider_failed")),
            "{e}"
        );
        let after = usd(&c.get_json(Some(&key), "/v1/balance").await, "balances");
        assert_eq!(before, after);
        assert_eq!(c.wait_job_settled(&spec.job_id).await.status, "failed");

        // Treated like a failed audit: counted, slashed, excluded, and the
        // signed evidence kept (the receipt verifies under the cheat's key;
        // the proof does not verify for what it signed).
        let stats = c
            .store
            .provider_stats(cheat.public().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stats.audits_failed, stats.slashed_micros, stats.excluded),
            (1, 500_000, true)
        );
        let failures = c
            .store
            .proof_failures(cheat.public().as_str())
            .await
            .unwrap();
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].reason.contains("does not verify"),
            "{}",
            failures[0].reason
        );
        let signed = Receipt::from_json(failures[0].receipt_json.as_bytes()).unwrap();
        signed.verify_provider_signature().unwrap();
        let kept = ProofBundle::from_json(failures[0].bundle_json.as_bytes()).unwrap();
        assert!(proofmesh_zkml::verify_bundle(&keys().vk, &kept).is_err());
        let earn = c
            .get_json(None, &format!("/v1/providers/{}/earnings", cheat.public()))
            .await;
        assert_eq!(usd(&earn, "stake"), 10_000_000 - 500_000, "{earn}");

        // An honest prover now serves; the excluded cheat gets nothing.
        let honest = TestProvider::start_zk(&c, Identity::generate(), vec![prover()]);
        c.wait_providers(2).await;
        let r = infer(&c, &key, &body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["class"], keys().model.evaluate(&image()).unwrap().class);
        assert_eq!(v["receipt"]["body"]["provider_key"], honest.key().as_str());
        honest.kill().await;
        c.stop().await;
    })
    .await;
}

/// The committed CNN and keys from a seeded setup (tests only).
fn cnn_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        seeded_keys(
            proofmesh_zkml::digits_cnn().expect("committed digits CNN"),
            20261203,
        )
    })
}

#[tokio::test]
async fn cnn_and_mlp_are_routed_to_their_provers() {
    bounded(async {
        let (mlp_vk, cnn_vk) = (keys().vk_file.clone(), cnn_keys().vk_file.clone());
        let c = Coordinator::start_with(move |c| {
            c.zk_models = vec![
                ZkModelConfig {
                    name: "digits-mlp".into(),
                    vk: mlp_vk,
                },
                ZkModelConfig {
                    name: "digits-cnn".into(),
                    vk: cnn_vk,
                },
            ];
        })
        .await;
        let k = cnn_keys();
        let cnn = proofmesh_provider::ZkProver::new(
            "digits-cnn",
            k.model.clone(),
            k.pk.clone(),
            zk_price(),
        )
        .expect("cnn prover");
        let mlp_prov = TestProvider::start_zk(&c, Identity::generate(), vec![prover()]);
        let cnn_prov = TestProvider::start_zk(&c, Identity::generate(), vec![Arc::new(cnn)]);
        c.wait_providers(2).await;
        let key = c.api_key().await;
        let input = image();
        for (name, keys, prov) in [
            ("digits-cnn", cnn_keys(), &cnn_prov),
            ("digits-mlp", keys(), &mlp_prov),
        ] {
            let r = infer(&c, &key, &json!({"model": name, "input": input})).await;
            assert_eq!(r.status(), 200, "{name}");
            let v: Value = r.json().await.unwrap();
            let expected = keys.model.evaluate(&input).unwrap();
            assert_eq!(v["class"], expected.class, "{name}");
            let bundle: ProofBundle = serde_json::from_value(v["proof"].clone()).unwrap();
            assert_eq!(bundle.logits, expected.logits, "{name}");
            assert_eq!(bundle.model_digest, keys.model.digest_hex(), "{name}");
            proofmesh_zkml::verify_bundle(&keys.vk, &bundle).unwrap();
            let receipt: Receipt = serde_json::from_value(v["receipt"].clone()).unwrap();
            assert_eq!(
                &receipt.body.provider_key,
                prov.key(),
                "{name} routed to its prover"
            );
            assert_eq!(
                receipt.body.zk.as_ref().unwrap().vk_digest,
                keys.vk.digest_hex()
            );
        }
        // The CNN's input width is checked like the MLP's.
        let (status, err) = error_of(
            infer(
                &c,
                &key,
                &json!({"model": "digits-cnn", "input": vec![0; 63]}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some("invalid_parameter"))
        );
    })
    .await;
}
