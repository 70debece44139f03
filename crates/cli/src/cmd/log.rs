//! `proofmesh log verify | monitor`: audit the transparency log from outside,
//! trusting only the log's checkpoint key.
//!
//! - `verify --from CHECKPOINT`: the log's current checkpoint is signed, not
//!   smaller than the saved one, and provably extends it (RFC 6962 §2.1.2).
//! - `monitor`: downloads every entry bundle and hash tile (C2SP tlog-tiles),
//!   recomputes the tree, checks it against the signed checkpoint, every tile
//!   against the recomputed hashes, every published checkpoint against the
//!   recomputed roots (no two checkpoints conflict), and that every entry
//!   parses and every receipt and audit report in it verifies, every metrics
//!   statement and heartbeat log carries a valid coordinator signature, and
//!   each provider's statements form one hash chain from genesis.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, ensure, Context};
use proofmesh_ledger::{genesis_hash, verify_chain, PoolReplay, ReplayDocError, SignedStatement};
use proofmesh_log::LogEntry;
use proofmesh_receipt::ReceiptBody;
use proofmesh_tlog::{
    decode_bundle, decode_proof, leaf_hash, tiles_for_size, verify_consistency, CheckpointVerifier,
    TileKind, TilePath, Tree, VerifiedCheckpoint,
};

use crate::clientcfg;

/// Where the log is and which key signs it.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// The log's URL prefix (default: from client.json's base URL, `.../log`).
    #[arg(long, env = "PROOFMESH_LOG_URL")]
    pub(crate) log_url: Option<String>,
    /// The log's checkpoint verifier key (default: client.json's `log_key`).
    #[arg(long, env = "PROOFMESH_LOG_KEY")]
    pub(crate) log_key: Option<String>,
    /// Data directory holding client.json.
    #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
    pub(crate) data_dir: PathBuf,
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Check that the log's current checkpoint extends a checkpoint you saved.
    Verify {
        /// A checkpoint note saved earlier (e.g. by `--save`).
        #[arg(long)]
        from: PathBuf,
        /// Write the current (verified) checkpoint here for next time.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Require the saved checkpoint to carry a cosignature by this
        /// witness (C2SP tlog-cosignature verifier key); repeatable.
        #[arg(long)]
        witness: Vec<String>,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Download the whole log, recompute it and check every entry.
    Monitor {
        /// Also check the log extends this saved checkpoint.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Write the verified checkpoint here.
        #[arg(long)]
        save: Option<PathBuf>,
        #[command(flatten)]
        log: LogArgs,
    },
}

/// The log's key name is the first `+`-separated field of its vkey.
fn verifier_from_key(vkey: &str) -> anyhow::Result<CheckpointVerifier> {
    let origin = vkey.split('+').next().unwrap_or_default();
    Ok(CheckpointVerifier::new(origin, vkey)?)
}

/// The log's checkpoint verifier, from a flag or client.json.
pub fn resolve_verifier(
    log_key: Option<String>,
    data_dir: &std::path::Path,
) -> Option<anyhow::Result<CheckpointVerifier>> {
    let key = log_key.or_else(|| clientcfg::load(data_dir).and_then(|c| c.log_key))?;
    Some(verifier_from_key(&key))
}

pub(crate) struct Remote {
    url: String,
    http: reqwest::Client,
    pub(crate) verifier: CheckpointVerifier,
}

impl Remote {
    pub(crate) fn new(a: LogArgs) -> anyhow::Result<Remote> {
        let url = match a.log_url {
            Some(u) => u,
            None => {
                let c = clientcfg::load(&a.data_dir)
                    .context("no --log-url and no client.json (run `proofmesh up` first)")?;
                format!(
                    "{}/log",
                    c.base_url.trim_end_matches('/').trim_end_matches("/v1")
                )
            }
        };
        let verifier = resolve_verifier(a.log_key, &a.data_dir)
            .context("no log key: pass --log-key or run `proofmesh up` first")??;
        Ok(Remote {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            verifier,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/{path}", self.url);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.bytes().await?.to_vec();
        ensure!(
            status.is_success(),
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(body)
    }

    pub(crate) async fn json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.get(path).await?)?)
    }

    /// Checks that `new` extends `old` with the log's RFC 6962 §2.1.2
    /// consistency proof; a smaller size or a failed proof is a fork or a
    /// rollback. Returns the proof's length in hashes.
    pub(crate) async fn check_extends(
        &self,
        old: &VerifiedCheckpoint,
        new: &VerifiedCheckpoint,
    ) -> anyhow::Result<usize> {
        ensure!(
            new.size >= old.size,
            "FORK: the log shrank from size {} to {} (a rollback or a fork)",
            old.size,
            new.size
        );
        let v = self
            .json(&format!("v1/consistency?old={}&new={}", old.size, new.size))
            .await?;
        let proof: Vec<String> = serde_json::from_value(v["consistency_proof"].clone())?;
        verify_consistency(
            old.size,
            new.size,
            &old.root,
            &new.root,
            &decode_proof(&proof)?,
        )
        .with_context(|| format!("FORK: size {} does not extend size {}", new.size, old.size))?;
        Ok(proof.len())
    }

    pub(crate) async fn checkpoint(&self) -> anyhow::Result<(VerifiedCheckpoint, Vec<u8>)> {
        let note = self.get("checkpoint").await?;
        let cp = self
            .verifier
            .verify(&note)
            .context("the log's checkpoint")?;
        Ok((cp, note))
    }
}

fn load_saved(v: &CheckpointVerifier, path: &PathBuf) -> anyhow::Result<VerifiedCheckpoint> {
    let note = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    v.verify(&note)
        .with_context(|| format!("saved checkpoint {}", path.display()))
}

/// Runs the subcommand; exit status 1 when a check fails.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let result = match cmd {
        Command::Verify {
            from,
            save,
            witness,
            log,
        } => verify(from, save, witness, log).await,
        Command::Monitor { from, save, log } => monitor(from, save, log).await,
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            println!("FAIL {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn verify(
    from: PathBuf,
    save: Option<PathBuf>,
    witnesses: Vec<String>,
    log: LogArgs,
) -> anyhow::Result<()> {
    let remote = Remote::new(log)?;
    let old = load_saved(&remote.verifier, &from)?;
    println!(
        "ok   saved checkpoint: size {} signed by {}",
        old.size, old.origin
    );
    if !witnesses.is_empty() {
        let ws = witnesses
            .iter()
            .map(|w| proofmesh_tlog::WitnessVerifier::new(w))
            .collect::<Result<Vec<_>, _>>()?;
        let note = std::fs::read(&from)?;
        let (_, who) = proofmesh_tlog::verify_cosigned(&note, &remote.verifier, &ws, ws.len())
            .context("witness cosignatures on the saved checkpoint")?;
        for c in who {
            println!("ok   cosigned by witness {} at {}", c.witness, c.timestamp);
        }
    }
    let (new, note) = remote.checkpoint().await?;
    println!(
        "ok   current checkpoint: size {} signed by {}",
        new.size, new.origin
    );
    let hashes = remote.check_extends(&old, &new).await?;
    println!(
        "ok   consistency proof ({} hashes): size {} extends size {}",
        hashes, new.size, old.size
    );
    if let Some(p) = save {
        std::fs::write(&p, &note)?;
        println!("saved the current checkpoint to {}", p.display());
    }
    println!("LOG CONSISTENT");
    Ok(())
}

/// Counts of what the monitor checked.
#[derive(Default)]
struct Tally {
    receipts: u64,
    audits: u64,
    statements: u64,
    heartbeat_logs: u64,
    pool_documents: u64,
    batches: u64,
    hash_tiles: u64,
    bundles: u64,
    checkpoints: u64,
}

async fn monitor(from: Option<PathBuf>, save: Option<PathBuf>, log: LogArgs) -> anyhow::Result<()> {
    let remote = Remote::new(log)?;
    let (cp, note) = remote.checkpoint().await?;
    println!("ok   checkpoint: size {} signed by {}", cp.size, cp.origin);
    let mut t = Tally::default();
    let tree = download_entries(&remote, cp.size, &mut t).await?;
    ensure!(
        tree.root() == cp.root,
        "recomputed root differs from the signed checkpoint's"
    );
    println!(
        "ok   recomputed tree of {} entries matches the checkpoint root",
        cp.size
    );
    for tile in tiles_for_size(cp.size) {
        if let TileKind::Hashes { .. } = tile.kind() {
            let got = remote.get(&tile.to_path()).await?;
            ensure!(
                got == tree.tile_data(cp.size, tile)?,
                "hash tile {tile} differs from the recomputed hashes"
            );
            t.hash_tiles += 1;
        }
    }
    println!("ok   {} hash tiles match the recomputed tree", t.hash_tiles);
    check_published(&remote, &tree, cp.size, &mut t).await?;
    println!(
        "ok   {} published checkpoints all agree with the recomputed tree (no fork)",
        t.checkpoints
    );
    if let Some(path) = from {
        let old = load_saved(&remote.verifier, &path)?;
        ensure!(
            old.size <= cp.size,
            "the log shrank below the saved checkpoint"
        );
        ensure!(
            tree.root_at(old.size)? == old.root,
            "the saved checkpoint conflicts with the log (a fork)"
        );
        println!(
            "ok   the log extends the saved checkpoint of size {}",
            old.size
        );
    }
    println!(
        "ok   {} entry bundles: {} receipts and {} audit reports parse and verify",
        t.bundles, t.receipts, t.audits
    );
    println!(
        "ok   {} metrics statements (signed, chained per provider) and {} heartbeat logs verify",
        t.statements, t.heartbeat_logs
    );
    println!(
        "ok   {} pool documents (charters, holder-signed transfers, distributions replayed against units) and {} settlement batches (signed, chained) verify",
        t.pool_documents, t.batches
    );
    if let Some(p) = save {
        std::fs::write(&p, &note)?;
    }
    println!("LOG VERIFIED");
    Ok(())
}

/// Fetches the entries `start..min(start + 256, size)` (one entry bundle;
/// `start` must be a multiple of 256).
pub(crate) async fn fetch_bundle(
    remote: &Remote,
    start: u64,
    size: u64,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let width = (size - start).min(256) as u32;
    let tile = TilePath::new(TileKind::Entries, start / 256, width)?;
    let bundle = remote.get(&tile.to_path()).await?;
    let entries = decode_bundle(&bundle).with_context(|| format!("bundle {tile}"))?;
    ensure!(
        entries.len() as u32 == width,
        "bundle {tile} holds {} entries",
        entries.len()
    );
    Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
}

/// Downloads every entry up to the signed checkpoint's size and checks that
/// the tree recomputed from them has the checkpoint's root, so every entry
/// returned is provably in the log the key signed.
pub(crate) async fn download_verified(
    remote: &Remote,
) -> anyhow::Result<(VerifiedCheckpoint, Vec<Vec<u8>>)> {
    let (cp, _) = remote.checkpoint().await?;
    let mut tree = Tree::new();
    let mut entries = Vec::with_capacity(usize::try_from(cp.size).unwrap_or(0));
    while (entries.len() as u64) < cp.size {
        for e in fetch_bundle(remote, entries.len() as u64, cp.size).await? {
            tree.append(leaf_hash(&e))?;
            entries.push(e);
        }
    }
    ensure!(
        tree.root() == cp.root,
        "the tree recomputed from the log's entries does not match its signed checkpoint"
    );
    Ok((cp, entries))
}

/// What earlier entries established, for checking later ones.
#[derive(Default)]
struct Seen {
    receipts: HashMap<String, ReceiptBody>,
    statements: HashMap<String, SignedStatement>,
    pools: PoolReplay,
}

/// Downloads every entry bundle up to `size`, checks each entry, and builds
/// the tree from the entries themselves.
async fn download_entries(remote: &Remote, size: u64, t: &mut Tally) -> anyhow::Result<Tree> {
    let mut tree = Tree::new();
    let mut seen = Seen::default();
    let mut n = 0u64;
    while n < size {
        for bytes in fetch_bundle(remote, n, size).await? {
            check_entry(n, &bytes, &mut seen, t)?;
            tree.append(leaf_hash(&bytes))?;
            n += 1;
        }
        t.bundles += 1;
    }
    Ok(tree)
}

fn check_entry(index: u64, bytes: &[u8], seen: &mut Seen, t: &mut Tally) -> anyhow::Result<()> {
    match LogEntry::decode(bytes).with_context(|| format!("entry {index} does not parse"))? {
        LogEntry::Receipt(r) => {
            r.verify(None).with_context(|| {
                format!(
                    "entry {index}: receipt {} does not verify",
                    r.body.receipt_id
                )
            })?;
            seen.receipts.insert(r.body.receipt_id.clone(), r.body);
            t.receipts += 1;
        }
        LogEntry::AuditReport(a) => {
            let Some(body) = seen.receipts.get(&a.body.receipt_id) else {
                bail!(
                    "entry {index}: audit of receipt {} that is not earlier in the log",
                    a.body.receipt_id
                );
            };
            a.verify_for(body)
                .with_context(|| format!("entry {index}: audit report does not verify"))?;
            t.audits += 1;
        }
        LogEntry::Statement(s) => {
            let provider = s.body.provider.to_string();
            let chained = match seen.statements.get(&provider) {
                Some(prev) => verify_chain(&[prev.clone(), s.clone()], None, None),
                None => verify_chain(std::slice::from_ref(&s), None, Some(&genesis_hash())),
            };
            chained.with_context(|| {
                format!("entry {index}: metrics statement for {provider} does not verify")
            })?;
            seen.statements.insert(provider, s);
            t.statements += 1;
        }
        LogEntry::Heartbeats(h) => {
            h.verify()
                .with_context(|| format!("entry {index}: heartbeat log does not verify"))?;
            t.heartbeat_logs += 1;
        }
        LogEntry::PoolCharter(c) => pool_doc(index, "pool charter", seen.pools.charter(&c), t)?,
        LogEntry::PoolTransfer(x) => pool_doc(index, "unit transfer", seen.pools.transfer(&x), t)?,
        LogEntry::PoolDistribution(d) => {
            pool_doc(index, "pool distribution", seen.pools.distribution(&d), t)?
        }
        LogEntry::SettlementBatch(b) => {
            seen.pools
                .batch(&b)
                .with_context(|| format!("entry {index}: settlement batch does not verify"))?;
            t.batches += 1;
        }
    }
    Ok(())
}

fn pool_doc(
    index: u64,
    what: &str,
    r: Result<(), ReplayDocError>,
    t: &mut Tally,
) -> anyhow::Result<()> {
    r.with_context(|| format!("entry {index}: {what} does not verify"))?;
    t.pool_documents += 1;
    Ok(())
}

/// Every checkpoint the log says it published must be signed and agree
/// with the recomputed tree at its size.
async fn check_published(
    remote: &Remote,
    tree: &Tree,
    size: u64,
    t: &mut Tally,
) -> anyhow::Result<()> {
    let mut from = 0u64;
    loop {
        let v = remote
            .json(&format!("v1/checkpoints?from={from}&limit=1000"))
            .await?;
        let notes: Vec<String> = serde_json::from_value(v["checkpoints"].clone())?;
        let Some(last) = notes.last() else {
            return Ok(());
        };
        let last_size = remote.verifier.verify(last.as_bytes())?.size;
        for n in &notes {
            let c = remote.verifier.verify(n.as_bytes())?;
            if c.size > size {
                return Ok(());
            }
            ensure!(
                tree.root_at(c.size)? == c.root,
                "published checkpoint of size {} conflicts with the log",
                c.size
            );
            t.checkpoints += 1;
        }
        if notes.len() < 1000 {
            return Ok(());
        }
        from = last_size + 1;
    }
}
