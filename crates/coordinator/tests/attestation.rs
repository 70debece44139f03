//! Hardware attestation through the running network, with real public
//! evidence (an AMD SEV-SNP Milan report with its VCEK, and NVIDIA H100 SPDM
//! evidence with its device certificate chain, from crates/attest/tests/data
//! and their SOURCES.md): a provider presenting it is admitted at `tee+gpu`
//! and shown so in `GET /v1/providers`; its receipts carry the level and the
//! evidence digest; clients can require attested providers per request or
//! per API key; tampered evidence and evidence not bound to the provider's
//! key and nonce are refused with the reason.
//!
//! The samples were made for someone else's key and nonce, so admitting
//! them needs the coordinator's named test seam (`attestation_test_seam`:
//! verify at a pinned time, expect the sample's report data and GPU nonce).
//! Everything else — parsing, signatures, chains, validity, policy — is the
//! production path, and the last test shows that without the seam the same
//! evidence is refused for not naming the provider's key.

mod common;

use common::*;
use proofmesh_attest::nvidia::GpuEvidence;
use proofmesh_attest::{
    verify_bundle, Collateral, EvidenceBundle, EvidenceKind, Revocation, VerifyOptions,
};
use proofmesh_coordinator::config::AttestTestSeam;
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_receipt::Identity;
use proofmesh_wire::ProviderMsg;

/// Inside both samples' validity (VCEK 2023-04-03 → 2030-04-03; GPU chain
/// to 9999).
const NOW_S: u64 = 1_750_000_000;

fn sample_bundle() -> EvidenceBundle {
    let mut b = EvidenceBundle::none();
    b.kind = EvidenceKind::Snp;
    b.evidence = proofmesh_attest::decode_hex_or_raw(include_bytes!(
        "../../attest/tests/data/sev/report_milan.hex"
    ));
    b.collateral = Some(Collateral::Snp {
        vcek: include_bytes!("../../attest/tests/data/sev/vcek_milan.der").to_vec(),
        ask_ark_pem: None,
    });
    b.gpus.push(GpuEvidence {
        arch: Some("HOPPER".into()),
        evidence: proofmesh_attest::decode_hex_or_raw(include_bytes!(
            "../../attest/tests/data/nvtrust/hopperAttestationReport.txt"
        )),
        cert_chain: String::from_utf8(
            include_bytes!("../../attest/tests/data/nvtrust/hopperCertChain.txt").to_vec(),
        )
        .unwrap(),
    });
    b
}

/// The seam: the samples' own report data and GPU nonce, at `NOW_S`.
fn seam(b: &EvidenceBundle) -> AttestTestSeam {
    let rev = Revocation::default();
    let v = verify_bundle(b, &VerifyOptions::production(NOW_S, &rev)).unwrap();
    AttestTestSeam {
        now_s: NOW_S,
        report_data: v.tee.unwrap().report_data,
        gpu_nonce: v.gpus[0].nonce,
    }
}

fn with_seam(b: &EvidenceBundle) -> impl FnOnce(&mut CoordinatorConfig) {
    let s = seam(b);
    move |c| c.attestation_test_seam = Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_provider_is_listed_and_its_receipts_carry_the_evidence() {
    bounded(async {
        let bundle = sample_bundle();
        let digest = hex::encode(bundle.evidence_digest());
        let c = Coordinator::start_with(with_seam(&bundle)).await;
        let id = Identity::generate();
        let p = TestProvider::start_attested(&c, id, bundle);
        let plain = TestProvider::start(&c);
        c.wait_providers(2).await;
        let key = p.key().to_string();
        let list = c.providers("").await;
        let row = list.iter().find(|r| r["id"] == key.as_str()).unwrap();
        assert_eq!(row["effective_attestation"], "tee_gpu");
        assert_eq!(row["attestation"]["level"], "tee+gpu");
        assert_eq!(row["attestation"]["evidence_digest"], digest.as_str());
        let expiry = row["attestation"]["not_after_s"].as_u64().unwrap();
        assert!(expiry > proofmesh_ambient::clock::now_s(), "{expiry}");
        let other = list.iter().find(|r| r["id"] != key.as_str()).unwrap();
        assert_eq!(other["effective_attestation"], "none");
        assert!(other["attestation"].is_null());
        // The trust filter of the listing.
        let attested = c.providers("?min_attestation=tee").await;
        assert_eq!(attested.len(), 1);
        assert_eq!(attested[0]["id"], key.as_str());

        // A request that requires attestation lands on it, and its receipt
        // (signed by the provider, countersigned) names the evidence.
        let api = c.api_key().await;
        let mut body = chat_body("attested please", 1, 4, false);
        body["min_attestation"] = "tee+gpu".into();
        let (json, rid) = complete(&c, &api, &body).await;
        assert_eq!(json["proofmesh"]["provider_key"], key.as_str());
        let r: proofmesh_receipt::Receipt = proofmesh_receipt::Receipt::from_json(
            &c.get_receipt(&api, &rid).await.bytes().await.unwrap(),
        )
        .unwrap();
        r.verify(None).unwrap();
        let a = r.body.attestation.clone().unwrap();
        assert_eq!(
            (a.level.as_str(), a.evidence_digest.as_str()),
            ("tee+gpu", digest.as_str())
        );
        // Tampering with the attestation claim breaks the provider's signature.
        let mut forged = r.clone();
        forged.body.attestation.as_mut().unwrap().level = "tee".into();
        assert!(forged.verify(None).is_err());

        // An API key whose policy requires tee+gpu is served by it too.
        let (k2, _) = c.api_key_with_client().await;
        let key_id = proofmesh_store::parse_api_key(&k2)
            .unwrap()
            .key_id
            .to_string();
        proofmesh_store::Store::set_key_min_attestation(&c.store, &key_id, Some("tee+gpu"))
            .await
            .unwrap();
        for _ in 0..3 {
            let (json, _) = complete(&c, &k2, &chat_body("policy", 2, 4, false)).await;
            assert_eq!(json["proofmesh"]["provider_key"], key.as_str());
        }
        // Bad levels are named.
        body["min_attestation"] = "gold".into();
        expect_error(c.chat(&api, &body).await, 400, "invalid_parameter").await;
        p.kill().await;
        plain.kill().await;
        c.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiring_attestation_with_no_attested_provider_is_a_clear_503() {
    bounded(async {
        let c = Coordinator::start().await;
        let p = TestProvider::start(&c);
        c.wait_providers(1).await;
        let api = c.api_key().await;
        let mut body = chat_body("need tee", 1, 4, false);
        body["min_attestation"] = "tee".into();
        let err = expect_error(c.chat(&api, &body).await, 503, "no_attested_provider").await;
        assert!(err["message"].as_str().unwrap().contains("tee"));
        // Without the requirement the same provider serves it.
        complete(&c, &api, &chat_body("need none", 1, 4, false)).await;
        p.kill().await;
        c.stop().await;
    })
    .await
}

/// Sends a hello with `bundle` and returns the close reason.
async fn rejected_hello(c: &Coordinator, bundle: EvidenceBundle) -> String {
    let (mut ws, nonce, coord_key) = raw_connect(c).await;
    let mut h = hello(&Identity::generate(), &nonce, &coord_key, 1);
    if let ProviderMsg::Hello { attestation, .. } = &mut h {
        *attestation = Some(Box::new(
            proofmesh_wire::EvidenceJson::encode(&bundle).unwrap(),
        ));
    }
    send_msg(&mut ws, &h).await;
    match next_coordinator_msg(&mut ws).await {
        Err(WsEnd::Closed(code, reason)) => {
            assert_eq!(code, 1008);
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_unbound_evidence_is_refused_with_the_reason() {
    bounded(async {
        let bundle = sample_bundle();
        let c = Coordinator::start_with(with_seam(&bundle)).await;
        // A flipped byte in the signed report.
        let mut bad = bundle.clone();
        bad.evidence[0x50] ^= 1;
        let why = rejected_hello(&c, bad).await;
        assert!(
            why.starts_with("attestation rejected: evidence does not verify"),
            "{why}"
        );
        // A flipped byte in the GPU's signed measurements.
        let mut bad = bundle.clone();
        let n = bad.gpus[0].evidence.len();
        bad.gpus[0].evidence[n - 200] ^= 1;
        let why = rejected_hello(&c, bad).await;
        assert!(why.starts_with("attestation rejected"), "{why}");
        assert_eq!(c.providers_connected().await, 0);
        c.stop().await;

        // Without the seam (production binding and clock), the genuine
        // evidence does not name this provider's key and nonce.
        let prod = Coordinator::start_with(|cfg| {
            cfg.attestation_test_seam = None;
        })
        .await;
        let why = rejected_hello(&prod, bundle).await;
        assert!(why.starts_with("attestation rejected"), "{why}");
        assert_eq!(prod.providers_connected().await, 0);
        prod.stop().await;
    })
    .await
}
