//! Offline administration of a coordinator's state: the operations an
//! operator's tools (`proofmesh keys create`, `billing credit`, `billing
//! check`, `proofmesh up`) perform on a coordinator's data directory without
//! going through its HTTP API.
//!
//! Each function takes the coordinator's data directory, opens the
//! coordinator's own state there with the coordinator's own code (the
//! [`SqliteStore`] the server opens, with its migrations; the same
//! [`Bank`] over it; the same key files), does one operation, closes what it
//! opened and returns a typed result. Callers never name the database file
//! or its schema. The time an operation is stamped with is passed in
//! (`now_ms`, unix ms), not read here: the caller owns the clock.
//!
//! # A running coordinator
//!
//! These functions may run while the coordinator serves on the same data
//! directory. They do not rely on it being stopped: they open the database
//! through [`SqliteStore::open`], which configures what makes a second
//! process safe — WAL journaling (readers never block the writer and are not
//! blocked by it), a 5 s busy timeout, and write transactions that take the
//! write lock up front (`BEGIN IMMEDIATE`), so a write here waits for the
//! coordinator's current write to commit instead of failing with
//! `SQLITE_BUSY`. A write that still cannot get the lock within the timeout
//! fails with [`AdminError::Store`] and changes nothing. A deposit made by
//! [`credit`] reaches a running coordinator's ledger without a restart: its
//! ledger writer reloads its mirror when the stored journal moved under it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proofmesh_ledger::{settle, Amount, InvariantReport, SettleError};
use proofmesh_receipt::{Identity, IdentityError};
use proofmesh_settlement::{Bank, BankConfig, BankError};
use proofmesh_store::{SqliteStore, Store, StoreError};

use crate::billing::CheckError;
use crate::server::{db_path, key_path, log_key_path};

/// Why an administration operation failed. Each message says what was
/// being done; the cause is its [`std::error::Error::source`] (print the
/// chain, e.g. `{:#}` with anyhow, to see both).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The data directory holds no coordinator database (and the operation
    /// does not create one).
    #[error("no coordinator database at {}", path.display())]
    NoDatabase {
        /// The database path looked at.
        path: PathBuf,
    },
    /// The data directory could not be created.
    #[error("creating the coordinator data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Opening (or migrating) the database failed.
    #[error("opening the coordinator database {}", path.display())]
    Open {
        /// The database path.
        path: PathBuf,
        /// Why.
        source: Box<StoreError>,
    },
    /// A read or write on the open database failed.
    #[error("{op}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// Why.
        source: Box<StoreError>,
    },
    /// An attestation level that is not `none`, `tee` or `tee+gpu`.
    #[error("attestation level must be none, tee or tee+gpu, not {given:?}")]
    AttestationLevel {
        /// What was asked for.
        given: String,
    },
    /// The key row was written but setting its attestation requirement
    /// failed. Its secret was never returned, so the key cannot be used.
    #[error("key {key_id} of {client_id}: setting its attestation requirement {level}")]
    Attestation {
        /// The key that was created.
        key_id: String,
        /// Its client.
        client_id: String,
        /// The requirement that was not recorded.
        level: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// The key row was gone when its attestation requirement was set.
    #[error("key {key_id} of {client_id} vanished before its attestation requirement was set")]
    KeyVanished {
        /// The key that was created.
        key_id: String,
        /// Its client.
        client_id: String,
    },
    /// The deposit transaction could not be built (e.g. a zero amount).
    #[error("deposit for {client_id} (reference {reference})")]
    Deposit {
        /// The client.
        client_id: String,
        /// The payment reference.
        reference: String,
        /// Why.
        source: Box<SettleError>,
    },
    /// The ledger refused or failed to commit a transaction, or did not load.
    #[error("ledger: {op}")]
    Ledger {
        /// What was being done.
        op: &'static str,
        /// Why.
        source: Box<BankError>,
    },
    /// The settlement check could not read the stored accounts.
    #[error("settlement check")]
    Check {
        /// Why.
        source: Box<CheckError>,
    },
    /// A coordinator key file could not be read or created.
    #[error("{role} key {}", path.display())]
    Identity {
        /// `coordinator` (receipt countersigning) or `log` (checkpoints).
        role: &'static str,
        /// The key file.
        path: PathBuf,
        /// Why.
        source: Box<IdentityError>,
    },
    /// The log origin is not a valid checkpoint origin.
    #[error("log origin {origin:?}")]
    LogOrigin {
        /// The origin given.
        origin: String,
        /// Why.
        source: Box<proofmesh_tlog::TlogError>,
    },
}

/// What to create with [`create_api_key`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NewKey<'a> {
    /// Add the key to this existing client; `None` creates a new client.
    pub client_id: Option<&'a str>,
    /// A label for the key (not secret).
    pub label: &'a str,
    /// Serve this key's requests only on providers attested at this level or
    /// above (`tee`, `tee+gpu`); `None` or `none`: no requirement.
    pub min_attestation: Option<&'a str>,
}

/// A key made by [`create_api_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The client the key belongs to.
    pub client_id: String,
    /// The key's public id (safe to log).
    pub key_id: String,
    /// The full secret key. Shown once: only its hash is stored.
    pub api_key: String,
    /// The attestation requirement recorded for it, if any.
    pub min_attestation: Option<String>,
}

/// Who a presented API key belongs to ([`authenticate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    /// The client.
    pub client_id: String,
    /// The key's public id.
    pub key_id: String,
    /// The key's attestation requirement, if any.
    pub min_attestation: Option<String>,
}

/// A deposit asked of [`credit`].
#[derive(Debug, Clone, Copy)]
pub struct Deposit<'a> {
    /// The client credited (`client_...`).
    pub client_id: &'a str,
    /// How much, in which currency.
    pub amount: Amount,
    /// The payment reference: the same reference never credits twice.
    pub reference: &'a str,
}

/// The outcome of [`credit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credited {
    /// The ledger sequence number of the deposit (of the original one when
    /// `replayed`).
    pub seq: u64,
    /// True if this reference had already been credited; nothing changed.
    pub replayed: bool,
}

/// The coordinator's public keys, as clients pin them ([`public_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys {
    /// The receipt countersigning key (`ed25519:...`).
    pub coordinator_key: String,
    /// The transparency log's checkpoint verifier key (C2SP note format).
    pub log_key: String,
}

/// Issues an API key at `now_ms`, creating the data directory and the
/// database if they do not exist yet (as the coordinator would at its first
/// start).
pub async fn create_api_key(
    data_dir: &Path,
    new: NewKey<'_>,
    now_ms: u64,
) -> Result<CreatedKey, AdminError> {
    let level = match new.min_attestation {
        Some(l) if crate::attestation::parse_level(l).is_none() => {
            return Err(AdminError::AttestationLevel { given: l.into() })
        }
        Some(l) if l != "none" => Some(l),
        _ => None,
    };
    std::fs::create_dir_all(data_dir).map_err(|source| AdminError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let store = open(&db_path(data_dir)).await?;
    let result = create_key_in(&store, new, level, now_ms).await;
    store.close().await;
    result
}

async fn create_key_in(
    store: &SqliteStore,
    new: NewKey<'_>,
    level: Option<&str>,
    now_ms: u64,
) -> Result<CreatedKey, AdminError> {
    let k = store
        .create_api_key(new.client_id, new.label, now_ms)
        .await
        .map_err(|source| AdminError::Store {
            op: "creating the API key",
            source: Box::new(source),
        })?;
    if let Some(level) = level {
        match store.set_key_min_attestation(&k.key_id, Some(level)).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(AdminError::KeyVanished {
                    key_id: k.key_id,
                    client_id: k.client_id,
                })
            }
            Err(source) => {
                return Err(AdminError::Attestation {
                    key_id: k.key_id,
                    client_id: k.client_id,
                    level: level.into(),
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(CreatedKey {
        client_id: k.client_id,
        key_id: k.key_id,
        api_key: k.key,
        min_attestation: level.map(str::to_owned),
    })
}

/// Who `api_key` belongs to, if it authenticates (known, not revoked, right
/// secret). A data directory without a database authenticates nothing
/// (`Ok(None)`, and no database is created).
pub async fn authenticate(data_dir: &Path, api_key: &str) -> Result<Option<KeyHolder>, AdminError> {
    let path = db_path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    let store = open(&path).await?;
    let result = store.authenticate(api_key).await;
    store.close().await;
    let client = result.map_err(|source| AdminError::Store {
        op: "authenticating the API key",
        source: Box::new(source),
    })?;
    Ok(client.map(|c| KeyHolder {
        client_id: c.client_id,
        key_id: c.key_id,
        min_attestation: c.min_attestation,
    }))
}

/// Deposits prepaid credit for a client into the coordinator's ledger at
/// `now_ms`, idempotently per [`Deposit::reference`]. The database must
/// exist.
pub async fn credit(
    data_dir: &Path,
    deposit: Deposit<'_>,
    now_ms: u64,
) -> Result<Credited, AdminError> {
    let tx = settle::deposit(deposit.client_id, deposit.amount, deposit.reference).map_err(
        |source| AdminError::Deposit {
            client_id: deposit.client_id.into(),
            reference: deposit.reference.into(),
            source: Box::new(source),
        },
    )?;
    let store = open_existing(data_dir).await?;
    let opened = Bank::open(Arc::new(store.clone()), BankConfig::default()).await;
    let result = match opened {
        Ok((bank, task)) => {
            let applied = bank.apply(tx, now_ms).await;
            bank.close().await;
            let _ = task.await;
            applied.map_err(|source| AdminError::Ledger {
                op: "applying the deposit",
                source: Box::new(source),
            })
        }
        Err(source) => Err(AdminError::Ledger {
            op: "loading the ledger",
            source: Box::new(source),
        }),
    };
    store.close().await;
    let applied = result?;
    Ok(Credited {
        seq: applied.seq,
        replayed: applied.replayed,
    })
}

/// Checks the settlement invariant ([`crate::billing::check_settlement`])
/// as of `now_ms`: no job escrow or audit hold still holds money once its
/// job and audit are final. Jobs that became final less than `grace` before
/// `now_ms` are counted as recent, not as violations (a running coordinator
/// settles them a moment later); a zero `grace` checks everything. The
/// database must exist; the check only reads the accounts (opening it
/// migrates an older schema, as the coordinator's own start would).
pub async fn check_settlement(
    data_dir: &Path,
    now_ms: u64,
    grace: Duration,
) -> Result<InvariantReport, AdminError> {
    let store = open_existing(data_dir).await?;
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let cutoff = (grace_ms > 0).then(|| now_ms.saturating_sub(grace_ms));
    let report = crate::billing::check_settlement(&store, cutoff).await;
    store.close().await;
    report.map_err(|source| AdminError::Check {
        source: Box::new(source),
    })
}

/// The coordinator's public keys for clients to pin: its receipt
/// countersigning key and its log's checkpoint verifier key for
/// `log_origin` (the configured `log_origin`). Creates the key files if they
/// do not exist yet, exactly as the coordinator does at start, so a client
/// configured before the first start pins the keys the coordinator will use.
pub fn public_keys(data_dir: &Path, log_origin: &str) -> Result<PublicKeys, AdminError> {
    std::fs::create_dir_all(data_dir).map_err(|source| AdminError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let load = |role: &'static str, path: PathBuf| {
        Identity::load_or_create(&path).map_err(|source| AdminError::Identity {
            role,
            path,
            source: Box::new(source),
        })
    };
    let coordinator_key = load("coordinator", key_path(data_dir))?
        .public()
        .to_string();
    let log_seed = load("log", log_key_path(data_dir))?.seed();
    let signer =
        proofmesh_tlog::CheckpointSigner::from_seed(log_origin, &log_seed).map_err(|source| {
            AdminError::LogOrigin {
                origin: log_origin.into(),
                source: Box::new(source),
            }
        })?;
    Ok(PublicKeys {
        coordinator_key,
        log_key: signer.verifier_key().to_owned(),
    })
}

/// Opens (creating and migrating if needed) the database at `path`.
async fn open(path: &Path) -> Result<SqliteStore, AdminError> {
    SqliteStore::open(path)
        .await
        .map_err(|source| AdminError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
}

/// Opens the data directory's database, refusing to create one.
async fn open_existing(data_dir: &Path) -> Result<SqliteStore, AdminError> {
    let path = db_path(data_dir);
    if !path.exists() {
        return Err(AdminError::NoDatabase { path });
    }
    open(&path).await
}
