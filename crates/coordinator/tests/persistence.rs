//! Receipts are the durable product of the coordinator: a client must be able
//! to fetch one after the coordinator restarts, byte-for-byte the same and
//! still verifying under the same (reloaded) coordinator key. This test runs
//! a real job, shuts the coordinator down cleanly, starts a new one on the
//! same data directory and checks exactly that. Only the attached inclusion
//! proof may differ: it is always issued against the latest checkpoint, and
//! the log grows at shutdown (the heartbeat log of metrics statements).

mod common;

use common::*;
use proofmesh_coordinator::server::key_path;
use proofmesh_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_survive_a_coordinator_restart() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let first = Coordinator::start_in(test_config(dir.path())).await;
        let provider = TestProvider::start(&first);
        first.wait_providers(1).await;
        let key = first.api_key().await;
        let coord_key = first.coordinator_key().await;
        let (_, id) = complete(&first, &key, &chat_body("persist me", 11, 8, false)).await;
        let before = first.get_receipt(&key, &id).await;
        assert_eq!(before.status(), 200);
        let before = before.bytes().await.unwrap();
        verified_receipt(&before, &coord_key);
        let key_file = std::fs::read(key_path(dir.path())).unwrap();

        provider.kill().await;
        first.stop().await;

        let second = Coordinator::start_in(test_config(dir.path())).await;
        assert_eq!(
            std::fs::read(key_path(dir.path())).unwrap(),
            key_file,
            "the key file is reused, not regenerated"
        );
        assert_eq!(second.coordinator_key().await, coord_key);
        assert_eq!(second.providers_connected().await, 0);
        let after = second.get_receipt(&key, &id).await;
        assert_eq!(after.status(), 200, "API keys and receipts persisted");
        let after = after.bytes().await.unwrap();
        let r = verified_receipt(&after, &second.coordinator_key().await);
        let old = proofmesh_receipt::Receipt::from_json(&before).unwrap();
        let (mut r_signed, mut old_signed) = (r.clone(), old.clone());
        (r_signed.log, old_signed.log) = (None, None);
        assert_eq!(
            serde_json::to_vec(&r_signed).unwrap(),
            serde_json::to_vec(&old_signed).unwrap(),
            "receipt changed across restart"
        );
        let (at, was) = (r.log.unwrap(), old.log.unwrap());
        assert_eq!(at.index, was.index, "the receipt kept its log index");
        assert!(at.tree_size >= was.tree_size);
        assert_eq!(r.body.receipt_id, id);
        assert_eq!(second.store.count_receipts().await.unwrap(), 1);
        second.stop().await;
    })
    .await
}
