//! [`Log`]: a cloneable handle to the transparency log. Appends go through a
//! bounded channel to the sequencer task; reads are served from the
//! in-memory tree, always at or below the latest published checkpoint, so
//! nothing unpersisted is ever proven or served.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use proofmesh_ambient::clock::now_ms;
use proofmesh_receipt::LogInclusion;
use proofmesh_store::{LogStore, StoredCheckpoint};
use proofmesh_tlog::{
    encode_bundle, encode_proof, tile_exists, CheckpointSigner, CheckpointVerifier, Hash, TileKind,
    TilePath, Tree,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::LogConfig;
use crate::entry::LogEntry;
use crate::error::LogError;
use crate::sequencer::{self, Msg, Pending};

/// A checkpoint the log has published (durably stored and signed).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The C2SP signed note, verbatim.
    pub note: String,
}

/// Where an append landed.
#[derive(Debug, Clone)]
pub struct Sequenced {
    /// Leaf index.
    pub index: u64,
    /// The published checkpoint that covers it.
    pub checkpoint: Arc<SignedCheckpoint>,
    /// True when an entry with the same key was already logged (this append
    /// wrote nothing; `index` is the earlier entry's).
    pub duplicate: bool,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn LogStore>,
    pub(crate) signer: CheckpointSigner,
    pub(crate) tree: RwLock<Tree>,
    pub(crate) published: RwLock<Arc<SignedCheckpoint>>,
}

impl Shared {
    pub(crate) fn published(&self) -> Arc<SignedCheckpoint> {
        self.published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn tree(&self) -> std::sync::RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn tree_mut(&self) -> std::sync::RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the log; clones share one sequencer.
#[derive(Clone)]
pub struct Log {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("origin", &self.shared.signer.origin())
            .finish_non_exhaustive()
    }
}

fn to_hash(b: [u8; 32]) -> Hash {
    Hash(b)
}

impl Log {
    /// Opens the log over `store`: rebuilds the tree from the stored leaf
    /// hashes, checks it against the latest stored checkpoint (root and
    /// signature), publishes the empty checkpoint for a new log, and starts
    /// the sequencer. Await the returned task after [`Log::close`].
    pub async fn open(
        store: Arc<dyn LogStore>,
        signer: CheckpointSigner,
        config: LogConfig,
    ) -> Result<(Log, JoinHandle<()>), LogError> {
        config.validate()?;
        if signer.origin() != config.origin {
            return Err(LogError::Config {
                field: "origin",
                reason: format!("the signer is for {:?}", signer.origin()),
            });
        }
        let (leaves, latest) = store.log_snapshot().await?;
        let mut tree = Tree::new();
        for h in leaves {
            tree.append(to_hash(h))?;
        }
        let published = match latest {
            Some(cp) => check_stored(&tree, &signer, cp)?,
            None if tree.size() == 0 => {
                let root = tree.root();
                let note = signer.sign(0, &root, &[])?;
                let stored = StoredCheckpoint {
                    tree_size: 0,
                    root: root.0,
                    note: note.clone(),
                    created_at_ms: now_ms(),
                };
                store.log_append(0, &[], &stored).await?;
                signed(0, root, note)?
            }
            None => {
                return Err(LogError::Inconsistent {
                    reason: format!("{} entries but no checkpoint", tree.size()),
                })
            }
        };
        tracing::info!(origin = %config.origin, size = published.size, "transparency log open");
        let shared = Arc::new(Shared {
            store,
            signer,
            tree: RwLock::new(tree),
            published: RwLock::new(Arc::new(published)),
        });
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let task = tokio::spawn(sequencer::run(shared.clone(), rx, config));
        Ok((Log { shared, tx }, task))
    }

    /// Appends an entry and waits until a durably stored checkpoint covers
    /// it. `key` deduplicates: an entry whose key is already logged is not
    /// written again, and the earlier index is returned.
    pub async fn append(
        &self,
        entry: &LogEntry,
        key: Option<String>,
    ) -> Result<Sequenced, LogError> {
        let bytes = entry.encode()?;
        let leaf = proofmesh_tlog::leaf_hash(&bytes);
        let (reply, rx) = oneshot::channel();
        let p = Pending {
            entry: bytes,
            leaf,
            key,
            reply,
            enqueued: Instant::now(),
        };
        self.tx
            .send(Msg::Append(p))
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Stops the sequencer after it commits everything already queued.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }

    /// The log origin.
    pub fn origin(&self) -> &str {
        self.shared.signer.origin()
    }

    /// The checkpoint verifier key (C2SP signed-note vkey).
    pub fn verifier_key(&self) -> &str {
        self.shared.signer.verifier_key()
    }

    /// A verifier for this log's checkpoints.
    pub fn verifier(&self) -> Result<CheckpointVerifier, LogError> {
        Ok(CheckpointVerifier::new(self.origin(), self.verifier_key())?)
    }

    /// The latest published checkpoint.
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        self.shared.published()
    }

    fn require_published(&self, size: u64, what: impl FnOnce() -> String) -> Result<(), LogError> {
        let published = self.shared.published().size;
        if size > published {
            return Err(LogError::NotPublished {
                what: what(),
                published,
            });
        }
        Ok(())
    }

    /// RFC 6962 §2.1.1 audit path for `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.require_published(size, || format!("tree size {size}"))?;
        Ok(self.shared.tree().inclusion_proof(index, size)?)
    }

    /// RFC 6962 §2.1.2 consistency proof from `old` to `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.require_published(new, || format!("tree size {new}"))?;
        Ok(self.shared.tree().consistency_proof(old, new)?)
    }

    /// The leaf hash at `index` (published entries only).
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, LogError> {
        self.require_published(index.saturating_add(1), || format!("index {index}"))?;
        Ok(self.shared.tree().leaf_hash(index)?)
    }

    /// The inclusion record a receipt carries: the latest checkpoint and the
    /// audit path of `index` to its root.
    pub fn inclusion_for(&self, index: u64) -> Result<LogInclusion, LogError> {
        let cp = self.checkpoint();
        let proof = self.inclusion_proof(index, cp.size)?;
        Ok(LogInclusion {
            origin: self.origin().to_owned(),
            index,
            tree_size: cp.size,
            inclusion_proof: encode_proof(&proof),
            checkpoint: cp.note.clone(),
        })
    }

    /// The bytes of a hash tile or entry bundle at its C2SP path, as of the
    /// published checkpoint. Both are immutable once they exist.
    pub async fn tile(&self, tile: TilePath) -> Result<Vec<u8>, LogError> {
        let size = self.shared.published().size;
        let level = match tile.kind() {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        };
        if !tile_exists(size, level, tile.index(), tile.width()) {
            return Err(LogError::NotPublished {
                what: format!("tile {tile}"),
                published: size,
            });
        }
        match tile.kind() {
            TileKind::Hashes { .. } => Ok(self.shared.tree().tile_data(size, tile)?),
            TileKind::Entries => {
                let start = tile.index() * 256;
                let end = start + u64::from(tile.width());
                let entries = self.shared.store.log_entries(start, end).await?;
                if entries.len() as u64 != end - start {
                    return Err(LogError::Inconsistent {
                        reason: format!("entries {start}..{end} are not all stored"),
                    });
                }
                Ok(encode_bundle(&entries)?)
            }
        }
    }

    /// The index of the entry logged under `key`, if any.
    pub async fn index_of(&self, key: &str) -> Result<Option<u64>, LogError> {
        let found = self.shared.store.log_indexes_of(&[key.to_owned()]).await?;
        let published = self.shared.published().size;
        Ok(found.first().map(|(_, i)| *i).filter(|i| *i < published))
    }

    /// Stored checkpoints with size >= `from`, ascending, at most `limit`.
    pub async fn checkpoints(
        &self,
        from: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, LogError> {
        Ok(self.shared.store.log_checkpoints(from, limit).await?)
    }
}

/// Reloads the tree and the published checkpoint from the store (which must
/// pass the same checks as at open). For a sequencer whose store was
/// advanced by another writer: history stays linear because the store
/// accepts a batch only at its current size.
pub(crate) async fn resync(shared: &Shared) -> Result<(), LogError> {
    let (leaves, latest) = shared.store.log_snapshot().await?;
    let mut tree = Tree::new();
    for h in leaves {
        tree.append(to_hash(h))?;
    }
    let cp = latest.ok_or_else(|| LogError::Inconsistent {
        reason: "no checkpoint stored".into(),
    })?;
    let published = check_stored(&tree, &shared.signer, cp)?;
    *shared.tree_mut() = tree;
    *shared.published.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(published);
    Ok(())
}

fn signed(size: u64, root: Hash, note: Vec<u8>) -> Result<SignedCheckpoint, LogError> {
    let note = String::from_utf8(note).map_err(|_| LogError::Inconsistent {
        reason: "checkpoint note is not UTF-8".into(),
    })?;
    Ok(SignedCheckpoint { size, root, note })
}

/// The stored latest checkpoint must be ours (signature), cover exactly the
/// stored entries, and have the root those entries give.
fn check_stored(
    tree: &Tree,
    signer: &CheckpointSigner,
    cp: StoredCheckpoint,
) -> Result<SignedCheckpoint, LogError> {
    let verifier = CheckpointVerifier::new(signer.origin(), signer.verifier_key())?;
    let v = verifier
        .verify(&cp.note)
        .map_err(|e| LogError::Inconsistent {
            reason: format!("latest stored checkpoint does not verify with the log key: {e}"),
        })?;
    if v.size != cp.tree_size || v.size != tree.size() {
        return Err(LogError::Inconsistent {
            reason: format!(
                "checkpoint size {} but {} entries stored",
                v.size,
                tree.size()
            ),
        });
    }
    if tree.root() != v.root || v.root.0 != cp.root {
        return Err(LogError::Inconsistent {
            reason: "stored entries do not hash to the checkpoint root".into(),
        });
    }
    signed(v.size, v.root, cp.note)
}
