//! The in-memory double-entry ledger: balances, the idempotency index and the
//! journal, with `check` (compute effects, mutate nothing) separate from
//! `commit` (apply checked effects).
//!
//! Why the split: a durable store must write the journal row and the balance
//! updates in one database transaction. The store calls [`Ledger::check`] to
//! learn exactly which balances change from what to what (and whether the key
//! was already applied), writes that — guarding each update with the `before`
//! value so a concurrent writer cannot overdraw an account — and then calls
//! [`Ledger::commit`] so this mirror stays in step. [`Ledger::apply`] does both
//! for in-memory use. A rejected transaction never changes anything: all
//! arithmetic is done before the first write.
//!
//! Sequence numbers start at 0 and equal the journal index, which is also the
//! leaf index in settlement batches.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::hash::Hash32;
use crate::money::Currency;
use crate::tx::{Side, Transaction, TxError};

/// Why the ledger refused a transaction (or a commit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The transaction is malformed.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The key was used before for a different transaction.
    #[error("double spend / conflicting idempotency key {key:?}: already applied as seq {seq} with hash {existing}, retried with different content (hash {attempted})")]
    ConflictingKey {
        /// The key.
        key: String,
        /// Sequence number of the original.
        seq: u64,
        /// Hash of the original.
        existing: Hash32,
        /// Hash of the new attempt.
        attempted: Hash32,
    },
    /// An account without credit would go negative.
    #[error("insufficient funds in {account} ({currency}): balance {balance}, change {change} micro-units (transaction {key})")]
    InsufficientFunds {
        /// Transaction key.
        key: String,
        /// The account.
        account: AccountId,
        /// Currency.
        currency: Currency,
        /// Balance before.
        balance: i64,
        /// Net change the transaction asks for.
        change: i128,
    },
    /// A balance would leave the `i64` range.
    #[error("balance overflow in {account} ({currency}): {balance} + {change} micro-units (transaction {key})")]
    Overflow {
        /// Transaction key.
        key: String,
        /// The account.
        account: AccountId,
        /// Currency.
        currency: Currency,
        /// Balance before.
        balance: i64,
        /// Net change.
        change: i128,
    },
    /// `commit` was given effects computed against another state.
    #[error("stale effects for {key:?}: {reason}")]
    Stale {
        /// Transaction key.
        key: String,
        /// What no longer matches.
        reason: String,
    },
}

/// One balance change a transaction causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceChange {
    /// Account.
    pub account: AccountId,
    /// Currency.
    pub currency: Currency,
    /// Balance before, micro-units.
    pub before: i64,
    /// Balance after, micro-units.
    pub after: i64,
}

/// What applying a new transaction will do; from [`Ledger::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// Transaction key.
    pub key: String,
    /// Transaction hash.
    pub hash: Hash32,
    /// The sequence number it will get.
    pub seq: u64,
    /// Net change per (account, currency), sorted by account then currency.
    pub changes: Vec<BalanceChange>,
}

/// The outcome of [`Ledger::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A new transaction; these are its effects.
    Fresh(Effects),
    /// The identical transaction was applied before; nothing to do.
    AlreadyApplied(Applied),
}

/// The result of applying a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: Hash32,
    /// True if this call was an idempotent retry that changed nothing.
    pub replayed: bool,
}

/// One journal line: a transaction with its position and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Position, from 0.
    pub seq: u64,
    /// Unix ms when it was applied (given by the caller).
    pub at_ms: u64,
    /// `tx.hash()`.
    pub hash: Hash32,
    /// The transaction.
    pub tx: Transaction,
}

/// Why a journal does not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Entries are not numbered 0, 1, 2, …
    #[error("journal entry {found} out of order (expected seq {expected})")]
    Sequence {
        /// Expected seq.
        expected: u64,
        /// Found seq.
        found: u64,
    },
    /// The recorded hash does not match the transaction.
    #[error("journal entry {seq}: recorded hash {recorded} but transaction hashes to {actual}")]
    Hash {
        /// Entry.
        seq: u64,
        /// Recorded.
        recorded: Hash32,
        /// Recomputed.
        actual: Hash32,
    },
    /// The transaction is rejected on replay.
    #[error("journal entry {seq}: {source}")]
    Rejected {
        /// Entry.
        seq: u64,
        /// Why.
        source: LedgerError,
    },
}

type Slots = [Option<i64>; Currency::ALL.len()];

/// Balances, idempotency index and journal.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Per account, one slot per [`Currency::ALL`] entry; `None` = never touched.
    balances: HashMap<AccountId, Slots>,
    keys: HashMap<String, (u64, Hash32)>,
    journal: Vec<JournalEntry>,
    next_seq: u64,
    keep_journal: bool,
}

impl Ledger {
    /// An empty ledger that keeps its journal in memory.
    pub fn new() -> Ledger {
        Ledger {
            keep_journal: true,
            ..Ledger::default()
        }
    }

    /// An empty ledger that does not keep the journal (when a store keeps it).
    pub fn without_journal() -> Ledger {
        Ledger::default()
    }

    /// Rebuilds the mirror from a store snapshot: balances, applied keys with
    /// their seq and hash, and the next sequence number. Keeps no journal.
    pub fn from_snapshot(
        balances: impl IntoIterator<Item = (AccountId, Currency, i64)>,
        keys: impl IntoIterator<Item = (String, u64, Hash32)>,
        next_seq: u64,
    ) -> Ledger {
        let mut map: HashMap<AccountId, Slots> = HashMap::new();
        for (a, c, b) in balances {
            map.entry(a).or_default()[c.index()] = Some(b);
        }
        Ledger {
            balances: map,
            keys: keys.into_iter().map(|(k, s, h)| (k, (s, h))).collect(),
            journal: Vec::new(),
            next_seq,
            keep_journal: false,
        }
    }

    /// Replays a journal from seq 0, checking order, hashes and every rule.
    pub fn replay<'a>(
        entries: impl IntoIterator<Item = &'a JournalEntry>,
    ) -> Result<Ledger, ReplayError> {
        let mut l = Ledger::new();
        for e in entries {
            if e.seq != l.next_seq {
                return Err(ReplayError::Sequence {
                    expected: l.next_seq,
                    found: e.seq,
                });
            }
            let actual = e.tx.hash();
            if actual != e.hash {
                return Err(ReplayError::Hash {
                    seq: e.seq,
                    recorded: e.hash,
                    actual,
                });
            }
            match l.check(&e.tx) {
                Ok(Checked::Fresh(fx)) => {
                    l.commit_unchecked(fx, e.tx.clone(), e.at_ms);
                }
                Ok(Checked::AlreadyApplied(a)) => {
                    let source = LedgerError::Stale {
                        key: e.tx.key.clone(),
                        reason: format!("key already applied at seq {}", a.seq),
                    };
                    return Err(ReplayError::Rejected { seq: e.seq, source });
                }
                Err(source) => return Err(ReplayError::Rejected { seq: e.seq, source }),
            }
        }
        Ok(l)
    }

    /// Balance of one account in one currency (0 if never touched).
    pub fn balance(&self, account: &AccountId, currency: Currency) -> i64 {
        self.balances
            .get(account)
            .and_then(|s| s[currency.index()])
            .unwrap_or(0)
    }

    /// Every (account, currency, balance), sorted.
    pub fn balances(&self) -> Vec<(AccountId, Currency, i64)> {
        let mut v: Vec<_> = self
            .balances
            .iter()
            .flat_map(|(a, slots)| {
                Currency::ALL
                    .into_iter()
                    .filter_map(move |c| slots[c.index()].map(|b| (a.clone(), c, b)))
            })
            .collect();
        v.sort();
        v
    }

    /// Sum of all balances per currency; always 0 for a consistent ledger.
    pub fn totals(&self) -> BTreeMap<Currency, i128> {
        let mut t = BTreeMap::new();
        for slots in self.balances.values() {
            for c in Currency::ALL {
                if let Some(b) = slots[c.index()] {
                    *t.entry(c).or_insert(0i128) += i128::from(b);
                }
            }
        }
        t
    }

    /// The journal (empty for ledgers built without one).
    pub fn journal(&self) -> &[JournalEntry] {
        &self.journal
    }

    /// Number of transactions applied (the next sequence number).
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    /// Whether nothing was applied yet.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// Seq and hash of the transaction applied under `key`, if any.
    pub fn lookup(&self, key: &str) -> Option<(u64, Hash32)> {
        self.keys.get(key).copied()
    }

    /// Validates `tx` against the current state without changing anything.
    pub fn check(&self, tx: &Transaction) -> Result<Checked, LedgerError> {
        tx.validate()?;
        let hash = tx.hash();
        if let Some(&(seq, existing)) = self.keys.get(&tx.key) {
            if existing == hash {
                return Ok(Checked::AlreadyApplied(Applied {
                    seq,
                    hash,
                    replayed: true,
                }));
            }
            return Err(LedgerError::ConflictingKey {
                key: tx.key.clone(),
                seq,
                existing,
                attempted: hash,
            });
        }
        let mut deltas: BTreeMap<(&AccountId, Currency), i128> = BTreeMap::new();
        for p in &tx.postings {
            let m = i128::from(p.amount.micros());
            let d = deltas.entry((&p.account, p.amount.currency())).or_insert(0);
            match p.side {
                Side::Debit => *d -= m,
                Side::Credit => *d += m,
            }
        }
        let mut changes = Vec::with_capacity(deltas.len());
        for ((account, currency), change) in deltas {
            changes.push(self.change_for(&tx.key, account, currency, change)?);
        }
        Ok(Checked::Fresh(Effects {
            key: tx.key.clone(),
            hash,
            seq: self.next_seq,
            changes,
        }))
    }

    fn change_for(
        &self,
        key: &str,
        account: &AccountId,
        currency: Currency,
        change: i128,
    ) -> Result<BalanceChange, LedgerError> {
        let balance = self.balance(account, currency);
        let after = i128::from(balance) + change;
        let after = i64::try_from(after).map_err(|_| LedgerError::Overflow {
            key: key.into(),
            account: account.clone(),
            currency,
            balance,
            change,
        })?;
        if after < 0 && !account.allows_credit() {
            return Err(LedgerError::InsufficientFunds {
                key: key.into(),
                account: account.clone(),
                currency,
                balance,
                change,
            });
        }
        Ok(BalanceChange {
            account: account.clone(),
            currency,
            before: balance,
            after,
        })
    }

    /// Applies effects from [`Self::check`] on this same state. Refuses (and
    /// changes nothing) if the state moved on since the check.
    pub fn commit(
        &mut self,
        effects: Effects,
        tx: Transaction,
        at_ms: u64,
    ) -> Result<Applied, LedgerError> {
        let stale = |reason: String| LedgerError::Stale {
            key: effects.key.clone(),
            reason,
        };
        if effects.seq != self.next_seq {
            return Err(stale(format!(
                "checked for seq {}, ledger is at {}",
                effects.seq, self.next_seq
            )));
        }
        if effects.key != tx.key || effects.hash != tx.hash() {
            return Err(stale("effects belong to another transaction".into()));
        }
        if self.keys.contains_key(&tx.key) {
            return Err(stale("key already applied".into()));
        }
        for c in &effects.changes {
            let now = self.balance(&c.account, c.currency);
            if now != c.before {
                return Err(stale(format!(
                    "{} is {now}, was {} at check",
                    c.account, c.before
                )));
            }
        }
        Ok(self.commit_unchecked(effects, tx, at_ms))
    }

    fn commit_unchecked(&mut self, effects: Effects, tx: Transaction, at_ms: u64) -> Applied {
        for c in effects.changes {
            let i = c.currency.index();
            match self.balances.get_mut(&c.account) {
                Some(slots) => slots[i] = Some(c.after),
                None => {
                    let mut slots = Slots::default();
                    slots[i] = Some(c.after);
                    self.balances.insert(c.account, slots);
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.keys.insert(tx.key.clone(), (seq, effects.hash));
        if self.keep_journal {
            self.journal.push(JournalEntry {
                seq,
                at_ms,
                hash: effects.hash,
                tx,
            });
        }
        Applied {
            seq,
            hash: effects.hash,
            replayed: false,
        }
    }

    /// Checks and applies `tx` at time `at_ms`. An identical retry returns the
    /// original's [`Applied`] with `replayed: true` and changes nothing.
    pub fn apply(&mut self, tx: Transaction, at_ms: u64) -> Result<Applied, LedgerError> {
        match self.check(&tx)? {
            Checked::AlreadyApplied(a) => Ok(a),
            Checked::Fresh(fx) => Ok(self.commit_unchecked(fx, tx, at_ms)),
        }
    }
}

#[cfg(test)]
mod tests;
