//! How the coordinator copes with providers that die, lie or cannot prove
//! who they are. Misbehaviour is produced with the raw-WebSocket test seam
//! `RawProvider` (tests/common): a "provider" that does the real handshake
//! with its own key and then does whatever the test scripts. Honest work is
//! done by real provider agents on the tiny model. These tests exist because
//! the coordinator's value is that a client only ever gets answers — and
//! receipts — that an authenticated provider actually produced and signed.

mod common;

use common::*;
use proofmesh_receipt::{response_digest, Identity, PublicKey, Receipt};
use proofmesh_store::Store;
use proofmesh_wire::{auth_message, JobResult, ProviderMsg};
use serde_json::Value;

const PROMPT: &str = "the cat sat on the mat";

/// Reads a whole response as (status, JSON body).
async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = step("response body", resp.text()).await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_is_retried_elsewhere_when_its_provider_vanishes_before_any_token() {
    bounded(async {
        let c = Coordinator::start().await;
        let mut fake = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;
        let coord_key = c.coordinator_key().await;

        let pending = c.spawn_chat(&key, chat_body(PROMPT, 3, 12, false));
        let spec = fake.next_job().await;
        // A healthy provider joins while the job sits with the fake one.
        let real = TestProvider::start(&c);
        c.wait_providers(2).await;
        fake.vanish().await;

        let (status, body) = json_of(join_chat(pending).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["proofmesh"]["provider_key"], real.key().as_str());
        assert_eq!(body["proofmesh"]["receipt_id"], spec.receipt_id.as_str());
        let local = local_generation(PROMPT, 3, 12);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            local.text.as_str()
        );

        let job = c.job_status(&spec.job_id).await;
        assert_eq!(job.status, "completed");
        assert_eq!(job.attempts, 2);
        assert_eq!(job.provider_key.as_deref(), Some(real.key().as_str()));
        let r = c.get_receipt(&key, &spec.receipt_id).await;
        assert_eq!(r.status(), 200);
        let r = verified_receipt(&r.bytes().await.unwrap(), &coord_key);
        assert_eq!(&r.body.provider_key, real.key());
        assert_eq!(r.body.job_id, spec.job_id);
        c.wait_providers(1).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ends_with_an_error_event_when_provider_dies_after_a_token() {
    bounded(async {
        let c = Coordinator::start().await;
        let mut fake = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;

        let pending = c.spawn_chat(&key, chat_body(PROMPT, 3, 12, true));
        let spec = fake.next_job().await;
        // A healthy provider is available, but text already reached the
        // client, so retrying would splice two answers together.
        let _real = TestProvider::start(&c);
        c.wait_providers(2).await;
        fake.send(&ProviderMsg::Token {
            job_id: spec.job_id.clone(),
            index: 0,
            token_id: 72,
            text: "Hel".into(),
        })
        .await;
        // Response headers arrive with the first event, so the token is out.
        let resp = join_chat(pending).await;
        assert_eq!(resp.status(), 200);
        fake.vanish().await;
        let body = step("stream body", resp.text()).await.unwrap();
        let payloads = sse_payloads(&body);

        assert!(!payloads.iter().any(|p| p == "[DONE]"), "{body}");
        assert_eq!(payloads.len(), 2, "{body}");
        let first: Value = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        let last: Value = serde_json::from_str(&payloads[1]).unwrap();
        let err = &last["error"];
        assert_eq!(err["code"], "provider_failed", "{body}");
        for f in ["message", "type", "param", "code"] {
            assert!(err.get(f).is_some(), "error event lacks {f}: {body}");
        }

        let job = c.wait_job_settled(&spec.job_id).await;
        assert_eq!(job.status, "failed");
        assert_eq!(job.attempts, 1, "no retry once text was streamed");
        assert!(job.error.is_some());
        assert!(c
            .store
            .get_receipt(&spec.receipt_id)
            .await
            .unwrap()
            .is_none());
        expect_error(
            c.get_receipt(&key, &spec.receipt_id).await,
            404,
            "receipt_not_found",
        )
        .await;
    })
    .await
}

/// A non-streaming client has received nothing until the job finishes, so a
/// provider failing mid-generation must be retried elsewhere (job.rs:
/// "retry on another provider while nothing has reached the client"), and
/// the answer must not contain the failed provider's partial text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_request_is_retried_when_provider_fails_mid_generation() {
    bounded(async {
        let c = Coordinator::start().await;
        let mut fake = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;

        let pending = c.spawn_chat(&key, chat_body(PROMPT, 3, 12, false));
        let spec = fake.next_job().await;
        let real = TestProvider::start(&c);
        c.wait_providers(2).await;
        fake.send(&ProviderMsg::Token {
            job_id: spec.job_id.clone(),
            index: 0,
            token_id: 72,
            text: "PARTIAL".into(),
        })
        .await;
        fake.send(&ProviderMsg::Failed {
            job_id: spec.job_id.clone(),
            code: "engine_error".into(),
            message: "simulated crash".into(),
        })
        .await;

        let (status, body) = json_of(join_chat(pending).await).await;
        assert_eq!(status, 200, "{body}");
        let local = local_generation(PROMPT, 3, 12);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            local.text.as_str()
        );
        assert_eq!(body["proofmesh"]["provider_key"], real.key().as_str());
        let job = c.job_status(&spec.job_id).await;
        assert_eq!((job.status.as_str(), job.attempts), ("completed", 2));
    })
    .await
}

/// Text pieces the fake provider "generates".
const PIECES: [(u32, &str); 3] = [(40, "Hel"), (41, "lo"), (42, "!")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_result_from_the_test_seam_is_accepted() {
    // Control for the forgery tests: the fake's untampered result passes
    // every check, so a rejection there is due to the forgery alone.
    bounded(async {
        let c = Coordinator::start().await;
        let mut fake = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;
        let pending = c.spawn_chat(&key, chat_body(PROMPT, 8, 12, false));
        let spec = fake.next_job().await;
        let result = honest_result(&spec, &fake.identity, &fake.coordinator_key, &PIECES);
        fake.deliver(&spec, &PIECES, result).await;

        let (status, body) = json_of(join_chat(pending).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
        let r = c.get_receipt(&key, &spec.receipt_id).await;
        assert_eq!(r.status(), 200);
        let r = verified_receipt(&r.bytes().await.unwrap(), &fake.coordinator_key);
        assert_eq!(&r.body.provider_key, fake.key());
    })
    .await
}

type Forgery = fn(JobResult, &Identity) -> JobResult;

/// Receipt body names the fake's key but is signed by some other key.
fn signed_by_another_key(mut r: JobResult, _fake: &Identity) -> JobResult {
    r.receipt = Receipt::sign_as_provider(r.receipt.body, &Identity::generate());
    r
}

/// Properly signed, but the response digest commits to a different answer.
fn response_digest_mismatch(mut r: JobResult, fake: &Identity) -> JobResult {
    r.receipt.body.response_digest =
        response_digest(&r.completion_token_ids, "a different answer", "stop");
    resign(r, fake)
}

/// A receipt that is entirely some other provider's (its key, its signature).
fn another_providers_receipt(mut r: JobResult, _fake: &Identity) -> JobResult {
    let other = Identity::generate();
    r.receipt.body.provider_key = other.public().clone();
    resign(r, &other)
}

/// Properly signed, but the final text differs from what was streamed.
fn text_differs_from_relayed(mut r: JobResult, fake: &Identity) -> JobResult {
    r.text = "Goodbye".into();
    r.receipt.body.response_digest = response_digest(&r.completion_token_ids, &r.text, "stop");
    resign(r, fake)
}

/// Each forgery, and the check that must catch it (as recorded in the job's
/// failure reason).
const FORGERIES: [(&str, Forgery); 4] = [
    ("provider signature", signed_by_another_key),
    ("response_digest", response_digest_mismatch),
    ("provider_key", another_providers_receipt),
    ("relayed text", text_differs_from_relayed),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_results_are_rejected_and_the_job_is_retried_on_an_honest_provider() {
    bounded(async {
        for (what, forge) in FORGERIES {
            let c = Coordinator::start().await;
            let mut fake = RawProvider::connect(&c, 1).await;
            c.wait_providers(1).await;
            let key = c.api_key().await;
            let coord_key = c.coordinator_key().await;
            let pending = c.spawn_chat(&key, chat_body(PROMPT, 8, 12, false));
            let spec = fake.next_job().await;
            let real = TestProvider::start(&c);
            c.wait_providers(2).await;
            // The token carries no text, so the retry decision depends only
            // on the result checks (see the mid-generation retry test).
            let pieces: [(u32, &str); 1] = [(40, "")];
            let honest = honest_result(&spec, &fake.identity, &fake.coordinator_key, &pieces);
            fake.deliver(&spec, &pieces, forge(honest, &fake.identity))
                .await;

            let (status, body) = json_of(join_chat(pending).await).await;
            assert_eq!(status, 200, "{what}: {body}");
            assert_eq!(
                body["proofmesh"]["provider_key"],
                real.key().as_str(),
                "{what}"
            );
            let job = c.job_status(&spec.job_id).await;
            assert_eq!(
                (job.status.as_str(), job.attempts),
                ("completed", 2),
                "{what}"
            );
            let stored = c.get_receipt(&key, &spec.receipt_id).await;
            assert_eq!(stored.status(), 200, "{what}");
            let r = verified_receipt(&stored.bytes().await.unwrap(), &coord_key);
            assert_eq!(
                &r.body.provider_key,
                real.key(),
                "{what}: forged receipt stored"
            );
            real.kill().await;
            c.stop().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_result_without_a_fallback_fails_the_job_and_stores_no_receipt() {
    bounded(async {
        for (what, forge) in FORGERIES {
            let c = Coordinator::start().await;
            let mut fake = RawProvider::connect(&c, 1).await;
            c.wait_providers(1).await;
            let key = c.api_key().await;
            let pending = c.spawn_chat(&key, chat_body(PROMPT, 8, 12, false));
            let spec = fake.next_job().await;
            let pieces: [(u32, &str); 1] = [(40, "")];
            let honest = honest_result(&spec, &fake.identity, &fake.coordinator_key, &pieces);
            fake.deliver(&spec, &pieces, forge(honest, &fake.identity))
                .await;

            expect_error(join_chat(pending).await, 502, "provider_failed").await;
            let job = c.wait_job_settled(&spec.job_id).await;
            assert_eq!(job.status, "failed", "{what}");
            let reason = job.error.clone().unwrap_or_default();
            assert!(
                reason.contains("rejected") && reason.contains(what),
                "expected a rejection by the {what} check, got {reason:?}"
            );
            assert!(
                c.store
                    .get_receipt(&spec.receipt_id)
                    .await
                    .unwrap()
                    .is_none(),
                "{what}: a rejected receipt was stored"
            );
            assert_eq!(c.store.count_receipts().await.unwrap(), 0, "{what}");
            expect_error(
                c.get_receipt(&key, &spec.receipt_id).await,
                404,
                "receipt_not_found",
            )
            .await;
            fake.vanish().await;
            c.stop().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_handshakes_are_closed_with_a_reason_and_never_registered() {
    bounded(async {
        let c = Coordinator::start().await;
        type Hello = fn(&Identity, &str, &PublicKey) -> ProviderMsg;
        // (case, how the hello is built, what the close reason must say)
        let cases: [(&str, Hello, &str); 9] = [
            (
                "wrong nonce",
                |id, _nonce, coord| hello(id, "0000not-the-nonce", coord, 1),
                "signature",
            ),
            (
                "signed by another key",
                |id, nonce, coord| {
                    let mut h = hello(id, nonce, coord, 1);
                    if let ProviderMsg::Hello { signature, .. } = &mut h {
                        let other = Identity::generate();
                        *signature = other.sign(&auth_message(nonce, coord, id.public()));
                    }
                    h
                },
                "signature",
            ),
            (
                "signed for another coordinator",
                |id, nonce, _coord| hello(id, nonce, Identity::generate().public(), 1),
                "signature",
            ),
            (
                "wrong protocol version",
                |id, nonce, coord| {
                    let mut h = hello(id, nonce, coord, 1);
                    if let ProviderMsg::Hello {
                        protocol_version, ..
                    } = &mut h
                    {
                        *protocol_version += 1;
                    }
                    h
                },
                "protocol version",
            ),
            (
                "no models",
                |id, nonce, coord| {
                    let mut h = hello(id, nonce, coord, 1);
                    if let ProviderMsg::Hello { models, .. } = &mut h {
                        models.clear();
                    }
                    h
                },
                "no models",
            ),
            (
                "coordinates out of range",
                |id, nonce, coord| with_site(hello(id, nonce, coord, 1), 200.0, 0, "pcie"),
                "invalid provider claims",
            ),
            (
                "absurd price",
                |id, nonce, coord| {
                    with_site(hello(id, nonce, coord, 1), 10.0, u64::MAX / 2, "pcie")
                },
                "invalid provider claims",
            ),
            (
                "unknown interconnect",
                |id, nonce, coord| {
                    with_site(hello(id, nonce, coord, 1), 10.0, 1_000, "carrier pigeon")
                },
                "interconnect",
            ),
            (
                "unknown GPU",
                |id, nonce, coord| {
                    let mut h = hello(id, nonce, coord, 1);
                    if let ProviderMsg::Hello { hardware, .. } = &mut h {
                        hardware.gpus = vec![proofmesh_wire::Gpu {
                            model: "3dfx Voodoo5 6000".into(),
                            vram_bytes: 128 << 20,
                        }];
                    }
                    h
                },
                "invalid provider claims",
            ),
        ];
        for (what, make, expected_reason) in cases {
            let identity = Identity::generate();
            let (mut ws, nonce, coord_key) = raw_connect(&c).await;
            send_msg(&mut ws, &make(&identity, &nonce, &coord_key)).await;
            match next_coordinator_msg(&mut ws).await {
                Err(WsEnd::Closed(code, reason)) => {
                    assert_eq!(code, 1008, "{what}: policy violation");
                    assert!(
                        reason.contains(expected_reason),
                        "{what}: reason {reason:?}"
                    );
                }
                other => panic!("{what}: expected a close frame, got {other:?}"),
            }
            assert_eq!(c.providers_connected().await, 0, "{what}");
            let known = c.store.list_providers().await.unwrap();
            assert!(
                !known
                    .iter()
                    .any(|p| p.provider_key == identity.public().as_str()),
                "{what}: an unauthenticated provider was recorded"
            );
        }
        // Control: the same path with a correct signature is welcomed.
        let _ok = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
    })
    .await
}

/// `h` with a declared site at latitude `lat`.
fn with_site(mut h: ProviderMsg, lat: f64, hourly: u64, link: &str) -> ProviderMsg {
    if let ProviderMsg::Hello { site, .. } = &mut h {
        *site = Some(proofmesh_wire::Site {
            region: "eu-west".into(),
            lat,
            lon: 0.0,
            price_per_hour_micros: hourly,
            interconnect: link.into(),
        });
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_cannot_answer_a_job_routed_to_another_provider() {
    bounded(async {
        let c = Coordinator::start().await;
        let mut owner = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;
        let pending = c.spawn_chat(&key, chat_body(PROMPT, 8, 12, false));
        let spec = owner.next_job().await;
        let intruder = RawProvider::connect(&c, 1).await;
        c.wait_providers(2).await;

        // The intruder knows the job id and sends a self-consistent answer.
        let stolen: [(u32, &str); 1] = [(50, "pwned")];
        let forged = honest_result(
            &spec,
            &intruder.identity,
            &intruder.coordinator_key,
            &stolen,
        );
        intruder.deliver(&spec, &stolen, forged).await;
        // A second hello is a protocol violation that gets the intruder
        // dropped; frames on one connection are handled in order, so once it
        // is gone its forged events have certainly been handled.
        intruder
            .send(&hello(
                &intruder.identity,
                "x",
                &intruder.coordinator_key,
                1,
            ))
            .await;
        c.wait_providers(1).await;
        // Only now does the owner answer.
        let result = honest_result(&spec, &owner.identity, &owner.coordinator_key, &PIECES);
        owner.deliver(&spec, &PIECES, result).await;

        let (status, body) = json_of(join_chat(pending).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
        assert_eq!(body["proofmesh"]["provider_key"], owner.key().as_str());
        let job = c.job_status(&spec.job_id).await;
        assert_eq!((job.status.as_str(), job.attempts), ("completed", 1));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_providers_are_dropped_after_the_timeout() {
    bounded(async {
        let c = Coordinator::start().await;
        // Handshake by hand, then say nothing: no heartbeats.
        let identity = Identity::generate();
        let (mut ws, nonce, coord_key) = raw_connect(&c).await;
        send_msg(&mut ws, &hello(&identity, &nonce, &coord_key, 1)).await;
        assert!(matches!(
            next_coordinator_msg(&mut ws).await,
            Ok(proofmesh_wire::CoordinatorMsg::Welcome { .. })
        ));
        c.wait_providers(1).await;
        let started = std::time::Instant::now();
        c.wait_providers(0).await;
        // provider_timeout_ms is 1000 in the test config.
        assert!(started.elapsed() >= std::time::Duration::from_millis(500));
        // The registration itself is remembered.
        let known = c.store.list_providers().await.unwrap();
        assert!(known
            .iter()
            .any(|p| p.provider_key == identity.public().as_str()));
        // And the socket is closed from the coordinator's side.
        assert!(next_coordinator_msg(&mut ws).await.is_err());
    })
    .await
}
