//! Tidy checks over the whole repository (issue 18, "rules that check
//! themselves"), run by `cargo test --workspace` and so by `cargo xtask test`:
//!
//! - every `.rs` file under `crates/`, `xtask/` and `fuzz/` opens with a
//!   `//!` module comment on its first line;
//! - no Rust file reads the project's shared test data (the `shared`
//!   directory beside the crates, or its `testdata`) at run time: golden
//!   vectors are copied into the crate that uses them, with their
//!   SOURCES.md.
//!
//! Dependency rules between crates are `crate_edges.rs`'s. Each failure
//! names every offending file, not just the first.

use std::path::{Path, PathBuf};

/// The workspace root (this test runs from `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, skipping build output (`target/`) and
/// hidden directories; sorted, so failures read the same on every run.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every `.rs` file the checks cover.
fn all_rust_files() -> Vec<PathBuf> {
    let root = root();
    let files: Vec<PathBuf> = ["crates", "xtask", "fuzz"]
        .iter()
        .flat_map(|d| rust_files(&root.join(d)))
        .collect();
    assert!(
        files.len() > 100,
        "found only {} .rs files under {}: is the walk broken?",
        files.len(),
        root.display()
    );
    files
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_rust_file_opens_with_a_module_comment() {
    let missing: Vec<String> = all_rust_files()
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.lines().next().unwrap_or("").starts_with("//!")
        })
        .map(|p| relative(p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} file(s) do not start with a `//!` comment saying what they are for:\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

#[test]
fn no_test_reads_the_shared_test_data() {
    // Spelled in pieces so this file does not match itself.
    let needles = [concat!("../", "shared"), concat!("shared/", "testdata")];
    let mut hits = Vec::new();
    for p in all_rust_files() {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|s| line.contains(s)) {
                hits.push(format!("{}:{}: {}", relative(&p), n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "tests must not read the shared test data at run time; copy the vectors into \
         the crate's testdata/ with their SOURCES.md:\n  {}",
        hits.join("\n  ")
    );
}
