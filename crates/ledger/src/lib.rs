//! proofmesh-ledger: the pure accounting core of settlement (issue 8) —
//! money, a double-entry ledger, settlement flows, revenue-share pools,
//! signed metrics statements, covenant checks and settlement batches.
//!
//! Why a pure crate: every rule about money must be testable without a
//! database and identical wherever it runs (coordinator, store, CLI, a
//! lender's laptop). Nothing here does I/O, spawns tasks or reads the clock;
//! times and epochs are passed in (`proofmesh bench ledger` times it from
//! the CLI). A durable store uses [`Ledger`] as the authoritative
//! validator: [`Ledger::check`] computes the exact balance changes (with
//! `before` values to guard SQL updates) without mutating; the store writes
//! them and the journal row in one database transaction, then calls
//! [`Ledger::commit`].
//!
//! Money is integer micro-units ([`Amount`], `0..=i64::MAX`, so it fits SQL
//! `BIGINT`); balances are `i64` and only the external account may be
//! negative; all arithmetic is checked. Balance of an account =
//! credits − debits, so the balances of each currency always sum to zero.
//!
//! # Module map
//!
//! | module | what |
//! |---|---|
//! | [`money`] | [`Currency`] (known codes only), [`Amount`], checked arithmetic, bps |
//! | [`account`] | [`AccountId`] / [`AccountKind`], stable `kind:id` strings, credit rule |
//! | [`tx`] | [`Transaction`], [`Posting`], [`Reason`], [`Link`]; validation, canonical hash |
//! | [`ledger`] | [`Ledger`]: `check` → [`Effects`], `commit`, `apply`, idempotency, [`JournalEntry`], replay |
//! | [`pricing`] | [`ModelPrice`], [`PriceBook`], exact charge (= receipt's `charge_micros`) |
//! | [`settle`] | escrow / release / hold / refund / slash flows with deterministic keys |
//! | [`reconcile`] | which settlement steps a job still needs ([`reconcile::plan`]); the "job accounts empty once final" invariant |
//! | [`pool`] | [`RevenuePool`], unit transfers, largest-remainder [`distribute`]; signed [`SignedCharter`] / [`SignedTransfer`] / [`SignedDistribution`] |
//! | [`epoch`] | [`Epoch`]: half-open unix-second periods (default daily) |
//! | [`statement`] | [`SignedStatement`] metrics oracle, [`compute_statement`], chain check, [`recheck`], [`SignedHeartbeats`] uptime evidence, the [`Evidence`] rule (which log entries count) |
//! | [`covenant`] | [`CovenantPolicy`] (TOML/JSON), [`evaluate`] → [`CovenantReport`] |
//! | [`batch`] | epoch [`SignedBatch`]: RFC 6962 Merkle root of journal entries, inclusion proofs |
//! | [`hash`] | [`Hash32`], the raw SHA-256 type |

pub mod account;
pub mod batch;
pub mod covenant;
pub mod epoch;
pub mod hash;
pub mod ledger;
pub mod money;
pub mod pool;
pub mod pricing;
pub mod reconcile;
pub mod settle;
pub mod statement;
pub mod tx;

pub use account::{AccountError, AccountId, AccountKind};
pub use batch::{
    entry_leaf_hash, inclusion_proof, merkle_root, verify_inclusion, BatchBody, BatchError,
    SignedBatch,
};
pub use covenant::{evaluate, CovenantError, CovenantPolicy, CovenantReport, Ratio, Scope};
pub use epoch::{Epoch, EpochError};
pub use hash::Hash32;
pub use ledger::{
    Applied, BalanceChange, Checked, Effects, JournalEntry, Ledger, LedgerError, ReplayError,
};
pub use money::{Amount, Currency, MoneyError};
pub use pool::replay::{PoolReplay, ReplayDocError};
pub use pool::signed::{
    Allocation, PoolCharter, PoolDocError, SignedCharter, SignedDistribution, SignedTransfer,
};
pub use pool::{distribute, Distribution, PoolError, RevenuePool, UnitTransfer};
pub use pricing::{receipt_charge, ModelPrice, PriceBook, PriceError};
pub use reconcile::{
    build_step, check_job_accounts, AuditState, InvariantReport, JobAccount, JobAccountKind,
    JobState, ReconcileError, Step, StepInputs, Violation,
};
pub use settle::{
    AuditDecision, Breakdown, JobParties, PoolShare, SettleError, Settlement, SettlementConfig,
    SlashRule,
};
pub use statement::{
    compute_statement, genesis_hash, recheck, verify_chain, Evidence, EvidenceItem, Heartbeat,
    HeartbeatsBody, HeartbeatsError, SignedHeartbeats, SignedStatement, StatementBody,
    StatementError, StatementFigures, StatementParams,
};
pub use tx::{Link, Posting, Reason, Side, Transaction, TxError};
