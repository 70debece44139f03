//! Money through the gateway, against the real store: a job escrows its
//! worst case, the receipt's exact charge goes to the provider minus the
//! protocol fee, the rest returns to the client; an unfunded client gets a
//! 402 with a stable code; a job that fails is refunded in full; the balance,
//! usage and earnings endpoints show it.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_charges_exactly_the_receipt_and_pays_the_provider() {
    bounded(async {
        let coord = Coordinator::start_with(no_audits).await;
        let provider = TestProvider::start(&coord);
        coord.wait_providers(1).await;
        let key = coord.api_key().await;
        let (json, id) = complete(&coord, &key, &chat_body("bill me", 5, 16, false)).await;
        let charged = json["proofmesh"]["charged_micros"].as_i64().unwrap();
        assert!(charged > 0);
        let receipt = coord
            .get_receipt(&key, &id)
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(
            receipt["body"]["price"]["charged_micros"].as_i64().unwrap(),
            charged
        );

        let bal = coord.get_json(Some(&key), "/v1/balance").await;
        assert_eq!(usd(&bal, "balances"), 100_000_000 - charged);
        let usage = coord.get_json(Some(&key), "/v1/usage").await;
        let reasons: Vec<&str> = usage["activity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["reason"].as_str().unwrap())
            .collect();
        // Escrow, then the release, whose refund line appears only when the
        // worst case exceeded the exact charge.
        assert!(reasons.contains(&"escrow"), "{reasons:?}");

        let pk = provider.key().to_string();
        let earn = coord
            .get_json(None, &format!("/v1/providers/{pk}/earnings"))
            .await;
        let fee = charged * 500 / 10_000;
        assert_eq!(usd(&earn, "earnings"), charged - fee);
        assert_eq!(usd(&earn, "stake"), 10_000_000);
        provider.kill().await;
        coord.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfunded_clients_get_402_and_failed_jobs_are_refunded() {
    bounded(async {
        let coord = Coordinator::start_with(no_audits).await;
        let provider = TestProvider::start(&coord);
        coord.wait_providers(1).await;
        let (broke, _) = coord.unfunded_api_key().await;
        let resp = coord
            .chat(&broke, &chat_body("free lunch?", 1, 16, false))
            .await;
        assert_eq!(resp.status(), 402);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "insufficient_balance");
        assert_eq!(
            usd(
                &coord.get_json(Some(&broke), "/v1/balance").await,
                "balances"
            ),
            0
        );

        // A provider takes the job and dies; nobody else serves the model:
        // the job fails after its escrow, and the escrow comes back in full.
        provider.kill().await;
        let key = coord.api_key().await;
        let mut raw = RawProvider::connect(&coord, 1).await;
        coord.wait_providers(1).await;
        let pending = coord.spawn_chat(&key, chat_body("anyone?", 2, 16, false));
        let spec = raw.next_job().await;
        raw.send(&proofmesh_wire::ProviderMsg::Failed {
            job_id: spec.job_id.clone(),
            code: "engine_error".into(),
            message: "simulated crash".into(),
        })
        .await;
        let status = join_chat(pending).await.status();
        assert!(status.is_server_error(), "{status}");
        let bal = coord.get_json(Some(&key), "/v1/balance").await;
        assert_eq!(usd(&bal, "balances"), 100_000_000);
        let usage = coord.get_json(Some(&key), "/v1/usage").await;
        let refunds = usage["activity"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["reason"] == "refund")
            .count();
        assert_eq!(refunds, 1, "{usage}");
        // A malformed provider key is a 400, not a lookup.
        let r = coord
            .http
            .get(format!("{}/v1/providers/nope/earnings", coord.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        coord.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_max_price_is_enforced() {
    bounded(async {
        let coord = Coordinator::start_with(no_audits).await;
        let provider = TestProvider::start(&coord);
        coord.wait_providers(1).await;
        let key = coord.api_key().await;
        // A cap below what the prompt alone may cost: refused, nothing held.
        let mut body = chat_body("a prompt of some length", 3, 64, false);
        body["max_price_micros"] = serde_json::json!(1);
        let resp = coord.chat(&key, &body).await;
        assert_eq!(resp.status(), 400);
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["param"], "max_price_micros");
        assert_eq!(
            usd(&coord.get_json(Some(&key), "/v1/balance").await, "balances"),
            100_000_000
        );

        // A cap that fits the prompt and a few tokens: max_tokens is lowered
        // so the worst case fits, and the receipt's charge is within the cap.
        // Test rates: 0.1 micro per prompt token, 0.2 per completion token.
        let cap = 12u64;
        body["max_price_micros"] = serde_json::json!(cap);
        let (json, id) = complete(&coord, &key, &body).await;
        assert!(json["proofmesh"]["charged_micros"].as_u64().unwrap() <= cap);
        let receipt: serde_json::Value = coord.get_receipt(&key, &id).await.json().await.unwrap();
        let max_tokens = receipt["body"]["sampling"]["max_tokens"].as_u64().unwrap();
        assert!(max_tokens < 64, "max_tokens {max_tokens} was not lowered");
        let spent = 100_000_000 - usd(&coord.get_json(Some(&key), "/v1/balance").await, "balances");
        assert!(spent as u64 <= cap, "spent {spent}");
        provider.kill().await;
        coord.stop().await;
    })
    .await
}
