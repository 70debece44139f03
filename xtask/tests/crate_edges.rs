//! Crate edges (issue 18 item 5, "no lower crate imports a higher one"),
//! checked with `cargo tree` over normal and build edges, so a new
//! dependency that breaks the layering fails `cargo test --workspace`:
//!
//! - `proofmesh-tlog` implements the specs (RFC 6962, C2SP) over opaque
//!   bytes and depends on no other proofmesh crate;
//! - what `proofmesh receipt verify` checks a receipt with
//!   (`proofmesh-receipt`: signatures and arithmetic; `proofmesh-log`: the
//!   entry format and `verify_receipt_inclusion`; `proofmesh-tlog`:
//!   checkpoints) needs neither arkworks nor the server, the prover or the
//!   engine (re-execution and zk proof checks stay behind the CLI);
//! - `proofmesh-wire`, the protocol crate, links no prover and no
//!   attestation verifier: of proofmesh's crates it depends on
//!   `proofmesh-receipt` only (no `ark-*` either);
//! - `proofmesh-ledger` is pure accounting: receipt types only.
//!
//! Each failure names every offending crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this test runs from `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// Every crate name in `package`'s normal and build dependency tree,
/// itself included.
fn tree(package: &str) -> BTreeSet<String> {
    let cargo = proofmesh_ambient::env::var("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--quiet",
            "-p",
            package,
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains(package),
        "cargo tree printed no {package}: {names:?}"
    );
    names
}

/// The crates in `package`'s tree that `forbidden` matches.
fn offending(package: &str, forbidden: impl Fn(&str) -> bool) -> Vec<String> {
    tree(package)
        .into_iter()
        .filter(|n| n != package && forbidden(n))
        .collect()
}

#[test]
fn tlog_depends_on_no_proofmesh_crate() {
    let bad = offending("proofmesh-tlog", |n| n.starts_with("proofmesh-"));
    assert!(
        bad.is_empty(),
        "proofmesh-tlog is the spec crate (opaque entry bytes); the entry format \
         belongs in proofmesh-log. It depends on:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn the_offline_receipt_verifier_needs_neither_arkworks_nor_the_server() {
    let heavy = [
        "proofmesh-coordinator",
        "proofmesh-provider",
        "proofmesh-zkml",
        "proofmesh-engine",
    ];
    let mut bad = Vec::new();
    for package in ["proofmesh-receipt", "proofmesh-log", "proofmesh-tlog"] {
        for n in offending(package, |n| n.starts_with("ark-") || heavy.contains(&n)) {
            bad.push(format!("{package} -> {n}"));
        }
    }
    assert!(
        bad.is_empty(),
        "`proofmesh receipt verify`'s library path pulls in:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn wire_links_no_prover() {
    let bad = offending("proofmesh-wire", |n| {
        n.starts_with("ark-")
            || (n.starts_with("proofmesh-") && n != "proofmesh-wire" && n != "proofmesh-receipt")
    });
    assert!(
        bad.is_empty(),
        "proofmesh-wire is a protocol crate; carry plain data (the proof bundle \
         is proofmesh_receipt::zk::ProofBundle, attestation evidence is \
         EvidenceJson). It depends on:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn ledger_is_pure_accounting() {
    let bad = offending("proofmesh-ledger", |n| {
        n.starts_with("proofmesh-") && n != "proofmesh-receipt"
    });
    assert!(
        bad.is_empty(),
        "proofmesh-ledger may use receipt types only; it depends on:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn receipt_crate_pulls_in_no_arkworks() {
    let bad = offending("proofmesh-receipt", |n| {
        n.starts_with("ark-") || n.starts_with("proofmesh-")
    });
    assert!(
        bad.is_empty(),
        "proofmesh-receipt is what every verifier links; it depends on:\n  {}",
        bad.join("\n  ")
    );
}
