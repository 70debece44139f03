//! Metrics statements (the covenant oracle) against a real coordinator, real
//! provider and verifier agents and the real log: statements are signed,
//! chained, included in the log, and recompute exactly from the log's
//! receipts, audit reports and heartbeat logs; inflated statements are
//! caught whether re-signed by another key, not re-signed, or re-signed by
//! the coordinator's own key; and the epoch task publishes on its own.

mod common;

use std::sync::Arc;

use common::*;
use proofmesh_ambient::clock::now_ms;
use proofmesh_coordinator::server::{db_path, key_path, log_key_path};
use proofmesh_coordinator::statements::{self, Publisher};
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_ledger::statement::evidence::Evidence;
use proofmesh_ledger::{
    genesis_hash, recheck, verify_chain, Epoch, SignedStatement, StatementError, StatementFigures,
};
use proofmesh_log::LogEntry;
use proofmesh_receipt::{Identity, PublicKey};
use proofmesh_store::{LogStore, SqliteStore};
use proofmesh_tlog::{decode_proof, verify_inclusion, CheckpointVerifier};
use serde_json::Value;

/// Waits until the receipt's audit has passed.
async fn wait_audit_passed(c: &Coordinator, key: &str, id: &str) {
    poll_until(&format!("audit of {id} passed"), || async move {
        let resp = c.get_receipt(key, id).await;
        let h = resp.headers().get("x-proofmesh-audit")?.to_str().ok()?;
        (h == "passed").then_some(())
    })
    .await;
}

/// A publisher over a stopped coordinator's data directory, as an operator
/// tool would open it; await the task after `log.close()`.
async fn offline_publisher(cfg: &CoordinatorConfig) -> (Publisher, tokio::task::JoinHandle<()>) {
    let dir = &cfg.data_dir;
    let store = SqliteStore::open(&db_path(dir)).await.unwrap();
    let identity = Identity::load(&key_path(dir)).unwrap();
    let log_key = Identity::load(&log_key_path(dir)).unwrap();
    let signer =
        proofmesh_tlog::CheckpointSigner::from_seed(&cfg.log_origin, &log_key.seed()).unwrap();
    let (log, task) = proofmesh_log::Log::open(Arc::new(store.clone()), signer, cfg.log())
        .await
        .unwrap();
    let publisher = Publisher {
        store: Arc::new(store),
        log,
        identity: Arc::new(identity),
        params: statements::params(cfg).unwrap(),
    };
    (publisher, task)
}

/// `GET /v1/providers/{key}/statements`, every inclusion proof checked
/// against the signed checkpoint in the answer: `(index, statement)` pairs.
async fn fetch_included(c: &Coordinator, provider: &PublicKey) -> Vec<(u64, SignedStatement)> {
    let url = format!("{}/v1/providers/{provider}/statements", c.base);
    let resp = c.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let info = c.info().await;
    let verifier = CheckpointVerifier::new(
        info["log_origin"].as_str().unwrap(),
        info["log_key"].as_str().unwrap(),
    )
    .unwrap();
    let cp = verifier
        .verify(v["checkpoint"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(v["tree_size"], cp.size);
    let mut out = Vec::new();
    for item in v["statements"].as_array().unwrap() {
        let index = item["index"].as_u64().unwrap();
        let s: SignedStatement = serde_json::from_value(item["statement"].clone()).unwrap();
        assert_eq!(item["statement_hash"], s.body.hash().as_str());
        let proof: Vec<String> = serde_json::from_value(item["inclusion_proof"].clone()).unwrap();
        let leaf = LogEntry::Statement(s.clone()).leaf_hash().unwrap();
        verify_inclusion(
            index,
            cp.size,
            &leaf,
            &decode_proof(&proof).unwrap(),
            &cp.root,
        )
        .expect("statement is included under the signed checkpoint");
        out.push((index, s));
    }
    out
}

/// Recomputes a statement from the entries logged before it, by the rule
/// the coordinator publishes with.
async fn recompute(store: &SqliteStore, index: u64, s: &SignedStatement) -> Evidence {
    let mut ev = Evidence::new(s.body.epoch, s.body.coordinator.clone());
    for bytes in store.log_entries(0, index).await.unwrap() {
        ev.add(&LogEntry::decode(&bytes).unwrap());
    }
    ev
}

/// What [`serve_jobs`] did.
struct Served {
    provider: PublicKey,
    coordinator: PublicKey,
    charges: Vec<u64>,
    epoch: Epoch,
}

/// Runs three jobs (the first audited, and passing) on a coordinator with a
/// provider and a verifier, waits for the next whole second (the end of the
/// epoch that started before the coordinator), and stops everything (the
/// coordinator flushes its heartbeat log on the way out).
async fn serve_jobs(cfg: &CoordinatorConfig, verifier: Identity) -> Served {
    let t0 = now_ms() / 1000;
    let c = Coordinator::start_in(cfg.clone()).await;
    let p = TestProvider::start(&c);
    let v = TestProvider::start_verifier(&c, verifier);
    c.wait_providers(1).await;
    let key = c.api_key().await;
    let mut charges = Vec::new();
    let mut audited = String::new();
    for i in 0..3u64 {
        let mut body = chat_body("count my revenue", i, 6, false);
        if i == 0 {
            body["verification"] = "always".into();
        }
        let (json, id) = complete(&c, &key, &body).await;
        charges.push(json["proofmesh"]["charged_micros"].as_u64().unwrap());
        if i == 0 {
            audited = id;
        }
    }
    wait_audit_passed(&c, &key, &audited).await;
    let t1 = now_ms() / 1000 + 1;
    poll_until("the epoch's end", || async move {
        (now_ms() >= t1 * 1000).then_some(())
    })
    .await;
    let provider = p.key().clone();
    p.kill().await;
    v.kill().await;
    let coordinator = c.coordinator_key().await;
    c.stop().await;
    Served {
        provider,
        coordinator,
        charges,
        epoch: Epoch::new(t0, t1).unwrap(),
    }
}

/// An inflated copy of an honest statement is caught: unsigned by its
/// signature, re-signed by another key by the pinned key, and re-signed by
/// the coordinator's own key by recomputation (`honest` = recomputed figures).
fn assert_inflation_is_caught(
    s: &SignedStatement,
    signer: &Identity,
    coordinator: &PublicKey,
    honest: &StatementFigures,
) {
    let mut inflated = s.clone();
    inflated.body.figures.revenue_micros += 1_000_000;
    assert!(matches!(
        inflated.verify(0),
        Err(StatementError::BadSignature { .. })
    ));
    let other = Identity::generate();
    let mut body = inflated.body.clone();
    body.coordinator = other.public().clone();
    let forged = SignedStatement::sign(body, &other).unwrap();
    assert!(matches!(
        verify_chain(&[forged], Some(coordinator), Some(&genesis_hash())),
        Err(StatementError::Sequence { .. })
    ));
    let lie = SignedStatement::sign(inflated.body.clone(), signer).unwrap();
    verify_chain(
        std::slice::from_ref(&lie),
        Some(coordinator),
        Some(&genesis_hash()),
    )
    .unwrap();
    let m = recheck(&lie.body.figures, honest);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].field, "revenue_micros");
    assert_eq!(
        (m[0].claimed, m[0].recomputed),
        (honest.revenue_micros + 1_000_000, honest.revenue_micros)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_recompute_from_the_log_and_inflation_is_caught() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let verifier = Identity::generate();
        let mut cfg = test_config(dir.path());
        cfg.trusted_verifiers = vec![verifier.public().to_string()];
        no_audits(&mut cfg);
        let served = serve_jobs(&cfg, verifier).await;
        let (epoch, provider) = (served.epoch, &served.provider);

        let (publisher, task) = offline_publisher(&cfg).await;
        let published = publisher.publish(&[epoch], now_ms()).await.unwrap();
        assert_eq!(published.len(), 1, "one provider, one statement");
        let again = publisher.publish(&[epoch], now_ms()).await.unwrap();
        assert!(again.is_empty(), "an epoch is published once per provider");
        let open = Epoch::new(epoch.end_s(), now_ms() / 1000 + 60).unwrap();
        assert!(matches!(
            publisher.publish(&[open], now_ms()).await,
            Err(statements::StatementsError::Open { .. })
        ));
        let signer = publisher.identity.clone();
        publisher.log.close().await;
        task.await.unwrap();

        let c = Coordinator::start_in(cfg.clone()).await;
        let found = fetch_included(&c, provider).await;
        assert_eq!(found.len(), 1);
        let (index, s) = &found[0];
        assert_eq!((*index, s), (published[0].index, &published[0].statement));
        verify_chain(
            std::slice::from_ref(s),
            Some(&served.coordinator),
            Some(&genesis_hash()),
        )
        .unwrap();
        let f = &s.body.figures;
        let fee = |m: u64| m * u64::from(cfg.protocol_fee_bps) / 10_000;
        assert_eq!((s.body.epoch, f.jobs_served), (epoch, 3));
        assert_eq!(f.revenue_micros, served.charges.iter().sum::<u64>());
        let net: u64 = served.charges.iter().map(|m| m - fee(*m)).sum();
        assert_eq!(f.net_revenue_micros, net);
        let audits = (f.audits_passed, f.audits_failed, f.refunded_micros);
        assert_eq!(audits, (1, 0, 0));
        assert!(f.heartbeats > 0 && f.uptime_ms > 0, "{f:?}");
        assert!(f.uptime_ms <= epoch.len_ms() && f.busy_ms > 0, "{f:?}");
        let ev = recompute(&c.store, *index, s).await;
        let again = ev.compute(provider, &s.body.params).unwrap();
        assert_eq!(&again.figures, f, "the statement is what the log supports");
        assert!(again.ignored.is_empty(), "{:?}", again.ignored);
        assert_inflation_is_caught(s, &signer, &served.coordinator, &again.figures);
        c.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_task_publishes_settled_epochs_on_its_own() {
    bounded(async {
        let c = Coordinator::start_with(|cfg| {
            cfg.statement_epoch_s = 1;
            no_audits(cfg);
        })
        .await;
        let p = TestProvider::start(&c);
        c.wait_providers(1).await;
        let provider = p.key().clone();
        let key = c.api_key().await;
        complete(&c, &key, &chat_body("once", 1, 4, false)).await;
        // Epochs are 1 s: wait until one statement counts the job and one
        // (the same or a later one) counts logged heartbeats; on a busy
        // machine the first epochs may close before a heartbeat log.
        let found = poll_until("statements counting the job and heartbeats", || {
            let (c, provider) = (&c, &provider);
            async move {
                let found = fetch_included(c, provider).await;
                let jobs: u64 = found.iter().map(|(_, s)| s.body.figures.jobs_served).sum();
                let beats = found.iter().any(|(_, s)| s.body.figures.heartbeats > 0);
                (jobs == 1 && beats).then_some(found)
            }
        })
        .await;
        let coord_key = c.coordinator_key().await;
        let chain: Vec<SignedStatement> = found.iter().map(|(_, s)| s.clone()).collect();
        verify_chain(&chain, Some(&coord_key), Some(&genesis_hash())).unwrap();
        assert!(chain.iter().all(|s| s.body.epoch.len_ms() == 1_000));
        assert!(
            chain.iter().any(|s| s.body.figures.heartbeats > 0),
            "heartbeats are logged before the statements that use them"
        );
        for (index, s) in &found {
            let ev = recompute(&c.store, *index, s).await;
            let figures = ev.compute(&provider, &s.body.params).unwrap().figures;
            assert!(recheck(&s.body.figures, &figures).is_empty(), "{s:?}");
        }
        let bad = c
            .http
            .get(format!("{}/v1/providers/nope/statements", c.base))
            .send()
            .await
            .unwrap();
        expect_error(bad, 400, "invalid_parameter").await;
        p.kill().await;
        c.stop().await;
    })
    .await;
}
