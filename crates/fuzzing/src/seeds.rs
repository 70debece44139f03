//! Small valid inputs for every target: the seed corpus that the smoke tests
//! mutate and that `examples/write_seed_corpus.rs` writes out for libFuzzer.

use proofmesh_receipt::testing::{sample_body, sample_receipt};
use proofmesh_receipt::{Digest, Identity, Receipt, SamplingRecord};
use proofmesh_wire::provider::{
    auth_message, ChatMessage, Gpu, Hardware, JobResult, JobSpec, ModelAdvert, PriceRate,
    PROTOCOL_VERSION,
};
use proofmesh_wire::{CoordinatorMsg, ProviderMsg};

fn provider() -> Identity {
    Identity::from_seed([1; 32])
}

fn coordinator() -> Identity {
    Identity::from_seed([2; 32])
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("seed serializes")
}

fn sampling() -> SamplingRecord {
    proofmesh_receipt::testing::sample_body(&provider(), &coordinator(), 1, 1).sampling
}

fn price() -> PriceRate {
    PriceRate {
        currency: "USD".into(),
        input_per_mtok_micros: 100_000,
        output_per_mtok_micros: 200_000,
    }
}

#[path = "seeds_attest.rs"]
mod attest;

/// Seeds for the named target (see [`crate::TARGETS`]); empty for an unknown name.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "receipt_json" => receipt_json(),
        "public_key" => public_key(),
        "signature" => signature(),
        "digest" => digest(),
        "provider_msg" => provider_msg(),
        "coordinator_msg" => coordinator_msg(),
        "chat_request" => chat_request(),
        "zk_infer_request" => zk_infer_request(),
        "api_key" => api_key(),
        "gguf_load" => gguf(),
        n if n.starts_with("attest_") => attest::for_target(n),
        n if n.starts_with("zk_") => proofmesh_zkml::fuzz::seeds(n),
        _ => Vec::new(),
    }
}

/// A countersigned receipt (compact and pretty) and a provider-only one.
pub fn receipt_json() -> Vec<Vec<u8>> {
    let full = sample_receipt("rcpt_0123", "job_0123");
    let provider_only =
        Receipt::sign_as_provider(sample_body(&provider(), &coordinator(), 3, 1), &provider());
    vec![
        json(&full),
        full.to_json_pretty().into_bytes(),
        json(&provider_only),
    ]
}

/// A valid key, the all-zero encoding and a non-point.
pub fn public_key() -> Vec<Vec<u8>> {
    vec![
        provider().public().as_str().as_bytes().to_vec(),
        format!("ed25519:{}", "0".repeat(64)).into_bytes(),
        format!("ed25519:{}", "f".repeat(64)).into_bytes(),
    ]
}

/// A real signature and an all-zero one.
pub fn signature() -> Vec<Vec<u8>> {
    let sig: String = provider().sign(b"proofmesh").into();
    vec![sig.into_bytes(), "0".repeat(128).into_bytes()]
}

/// A valid digest and a bare prefix.
pub fn digest() -> Vec<Vec<u8>> {
    vec![
        Digest::of(b"model").as_str().as_bytes().to_vec(),
        b"sha256:".to_vec(),
    ]
}

/// A zk model advert.
fn zk_advert() -> proofmesh_wire::ZkModelAdvert {
    proofmesh_wire::ZkModelAdvert {
        name: "digits-mlp".into(),
        model_digest: Digest::of(b"zk model"),
        vk_digest: "ab".repeat(32),
        input_len: 64,
        output_len: 10,
        price: price(),
    }
}

/// A well-formed (not verifying) proof bundle.
fn zk_bundle() -> proofmesh_zkml::ProofBundle {
    use base64::Engine as _;
    proofmesh_zkml::ProofBundle {
        version: proofmesh_zkml::BUNDLE_VERSION,
        model_digest: "cd".repeat(32),
        vk_digest: "ab".repeat(32),
        input: vec![0; 64],
        logits: vec![1; 10],
        class: 0,
        nonce: "00".repeat(32),
        proof: base64::engine::general_purpose::STANDARD.encode([0u8; 128]),
    }
}

/// `POST /v1/zk/infer` bodies.
pub fn zk_infer_request() -> Vec<Vec<u8>> {
    [
        r#"{"model":"digits-mlp","input":[0,1,-1,127,-128]}"#,
        r#"{"model":"sha256:0000000000000000000000000000000000000000000000000000000000000000","input":[],"min_attestation":"tee"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Every `ProviderMsg` variant.
pub fn provider_msg() -> Vec<Vec<u8>> {
    let (p, c) = (provider(), coordinator());
    let nonce = "00112233445566778899aabbccddeeff";
    let receipt = Receipt::sign_as_provider(sample_body(&p, &c, 16, 3), &p);
    vec![
        json(&ProviderMsg::Hello {
            provider_key: p.public().clone(),
            signature: p.sign(&auth_message(nonce, c.public(), p.public())),
            protocol_version: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
            hardware: Hardware {
                cpu_model: "x86".into(),
                cpu_cores: 16,
                memory_bytes: 1 << 37,
                gpus: vec![Gpu {
                    model: "NVIDIA H100".into(),
                    vram_bytes: 80 << 30,
                }],
            },
            models: vec![ModelAdvert {
                digest: Digest::of(b"model"),
                name: "tiny".into(),
                context_length: 512,
                price: price(),
                size_bytes: 0,
            }],
            max_concurrent_jobs: 4,
            site: None,
            attestation: Some(Box::new(
                proofmesh_wire::EvidenceJson::encode(&proofmesh_attest::EvidenceBundle::none())
                    .unwrap(),
            )),
            zk_models: vec![zk_advert()],
        }),
        json(&ProviderMsg::Heartbeat { in_flight: 2 }),
        json(&ProviderMsg::Token {
            job_id: "job_0123".into(),
            index: 0,
            token_id: 42,
            text: "Par\u{e9}".into(),
        }),
        json(&ProviderMsg::Done {
            job_id: "job_0123".into(),
            result: Box::new(JobResult {
                receipt,
                completion_token_ids: vec![1, 2, 3],
                text: "Paris".into(),
                fingerprint: format!("504d4650000008000300000000{}", "ab".repeat(24)),
            }),
        }),
        json(&ProviderMsg::ZkDone {
            job_id: "job_0123".into(),
            result: Box::new(proofmesh_wire::ZkJobResult {
                receipt: Receipt::sign_as_provider(sample_body(&p, &c, 1, 0), &p),
                bundle: zk_bundle(),
            }),
        }),
        json(&ProviderMsg::Failed {
            job_id: "job_0123".into(),
            code: "invalid_request".into(),
            message: "prompt too long".into(),
        }),
    ]
}

/// Every `CoordinatorMsg` variant.
pub fn coordinator_msg() -> Vec<Vec<u8>> {
    vec![
        json(&CoordinatorMsg::Challenge {
            nonce: "00112233445566778899aabbccddeeff".into(),
            coordinator_key: coordinator().public().clone(),
            protocol_version: PROTOCOL_VERSION,
        }),
        json(&CoordinatorMsg::Welcome { heartbeat_ms: 2000 }),
        json(&CoordinatorMsg::Job(JobSpec {
            job_id: "job_0123".into(),
            receipt_id: "rcpt_0123".into(),
            client: proofmesh_receipt::client_hash("client-1"),
            model: Digest::of(b"model"),
            messages: vec![
                ChatMessage {
                    role: "system".into(),
                    content: "Be brief.".into(),
                },
                ChatMessage {
                    role: "user".into(),
                    content: "Capital of France?".into(),
                },
            ],
            sampling: sampling(),
            dispatched_at_ms: 1_700_000_000_000,
            price: price(),
            stream: true,
            attestation: None,
        })),
        json(&CoordinatorMsg::ZkJob(proofmesh_wire::ZkJobSpec {
            job_id: "job_0123".into(),
            receipt_id: "rcpt_0123".into(),
            client: proofmesh_receipt::client_hash("client-1"),
            model: Digest::of(b"zk model"),
            input: vec![-128, 0, 127],
            dispatched_at_ms: 1_700_000_000_000,
            price: price(),
            attestation: None,
        })),
        json(&CoordinatorMsg::Cancel {
            job_id: "job_0123".into(),
        }),
    ]
}

/// Minimal, full-featured and content-parts chat requests.
pub fn chat_request() -> Vec<Vec<u8>> {
    [
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"sha256:0000000000000000000000000000000000000000000000000000000000000000","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":null},{"role":"user","content":"Capital of France?"},{"role":"assistant"}],"stream":true,"temperature":0.7,"top_p":0.9,"max_tokens":64,"max_completion_tokens":32,"stop":["\n\n","END"],"seed":18446744073709551615,"n":1,"top_k_logits":8,"user":"ignored"}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stop":"\n","temperature":0}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// A well-formed key and one with upper-case hex.
pub fn api_key() -> Vec<Vec<u8>> {
    vec![
        format!("pm_{}_{}", "0123456789abcdef", "a".repeat(64)).into_bytes(),
        format!("pm_{}_{}", "0123456789ABCDEF", "b".repeat(64)).into_bytes(),
    ]
}

/// The engine's tiny test model, its header alone, and an empty GGUF v3.
pub fn gguf() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    proofmesh_engine::testing::write_tiny_gguf(&path, 7).expect("write tiny gguf");
    let tiny = std::fs::read(&path).expect("read tiny gguf");
    let header = tiny[..tiny.len().min(GGUF_HEADER_FOCUS)].to_vec();
    let mut empty = b"GGUF".to_vec();
    empty.extend_from_slice(&3u32.to_le_bytes());
    empty.extend_from_slice(&0u64.to_le_bytes());
    empty.extend_from_slice(&0u64.to_le_bytes());
    vec![tiny, header, empty]
}

/// Bytes at the front of a GGUF file worth mutating most: the header
/// (metadata and tensor directory) of the tiny model fits in this.
pub const GGUF_HEADER_FOCUS: usize = 8 << 10;
