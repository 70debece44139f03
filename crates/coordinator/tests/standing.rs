//! A provider's standing survives reconnects (issue 17): after a provider
//! disconnects and reconnects, `GET /v1/providers` shows the reputation its
//! durable audit record earns (not the registry's initial 5,000 bp), and the
//! uptime placement filters on is measured — ≥ 99.9% while connected, lower
//! after time away (disconnected time counts as down), rising again as
//! heartbeats arrive. Before the fix the reconnect read 5,000 bp and 0%.

mod common;

use std::time::Duration;

use common::*;
use futures::SinkExt;
use proofmesh_receipt::Identity;
use proofmesh_store::{AuditPenalty, AuditStore, ProofFailure};
use proofmesh_wire::{CoordinatorMsg, ProviderMsg};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Connects a raw provider as `identity` and heartbeats every 100 ms until
/// the returned task is aborted (which drops the socket, like a crash).
async fn connect_as(coord: &Coordinator, identity: &Identity) -> JoinHandle<()> {
    let (mut ws, nonce, coordinator_key) = raw_connect(coord).await;
    send_msg(&mut ws, &hello(identity, &nonce, &coordinator_key, 1)).await;
    match next_coordinator_msg(&mut ws).await {
        Ok(CoordinatorMsg::Welcome { .. }) => {}
        other => panic!("expected welcome, got {other:?}"),
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let beat = serde_json::to_string(&ProviderMsg::Heartbeat { in_flight: 0 })
            .expect("encode heartbeat");
        loop {
            tick.tick().await;
            if ws.send(Message::Text(beat.clone().into())).await.is_err() {
                return;
            }
        }
    })
}

/// The provider's row in `GET /v1/providers`, if listed.
async fn row(coord: &Coordinator, key: &str) -> Option<Value> {
    coord
        .providers("")
        .await
        .into_iter()
        .find(|r| r["id"] == key)
}

fn bp(row: &Value, field: &str) -> u64 {
    row[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {row}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reputation_and_uptime_survive_a_reconnect() {
    bounded(async {
        let c = Coordinator::start_with(|cfg| {
            no_audits(cfg);
            // A one-minute epoch: the shortest the uptime rule promises
            // ≥ 99.9% for a provider that stays connected.
            cfg.statement_epoch_s = 60;
        })
        .await;
        let identity = Identity::generate();
        let key = identity.public().to_string();

        // First connection: never audited, so the initial reputation; up
        // since it connected.
        let beats = connect_as(&c, &identity).await;
        c.wait_providers(1).await;
        let first = row(&c, &key).await.expect("provider listed");
        assert_eq!(bp(&first, "reputation_bp"), 5_000, "{first}");
        assert!(bp(&first, "uptime_bp") >= 9_990, "{first}");
        // It stays ≥ 99.9% while it heartbeats.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let still = row(&c, &key).await.expect("provider listed");
        assert!(bp(&still, "uptime_bp") >= 9_990, "{still}");

        // A failed audit lands in its durable record (as a failed proof of
        // inference does): reputation (0 + 1) / (0 + 1 + 10 × 1) = 900 bp.
        let failure = ProofFailure {
            job_id: "job-standing-1".into(),
            provider_key: key.clone(),
            reason: "test: failed proof".into(),
            receipt_json: "{}".into(),
            bundle_json: "{}".into(),
            at_ms: proofmesh_ambient::clock::now_ms(),
        };
        let penalty = AuditPenalty {
            slash_micros: 0,
            stake_after_micros: i64::MAX,
            refund_micros: 0,
            max_failed_audits: 100,
        };
        let stats = c
            .store
            .record_proof_failure(&failure, penalty)
            .await
            .expect("record failure");
        assert_eq!((stats.audits_failed, stats.excluded), (1, false));

        // Disconnect, stay away a while, reconnect with the same key.
        beats.abort();
        let _ = beats.await;
        c.wait_providers(0).await;
        poll_until("provider unlisted", || async {
            row(&c, &key).await.is_none().then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let beats = connect_as(&c, &identity).await;
        c.wait_providers(1).await;
        let back = row(&c, &key).await.expect("provider listed again");
        assert_eq!(
            bp(&back, "reputation_bp"),
            900,
            "reputation must come from the audit record, not reset: {back}"
        );
        let uptime = bp(&back, "uptime_bp");
        assert!(
            uptime > 0 && uptime < 9_990,
            "uptime must be measured, with the time away counted as down: {back}"
        );

        // Heartbeats raise it again.
        let higher = poll_until("uptime rising with heartbeats", || async {
            let r = row(&c, &key).await?;
            (bp(&r, "uptime_bp") > uptime).then_some(bp(&r, "uptime_bp"))
        })
        .await;
        assert!(higher <= 10_000);

        beats.abort();
        let _ = beats.await;
        c.stop().await;
    })
    .await;
}
