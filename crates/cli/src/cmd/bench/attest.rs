//! `proofmesh bench attest`: offline verifications per second for each
//! attestation evidence kind (TDX, SGX, SEV-SNP, NVIDIA GPU) on real public
//! samples compiled into `proofmesh-attest`.

mod measure;

use std::process::ExitCode;

/// Options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Verifications per kind.
    #[arg(long, default_value_t = 200)]
    iters: u32,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs it.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let iters = a.iters.max(1);
    let r = tokio::task::spawn_blocking(move || measure::run(iters)).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "attestation verification benchmark: {} iterations per kind, one core",
            r.iters
        );
        let rows = [
            (
                "TDX quote (dcap-qvl, full collateral)",
                r.tdx_verify_ms,
                r.tdx_verifications_per_s,
            ),
            (
                "SGX quote (dcap-qvl, full collateral)",
                r.sgx_verify_ms,
                r.sgx_verifications_per_s,
            ),
            (
                "SEV-SNP report + ARK/ASK/VCEK chain",
                r.snp_verify_ms,
                r.snp_verifications_per_s,
            ),
            (
                "NVIDIA GPU evidence + device chain",
                r.nvidia_verify_ms,
                r.nvidia_verifications_per_s,
            ),
        ];
        for (name, ms, per_s) in rows {
            println!("  {name:<40} {ms:>8.3} ms   {per_s:>9.1} /s");
        }
        for e in &r.errors {
            println!("  error: {e}");
        }
    }
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
