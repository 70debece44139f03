//! The measurement behind `proofmesh bench attest`: verifications per second
//! for each evidence kind, on real public samples compiled into the binary
//! (`proofmesh-attest`'s tests/data, see its SOURCES.md), each at a `now`
//! inside its validity window. Measures the full offline verification
//! (parse, chains, collateral, signatures) through the crate's public
//! verifiers, no policy.

use std::time::Instant;

use proofmesh_attest::{intel, nvidia, snp, Revocation};
use serde::Serialize;

/// A sample file of `proofmesh-attest`'s test data.
macro_rules! sample {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../attest/tests/data/",
            $path
        ))
    };
}

const TDX_QUOTE: &[u8] = sample!("dcap-qvl/tdx_quote");
const TDX_COLLATERAL: &[u8] = sample!("dcap-qvl/tdx_quote_collateral.json");
const TDX_NOW: u64 = 1_752_919_234;
const SGX_QUOTE: &[u8] = sample!("dcap-qvl/sgx_quote");
const SGX_COLLATERAL: &[u8] = sample!("dcap-qvl/sgx_quote_collateral.json");
const SGX_NOW: u64 = 1_752_919_277;
const SNP_REPORT_HEX: &[u8] = sample!("sev/report_milan.hex");
const SNP_VCEK: &[u8] = sample!("sev/vcek_milan.der");
const SNP_NOW: u64 = 1_750_000_000;
const GPU_REPORT_HEX: &[u8] = sample!("nvtrust/hopperAttestationReport.txt");
const GPU_CHAIN: &[u8] = sample!("nvtrust/hopperCertChain.txt");
const GPU_NOW: u64 = 1_750_000_000;

/// Timings; key names carry their units.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub iters: u32,
    pub tdx_verify_ms: f64,
    pub tdx_verifications_per_s: f64,
    pub sgx_verify_ms: f64,
    pub sgx_verifications_per_s: f64,
    pub snp_verify_ms: f64,
    pub snp_verifications_per_s: f64,
    pub nvidia_verify_ms: f64,
    pub nvidia_verifications_per_s: f64,
    /// Any sample that failed to verify (numbers for it are 0).
    pub errors: Vec<String>,
}

/// Mean milliseconds per call of `f` over `iters` runs (after one warm-up).
fn time<E: std::fmt::Display>(
    name: &str,
    iters: u32,
    errors: &mut Vec<String>,
    mut f: impl FnMut() -> Result<(), E>,
) -> (f64, f64) {
    if let Err(e) = f() {
        errors.push(format!("{name}: {e}"));
        return (0.0, 0.0);
    }
    let iters = iters.max(1);
    let start = Instant::now();
    for _ in 0..iters {
        if let Err(e) = f() {
            errors.push(format!("{name}: {e}"));
            return (0.0, 0.0);
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(iters);
    (ms, if ms > 0.0 { 1000.0 / ms } else { 0.0 })
}

/// Run every benchmark `iters` times.
pub fn run(iters: u32) -> BenchReport {
    let mut errors = Vec::new();
    let rev = Revocation::default();
    let (tdx_ms, tdx_ps) = match intel::parse_collateral(TDX_COLLATERAL) {
        Ok(c) => time("tdx", iters, &mut errors, || {
            intel::verify_quote(TDX_QUOTE, &c, TDX_NOW, intel::INTEL_ROOT_CA_DER).map(|_| ())
        }),
        Err(e) => {
            errors.push(format!("tdx collateral: {e}"));
            (0.0, 0.0)
        }
    };
    let (sgx_ms, sgx_ps) = match intel::parse_collateral(SGX_COLLATERAL) {
        Ok(c) => time("sgx", iters, &mut errors, || {
            intel::verify_quote(SGX_QUOTE, &c, SGX_NOW, intel::INTEL_ROOT_CA_DER).map(|_| ())
        }),
        Err(e) => {
            errors.push(format!("sgx collateral: {e}"));
            (0.0, 0.0)
        }
    };
    let report = proofmesh_attest::decode_hex_or_raw(SNP_REPORT_HEX);
    let coll = snp::SnpCollateral {
        vcek: SNP_VCEK.to_vec(),
        ask_ark_pem: None,
    };
    let (snp_ms, snp_ps) = time("snp", iters, &mut errors, || {
        snp::verify_report(&report, &coll, SNP_NOW, &rev).map(|_| ())
    });
    let gpu = nvidia::GpuEvidence {
        arch: None,
        evidence: proofmesh_attest::decode_hex_or_raw(GPU_REPORT_HEX),
        cert_chain: String::from_utf8_lossy(GPU_CHAIN).into_owned(),
    };
    let (nv_ms, nv_ps) = time("nvidia", iters, &mut errors, || {
        nvidia::verify_gpu(&gpu, nvidia::NVIDIA_DEVICE_ROOT_PEM, GPU_NOW, &rev).map(|_| ())
    });
    BenchReport {
        iters,
        tdx_verify_ms: tdx_ms,
        tdx_verifications_per_s: tdx_ps,
        sgx_verify_ms: sgx_ms,
        sgx_verifications_per_s: sgx_ps,
        snp_verify_ms: snp_ms,
        snp_verifications_per_s: snp_ps,
        nvidia_verify_ms: nv_ms,
        nvidia_verifications_per_s: nv_ps,
        errors,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_runs_every_kind_without_errors() {
        let r = super::run(1);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.tdx_verify_ms > 0.0 && r.snp_verify_ms > 0.0 && r.nvidia_verify_ms > 0.0);
        let j = serde_json::to_value(&r).unwrap();
        assert!(j.get("tdx_verifications_per_s").is_some());
    }
}
