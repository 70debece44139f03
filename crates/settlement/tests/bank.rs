//! The durable ledger against a real SQLite store: 100 parallel escrows from
//! one client with a small balance never overdraw it; retries never charge
//! twice; refused transactions change nothing; a restart reproduces every
//! balance; a write behind the writer's back (admin CLI) is picked up.

use std::sync::Arc;

use proofmesh_ledger::settle::{self, JobParties};
use proofmesh_ledger::{AccountId, Amount, Currency, LedgerError, ModelPrice};
use proofmesh_settlement::{Bank, BankConfig, BankError};
use proofmesh_store::SqliteStore;

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn price() -> ModelPrice {
    ModelPrice {
        currency: usd(),
        input_per_mtok_micros: 1_000_000,
        output_per_mtok_micros: 1_000_000,
        gpu_hour_micros: None,
    }
}

async fn open(dir: &std::path::Path) -> (Bank, tokio::task::JoinHandle<()>, SqliteStore) {
    let store = SqliteStore::open(&dir.join("l.sqlite")).await.unwrap();
    let (bank, task) = Bank::open(Arc::new(store.clone()), BankConfig::default())
        .await
        .unwrap();
    (bank, task, store)
}

fn escrow(job: u32) -> proofmesh_ledger::Transaction {
    let parties = JobParties {
        job_id: format!("job{job}"),
        client: "alice".into(),
        provider: "p1".into(),
    };
    // 100 prompt + 900 completion tokens at $1/M = 1,000 micro-USD.
    settle::escrow_at_dispatch(&parties, &price(), 100, 900, None)
        .unwrap()
        .settlement
        .tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_escrows_never_overdraw_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (bank, task, store) = open(dir.path()).await;
    let amount = Amount::from_micros(usd(), 10_500).unwrap();
    bank.apply(settle::deposit("alice", amount, "pay1").unwrap(), 1)
        .await
        .unwrap();
    let mut joins = Vec::new();
    for j in 0..100 {
        let bank = bank.clone();
        joins.push(tokio::spawn(
            async move { (j, bank.apply(escrow(j), 2).await) },
        ));
    }
    let (mut ok, mut refused, mut paid) = (0, 0, Vec::new());
    for j in joins {
        let (job, result) = j.await.unwrap();
        match result {
            Ok(_) => {
                ok += 1;
                paid.push(job);
            }
            Err(BankError::Refused(LedgerError::InsufficientFunds { .. })) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(
        (ok, refused),
        (10, 90),
        "10,500 micros cover exactly 10 escrows"
    );
    let alice = AccountId::Client("alice".into());
    assert_eq!(bank.balance(&alice, usd()).await.unwrap(), 500);
    // A retry of an applied escrow is a no-op, never a second charge.
    let mut retried = 0;
    for j in 0..100 {
        if let Ok(a) = bank.apply(escrow(j), 3).await {
            assert!(a.replayed);
            retried += 1;
        }
    }
    assert_eq!(retried, 10);
    assert_eq!(bank.balance(&alice, usd()).await.unwrap(), 500);
    bank.close().await;
    task.await.unwrap();
    store.close().await;

    let (bank, task, store) = open(dir.path()).await;
    assert_eq!(bank.balance(&alice, usd()).await.unwrap(), 500);
    let external = AccountId::External;
    assert_eq!(bank.balance(&external, usd()).await.unwrap(), -10_500);
    // After restart the mirror still knows every key.
    assert!(bank.apply(escrow(paid[0]), 4).await.unwrap().replayed);
    bank.close().await;
    task.await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_behind_the_writers_back_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (bank, task, store) = open(dir.path()).await;
    let a = Amount::from_micros(usd(), 5_000).unwrap();
    bank.apply(settle::deposit("alice", a, "p1").unwrap(), 1)
        .await
        .unwrap();
    // A second writer on the same database (as `proofmesh billing credit`).
    let (other, other_task, other_store) = open(dir.path()).await;
    other
        .apply(settle::deposit("alice", a, "p2").unwrap(), 2)
        .await
        .unwrap();
    other.close().await;
    other_task.await.unwrap();
    other_store.close().await;
    // The first writer's mirror says 5,000: an escrow needing more than
    // that still succeeds, because the refusal triggers a reload first.
    let parties = JobParties {
        job_id: "big".into(),
        client: "alice".into(),
        provider: "p1".into(),
    };
    let big = settle::escrow_at_dispatch(&parties, &price(), 0, 8_000, None).unwrap();
    bank.apply(big.settlement.tx, 3).await.unwrap();
    // And a stale mirror's write is refused by the store's guard, reloaded,
    // and lands.
    bank.apply(settle::deposit("alice", a, "p3").unwrap(), 3)
        .await
        .unwrap();
    let alice = AccountId::Client("alice".into());
    assert_eq!(bank.balance(&alice, usd()).await.unwrap(), 7_000);
    // A conflicting reuse of a key is refused, and changes nothing.
    let other_amount = Amount::from_micros(usd(), 1).unwrap();
    let e = bank
        .apply(settle::deposit("alice", other_amount, "p1").unwrap(), 4)
        .await
        .unwrap_err();
    assert!(
        matches!(e, BankError::Refused(LedgerError::ConflictingKey { .. })),
        "{e}"
    );
    assert_eq!(bank.balance(&alice, usd()).await.unwrap(), 7_000);
    bank.close().await;
    task.await.unwrap();
    store.close().await;
}
