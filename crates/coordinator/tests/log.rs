//! The transparency log through the coordinator: receipts committed before a
//! crash are logged at the next start (backlog), a served receipt carries a
//! valid inclusion proof, tiles are immutable-cacheable, bad tile paths get a
//! named 400, and an independent client built on Go's
//! golang.org/x/mod/sumdb/{note,tlog} verifies our checkpoint signature,
//! tiles, every inclusion proof and a consistency proof.

mod common;

use std::process::Command;

use common::*;
use proofmesh_log::verify_receipt_inclusion;
use proofmesh_receipt::testing::sample_receipt;
use proofmesh_store::{Evidence, JobRecord, LogStore, SqliteStore, Store};
use proofmesh_tlog::CheckpointVerifier;

/// Commits `n` receipts straight into the store, as if the coordinator had
/// crashed after storing each and before sequencing it.
async fn seed_unlogged_receipts(dir: &std::path::Path, n: usize) {
    let store = SqliteStore::open(&proofmesh_coordinator::server::db_path(dir))
        .await
        .unwrap();
    let client = store
        .create_api_key(None, "seed", 1)
        .await
        .unwrap()
        .client_id;
    for i in 0..n {
        let (rid, jid) = (format!("rcpt_seed{i}"), format!("job_seed{i}"));
        let r = sample_receipt(&rid, &jid);
        let job = JobRecord {
            job_id: jid.clone(),
            receipt_id: rid,
            client_id: client.clone(),
            model: r.body.model.to_string(),
            created_at_ms: 1,
            request_json: "[]".into(),
            verification: "sampled".into(),
        };
        store.insert_job(&job).await.unwrap();
        let ev = Evidence {
            completion_token_ids: vec![],
            text: String::new(),
            fingerprint: vec![],
        };
        store.complete_job(&jid, &client, &r, &ev, 2).await.unwrap();
    }
    store.close().await;
}

fn go_client() -> Command {
    let go = which_go();
    let mut c = Command::new(go);
    c.env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    c
}

fn which_go() -> String {
    for p in ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "the Go interop test needs Go and golang.org/x/mod (Debian: golang-go \
         golang-golang-x-mod-dev); `cargo xtask test` installs them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_inclusion_tiles_and_an_independent_go_client() {
    // Not `bounded`: a cold `go build` on a busy 2-core machine can take a
    // while; the build runs first, before any coordinator exists.
    let bin_dir = tempfile::tempdir().unwrap();
    let go_bin = bin_dir.path().join("verify_log");
    let out = go_client()
        .args(["build", "-o"])
        .arg(&go_bin)
        .arg("verify_log.go")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the Go client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        seed_unlogged_receipts(dir.path(), 600).await;
        let mut cfg = test_config(dir.path());
        cfg.log_batch_max_age_ms = 20;
        let coord = Coordinator::start_in(cfg).await;
        // The backlog was logged before the coordinator served.
        assert!(coord
            .store
            .log_unlogged_receipts()
            .await
            .unwrap()
            .is_empty());
        let info = coord.info().await;
        let vkey = info["log_key"].as_str().unwrap().to_owned();
        let origin = info["log_origin"].as_str().unwrap();
        assert_eq!(info["log_size"], 600);
        let verifier = CheckpointVerifier::new(origin, &vkey).unwrap();

        // A live job: its receipt carries a valid inclusion proof.
        let provider = TestProvider::start(&coord);
        coord.wait_providers(1).await;
        let key = coord.api_key().await;
        let (json, id) = complete(&coord, &key, &chat_body("log me", 3, 8, false)).await;
        assert_eq!(json["proofmesh"]["log_index"], 600);
        let bytes = coord.get_receipt(&key, &id).await.bytes().await.unwrap();
        let receipt = proofmesh_receipt::Receipt::from_json(&bytes).unwrap();
        let cp = verify_receipt_inclusion(&receipt, &verifier).unwrap();
        assert!(cp.size >= 601);

        // Caching and errors at the C2SP paths.
        let r = coord
            .http
            .get(format!("{}/log/tile/0/000", coord.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.bytes().await.unwrap().len(), 256 * 32);
        let r = coord
            .http
            .get(format!("{}/log/checkpoint", coord.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let bad = coord
            .http
            .get(format!("{}/log/tile/0/x1", coord.base))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let body: serde_json::Value = bad.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_log_request");
        let far = coord
            .http
            .get(format!("{}/log/tile/0/009", coord.base))
            .send()
            .await
            .unwrap();
        assert_eq!(far.status(), 404);

        // Go's reference tlog/note code reads and verifies our log.
        let out = tokio::task::spawn_blocking({
            let (url, vkey, go_bin) = (format!("{}/log", coord.base), vkey.clone(), go_bin.clone());
            move || {
                Command::new(go_bin)
                    .args(["-url", &url, "-vkey", &vkey])
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "Go client failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("GO VERIFIED"), "{stdout}");
        assert!(stdout.contains(&format!("size={}", cp.size)), "{stdout}");

        // The same client refuses a log signed by another key.
        let other = proofmesh_tlog::CheckpointSigner::from_seed(origin, &[9u8; 32]).unwrap();
        let url = format!("{}/log", coord.base);
        let wrong = tokio::task::spawn_blocking(move || {
            go_client()
                .args([
                    "run",
                    "verify_log.go",
                    "-url",
                    &url,
                    "-vkey",
                    other.verifier_key(),
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(!wrong.status.success());
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("checkpoint signature"));
        provider.kill().await;
        coord.stop().await;
    })
    .await
}
