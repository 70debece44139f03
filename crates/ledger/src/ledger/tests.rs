//! Unit tests of the ledger's rules: balance, credit, idempotency, atomicity,
//! overflow, the check/commit split and replay.

use super::*;
use crate::money::Amount;
use crate::tx::{Posting, Reason};

fn usd(m: u64) -> Amount {
    Amount::from_micros(Currency::Usd, m).unwrap()
}

fn client(id: &str) -> AccountId {
    AccountId::Client(id.into())
}

fn deposit(key: &str, to: &str, m: u64) -> Transaction {
    Transaction {
        key: key.into(),
        reason: Reason::Deposit,
        link: None,
        postings: vec![
            Posting::debit(AccountId::External, usd(m)),
            Posting::credit(client(to), usd(m)),
        ],
    }
}

fn move_(key: &str, from: AccountId, to: AccountId, m: u64) -> Transaction {
    Transaction {
        key: key.into(),
        reason: Reason::Adjustment,
        link: None,
        postings: vec![Posting::debit(from, usd(m)), Posting::credit(to, usd(m))],
    }
}

#[test]
fn deposit_moves_money_and_books_balance() {
    let mut l = Ledger::new();
    let a = l.apply(deposit("d1", "a", 700), 1).unwrap();
    assert_eq!(a.seq, 0);
    assert!(!a.replayed);
    assert_eq!(l.balance(&client("a"), Currency::Usd), 700);
    assert_eq!(l.balance(&AccountId::External, Currency::Usd), -700);
    assert_eq!(l.totals()[&Currency::Usd], 0);
}

#[test]
fn overdraft_is_rejected_and_changes_nothing() {
    let mut l = Ledger::new();
    l.apply(deposit("d1", "a", 100), 1).unwrap();
    let before = l.balances();
    let err = l
        .apply(move_("m1", client("a"), client("b"), 101), 2)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::InsufficientFunds {
                balance: 100,
                change: -101,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(l.balances(), before);
    assert_eq!(l.len(), 1);
    assert!(l.lookup("m1").is_none(), "a rejected key must stay free");
}

#[test]
fn identical_retry_is_a_noop_and_different_content_conflicts() {
    let mut l = Ledger::new();
    let first = l.apply(deposit("d1", "a", 100), 1).unwrap();
    let again = l.apply(deposit("d1", "a", 100), 9).unwrap();
    assert_eq!(again.seq, first.seq);
    assert!(again.replayed);
    assert_eq!(l.balance(&client("a"), Currency::Usd), 100);
    let err = l.apply(deposit("d1", "a", 200), 2).unwrap_err();
    assert!(matches!(err, LedgerError::ConflictingKey { seq: 0, .. }));
    assert!(err.to_string().contains("double spend"), "{err}");
    assert_eq!(l.balance(&client("a"), Currency::Usd), 100);
}

#[test]
fn balance_overflow_is_an_error() {
    let mut l = Ledger::new();
    let max = Amount::MAX_MICROS;
    l.apply(deposit("d1", "a", max), 1).unwrap();
    let err = l.apply(deposit("d2", "b", max), 2).unwrap_err();
    // External would reach -2·(2⁶³-1): outside i64.
    assert!(
        matches!(
            err,
            LedgerError::Overflow {
                account: AccountId::External,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(l.balance(&client("b"), Currency::Usd), 0);
}

#[test]
fn one_account_may_appear_on_both_sides() {
    let mut l = Ledger::new();
    l.apply(deposit("d1", "a", 10), 1).unwrap();
    let tx = Transaction {
        key: "self".into(),
        reason: Reason::Adjustment,
        link: None,
        postings: vec![
            Posting::debit(client("a"), usd(15)),
            Posting::credit(client("a"), usd(6)),
            Posting::credit(client("b"), usd(9)),
        ],
    };
    // Net -9 on a: allowed although the single debit exceeds the balance.
    l.apply(tx, 2).unwrap();
    assert_eq!(l.balance(&client("a"), Currency::Usd), 1);
}

#[test]
fn check_then_commit_matches_apply_and_detects_staleness() {
    let mut l = Ledger::new();
    l.apply(deposit("d1", "a", 50), 1).unwrap();
    let tx = move_("m1", client("a"), client("b"), 20);
    let Checked::Fresh(fx) = l.check(&tx).unwrap() else {
        panic!("expected fresh");
    };
    assert_eq!(fx.changes.len(), 2);
    let a_change = fx
        .changes
        .iter()
        .find(|c| c.account == client("a"))
        .unwrap();
    assert_eq!((a_change.before, a_change.after), (50, 30));

    // Someone else moves money first: the old effects are stale.
    let mut other = l.clone();
    other
        .apply(move_("m0", client("a"), client("c"), 40), 2)
        .unwrap();
    let err = other.commit(fx.clone(), tx.clone(), 3).unwrap_err();
    assert!(matches!(err, LedgerError::Stale { .. }), "{err}");

    let applied = l.commit(fx, tx.clone(), 3).unwrap();
    assert_eq!(applied.seq, 1);
    assert_eq!(l.balance(&client("b"), Currency::Usd), 20);
    assert!(matches!(l.check(&tx).unwrap(), Checked::AlreadyApplied(_)));
}

#[test]
fn replay_reproduces_balances_and_rejects_tampering() {
    let mut l = Ledger::new();
    l.apply(deposit("d1", "a", 50), 1).unwrap();
    l.apply(move_("m1", client("a"), client("b"), 20), 2)
        .unwrap();
    let r = Ledger::replay(l.journal()).unwrap();
    assert_eq!(r.balances(), l.balances());
    assert_eq!(r.lookup("m1"), l.lookup("m1"));

    let mut j = l.journal().to_vec();
    j[1].tx.postings[0].amount = usd(21);
    j[1].tx.postings[1].amount = usd(21);
    assert!(matches!(
        Ledger::replay(&j),
        Err(ReplayError::Hash { seq: 1, .. })
    ));
    let mut j = l.journal().to_vec();
    j.swap(0, 1);
    assert!(matches!(
        Ledger::replay(&j),
        Err(ReplayError::Sequence {
            expected: 0,
            found: 1
        })
    ));
}

#[test]
fn snapshot_restores_idempotency_and_balances() {
    let mut l = Ledger::new();
    l.apply(deposit("d1", "a", 50), 1).unwrap();
    let (seq, hash) = l.lookup("d1").unwrap();
    let mut s = Ledger::from_snapshot(l.balances(), [("d1".to_string(), seq, hash)], l.len());
    assert_eq!(s.balances(), l.balances());
    assert!(s.apply(deposit("d1", "a", 50), 5).unwrap().replayed);
    assert_eq!(s.apply(deposit("d2", "a", 1), 5).unwrap().seq, 1);
    assert!(s.journal().is_empty());
}
