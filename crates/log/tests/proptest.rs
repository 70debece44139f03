//! Property: under any sequence of concurrent appends, clean restarts and
//! abrupt stops (the sequencer task aborted and every handle dropped with
//! appends in flight), every acknowledged entry stays at its index, every
//! inclusion proof verifies against the latest checkpoint, and no two
//! checkpoints ever published conflict.

mod common;

use common::*;
use proofmesh_tlog::{verify_consistency, verify_inclusion, Hash};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Restart,
    Crash(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..40).prop_map(Op::Append),
        1 => Just(Op::Restart),
        2 => (1u8..40).prop_map(Op::Crash),
    ]
}

struct World {
    acked: Vec<(u64, Hash)>,
    cps: Vec<(u64, Hash)>,
    next: u64,
}

type Acked = Result<(u64, Hash, u64, Hash), proofmesh_log::LogError>;

async fn append_all(
    log: &proofmesh_log::Log,
    w: &mut World,
    n: u8,
) -> Vec<tokio::task::JoinHandle<Acked>> {
    (0..n)
        .map(|_| {
            w.next += 1;
            let (e, k) = receipt_entry(w.next);
            let log = log.clone();
            tokio::spawn(async move {
                let s = log.append(&e, Some(k)).await?;
                Ok((
                    s.index,
                    e.leaf_hash().unwrap(),
                    s.checkpoint.size,
                    s.checkpoint.root,
                ))
            })
        })
        .collect()
}

async fn run_ops(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World {
        acked: vec![],
        cps: vec![],
        next: 0,
    };
    let (mut log, mut task, mut store) = open(dir.path(), config(8, 2)).await;
    for op in ops {
        match op {
            Op::Append(n) => {
                for h in append_all(&log, &mut w, n).await {
                    let (i, leaf, size, root) = h.await.unwrap().expect("append");
                    w.acked.push((i, leaf));
                    w.cps.push((size, root));
                }
            }
            Op::Restart => {
                shut(log, task, store).await;
                (log, task, store) = open(dir.path(), config(8, 2)).await;
            }
            Op::Crash(n) => {
                let inflight = append_all(&log, &mut w, n).await;
                tokio::task::yield_now().await;
                task.abort();
                drop(log);
                for h in inflight {
                    // Acknowledged before the crash: must survive it.
                    if let Ok(Ok((i, leaf, size, root))) = h.await {
                        w.acked.push((i, leaf));
                        w.cps.push((size, root));
                    }
                }
                // The crashed writer is gone before anyone reopens the log
                // (as after kill -9, which tests/crash.rs does for real):
                // closing its pool lets commands already handed to SQLite
                // finish or roll back.
                store.close().await;
                (log, task, store) = open(dir.path(), config(8, 2)).await;
            }
        }
        let now = log.checkpoint();
        for &(i, leaf) in &w.acked {
            let proof = log.inclusion_proof(i, now.size).unwrap();
            verify_inclusion(i, now.size, &leaf, &proof, &now.root).unwrap();
        }
        for &(size, root) in &w.cps {
            let proof = log.consistency_proof(size, now.size).unwrap();
            verify_consistency(size, now.size, &root, &now.root, &proof).unwrap();
        }
    }
    shut(log, task, store).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_entries_survive_and_checkpoints_never_conflict(
        ops in proptest::collection::vec(op(), 1..7)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_ops(ops));
    }
}
