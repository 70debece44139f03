//! Evidence collection on a TEE guest through Linux configfs-tsm
//! (Documentation/ABI/testing/configfs-tsm-report): make a report directory
//! under `/sys/kernel/config/tsm/report/`, write the 64-byte report data to
//! `inblob` (and `privlevel` for SNP), read `outblob` (the TDX quote or SNP
//! report), `provider` (`tdx_guest`, `sev_guest`) and optionally `auxblob`
//! (SNP certificate table), and check `generation` to detect another writer
//! racing us on the same directory. Plain file I/O; the only module of this
//! crate that touches the filesystem (feature `tsm`). The base directory is a
//! parameter so tests can run against a temporary directory.

use crate::bundle::EvidenceKind;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the kernel exposes configfs-tsm reports.
pub const DEFAULT_BASE: &str = "/sys/kernel/config/tsm/report";

/// Why collection failed.
#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    #[error("configfs-tsm is not available at {path} (no TEE, or configfs not mounted)")]
    Unavailable { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds {value:?}, not a number")]
    BadGeneration { path: PathBuf, value: String },
    #[error("another writer raced us: generation {found}, expected {expected}")]
    Raced { expected: u64, found: u64 },
    #[error("the kernel returned an empty outblob")]
    EmptyOutblob,
}

/// What the kernel returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// `tdx_guest`, `sev_guest`, ...
    pub provider: String,
    /// TDX quote or SNP attestation report.
    pub outblob: Vec<u8>,
    /// SNP: the certificate table (VCEK etc.) when the host provides one.
    pub auxblob: Option<Vec<u8>>,
    pub generation: u64,
}

impl TsmReport {
    /// The bundle kind for this provider, if we know it.
    pub fn kind(&self) -> Option<EvidenceKind> {
        match self.provider.trim() {
            "tdx_guest" => Some(EvidenceKind::Tdx),
            "sev_guest" => Some(EvidenceKind::Snp),
            _ => None,
        }
    }
}

/// One report directory; removed (best effort) on drop.
#[derive(Debug)]
pub struct TsmEntry {
    dir: PathBuf,
    expected_generation: u64,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TsmError + 'a {
    move |source| TsmError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn read_generation(path: &Path) -> Result<u64, TsmError> {
    match fs::read_to_string(path) {
        Ok(s) => s.trim().parse().map_err(|_| TsmError::BadGeneration {
            path: path.to_path_buf(),
            value: s,
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io("read", path)(e)),
    }
}

impl TsmEntry {
    /// Create a fresh report directory under `base`.
    pub fn create(base: &Path) -> Result<Self, TsmError> {
        if !base.is_dir() {
            return Err(TsmError::Unavailable {
                path: base.to_path_buf(),
            });
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("proofmesh-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(io("mkdir", &dir))?;
        Ok(TsmEntry {
            dir,
            expected_generation: 0,
        })
    }

    /// The directory of this entry.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Write the request: optional `privlevel` (SNP VMPL), then `inblob`.
    /// Every write bumps the kernel's generation counter by one.
    pub fn request(
        &mut self,
        report_data: &[u8; 64],
        privlevel: Option<u32>,
    ) -> Result<(), TsmError> {
        let mut g = read_generation(&self.dir.join("generation"))?;
        if let Some(level) = privlevel {
            let p = self.dir.join("privlevel");
            fs::write(&p, level.to_string()).map_err(io("write", &p))?;
            g += 1;
        }
        let p = self.dir.join("inblob");
        fs::write(&p, report_data).map_err(io("write", &p))?;
        self.expected_generation = g + 1;
        Ok(())
    }

    /// Read the result and check nobody else wrote in between.
    pub fn read(&self) -> Result<TsmReport, TsmError> {
        let p = self.dir.join("outblob");
        let outblob = fs::read(&p).map_err(io("read", &p))?;
        if outblob.is_empty() {
            return Err(TsmError::EmptyOutblob);
        }
        let p = self.dir.join("provider");
        let provider = fs::read_to_string(&p).map_err(io("read", &p))?;
        let p = self.dir.join("auxblob");
        let auxblob = match fs::read(&p) {
            Ok(v) if !v.is_empty() => Some(v),
            Ok(_) => None,
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io("read", &p)(e)),
        };
        let generation = read_generation(&self.dir.join("generation"))?;
        if generation != self.expected_generation {
            return Err(TsmError::Raced {
                expected: self.expected_generation,
                found: generation,
            });
        }
        Ok(TsmReport {
            provider: provider.trim().to_string(),
            outblob,
            auxblob,
            generation,
        })
    }
}

impl Drop for TsmEntry {
    fn drop(&mut self) {
        // configfs removes the attribute files with the directory; on a plain
        // directory (tests) this fails while files remain, which is fine.
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Get a quote/report whose report data is `report_data`
/// (see [`crate::binding::report_data_for`]). `base` is normally
/// [`DEFAULT_BASE`].
pub fn collect(
    base: &Path,
    report_data: &[u8; 64],
    privlevel: Option<u32>,
) -> Result<TsmReport, TsmError> {
    let mut entry = TsmEntry::create(base)?;
    entry.request(report_data, privlevel)?;
    entry.read()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Play the kernel's part in a temp dir: fill the attributes.
    fn fake_kernel(dir: &Path, generation: u64) {
        fs::write(dir.join("outblob"), b"QUOTE").unwrap();
        fs::write(dir.join("provider"), b"tdx_guest\n").unwrap();
        fs::write(dir.join("generation"), format!("{generation}\n")).unwrap();
    }

    #[test]
    fn collects_from_a_fake_configfs() {
        let base = tempfile::tempdir().unwrap();
        let mut e = TsmEntry::create(base.path()).unwrap();
        e.request(&[7; 64], None).unwrap();
        assert_eq!(fs::read(e.path().join("inblob")).unwrap(), vec![7u8; 64]);
        fake_kernel(e.path(), 1);
        let r = e.read().unwrap();
        assert_eq!(r.outblob, b"QUOTE");
        assert_eq!(r.kind(), Some(EvidenceKind::Tdx));
        assert_eq!(r.auxblob, None);
    }

    #[test]
    fn privlevel_counts_and_race_is_detected() {
        let base = tempfile::tempdir().unwrap();
        let mut e = TsmEntry::create(base.path()).unwrap();
        e.request(&[1; 64], Some(0)).unwrap();
        assert_eq!(fs::read_to_string(e.path().join("privlevel")).unwrap(), "0");
        fake_kernel(e.path(), 3);
        assert!(matches!(
            e.read(),
            Err(TsmError::Raced {
                expected: 2,
                found: 3
            })
        ));
    }

    #[test]
    fn missing_configfs_is_named() {
        let r = collect(Path::new("/nonexistent/tsm/report"), &[0; 64], None);
        assert!(matches!(r, Err(TsmError::Unavailable { .. })));
        let base = tempfile::tempdir().unwrap();
        // No fake kernel: outblob is absent.
        let r = collect(base.path(), &[0; 64], None);
        assert!(matches!(r, Err(TsmError::Io { op: "read", .. })));
    }
}
