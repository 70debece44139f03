//! Integration tests for the SQLite store: keys, job lifecycle, durability.

use proofmesh_receipt::testing::sample_receipt;
use proofmesh_receipt::{
    receipt_body_digest, AuditBody, AuditOutcome, AuditReport, Identity, AUDIT_VERSION,
};
use proofmesh_store::{
    AuditPenalty, AuditStore, Evidence, JobRecord, NewAudit, SqliteStore, Store, StoreError,
};

fn job(id: &str, client: &str) -> JobRecord {
    JobRecord {
        job_id: id.into(),
        receipt_id: format!("rcpt_{id}"),
        client_id: client.into(),
        model: "sha256:00".into(),
        created_at_ms: 1,
        request_json: r#"[{"role":"user","content":"hi"}]"#.into(),
        verification: "sampled".into(),
    }
}

fn evidence() -> Evidence {
    Evidence {
        completion_token_ids: vec![1, 2, 3],
        text: "Paris".into(),
        fingerprint: b"PMFP-fingerprint".to_vec(),
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
        s.complete_job("j1", &k.client_id, &receipt, &evidence(), 5)
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
        .complete_job("j2", &k.client_id, &r, &evidence(), 4)
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
        .complete_job("j3", &k.client_id, &wrong, &evidence(), 4)
        .await
        .is_err());
    assert_eq!(s.count_receipts().await.unwrap(), 0);
}

fn report(
    receipt: &proofmesh_receipt::Receipt,
    audit_id: &str,
    outcome: AuditOutcome,
) -> AuditReport {
    let v = Identity::from_seed([7; 32]);
    let body = AuditBody {
        version: AUDIT_VERSION,
        audit_id: audit_id.into(),
        receipt_id: receipt.body.receipt_id.clone(),
        receipt_digest: receipt_body_digest(&receipt.body),
        verifier_key: v.public().clone(),
        outcome,
        reason: String::new(),
        positions_checked: 3,
        checked_at_ms: 9,
    };
    AuditReport::sign(body, &v)
}

const PENALTY: AuditPenalty = AuditPenalty {
    slash_micros: 100,
    stake_after_micros: 1_000,
    refund_micros: 7,
    max_failed_audits: 2,
};

/// Completes job `n` for provider stats and schedules an audit of it.
async fn audited_job(s: &SqliteStore, client: &str, n: u32) -> proofmesh_receipt::Receipt {
    let id = format!("j{n}");
    let r = sample_receipt(&format!("rcpt_{id}"), &id);
    s.insert_job(&job(&id, client)).await.unwrap();
    s.complete_job(&id, client, &r, &evidence(), 2)
        .await
        .unwrap();
    let audit = NewAudit {
        audit_id: format!("aud_{n}"),
        receipt_id: r.body.receipt_id.clone(),
        provider_key: r.body.provider_key.to_string(),
        why: "test".into(),
        fee_micros: 0,
        created_at_ms: 3,
    };
    s.create_audit(&audit).await.unwrap();
    r
}

/// A store with a client and the sample receipts' provider registered.
async fn audit_store() -> (tempfile::TempDir, SqliteStore, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let k = s.create_api_key(None, "t", 1).await.unwrap();
    let provider = sample_receipt("x", "x").body.provider_key.to_string();
    s.ensure_provider_stats(&provider).await.unwrap();
    (dir, s, k.client_id, provider)
}

#[tokio::test]
async fn audits_apply_consequences_atomically() {
    let (_dir, s, client_id, provider) = audit_store().await;
    s.ensure_provider_stats(&provider).await.unwrap(); // no-op the second time

    let r1 = audited_job(&s, &client_id, 1).await;
    let pending = s.pending_audits(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].evidence, evidence());
    assert_eq!(pending[0].request_json, job("j1", "c").request_json);

    let st = s
        .finish_audit(&report(&r1, "aud_1", AuditOutcome::Passed), PENALTY, 4)
        .await
        .unwrap();
    assert_eq!(
        (st.audits_passed, st.audits_failed, st.excluded),
        (1, 0, false)
    );
    assert_eq!(st.jobs_completed, 1);
    // A report for an audit that is no longer pending is refused, and changes nothing.
    assert!(s
        .finish_audit(&report(&r1, "aud_1", AuditOutcome::Failed), PENALTY, 5)
        .await
        .is_err());
    assert_eq!(
        s.audit_status("rcpt_j1").await.unwrap().as_deref(),
        Some("passed")
    );
    assert_eq!(s.audit_reports("rcpt_j1").await.unwrap().len(), 1);

    let r2 = audited_job(&s, &client_id, 2).await;
    let st = s
        .finish_audit(&report(&r2, "aud_2", AuditOutcome::Failed), PENALTY, 6)
        .await
        .unwrap();
    assert_eq!(
        (st.audits_failed, st.slashed_micros, st.excluded),
        (1, 100, false)
    );
    let r3 = audited_job(&s, &client_id, 3).await;
    let st = s
        .finish_audit(&report(&r3, "aud_3", AuditOutcome::Failed), PENALTY, 7)
        .await
        .unwrap();
    assert!(st.excluded, "excluded after max_failed_audits failures");
    assert_eq!(s.excluded_providers().await.unwrap(), vec![provider]);
    assert!(s.pending_audits(10).await.unwrap().is_empty());
    let (req, ev) = s.evidence("rcpt_j3").await.unwrap().unwrap();
    assert_eq!(
        (req.as_str(), ev),
        (job("j", "c").request_json.as_str(), evidence())
    );
}

/// Stake lives in the ledger: the store excludes a provider whose stake, as
/// the caller read it from the ledger, could not cover another slash.
#[tokio::test]
async fn a_failure_that_leaves_too_little_stake_excludes_at_once() {
    let (_dir, s, client_id, _provider) = audit_store().await;
    let r = audited_job(&s, &client_id, 1).await;
    let low = AuditPenalty {
        stake_after_micros: 99,
        max_failed_audits: 100,
        ..PENALTY
    };
    let st = s
        .finish_audit(&report(&r, "aud_1", AuditOutcome::Failed), low, 4)
        .await
        .unwrap();
    assert_eq!(st.audits_failed, 1);
    assert!(st.excluded, "99 left cannot cover a slash of 100");
}
