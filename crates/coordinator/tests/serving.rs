//! Serving every request the network can serve (issue 17), against real
//! provider agents on the tiny model: the prompt is counted by the model's
//! own tokenizer, RTT and rates come from measurements and are labelled so,
//! a burst of 100 concurrent requests is queued rather than refused, and
//! single requests are served again right after it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The tiny model written to a file the coordinator can read its tokenizer
/// from (the shared test engine deletes its own copy after loading).
fn tiny_model_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tiny.gguf");
    proofmesh_engine::testing::write_tiny_gguf(&path, 7).expect("write tiny gguf");
    path
}

/// A coordinator that reads the tiny model's tokenizer (no sampled
/// audits), with two real providers registered; the temp dir holds the
/// model file.
async fn network_of_two() -> (tempfile::TempDir, Coordinator, [TestProvider; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model_file(dir.path());
    let c = Coordinator::start_with(|cfg| {
        cfg.model_files = vec![model];
        no_audits(cfg);
    })
    .await;
    let providers = [TestProvider::start(&c), TestProvider::start(&c)];
    c.wait_providers(2).await;
    (dir, c, providers)
}

/// The placement record that dispatched the job of response `v` (a job
/// that waited also has records of the placements that found nothing).
async fn placement_of(c: &Coordinator, key: &str, v: &Value) -> Value {
    let rid = v["proofmesh"]["receipt_id"].as_str().unwrap();
    let receipt: Value = c.get_receipt(key, rid).await.json().await.unwrap();
    let job_id = receipt["body"]["job_id"].as_str().unwrap().to_string();
    let all = c
        .get_json(Some(key), &format!("/v1/jobs/{job_id}/placement"))
        .await;
    all["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a.get("placement").is_some())
        .cloned()
        .unwrap_or_else(|| panic!("no successful placement in {all}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_counted_by_the_tokenizer_and_estimates_are_measured() {
    bounded(async {
        let (_dir, c, providers) = network_of_two().await;
        let key = c.api_key().await;
        // Pings measured (heartbeat 200 ms in tests, 3 samples needed).
        poll_until("RTT measured", || async {
            let ps = c.providers("").await;
            let ok = ps.len() == 2
                && ps.iter().all(|p| {
                    let r = if p.get("record").is_some() {
                        &p["record"]
                    } else {
                        p
                    };
                    r["rtt"]["samples_total"].as_u64() >= Some(3)
                });
            ok.then_some(())
        })
        .await;

        // A system prompt and a long user message, at the default objective.
        let long = "The quick brown fox jumps over the lazy dog. ".repeat(8);
        let body = serde_json::json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": long},
            ],
            "max_tokens": 4,
            "temperature": 0,
        });
        let (v, _) = complete(&c, &key, &body).await;
        let billed = v["usage"]["prompt_tokens"].as_u64().unwrap();
        let first = placement_of(&c, &key, &v).await;
        // Counted exactly as the provider's engine counts it (the bound was
        // one token per byte).
        assert_eq!(first["prompt_counted_by"], "tokenizer", "{first}");
        assert_eq!(first["prompt_tokens"].as_u64(), Some(billed), "{first}");
        // The old estimate: one token per byte plus 8 per message and reply.
        let bound =
            (long.len() + "user".len() + 8 + "You are terse.".len() + "system".len() + 8 + 8)
                as u64;
        assert!(billed < bound, "{billed} vs bound {bound}");
        let est = &first["placement"]["chosen"]["estimate"];
        assert_eq!(est["provider_rtt_source"], "measured", "{est}");
        assert!(est["provider_rtt_ms"].as_f64().unwrap() < 50.0, "{est}");

        // The response says where the time went.
        let t = &v["proofmesh"]["timing"];
        for f in ["queued_ms", "provider_ms", "finish_ms", "provider_ttft_ms"] {
            assert!(t[f].as_f64().is_some_and(|x| x >= 0.0), "{f}: {t}");
        }
        assert!(t["provider_ttft_ms"].as_f64() <= t["provider_ms"].as_f64());

        // After a few jobs the rates are measured, separately.
        for seed in 0..3 {
            complete(&c, &key, &chat_body("Tell me a story", seed, 6, false)).await;
        }
        let (v, _) = complete(&c, &key, &chat_body("And another", 9, 6, false)).await;
        let record = placement_of(&c, &key, &v).await;
        assert_eq!(record["mode"], "as_asked", "{record}");
        let est = &record["placement"]["chosen"]["estimate"];
        assert_eq!(est["throughput_source"], "measured", "{est}");
        for p in providers {
            p.kill().await;
        }
        c.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100_is_queued_not_refused_and_single_requests_recover() {
    let test = async {
        let (_dir, c, providers) = network_of_two().await;
        let key = c.api_key().await;
        let burst: Vec<_> = (0..100)
            .map(|i| {
                let stream = i % 2 == 0;
                c.spawn_chat(&key, chat_body(&format!("Count to {i}"), i, 6, stream))
            })
            .collect();
        let mut statuses = Vec::new();
        for h in burst {
            let resp = h.await.expect("request task");
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            statuses.push((status, body));
        }
        let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s != 200).collect();
        assert!(
            refused.is_empty(),
            "{} of 100 refused, e.g. {:?}",
            refused.len(),
            refused.first()
        );
        // Streams that succeeded end with the receipt, not an error event.
        for (_, body) in statuses.iter().filter(|(_, b)| b.starts_with("data:")) {
            assert!(body.contains("\"receipt_id\"") && body.ends_with("data: [DONE]\n\n"));
        }

        // Right after the burst: single requests are served promptly.
        for seed in 0..3 {
            let t = Instant::now();
            complete(&c, &key, &chat_body("Hi", seed, 2, false)).await;
            assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        }
        for p in providers {
            p.kill().await;
        }
        c.stop().await;
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("burst test timed out");
}
