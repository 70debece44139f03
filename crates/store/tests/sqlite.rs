//! Integration tests for the SQLite store: keys, job lifecycle, durability.

use proofmesh_receipt::testing::sample_receipt;
use proofmesh_store::{JobRecord, SqliteStore, Store, StoreError};

fn job(id: &str, client: &str) -> JobRecord {
    JobRecord {
        job_id: id.into(),
        receipt_id: format!("rcpt_{id}"),
        client_id: client.into(),
        model: "sha256:00".into(),
        created_at_ms: 1,
    }
}

#[tokio::test]
async fn api_keys_authenticate_and_reject() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let k = s.create_api_key(None, "test", 1).await.unwrap();
    let c = s.authenticate(&k.key).await.unwrap().unwrap();
    assert_eq!(c.client_id, k.client_id);
    // Same id, wrong secret.
    let mut forged = k.key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert!(s.authenticate(&forged).await.unwrap().is_none());
    assert!(s.authenticate("garbage").await.unwrap().is_none());
    // A second key for the same client.
    let k2 = s
        .create_api_key(Some(&k.client_id), "second", 2)
        .await
        .unwrap();
    assert_eq!(
        s.authenticate(&k2.key).await.unwrap().unwrap().client_id,
        k.client_id
    );
}

#[tokio::test]
async fn completed_job_and_receipt_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let receipt = sample_receipt("rcpt_j1", "j1");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        let k = s.create_api_key(None, "t", 1).await.unwrap();
        s.insert_job(&job("j1", &k.client_id)).await.unwrap();
        s.assign_job("j1", "ed25519:p").await.unwrap();
        s.complete_job("j1", &k.client_id, &receipt, b"logits", 5)
            .await
            .unwrap();
        s.close().await;
    }
    let s = SqliteStore::open(&path).await.unwrap();
    let got = s.get_receipt("rcpt_j1").await.unwrap().unwrap();
    assert_eq!(got.receipt, receipt);
    got.receipt.verify(None).unwrap();
    let st = s.job_status("j1").await.unwrap().unwrap();
    assert_eq!(st.status, "completed");
    assert_eq!(st.attempts, 1);
    assert_eq!(s.count_receipts().await.unwrap(), 1);
}

#[tokio::test]
async fn illegal_transitions_leave_state_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let k = s.create_api_key(None, "t", 1).await.unwrap();
    s.insert_job(&job("j2", &k.client_id)).await.unwrap();
    s.fail_job("j2", "provider died", 3).await.unwrap();
    let r = sample_receipt("rcpt_j2", "j2");
    let err = s
        .complete_job("j2", &k.client_id, &r, b"", 4)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidTransition {
                action: "complete",
                ..
            }
        ),
        "{err}"
    );
    assert!(s.get_receipt("rcpt_j2").await.unwrap().is_none());
    assert_eq!(s.job_status("j2").await.unwrap().unwrap().status, "failed");
    assert!(matches!(
        s.fail_job("nope", "x", 1).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[tokio::test]
async fn receipt_id_must_match_job() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let k = s.create_api_key(None, "t", 1).await.unwrap();
    s.insert_job(&job("j3", &k.client_id)).await.unwrap();
    let wrong = sample_receipt("rcpt_other", "j3");
    assert!(s
        .complete_job("j3", &k.client_id, &wrong, b"", 4)
        .await
        .is_err());
    assert_eq!(s.count_receipts().await.unwrap(), 0);
}
