//! [`Bank`]: a cloneable handle to the durable ledger. `apply` sends a
//! transaction to the writer and waits until it is durably committed (or
//! refused with the ledger's named reason).

use std::sync::Arc;

use proofmesh_ledger::{AccountId, Applied, Currency, Ledger, LedgerError, Transaction};
use proofmesh_store::{LedgerSnapshot, LedgerStore, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::writer::{self, Msg};

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankConfig {
    /// Most transactions per store transaction.
    pub max_batch: usize,
    /// Queued transactions before callers wait.
    pub queue_capacity: usize,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            max_batch: 2048,
            queue_capacity: 16_384,
        }
    }
}

/// Why a transaction was not applied.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The ledger's rules refused it (unbalanced, insufficient funds,
    /// conflicting idempotency key, overflow, ...). Nothing changed.
    #[error(transparent)]
    Refused(#[from] LedgerError),
    /// The store failed; the batch it was in was not applied.
    #[error("ledger commit failed: {reason}")]
    CommitFailed {
        /// The store's error, for logs.
        reason: String,
    },
    /// Loading or reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored ledger does not load.
    #[error("stored ledger is corrupt: {reason}")]
    Corrupt {
        /// What.
        reason: String,
    },
    /// The service is shut down.
    #[error("the ledger is closed")]
    Closed,
}

/// Handle to the ledger service.
#[derive(Clone)]
pub struct Bank {
    tx: mpsc::Sender<Msg>,
    store: Arc<dyn LedgerStore>,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank").finish_non_exhaustive()
    }
}

/// Rebuilds the mirror from a store snapshot.
pub(crate) fn mirror(s: LedgerSnapshot) -> Result<Ledger, BankError> {
    let corrupt = |reason: String| BankError::Corrupt { reason };
    let mut balances = Vec::with_capacity(s.balances.len());
    for (a, c, b) in s.balances {
        let account: AccountId = a
            .parse()
            .map_err(|e| corrupt(format!("account {a}: {e}")))?;
        let currency = Currency::parse(&c).map_err(|e| corrupt(format!("currency {c}: {e}")))?;
        balances.push((account, currency, b));
    }
    let keys = s
        .keys
        .into_iter()
        .map(|(k, seq, h)| (k, seq, proofmesh_ledger::Hash32(h)));
    Ok(Ledger::from_snapshot(balances, keys, s.next_seq))
}

impl Bank {
    /// Loads the mirror from `store` and starts the writer.
    pub async fn open(
        store: Arc<dyn LedgerStore>,
        config: BankConfig,
    ) -> Result<(Bank, JoinHandle<()>), BankError> {
        let ledger = mirror(store.ledger_snapshot().await?)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(writer::run(store.clone(), ledger, rx, config));
        Ok((Bank { tx, store }, task))
    }

    /// Applies `tx` at `at_ms`; returns once it is durable. An identical
    /// retry returns the original's result with `replayed: true`.
    pub async fn apply(&self, tx: Transaction, at_ms: u64) -> Result<Applied, BankError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Apply { tx, at_ms, reply })
            .await
            .map_err(|_| BankError::Closed)?;
        rx.await.map_err(|_| BankError::Closed)?
    }

    /// Durable balances of `account`, per currency (micro-units).
    pub async fn balances(&self, account: &AccountId) -> Result<Vec<(String, i64)>, BankError> {
        Ok(self.store.ledger_balances(&account.to_string()).await?)
    }

    /// The durable balance of `account` in `currency`.
    pub async fn balance(&self, account: &AccountId, currency: Currency) -> Result<i64, BankError> {
        Ok(self
            .balances(account)
            .await?
            .into_iter()
            .find(|(c, _)| c == currency.code())
            .map(|(_, b)| b)
            .unwrap_or(0))
    }

    /// Stops the writer after everything queued is committed.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
