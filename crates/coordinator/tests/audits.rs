//! Audits end to end: a real verifier agent re-executes jobs chosen for audit;
//! honest providers pass, a provider that fabricates its output (with a
//! well-formed fingerprint) fails, is slashed and excluded, and the signed
//! audit reports ride along in the receipts.

mod common;

use common::*;
use proofmesh_receipt::{AuditOutcome, Guarantee, Identity};
use proofmesh_store::{AuditStore, LedgerStore};
use serde_json::Value;

fn always(mut body: Value) -> Value {
    body["verification"] = "always".into();
    body
}

/// Polls the receipt until its audit is no longer pending.
/// A provider's USD stake as the ledger (stake's one source of truth) holds
/// it, once it reads `want` (the slash of a failed audit is applied just
/// after its report is stored), or what it holds after 5 s.
async fn ledger_stake(c: &Coordinator, provider: &str, want: i64) -> i64 {
    let account = proofmesh_ledger::AccountId::ProviderStake(provider.to_string()).to_string();
    let mut last = 0;
    for _ in 0..100 {
        let balances = c.store.ledger_balances(&account).await.unwrap();
        last = balances
            .iter()
            .find(|(cur, _)| cur == "USD")
            .map_or(0, |(_, m)| *m);
        if last == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last
}

async fn audited_receipt(c: &Coordinator, key: &str, id: &str) -> proofmesh_receipt::Receipt {
    let coord_key = c.coordinator_key().await;
    poll_until(&format!("audit of {id}"), || {
        let coord_key = coord_key.clone();
        async move {
            let resp = c.get_receipt(key, id).await;
            let status = resp
                .headers()
                .get("x-proofmesh-audit")?
                .to_str()
                .ok()?
                .to_string();
            let bytes = resp.bytes().await.ok()?;
            (status == "passed" || status == "failed").then(|| verified_receipt(&bytes, &coord_key))
        }
    })
    .await
}

#[tokio::test]
async fn honest_jobs_pass_audit_and_receipts_say_audited() {
    bounded(async {
        let verifier = Identity::generate();
        let vk = verifier.public().to_string();
        let c = Coordinator::start_with(|cfg| cfg.trusted_verifiers = vec![vk]).await;
        let p = TestProvider::start(&c);
        let _v = TestProvider::start_verifier(&c, verifier);
        c.wait_providers(1).await;
        let key = c.api_key().await;
        let mut body = always(chat_body("hello there", 3, 12, false));
        body["temperature"] = 0.8.into();
        let (resp, receipt_id) = complete(&c, &key, &body).await;
        assert!(resp["choices"][0]["message"]["content"].is_string());
        let r = audited_receipt(&c, &key, &receipt_id).await;
        assert_eq!(r.guarantee(), Guarantee::Audited, "{:?}", r.audits);
        assert_eq!(r.audits.len(), 1);
        assert_eq!(r.audits[0].body.outcome, AuditOutcome::Passed);
        let stats = c
            .store
            .provider_stats(p.key().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stats.audits_passed, stats.audits_failed), (1, 0));
        let initial = proofmesh_coordinator::CoordinatorConfig::default().initial_stake_micros;
        assert_eq!(ledger_stake(&c, p.key().as_str(), initial).await, initial);
    })
    .await;
}

#[tokio::test]
async fn fabricated_output_fails_audit_slashes_and_excludes_the_provider() {
    bounded(async {
        let verifier = Identity::generate();
        let vk = verifier.public().to_string();
        let c = Coordinator::start_with(|cfg| {
            cfg.trusted_verifiers = vec![vk];
            cfg.max_failed_audits = 1;
        })
        .await;
        // Test seam: a raw provider that answers with made-up tokens and a
        // well-formed (but meaningless) fingerprint. The coordinator can only
        // check shape and signatures; only re-execution catches it.
        let mut cheat = RawProvider::connect(&c, 1).await;
        let _v = TestProvider::start_verifier(&c, verifier);
        c.wait_providers(1).await;
        let key = c.api_key().await;
        let coord_key = c.coordinator_key().await;
        let body = always(chat_body("hello there", 3, 12, false));
        let req = {
            let c = &c;
            let key = key.clone();
            async move { complete(c, &key, &body).await }
        };
        let serve = async {
            let spec = cheat.next_job().await;
            let pieces = [(40u32, "a"), (41, "b")];
            let result = honest_result(&spec, &cheat.identity, &coord_key, &pieces);
            cheat.deliver(&spec, &pieces, result).await;
        };
        let ((_, receipt_id), ()) = tokio::join!(req, serve);
        let r = audited_receipt(&c, &key, &receipt_id).await;
        assert_eq!(r.guarantee(), Guarantee::AuditFailed);
        assert!(
            !r.audits[0].body.reason.is_empty(),
            "a failed audit names its reason"
        );
        let stats = c
            .store
            .provider_stats(cheat.key().as_str())
            .await
            .unwrap()
            .unwrap();
        let cfg = proofmesh_coordinator::CoordinatorConfig::default();
        assert_eq!(stats.audits_failed, 1);
        let slashed = cfg.initial_stake_micros - cfg.slash_micros;
        assert_eq!(
            ledger_stake(&c, cheat.key().as_str(), slashed).await,
            slashed
        );
        assert!(stats.excluded);
        // Excluded: the next request finds no eligible provider.
        let resp = c.chat(&key, &chat_body("again", 1, 4, false)).await;
        expect_error(resp, 503, "no_provider_available").await;
    })
    .await;
}

#[tokio::test]
async fn untrusted_verifiers_are_refused() {
    bounded(async {
        let c = Coordinator::start().await;
        let _v = TestProvider::start_verifier(&c, Identity::generate());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(c.info().await["verifiers_connected"], 0);
    })
    .await;
}

/// TEST SEAM: a raw "verifier" on the verifier endpoint that sends forged,
/// misdirected and malformed reports. None may change any audit's state, and
/// the coordinator keeps serving.
#[tokio::test]
async fn forged_and_malformed_audit_reports_are_rejected() {
    use futures::{SinkExt, StreamExt};
    use proofmesh_receipt::{receipt_body_digest, AuditBody, AuditReport, Digest, AUDIT_VERSION};
    use proofmesh_wire::{CoordinatorMsg, ProviderMsg};
    use tokio_tungstenite::tungstenite::Message;
    bounded(async {
        let verifier = Identity::generate();
        let vk = verifier.public().to_string();
        let c = Coordinator::start_with(|cfg| cfg.trusted_verifiers = vec![vk]).await;
        let _p = TestProvider::start(&c);
        c.wait_providers(1).await;
        let url = c
            .ws_url()
            .replace("/v1/provider/connect", "/v1/verifier/connect");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let CoordinatorMsg::Challenge {
            nonce,
            coordinator_key,
            ..
        } = next_coordinator_msg(&mut ws).await.unwrap()
        else {
            panic!("expected challenge")
        };
        send_msg(&mut ws, &hello(&verifier, &nonce, &coordinator_key, 1)).await;
        assert!(matches!(
            next_coordinator_msg(&mut ws).await,
            Ok(CoordinatorMsg::Welcome { .. })
        ));

        let key = c.api_key().await;
        let (_, receipt_id) = complete(&c, &key, &always(chat_body("hi", 1, 6, false))).await;
        let task = loop {
            match next_coordinator_msg(&mut ws).await.unwrap() {
                CoordinatorMsg::Audit(t) => break t,
                _ => continue,
            }
        };
        assert_eq!(task.receipt.body.receipt_id, receipt_id);
        let mut body = AuditBody {
            version: AUDIT_VERSION,
            audit_id: task.audit_id.clone(),
            receipt_id: receipt_id.clone(),
            receipt_digest: Digest::of(b"some other receipt"),
            verifier_key: verifier.public().clone(),
            outcome: AuditOutcome::Failed,
            reason: "forged".into(),
            positions_checked: 1,
            checked_at_ms: 1,
        };
        // Wrong receipt digest, then a report signed by another key, then one
        // for an audit that was never assigned: all refused.
        let forged = [
            AuditReport::sign(body.clone(), &verifier),
            {
                body.receipt_digest = receipt_body_digest(&task.receipt.body);
                let mut r = AuditReport::sign(body.clone(), &Identity::generate());
                r.body.verifier_key = verifier.public().clone();
                r
            },
            {
                let mut b = body.clone();
                b.audit_id = "aud_never_assigned".into();
                AuditReport::sign(b, &verifier)
            },
        ];
        for r in forged {
            send_msg(
                &mut ws,
                &ProviderMsg::AuditDone {
                    report: Box::new(r),
                },
            )
            .await;
        }
        ws.send(Message::Text("{not json".into())).await.unwrap();
        // The malformed frame drops the connection...
        let end = loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                Some(Ok(_)) => continue,
            }
        };
        assert!(end);
        // ...and nothing was applied: the audit is still pending, the provider untouched.
        let resp = c.get_receipt(&key, &receipt_id).await;
        assert_eq!(resp.headers()["x-proofmesh-audit"], "pending");
        let r = verified_receipt(&resp.bytes().await.unwrap(), &c.coordinator_key().await);
        assert!(r.audits.is_empty());
        let stats = c
            .store
            .provider_stats(_p.key().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stats.audits_passed, stats.audits_failed), (0, 0));
        assert_eq!(c.info().await["providers_connected"], 1);
    })
    .await;
}
