//! The log service against a real SQLite store: concurrent appends form one
//! linear history, every acknowledged entry is provable against a signed
//! checkpoint, keys deduplicate, tiles match the pure tree, restarts keep
//! every published checkpoint consistent, and a tampered store is refused.

mod common;

use std::collections::HashSet;

use common::*;
use proofmesh_log::{LogEntry, LogError};
use proofmesh_tlog::{
    decode_bundle, leaf_hash, verify_consistency, verify_inclusion, Hash, TileKind, TilePath, Tree,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_form_one_history_and_all_prove() {
    let dir = tempfile::tempdir().unwrap();
    let (log, task, store) = open(dir.path(), config(64, 20)).await;
    let n = 600u64;
    let mut joins = Vec::new();
    for i in 0..n {
        let log = log.clone();
        joins.push(tokio::spawn(async move {
            let (e, k) = receipt_entry(i);
            let s = log.append(&e, Some(k)).await.unwrap();
            (s, e)
        }));
    }
    let mut seen = HashSet::new();
    let v = verifier();
    for j in joins {
        let (s, e) = j.await.unwrap();
        assert!(!s.duplicate);
        assert!(seen.insert(s.index), "index {} given twice", s.index);
        let cp = v.verify(s.checkpoint.note.as_bytes()).unwrap();
        assert!(s.index < cp.size);
        let proof = log.inclusion_proof(s.index, cp.size).unwrap();
        verify_inclusion(s.index, cp.size, &e.leaf_hash().unwrap(), &proof, &cp.root).unwrap();
    }
    assert_eq!(seen.len() as u64, n);
    assert_eq!(seen.iter().max().copied(), Some(n - 1));
    assert_eq!(log.checkpoint().size, n);
    // Batching happened: far fewer checkpoints than entries.
    let cps = log.checkpoints(1, 10_000).await.unwrap();
    assert!(cps.len() < n as usize / 4, "{} checkpoints", cps.len());
    shut(log, task, store).await;
}

#[tokio::test]
async fn keys_deduplicate_across_and_within_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (log, task, store) = open(dir.path(), config(256, 50)).await;
    let (e, k) = receipt_entry(1);
    let a = log.append(&e, Some(k.clone())).await.unwrap();
    let b = log.append(&e, Some(k.clone())).await.unwrap();
    assert_eq!((a.index, a.duplicate), (0, false));
    assert_eq!((b.index, b.duplicate), (0, true));
    // Two appends of a new key in the same batch.
    let (e2, k2) = receipt_entry(2);
    let (x, y) = tokio::join!(log.append(&e2, Some(k2.clone())), log.append(&e2, Some(k2)));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.index, y.index);
    assert_eq!(x.duplicate as u8 + y.duplicate as u8, 1);
    assert_eq!(log.checkpoint().size, 2);
    assert_eq!(log.index_of(&k).await.unwrap(), Some(0));
    assert_eq!(log.index_of("receipt:nope").await.unwrap(), None);
    shut(log, task, store).await;
}

#[tokio::test]
async fn tiles_and_bundles_match_the_pure_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (log, task, store) = open(dir.path(), config(256, 5)).await;
    let mut tree = Tree::new();
    let mut encoded = Vec::new();
    for i in 0..300u64 {
        let (e, k) = receipt_entry(i);
        log.append(&e, Some(k)).await.unwrap();
        let b = e.encode().unwrap();
        tree.append(leaf_hash(&b)).unwrap();
        encoded.push(b);
    }
    assert_eq!(log.checkpoint().root, tree.root());
    let full = TilePath::new(TileKind::Hashes { level: 0 }, 0, 256).unwrap();
    assert_eq!(
        log.tile(full).await.unwrap(),
        tree.tile_data(300, full).unwrap()
    );
    let partial = TilePath::new(TileKind::Hashes { level: 0 }, 1, 44).unwrap();
    assert_eq!(log.tile(partial).await.unwrap().len(), 44 * 32);
    // An older, narrower partial tile is still served (a client holding an
    // older checkpoint needs exactly it).
    let older = TilePath::new(TileKind::Hashes { level: 0 }, 1, 10).unwrap();
    assert_eq!(
        log.tile(older).await.unwrap(),
        log.tile(partial).await.unwrap()[..320].to_vec()
    );
    let bundle = log
        .tile(TilePath::new(TileKind::Entries, 1, 44).unwrap())
        .await
        .unwrap();
    let entries = decode_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 44);
    assert_eq!(entries[0], &encoded[256][..]);
    LogEntry::decode(entries[43]).unwrap();
    // Beyond the published size: a named refusal.
    let beyond = TilePath::new(TileKind::Hashes { level: 0 }, 1, 45).unwrap();
    assert!(matches!(
        log.tile(beyond).await,
        Err(LogError::NotPublished { published: 300, .. })
    ));
    assert!(matches!(
        log.inclusion_proof(0, 301),
        Err(LogError::NotPublished { .. })
    ));
    shut(log, task, store).await;
}

#[tokio::test]
async fn restart_keeps_every_checkpoint_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let mut roots: Vec<(u64, Hash)> = Vec::new();
    for round in 0..3u64 {
        let (log, task, store) = open(dir.path(), config(16, 5)).await;
        // The reopened log is exactly where the last one stopped.
        if let Some(&(size, root)) = roots.last() {
            assert_eq!(log.checkpoint().size, size);
            assert_eq!(log.checkpoint().root, root);
        }
        for i in 0..40u64 {
            let (e, k) = receipt_entry(round * 1000 + i);
            let s = log.append(&e, Some(k)).await.unwrap();
            roots.push((s.checkpoint.size, s.checkpoint.root));
        }
        let now = log.checkpoint();
        for &(size, root) in &roots {
            let proof = log.consistency_proof(size, now.size).unwrap();
            verify_consistency(size, now.size, &root, &now.root, &proof).unwrap();
        }
        // Every stored checkpoint verifies and is consistent with the latest.
        let v = verifier();
        for cp in log.checkpoints(0, 100_000).await.unwrap() {
            let c = v.verify(&cp.note).unwrap();
            let proof = log.consistency_proof(c.size, now.size).unwrap();
            verify_consistency(c.size, now.size, &c.root, &now.root, &proof).unwrap();
        }
        shut(log, task, store).await;
    }
    assert_eq!(roots.last().unwrap().0, 120);
}

#[tokio::test]
async fn a_tampered_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, task, store) = open(dir.path(), config(8, 5)).await;
    for i in 0..10 {
        let (e, k) = receipt_entry(i);
        log.append(&e, Some(k)).await.unwrap();
    }
    shut(log, task, store).await;
    let db = dir.path().join("log.sqlite");
    tamper(&db);
    let store = proofmesh_store::SqliteStore::open(&db).await.unwrap();
    let err = proofmesh_log::Log::open(std::sync::Arc::new(store), signer(), config(8, 5))
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Inconsistent { .. }), "{err}");
}

/// Rewrites one stored leaf hash behind the log's back.
fn tamper(db: &std::path::Path) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c=sqlite3.connect({:?}); \
             c.execute(\"UPDATE log_entries SET leaf_hash = zeroblob(32) WHERE idx = 3\"); \
             c.commit()",
            db.display().to_string()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_store_keep_one_linear_history() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ta, sa) = open(dir.path(), config(8, 2)).await;
    let (b, tb, sb) = open(dir.path(), config(8, 2)).await;
    let mut joins = Vec::new();
    for i in 0..80u64 {
        let log = if i % 2 == 0 { a.clone() } else { b.clone() };
        joins.push(tokio::spawn(async move {
            let (e, k) = receipt_entry(i);
            let s = log.append(&e, Some(k)).await.unwrap();
            (s.index, e.leaf_hash().unwrap())
        }));
    }
    let mut acked = Vec::new();
    for j in joins {
        acked.push(j.await.unwrap());
    }
    let mut idx: Vec<u64> = acked.iter().map(|(i, _)| *i).collect();
    idx.sort_unstable();
    assert_eq!(
        idx,
        (0..80).collect::<Vec<_>>(),
        "indexes are not one sequence"
    );
    shut(a, ta, sa).await;
    shut(b, tb, sb).await;
    let (log, task, store) = open(dir.path(), config(8, 2)).await;
    let now = log.checkpoint();
    assert_eq!(now.size, 80);
    for (i, leaf) in acked {
        let proof = log.inclusion_proof(i, now.size).unwrap();
        verify_inclusion(i, now.size, &leaf, &proof, &now.root).unwrap();
    }
    shut(log, task, store).await;
}
