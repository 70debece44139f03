//! kill -9 at random moments loses no acknowledged entry, and the log that
//! comes back is consistent with every checkpoint published before the kill.
//!
//! The test re-executes its own binary as the writer: with
//! `PROOFMESH_LOG_CRASH_CHILD=<dir>` set, the same test function becomes a
//! child that appends from 64 tasks and prints each acknowledged entry
//! (`ack <index> <leaf hex>`) and checkpoint (`cp <size> <root hex>`) until
//! the parent SIGKILLs it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use proofmesh_tlog::{verify_consistency, Hash};

const CHILD_ENV: &str = "PROOFMESH_LOG_CRASH_CHILD";

fn child(dir: &str) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (log, _task, _store) = open(std::path::Path::new(dir), config(64, 10)).await;
        let pid = std::process::id();
        for w in 0..64u64 {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let (e, k) = receipt_entry(u64::from(pid) * 1_000_000_000 + w * 10_000_000 + i);
                    let s = log.append(&e, Some(k)).await.unwrap();
                    let leaf = e.leaf_hash().unwrap();
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ack {} {}", s.index, hex::encode(leaf.0));
                    let _ = writeln!(
                        out,
                        "cp {} {}",
                        s.checkpoint.size,
                        hex::encode(s.checkpoint.root.0)
                    );
                    let _ = out.flush();
                }
            });
        }
        std::future::pending::<()>().await
    });
    unreachable!("the child runs until killed")
}

fn hash(hexed: &str) -> Hash {
    Hash(hex::decode(hexed).unwrap().try_into().unwrap())
}

#[test]
fn kill_9_loses_no_acknowledged_entry() {
    if let Some(dir) = proofmesh_ambient::env::var(CHILD_ENV) {
        child(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(u64, Hash)> = Vec::new();
    let mut cps: Vec<(u64, Hash)> = Vec::new();
    for round in 0..3u64 {
        let mut kid = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_loses_no_acknowledged_entry",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(kid.stdout.take().unwrap());
        // Kill at a different moment each round, once appends are flowing.
        let run_for = Duration::from_millis(150 + 350 * round);
        let mut started: Option<Instant> = None;
        let mut round_acks = 0;
        for line in lines.lines() {
            let Ok(line) = line else { break };
            let mut f = line.split(' ');
            match (f.next(), f.next(), f.next()) {
                (Some("ack"), Some(i), Some(h)) => {
                    acked.push((i.parse().unwrap(), hash(h)));
                    round_acks += 1;
                }
                (Some("cp"), Some(n), Some(h)) => cps.push((n.parse().unwrap(), hash(h))),
                _ => continue,
            }
            let t = *started.get_or_insert_with(Instant::now);
            if t.elapsed() >= run_for {
                break;
            }
        }
        kid.kill().unwrap(); // SIGKILL
        kid.wait().unwrap();
        assert!(
            round_acks > 0,
            "round {round}: the child acknowledged nothing"
        );

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (log, task, store) = open(dir.path(), config(64, 10)).await;
            let now = log.checkpoint();
            for &(i, leaf) in &acked {
                assert!(
                    i < now.size,
                    "acknowledged entry {i} lost (size {})",
                    now.size
                );
                assert_eq!(log.leaf_hash(i).unwrap(), leaf, "entry {i} changed");
            }
            for &(size, root) in &cps {
                let proof = log.consistency_proof(size, now.size).unwrap();
                verify_consistency(size, now.size, &root, &now.root, &proof)
                    .unwrap_or_else(|e| panic!("checkpoint {size} conflicts after restart: {e}"));
            }
            shut(log, task, store).await;
        });
    }
    assert!(
        acked.len() > 100,
        "only {} appends acknowledged",
        acked.len()
    );
}
