//! Every way a client request can be refused, checked over real HTTP against
//! a running coordinator: status code, OpenAI's error shape
//! `{"error": {"message", "type", "param", "code"}}` and the stable `code`.
//! OpenAI SDKs branch on these, so they are API, not cosmetics.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_errors() {
    bounded(async {
        let c = Coordinator::start().await;
        let url = format!("{}/v1/chat/completions", c.base);
        let body = chat_body("hi", 1, 4, false);

        let r = c.http.post(&url).json(&body).send().await.unwrap();
        let err = expect_error(r, 401, "missing_api_key").await;
        assert_eq!(err["type"], "authentication_error");
        assert!(err["param"].is_null());

        let r = c
            .http
            .post(&url)
            .bearer_auth("pm_live_notarealkey")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "invalid_api_key").await;

        // A valid key in the wrong scheme is still refused.
        let key = c.api_key().await;
        let r = c
            .http
            .post(&url)
            .header("authorization", format!("Basic {key}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "invalid_api_key").await;

        // Other authenticated endpoints use the same shape.
        let r = c
            .http
            .get(format!("{}/v1/models", c.base))
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "missing_api_key").await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_validation_errors() {
    bounded(async {
        let c = Coordinator::start().await;
        let key = c.api_key().await;
        let url = format!("{}/v1/chat/completions", c.base);

        let r = c
            .http
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body("{\"model\": \"tiny\", \"messages\": [")
            .send()
            .await
            .unwrap();
        let err = expect_error(r, 400, "invalid_json").await;
        assert_eq!(err["type"], "invalid_request_error");

        let mut body = chat_body("hi", 1, 4, false);
        body["temperature"] = json!(5);
        let err = expect_error(c.chat(&key, &body).await, 400, "invalid_parameter").await;
        assert_eq!(err["param"], "temperature");
        assert_eq!(err["type"], "invalid_request_error");

        let body = chat_body("hi", 1, 0, false);
        let err = expect_error(c.chat(&key, &body).await, 400, "invalid_parameter").await;
        assert_eq!(err["param"], "max_tokens");

        let mut body = chat_body("hi", 1, 4, false);
        body["messages"] = json!([]);
        let err = expect_error(c.chat(&key, &body).await, 400, "invalid_parameter").await;
        assert_eq!(err["param"], "messages");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_with_or_without_content_length() {
    bounded(async {
        let limit = 8 * 1024;
        let c = Coordinator::start_with(|cfg| cfg.max_body_bytes = limit).await;
        let key = c.api_key().await;
        let url = format!("{}/v1/chat/completions", c.base);
        let big = serde_json::to_vec(&chat_body(&"a".repeat(3 * limit), 1, 4, false)).unwrap();

        // Declared length over the limit.
        let r = c
            .http
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        let err = expect_error(r, 413, "payload_too_large").await;
        assert_eq!(err["type"], "invalid_request_error");

        // Chunked, so only counting the bytes can catch it. Sent over a raw
        // socket: the server answers 413 as soon as the count passes the limit
        // and closes without reading the rest, so an HTTP client still writing
        // the body sees a broken pipe before it reads the answer (a race that
        // made this test flaky). A plain socket writes what it can and then
        // reads the status line the server sent.
        let reply = chunked_post_reply(&c.base, &key, &big).await;
        assert!(
            reply.starts_with("HTTP/1.1 413"),
            "chunked oversize body: {reply:?}"
        );
        assert!(reply.contains(r#""code":"payload_too_large""#), "{reply:?}");
    })
    .await
}

/// POSTs `body` with `Transfer-Encoding: chunked` and returns the reply as
/// read until the server closes. Write errors after the server has answered are expected and
/// ignored; only the reply counts.
async fn chunked_post_reply(base: &str, key: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = sock.write_all(&req).await;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the server closes; a reset after the reply is fine.
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_json() {
    bounded(async {
        let c = Coordinator::start().await;
        let r = c
            .http
            .get(format!("{}/v1/nope", c.base))
            .send()
            .await
            .unwrap();
        let err = expect_error(r, 404, "not_found").await;
        assert_eq!(err["type"], "not_found_error");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_is_404_model_not_found() {
    bounded(async {
        let (c, _providers) = coordinator_with_providers(1).await;
        let key = c.api_key().await;
        let mut body = chat_body("hi", 1, 4, false);
        body["model"] = json!("no-such-model");
        let err = expect_error(c.chat(&key, &body).await, 404, "model_not_found").await;
        assert_eq!(err["param"], "model");
        assert_eq!(err["type"], "invalid_request_error");
        // The served model is listed, and only it.
        let models: serde_json::Value = c
            .http
            .get(format!("{}/v1/models", c.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = models["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{models}");
        assert_eq!(data[0]["id"], MODEL);
        assert_eq!(data[0]["digest"], model_digest().as_str());
        assert_eq!(data[0]["providers"], 1);
    })
    .await
}

/// A model that was being served a moment ago, requested while its only
/// provider is offline: that is a temporary condition, so the answer should
/// be a retryable 503 `no_provider_available`, not a permanent-looking 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_whose_providers_are_all_offline_is_503_no_provider_available() {
    bounded(async {
        let (c, mut providers) = coordinator_with_providers(1).await;
        let key = c.api_key().await;
        complete(&c, &key, &chat_body("hi", 1, 2, false)).await;
        providers.pop().unwrap().kill().await;
        c.wait_providers(0).await;

        let err = expect_error(
            c.chat(&key, &chat_body("hi", 1, 2, false)).await,
            503,
            "no_provider_available",
        )
        .await;
        assert_eq!(err["type"], "service_unavailable_error");
    })
    .await
}

/// With every provider of the model at capacity, a request is not refused:
/// it waits for a slot and is dispatched once one frees up. A hard
/// time-to-first-token objective gets 503 `ttft_objective_unmet` after the
/// bounded wait, and a full wait queue 429 `queue_full`; both carry
/// `Retry-After`, the model name the client used and the job id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_providers_queue_requests_instead_of_refusing() {
    bounded(async {
        let c = Coordinator::start_with(|cfg| {
            cfg.interactive_wait_ms = 300;
            cfg.queue_max_jobs = 1;
        })
        .await;
        let mut fake = RawProvider::connect(&c, 1).await;
        c.wait_providers(1).await;
        let key = c.api_key().await;

        // Fill the fake provider's queue; it accepts jobs and never answers.
        // The placement policy counts a provider full at max_concurrency x queue_factor.
        let capacity = proofmesh_placement::PlacementConfig::default().queue_factor as usize;
        let mut pending = Vec::new();
        let mut jobs = Vec::new();
        for i in 0..capacity {
            pending.push(c.spawn_chat(&key, chat_body("hi", i as u64, 2, false)));
            jobs.push(fake.next_job().await);
        }

        // A hard objective: refused after the bounded wait, saying why.
        let hard = c.spawn_chat_with(
            &key,
            chat_body("hi", 0, 2, false),
            "interactive;ttft_ms=500;hard",
        );
        let resp = join_chat(hard).await;
        let retry = resp.headers().get("retry-after").cloned();
        let err = expect_error(resp, 503, "ttft_objective_unmet").await;
        assert_eq!(err["type"], "service_unavailable_error");
        assert_eq!(err["model"], MODEL);
        assert!(err["job_id"]
            .as_str()
            .is_some_and(|j| j.starts_with("job_")));
        assert!(
            err["message"].as_str().unwrap().contains("at capacity"),
            "{err}"
        );
        let retry: u64 = retry
            .expect("Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1 && err["retry_after_s"] == retry);

        // A soft request waits (it takes the one place in the queue) ...
        let waiting = c.spawn_chat(&key, chat_body("wait for me", 5, 2, false));
        poll_until("the request waits in the queue", || async {
            let m = c
                .http
                .get(format!("{}/metrics", c.base))
                .send()
                .await
                .ok()?;
            let text = m.text().await.ok()?;
            text.lines()
                .any(|l| l.starts_with("proofmesh_jobs_waiting ") && l.ends_with(" 1"))
                .then_some(())
        })
        .await;
        let metrics = c
            .http
            .get(format!("{}/metrics", c.base))
            .send()
            .await
            .unwrap();
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains("# HELP proofmesh_jobs_waiting Jobs waiting for a provider"),
            "{text}"
        );
        // ... so the next one finds the queue full: 429, nothing charged.
        let resp = c.chat(&key, &chat_body("hi", 0, 2, true)).await;
        assert!(resp.headers().get("retry-after").is_some());
        let err = expect_error(resp, 429, "queue_full").await;
        assert_eq!(err["model"], MODEL);
        assert!(err["job_id"]
            .as_str()
            .is_some_and(|j| j.starts_with("job_")));

        // A slot frees up (the provider fails one job): the waiting request
        // is dispatched to it rather than refused.
        let freed = jobs.remove(0);
        fake.send(&proofmesh_wire::ProviderMsg::Failed {
            job_id: freed.job_id.clone(),
            code: "internal".into(),
            message: "out of memory".into(),
        })
        .await;
        let dispatched = fake.next_job().await;
        assert_eq!(dispatched.messages[0].content, "wait for me");
        jobs.push(dispatched);
        expect_error(join_chat(pending.remove(0)).await, 502, "provider_failed").await;
        pending.push(waiting);

        // When the fake dies, its queued jobs fail cleanly (no other provider).
        fake.vanish().await;
        for p in pending {
            expect_error(join_chat(p).await, 502, "provider_failed").await;
        }
        for j in jobs {
            let s = c.wait_job_settled(&j.job_id).await;
            assert_eq!(s.status, "failed");
        }
    })
    .await
}
