//! The offline administration service (`proofmesh_coordinator::admin`) on a
//! fresh data directory: keys are issued and authenticate, credit lands in
//! the client's ledger account once per reference, the settlement check
//! finds nothing on a clean database and names an escrow left on a final
//! job, and a missing database is reported, not created.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proofmesh_coordinator::admin::{self, AdminError, Deposit, NewKey};
use proofmesh_coordinator::server::{db_path, key_path, log_key_path};
use proofmesh_ledger::{settle, AccountId, Amount, Currency, Link, Reason};
use proofmesh_store::{JobRecord, LedgerStore, SqliteStore, Store};

/// The time every operation here is stamped with (unix ms); the admin
/// functions read no clock.
const NOW: u64 = 1_700_000_000_000;

fn usd(micros: u64) -> Amount {
    Amount::from_micros(Currency::parse("USD").unwrap(), micros).unwrap()
}

/// The client's USD balance, read straight from the store (not through the
/// admin module).
async fn client_usd(dir: &Path, client_id: &str) -> i64 {
    let store = SqliteStore::open(&db_path(dir)).await.unwrap();
    let balances = store
        .ledger_balances(&AccountId::Client(client_id.into()).to_string())
        .await
        .unwrap();
    store.close().await;
    balances
        .into_iter()
        .find(|(c, _)| c == "USD")
        .map(|(_, b)| b)
        .unwrap_or(0)
}

#[tokio::test]
async fn keys_authenticate_and_credit_lands_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("coordinator");

    // Nothing there yet: nothing authenticates, and asking creates nothing.
    assert_eq!(admin::authenticate(&dir, "pm_x_y").await.unwrap(), None);
    assert!(!db_path(&dir).exists());

    let key = admin::create_api_key(
        &dir,
        NewKey {
            label: "test",
            ..NewKey::default()
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(db_path(&dir).exists(), "the first key creates the database");
    assert!(key.api_key.starts_with(&format!("pm_{}_", key.key_id)));
    assert_eq!(key.min_attestation, None);

    let holder = admin::authenticate(&dir, &key.api_key)
        .await
        .unwrap()
        .expect("the new key authenticates");
    assert_eq!(holder.client_id, key.client_id);
    assert_eq!(holder.key_id, key.key_id);
    assert_eq!(holder.min_attestation, None);

    // A wrong secret for the same key id does not.
    let mut wrong = key.api_key.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(admin::authenticate(&dir, &wrong).await.unwrap(), None);

    // A second key for the same client, attested-only.
    let tee = admin::create_api_key(
        &dir,
        NewKey {
            client_id: Some(&key.client_id),
            label: "tee",
            min_attestation: Some("tee"),
        },
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(tee.client_id, key.client_id);
    assert_ne!(tee.key_id, key.key_id);
    let holder = admin::authenticate(&dir, &tee.api_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.min_attestation.as_deref(), Some("tee"));

    // An unknown level is refused before anything is written.
    let err = admin::create_api_key(
        &dir,
        NewKey {
            label: "bad",
            min_attestation: Some("gpu"),
            ..NewKey::default()
        },
        NOW,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, AdminError::AttestationLevel { given } if given == "gpu"),
        "{err:?}"
    );

    // Credit lands once per reference.
    assert_eq!(client_usd(&dir, &key.client_id).await, 0);
    let deposit = Deposit {
        client_id: &key.client_id,
        amount: usd(25_000_000),
        reference: "pay-1",
    };
    let first = admin::credit(&dir, deposit, NOW).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(client_usd(&dir, &key.client_id).await, 25_000_000);
    let again = admin::credit(&dir, deposit, NOW).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.seq, first.seq);
    assert_eq!(client_usd(&dir, &key.client_id).await, 25_000_000);
    let second = admin::credit(
        &dir,
        Deposit {
            reference: "pay-2",
            amount: usd(1_500_000),
            ..deposit
        },
        NOW,
    )
    .await
    .unwrap();
    assert!(!second.replayed);
    assert!(second.seq > first.seq);
    assert_eq!(client_usd(&dir, &key.client_id).await, 26_500_000);

    // Client balances are not job accounts: nothing to check, nothing wrong.
    let report = admin::check_settlement(&dir, NOW, Duration::ZERO)
        .await
        .unwrap();
    assert!(report.holds(), "{:?}", report.violations);
    assert_eq!((report.checked, report.not_final, report.recent), (0, 0, 0));
}

#[tokio::test]
async fn settlement_check_names_an_escrow_left_on_a_final_job() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = admin::create_api_key(
        dir,
        NewKey {
            label: "t",
            ..NewKey::default()
        },
        NOW,
    )
    .await
    .unwrap();
    admin::credit(
        dir,
        Deposit {
            client_id: &key.client_id,
            amount: usd(10_000_000),
            reference: "seed",
        },
        NOW,
    )
    .await
    .unwrap();

    // A job that failed while its escrow still holds money: what the
    // coordinator's settlement must never leave behind.
    let store = SqliteStore::open(&db_path(dir)).await.unwrap();
    store
        .insert_job(&JobRecord {
            job_id: "job-stuck".into(),
            receipt_id: "rcpt-stuck".into(),
            client_id: key.client_id.clone(),
            model: "sha256:00".into(),
            created_at_ms: 1,
            request_json: "[]".into(),
            verification: "sampled".into(),
        })
        .await
        .unwrap();
    let (bank, task) =
        proofmesh_settlement::Bank::open(Arc::new(store.clone()), Default::default())
            .await
            .unwrap();
    let escrow = settle::transfer(
        "escrow/job-stuck".into(),
        Reason::Escrow,
        Some(Link::Job("job-stuck".into())),
        AccountId::Client(key.client_id.clone()),
        AccountId::JobEscrow("job-stuck".into()),
        usd(2_000_000),
    )
    .unwrap();
    bank.apply(escrow, 2).await.unwrap();
    bank.close().await;
    task.await.unwrap();

    // Still dispatched: the escrow may rightly hold money.
    store.close().await;
    let report = admin::check_settlement(dir, NOW, Duration::ZERO)
        .await
        .unwrap();
    assert!(report.holds(), "{:?}", report.violations);
    assert_eq!((report.checked, report.not_final), (1, 1));

    let store = SqliteStore::open(&db_path(dir)).await.unwrap();
    store.fail_job("job-stuck", "test", NOW).await.unwrap();
    store.close().await;

    // Final 30 s before the check: within a minute's grace it is only
    // recent...
    let later = NOW + 30_000;
    let report = admin::check_settlement(dir, later, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(report.holds(), "{:?}", report.violations);
    assert_eq!((report.checked, report.recent), (1, 1));
    // ...outside a 10 s grace, or without grace, it is a violation, named.
    let report = admin::check_settlement(dir, later, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((report.violations.len(), report.recent), (1, 0));
    let report = admin::check_settlement(dir, later, Duration::ZERO)
        .await
        .unwrap();
    assert!(!report.holds());
    assert_eq!(report.violations.len(), 1);
    let v = &report.violations[0];
    assert_eq!(v.account, AccountId::JobEscrow("job-stuck".into()));
    assert_eq!(v.job_id, "job-stuck");
    assert_eq!(v.balance, 2_000_000);
}

#[tokio::test]
async fn a_missing_database_is_reported_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nowhere");
    let err = admin::check_settlement(&dir, NOW, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AdminError::NoDatabase { path } if *path == db_path(&dir)),
        "{err:?}"
    );
    let err = admin::credit(
        &dir,
        Deposit {
            client_id: "client_x",
            amount: usd(1),
            reference: "r",
        },
        NOW,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AdminError::NoDatabase { .. }), "{err:?}");
    assert!(!dir.exists(), "nothing was created");
}

#[test]
fn public_keys_are_the_coordinators_key_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = admin::public_keys(dir, "proofmesh.test/log").unwrap();
    // Created on first use, stable afterwards.
    let coordinator = proofmesh_receipt::Identity::load(&key_path(dir)).unwrap();
    assert_eq!(keys.coordinator_key, coordinator.public().to_string());
    let log = proofmesh_receipt::Identity::load(&log_key_path(dir)).unwrap();
    let signer =
        proofmesh_tlog::CheckpointSigner::from_seed("proofmesh.test/log", &log.seed()).unwrap();
    assert_eq!(keys.log_key, signer.verifier_key());
    assert_ne!(keys.log_key, keys.coordinator_key);
    assert_eq!(admin::public_keys(dir, "proofmesh.test/log").unwrap(), keys);
    let err = admin::public_keys(dir, "bad origin\nwith newline").unwrap_err();
    assert!(matches!(err, AdminError::LogOrigin { .. }), "{err:?}");
}
