//! Integration tests for the billing store: Idempotency-Key claims, pool
//! units and transfers (guards, idempotency, conflicts), distributions
//! decided once, and the unsettled-job sweep, all on real SQLite.

use proofmesh_store::{
    BalanceRow, BillingStore, IdemClaim, JobRecord, JournalRow, LedgerStore, PoolRow, SqliteStore,
    Store, StoreError, TransferOutcome, TransferRow,
};

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    (dir, s)
}

fn pool_row(id: &str, provider: &str, charter: &str) -> PoolRow {
    PoolRow {
        pool_id: id.into(),
        provider_key: provider.into(),
        share_bps: 2_000,
        currency: "USD".into(),
        charter_json: charter.into(),
        created_at_ms: 1,
    }
}

fn transfer(key: &str, from: &str, to: &str, units: u64) -> TransferRow {
    TransferRow {
        key: key.into(),
        pool_id: "pool-1".into(),
        from: from.into(),
        to: to.into(),
        units,
        doc_json: format!("{key}:{from}:{to}:{units}"),
        at_ms: 2,
    }
}

#[tokio::test]
async fn idempotency_keys_claim_once_per_client() {
    let (_d, s) = open().await;
    let a = s.create_api_key(None, "a", 1).await.unwrap().client_id;
    let b = s.create_api_key(None, "b", 1).await.unwrap().client_id;
    assert_eq!(
        s.idem_claim(&a, "k1", "h1", "job_1", 10).await.unwrap(),
        IdemClaim::Fresh
    );
    // Another client may use the same key string.
    assert_eq!(
        s.idem_claim(&b, "k1", "h9", "job_2", 10).await.unwrap(),
        IdemClaim::Fresh
    );
    let IdemClaim::Existing(row) = s.idem_claim(&a, "k1", "h2", "job_3", 11).await.unwrap() else {
        panic!("second claim must see the first");
    };
    assert_eq!(
        (row.job_id.as_str(), row.request_sha256.as_str()),
        ("job_1", "h1")
    );
    assert_eq!(row.response_json, None);
    s.idem_complete(&a, "k1", "{\"ok\":1}").await.unwrap();
    // A completed claim is not released by a failure path...
    s.idem_release(&a, "k1").await.unwrap();
    let IdemClaim::Existing(row) = s.idem_claim(&a, "k1", "h1", "job_4", 12).await.unwrap() else {
        panic!("completed claim must stay");
    };
    assert_eq!(row.response_json.as_deref(), Some("{\"ok\":1}"));
    // ...but an unanswered one is, and so is everything unanswered at sweep.
    s.idem_release(&b, "k1").await.unwrap();
    assert_eq!(
        s.idem_claim(&b, "k1", "h9", "job_5", 13).await.unwrap(),
        IdemClaim::Fresh
    );
    assert_eq!(s.idem_sweep(0).await.unwrap(), 1);
    // Old answered claims expire.
    assert_eq!(s.idem_sweep(1_000).await.unwrap(), 1);
}

#[tokio::test]
async fn pools_transfer_units_atomically_and_idempotently() {
    let (_d, s) = open().await;
    let units = vec![("alice".to_string(), 70u64), ("bob".to_string(), 30)];
    assert!(s
        .create_pool(&pool_row("pool-1", "ed25519:p", "c1"), &units)
        .await
        .unwrap());
    // The identical charter again is a no-op; a different one conflicts.
    assert!(!s
        .create_pool(&pool_row("pool-1", "ed25519:p", "c1"), &units)
        .await
        .unwrap());
    assert!(matches!(
        s.create_pool(&pool_row("pool-2", "ed25519:p", "c2"), &units)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let t = transfer("t1", "alice", "carol", 20);
    assert_eq!(
        s.transfer_units(&t).await.unwrap(),
        TransferOutcome::Applied
    );
    assert_eq!(
        s.transfer_units(&t).await.unwrap(),
        TransferOutcome::Replayed
    );
    let mut other = t.clone();
    other.doc_json.push('x');
    assert_eq!(
        s.transfer_units(&other).await.unwrap(),
        TransferOutcome::Conflict
    );
    assert_eq!(
        s.transfer_units(&transfer("t2", "bob", "carol", 31))
            .await
            .unwrap(),
        TransferOutcome::InsufficientUnits { has: 30 }
    );
    // Moving everything removes the holder.
    assert_eq!(
        s.transfer_units(&transfer("t3", "bob", "alice", 30))
            .await
            .unwrap(),
        TransferOutcome::Applied
    );
    let mut bad = transfer("t4", "alice", "bob", 1);
    bad.pool_id = "nope".into();
    assert_eq!(
        s.transfer_units(&bad).await.unwrap(),
        TransferOutcome::UnknownPool
    );
    let (row, holders) = s.pool("pool-1").await.unwrap().unwrap();
    assert_eq!(row.provider_key, "ed25519:p");
    assert_eq!(
        holders,
        vec![("alice".to_string(), 80), ("carol".to_string(), 20)]
    );
    assert_eq!(holders.iter().map(|h| h.1).sum::<u64>(), 100);
    assert_eq!(
        s.pool_of_provider("ed25519:p")
            .await
            .unwrap()
            .unwrap()
            .pool_id,
        "pool-1"
    );
    assert_eq!(s.list_pools().await.unwrap().len(), 1);
    let docs = s.pool_transfers("pool-1").await.unwrap();
    assert_eq!(
        docs.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        vec!["t1", "t3"]
    );
    // A distribution is decided once.
    let rec = |doc: Option<&'static str>| s.record_distribution("pool-1", 86_400, doc);
    assert_eq!(rec(None).await.unwrap(), None);
    assert_eq!(rec(Some("d1")).await.unwrap().as_deref(), Some("d1"));
    assert_eq!(rec(Some("d2")).await.unwrap().as_deref(), Some("d1"));
    assert_eq!(rec(None).await.unwrap().as_deref(), Some("d1"));
}

#[tokio::test]
async fn concurrent_transfers_never_overdraw_units() {
    let (_d, s) = open().await;
    let units = vec![("alice".to_string(), 10u64)];
    s.create_pool(&pool_row("pool-1", "ed25519:p", "c"), &units)
        .await
        .unwrap();
    let s = std::sync::Arc::new(s);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.transfer_units(&transfer(&format!("t{i}"), "alice", &format!("h{i}"), 1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        if t.await.unwrap() == TransferOutcome::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 10);
    let (_, holders) = s.pool("pool-1").await.unwrap().unwrap();
    assert_eq!(holders.iter().map(|h| h.1).sum::<u64>(), 10);
    assert!(holders.iter().all(|h| h.0 != "alice"));
}

#[tokio::test]
async fn unsettled_jobs_are_dispatched_or_hold_escrow() {
    let (_d, s) = open().await;
    let c = s.create_api_key(None, "c", 1).await.unwrap().client_id;
    for id in ["job_a", "job_b", "job_c"] {
        s.insert_job(&JobRecord {
            job_id: id.into(),
            receipt_id: format!("rcpt_{id}"),
            client_id: c.clone(),
            model: "sha256:00".into(),
            created_at_ms: 1,
            request_json: "[]".into(),
            verification: "none".into(),
        })
        .await
        .unwrap();
    }
    s.fail_job("job_b", "x", 2).await.unwrap();
    s.fail_job("job_c", "x", 2).await.unwrap();
    // job_b's escrow still holds 5 micro-USD.
    s.ledger_write(&[JournalRow {
        seq: 0,
        key: "escrow/job_b".into(),
        hash: [1; 32],
        reason: "escrow".into(),
        link: None,
        tx_json: "{}".into(),
        at_ms: 3,
        changes: vec![
            BalanceRow {
                account: "external".into(),
                currency: "USD".into(),
                before: 0,
                after: -5,
            },
            BalanceRow {
                account: "escrow:job_b".into(),
                currency: "USD".into(),
                before: 0,
                after: 5,
            },
        ],
    }])
    .await
    .unwrap();
    let u = s.unsettled_jobs().await.unwrap();
    let ids: Vec<_> = u.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, vec!["job_a", "job_b"]);
    assert_eq!(u[0].status, "dispatched");
    assert!(u[0].escrow.is_empty());
    assert_eq!(u[1].escrow, vec![("USD".to_string(), 5)]);
    let lines = s.journal_lines(0, 10).await.unwrap();
    assert_eq!(
        (lines.len(), lines[0].at_ms, lines[0].hash),
        (1, 3, [1; 32])
    );
}

fn change(account: &str, before: i64, after: i64) -> BalanceRow {
    BalanceRow {
        account: account.into(),
        currency: "USD".into(),
        before,
        after,
    }
}

#[tokio::test]
async fn funded_job_accounts_are_escrows_and_holds_with_money_and_their_jobs() {
    let (_d, s) = open().await;
    let c = s.create_api_key(None, "c", 1).await.unwrap().client_id;
    for id in ["job_a", "job_b"] {
        s.insert_job(&JobRecord {
            job_id: id.into(),
            receipt_id: format!("rcpt_{id}"),
            client_id: c.clone(),
            model: "sha256:00".into(),
            created_at_ms: 1,
            request_json: "[]".into(),
            verification: "none".into(),
        })
        .await
        .unwrap();
    }
    s.fail_job("job_b", "x", 9).await.unwrap();
    // job_a: escrow 5 and hold 3; job_b: escrow emptied again; an escrow
    // without a job row; a client account (not a job account).
    s.ledger_write(&[JournalRow {
        seq: 0,
        key: "k0".into(),
        hash: [1; 32],
        reason: "escrow".into(),
        link: None,
        tx_json: "{}".into(),
        at_ms: 3,
        changes: vec![
            change("external", 0, -24),
            change("escrow:job_a", 0, 5),
            change("hold:job_a", 0, 3),
            change("escrow:job_b", 0, 4),
            change("escrow:job_ghost", 0, 2),
            change("client:x", 0, 10),
        ],
    }])
    .await
    .unwrap();
    s.ledger_write(&[JournalRow {
        seq: 1,
        key: "k1".into(),
        hash: [2; 32],
        reason: "refund".into(),
        link: None,
        tx_json: "{}".into(),
        at_ms: 4,
        changes: vec![change("escrow:job_b", 4, 0), change("client:x", 10, 14)],
    }])
    .await
    .unwrap();
    let f = s.funded_job_accounts().await.unwrap();
    let seen: Vec<_> = f
        .iter()
        .map(|a| (a.kind.as_str(), a.job_id.as_str(), a.balance))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("escrow", "job_a", 5),
            ("hold", "job_a", 3),
            ("escrow", "job_ghost", 2)
        ]
    );
    let job = f[0].job.as_ref().unwrap();
    assert_eq!(
        (
            job.status.as_str(),
            job.receipt_id.as_str(),
            job.client_id.as_str()
        ),
        ("dispatched", "rcpt_job_a", c.as_str())
    );
    assert_eq!(job.finished_at_ms, None);
    assert_eq!(f[0].audit_status, None);
    assert_eq!(f[0].currency, "USD");
    assert!(f[2].job.is_none(), "no job row behind job_ghost");
}
