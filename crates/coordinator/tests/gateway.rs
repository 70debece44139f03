//! End-to-end tests of the OpenAI-compatible gateway with real providers:
//! the response shapes clients depend on (non-streaming JSON, SSE framing),
//! that every answer comes with a receipt that verifies offline and matches
//! what was answered, that receipts are private to their client, and that
//! health and metrics endpoints work. They exist because these are the
//! promises the coordinator makes to clients, and only a running
//! coordinator + provider pair can show they hold together.

mod common;

use common::*;
use proofmesh_receipt::{charge_micros, response_digest};
use proofmesh_store::Store;
use serde_json::Value;

const PROMPT: &str = "the cat sat on the mat";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_completion_has_openai_shape_and_a_verifiable_receipt() {
    bounded(async {
        let (c, providers) = coordinator_with_providers(1).await;
        let key = c.api_key().await;
        let coord_key = c.coordinator_key().await;
        let seed = 1234;
        let (body, header_id) = complete(&c, &key, &chat_body(PROMPT, seed, 16, false)).await;

        assert_eq!(body["object"], "chat.completion", "{body}");
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(body["model"], MODEL);
        assert_eq!(body["system_fingerprint"], model_digest().as_str());
        assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
        let choices = body["choices"].as_array().expect("choices");
        assert_eq!(choices.len(), 1);
        let choice = &choices[0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["message"]["role"], "assistant");
        let content = choice["message"]["content"].as_str().expect("content");
        let finish = choice["finish_reason"].as_str().expect("finish_reason");
        assert!(["stop", "length"].contains(&finish), "{finish}");

        // The answer is exactly what the engine generates for this request.
        let local = local_generation(PROMPT, seed, 16);
        assert!(
            !local.text.is_empty(),
            "pick a prompt the tiny model answers"
        );
        assert_eq!(content, local.text);
        assert_eq!(finish, local.finish_reason.as_str());

        let usage = &body["usage"];
        let prompt_tokens = usage["prompt_tokens"].as_u64().unwrap();
        let completion_tokens = usage["completion_tokens"].as_u64().unwrap();
        assert_eq!(prompt_tokens, local.prompt_tokens.len() as u64);
        assert_eq!(completion_tokens, local.completion_tokens.len() as u64);
        assert!((1..=16).contains(&completion_tokens));
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            prompt_tokens + completion_tokens
        );

        let ext = &body["proofmesh"];
        assert_eq!(ext["receipt_id"], header_id.as_str());
        assert!(header_id.starts_with("rcpt_"));
        assert_eq!(ext["provider_key"], providers[0].key().as_str());
        assert_eq!(ext["currency"], "USD");
        let p = price();
        let expected_charge = charge_micros(
            prompt_tokens as u32,
            completion_tokens as u32,
            p.input_per_mtok_micros,
            p.output_per_mtok_micros,
        );
        assert_eq!(ext["charged_micros"].as_u64().unwrap(), expected_charge);

        // The receipt: stored, countersigned, and about this very answer.
        let resp = c.get_receipt(&key, &header_id).await;
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap();
        let r = verified_receipt(&bytes, &coord_key);
        let b = &r.body;
        assert_eq!(b.receipt_id, header_id);
        assert_eq!(u64::from(b.completion_tokens), completion_tokens);
        assert_eq!(u64::from(b.prompt_tokens), prompt_tokens);
        assert_eq!(b.sampling.seed, seed);
        assert_eq!(b.sampling.max_tokens, 16);
        assert_eq!(b.sampling.temperature_milli, 0);
        assert_eq!(&b.provider_key, providers[0].key());
        assert_eq!(b.coordinator_key, coord_key);
        assert_eq!(b.model, model_digest());
        assert_eq!(b.finish_reason, finish);
        assert_eq!(b.price.charged_micros, expected_charge);
        assert_eq!(
            b.response_digest,
            response_digest(&local.completion_tokens, &local.text, finish)
        );

        // The job row agrees.
        let job = c.job_status(&b.job_id).await;
        assert_eq!(job.status, "completed");
        assert_eq!(job.attempts, 1);
        assert_eq!(
            job.provider_key.as_deref(),
            Some(providers[0].key().as_str())
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_is_framed_like_openai_and_matches_the_non_streaming_answer() {
    bounded(async {
        let (c, _providers) = coordinator_with_providers(1).await;
        let key = c.api_key().await;
        let coord_key = c.coordinator_key().await;
        let (plain, _) = complete(&c, &key, &chat_body(PROMPT, 99, 24, false)).await;
        let expected = plain["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!expected.is_empty());

        let resp = c.chat(&key, &chat_body(PROMPT, 99, 24, true)).await;
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let receipt_id = resp.headers()["x-proofmesh-receipt-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body = step("stream body", resp.text()).await.unwrap();
        let payloads = sse_payloads(&body);

        assert_eq!(
            payloads.last().map(String::as_str),
            Some("[DONE]"),
            "{body}"
        );
        let chunks: Vec<Value> = payloads[..payloads.len() - 1]
            .iter()
            .map(|p| serde_json::from_str(p).unwrap_or_else(|e| panic!("{e}: {p}")))
            .collect();
        assert!(
            chunks.len() >= 2,
            "content chunk(s) and a final chunk: {body}"
        );
        let id = chunks[0]["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("chatcmpl-"));
        let mut text = String::new();
        for (i, ch) in chunks.iter().enumerate() {
            assert_eq!(ch["object"], "chat.completion.chunk", "{ch}");
            assert_eq!(ch["id"], id.as_str(), "one id per stream");
            assert_eq!(ch["model"], MODEL);
            assert_eq!(ch["choices"].as_array().unwrap().len(), 1);
            let delta = &ch["choices"][0]["delta"];
            if i == 0 {
                assert_eq!(delta["role"], "assistant", "first delta names the role");
            } else {
                assert!(delta.get("role").is_none_or(Value::is_null), "{ch}");
            }
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                text.push_str(t);
            }
            if i + 1 < chunks.len() {
                assert!(ch["choices"][0]["finish_reason"].is_null(), "{ch}");
                assert!(ch.get("usage").is_none_or(Value::is_null), "{ch}");
            }
        }
        assert_eq!(text, expected);

        let last = chunks.last().unwrap();
        assert_eq!(
            last["choices"][0]["finish_reason"],
            plain["choices"][0]["finish_reason"]
        );
        assert_eq!(last["usage"], plain["usage"]);
        assert_eq!(last["proofmesh"]["receipt_id"], receipt_id.as_str());

        let r = c.get_receipt(&key, &receipt_id).await;
        assert_eq!(r.status(), 200);
        let r = verified_receipt(&r.bytes().await.unwrap(), &coord_key);
        assert_eq!(
            u64::from(r.body.completion_tokens),
            last["usage"]["completion_tokens"].as_u64().unwrap()
        );
        assert_eq!(r.body.sampling.seed, 99);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_visible_only_to_their_own_client() {
    bounded(async {
        let (c, _providers) = coordinator_with_providers(1).await;
        let (key_a, client_a) = c.api_key_with_client().await;
        let key_b = c.api_key().await;
        let (_, id) = complete(&c, &key_a, &chat_body(PROMPT, 5, 4, false)).await;

        assert_eq!(c.get_receipt(&key_a, &id).await.status(), 200);
        let err = expect_error(c.get_receipt(&key_b, &id).await, 404, "receipt_not_found").await;
        assert_eq!(err["type"], "not_found_error");
        // Indistinguishable from a receipt that does not exist at all.
        expect_error(
            c.get_receipt(&key_b, "rcpt_doesnotexist").await,
            404,
            "receipt_not_found",
        )
        .await;

        // Another key of the same client may read it.
        let key_a2 = c
            .store
            .create_api_key(Some(&client_a), "second", 2)
            .await
            .unwrap()
            .key;
        assert_eq!(c.get_receipt(&key_a2, &id).await.status(), 200);

        // Without a key: 401, not 404.
        let r = c
            .http
            .get(format!("{}/v1/receipts/{id}", c.base))
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "missing_api_key").await;
    })
    .await
}

/// Sum of a Prometheus counter's samples across label sets.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_completed_jobs_and_healthz_is_ok() {
    bounded(async {
        let (c, _providers) = coordinator_with_providers(1).await;
        let key = c.api_key().await;

        let health = c
            .http
            .get(format!("{}/healthz", c.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.unwrap(), "ok");

        let metrics = || async {
            let r = c
                .http
                .get(format!("{}/metrics", c.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(ct.starts_with("text/plain"), "{ct}");
            r.text().await.unwrap()
        };
        // The recorder is process-wide and other tests in this binary run
        // jobs too, so compare before and after rather than absolute values.
        let before = counter(&metrics().await, "proofmesh_jobs_completed_total");
        complete(&c, &key, &chat_body(PROMPT, 1, 4, false)).await;
        let text = metrics().await;
        assert!(
            text.contains("# TYPE proofmesh_jobs_completed_total counter"),
            "{text}"
        );
        let after = counter(&text, "proofmesh_jobs_completed_total");
        assert!(after >= before + 1.0, "before {before}, after {after}");
        assert!(counter(&text, "proofmesh_tokens_generated_total") >= 1.0);
    })
    .await
}
