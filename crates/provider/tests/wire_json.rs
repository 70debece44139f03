//! The proof bundle on the wire is the prover's bundle, byte for byte.
//!
//! `proofmesh-wire` carries proof bundles without linking `proofmesh-zkml`
//! (the plain type lives in `proofmesh_receipt::zk::bundle`, which zkml
//! re-exports). This crate has both, so it checks that what the prover
//! produces goes into the wire messages unchanged: the same type (this file
//! would not compile otherwise) and the same JSON, pinned by a golden string.

use proofmesh_receipt::testing::sample_receipt;
use proofmesh_wire::{ProviderMsg, ZkInferResponse, ZkJobResult};

/// The JSON of [`bundle`], as the zkml bundle has always serialised.
const GOLDEN_BUNDLE: &str = concat!(
    r#"{"version":1,"#,
    r#""model_digest":"1111111111111111111111111111111111111111111111111111111111111111","#,
    r#""vk_digest":"2222222222222222222222222222222222222222222222222222222222222222","#,
    r#""input":[-128,-1,0,1,127],"logits":[3,-9,0],"class":0,"#,
    r#""nonce":"0707070707070707070707070707070707070707070707070707070707070707","#,
    r#""proof":"AQID"}"#
);

fn bundle() -> proofmesh_zkml::ProofBundle {
    proofmesh_zkml::ProofBundle {
        version: proofmesh_zkml::BUNDLE_VERSION,
        model_digest: "11".repeat(32),
        vk_digest: "22".repeat(32),
        input: vec![-128, -1, 0, 1, 127],
        logits: vec![3, -9, 0],
        class: 0,
        nonce: "07".repeat(32),
        proof: "AQID".into(),
    }
}

#[test]
fn zk_done_carries_the_zkml_bundle_json_unchanged() {
    let b = bundle();
    assert_eq!(b.to_json(), GOLDEN_BUNDLE);
    let receipt = sample_receipt("rcpt_1", "job_1");
    let msg = ProviderMsg::ZkDone {
        job_id: "job_1".into(),
        result: Box::new(ZkJobResult {
            receipt: receipt.clone(),
            bundle: b.clone(),
        }),
    };
    let json = serde_json::to_string(&msg).unwrap();
    let receipt_json = serde_json::to_string(&receipt).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"type":"zk_done","job_id":"job_1","result":{{"receipt":{receipt_json},"bundle":{GOLDEN_BUNDLE}}}}}"#
        )
    );
    let back: ProviderMsg = serde_json::from_str(&json).unwrap();
    assert_eq!(back, msg);
    let ProviderMsg::ZkDone { result, .. } = back else {
        panic!("a zk_done message parses as zk_done")
    };
    let theirs: proofmesh_zkml::ProofBundle = result.bundle;
    assert_eq!(theirs, b);
}

#[test]
fn zk_infer_response_carries_the_zkml_bundle_json_unchanged() {
    let receipt = sample_receipt("rcpt_1", "job_1");
    let resp = ZkInferResponse {
        id: "zkinf-1".into(),
        object: "zk.inference".into(),
        model: "digits-mlp".into(),
        model_digest: format!("sha256:{}", "11".repeat(32)),
        class: 0,
        logits: vec![3, -9, 0],
        proof: bundle(),
        receipt: receipt.clone(),
    };
    let json = serde_json::to_string(&resp).unwrap();
    assert!(
        json.contains(&format!(r#""proof":{GOLDEN_BUNDLE},"receipt":"#)),
        "{json}"
    );
    let back: ZkInferResponse = serde_json::from_str(&json).unwrap();
    assert_eq!(back, resp);
    // What `proofmesh zk verify` reads from a saved response parses with
    // the prover's own parser.
    assert_eq!(
        proofmesh_zkml::ProofBundle::from_json(back.proof.to_json().as_bytes()).unwrap(),
        bundle()
    );
}

/// Attestation evidence travels as `EvidenceJson`: the Hello a provider
/// sends carries exactly the JSON attest's bundle serializes to, and the
/// coordinator decodes the same bundle from it.
#[test]
fn hello_carries_the_attestation_bundle_json_unchanged() {
    let mut b = proofmesh_attest::EvidenceBundle::none();
    b.evidence = vec![1, 2, 3, 250];
    let wire = proofmesh_wire::EvidenceJson::encode(&b).unwrap();
    assert_eq!(
        serde_json::to_string(&wire).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let back: proofmesh_attest::EvidenceBundle = wire.decode().unwrap();
    assert_eq!(back, b);
    let msg = ProviderMsg::Attestation {
        nonce: "00".into(),
        bundle: Some(Box::new(wire)),
    };
    let text = serde_json::to_string(&msg).unwrap();
    assert!(text.contains(&serde_json::to_string(&b).unwrap()), "{text}");
}
