//! `proofmesh attest verify`: verify a TDX/SGX quote, an SEV-SNP report,
//! NVIDIA GPU evidence or a whole evidence bundle offline with
//! `proofmesh-attest`, and print the verdict, measurements, TCB status,
//! advisories, expiry and (on failure) the named reasons. Works for any
//! real evidence file of those kinds, in hex or raw binary (quotes/reports),
//! with collateral in the JSON layouts the public samples use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use proofmesh_attest::bundle::{self, EvidenceBundle, Expected, VerifyOptions};
use proofmesh_attest::nvidia::{self, GpuEvidence};
use proofmesh_attest::snp::{self, SnpCollateral};
use proofmesh_attest::{intel, policy::Evidence, GpuVerdict, Policy, Revocation, TeeVerdict};
use serde_json::json;

/// Evidence kinds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Intel TDX DCAP quote (v4/v5).
    Tdx,
    /// Intel SGX DCAP quote (v3).
    Sgx,
    /// AMD SEV-SNP attestation report (1184 bytes).
    Snp,
    /// NVIDIA GPU SPDM evidence (hex/raw with --cert-chain, or NVIDIA's JSON list).
    Nvidia,
    /// A proofmesh evidence bundle (JSON, as sent at registration).
    Bundle,
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify evidence offline and print the verdict.
    Verify {
        /// What FILE holds.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The quote / report / evidence (hex text or raw binary) or JSON.
        file: PathBuf,
        /// Intel: collateral JSON (dcap-qvl QuoteCollateralV3 layout). SNP: the VCEK (DER or PEM).
        #[arg(long)]
        collateral: Option<PathBuf>,
        /// Unix time to verify at (default: now).
        #[arg(long)]
        now: Option<u64>,
        /// NVIDIA: device certificate chain (PEM). SNP: ASK+ARK chain (PEM, optional).
        #[arg(long)]
        cert_chain: Option<PathBuf>,
        /// Expected 32-byte nonce (hex): checked against GPU nonces, and with
        /// --pubkey against the TEE report data.
        #[arg(long)]
        nonce: Option<String>,
        /// Provider Ed25519 public key (hex, 32 bytes) for the binding check.
        #[arg(long)]
        pubkey: Option<String>,
        /// Appraisal policy (JSON, proofmesh_attest::Policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Intel root CA (DER or PEM) instead of Intel's production root.
        #[arg(long)]
        intel_root: Option<PathBuf>,
        /// NVIDIA device root (PEM) instead of the built-in one.
        #[arg(long)]
        nvidia_root: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Everything `verify` was given, files read.
struct Inputs {
    kind: Kind,
    file: Vec<u8>,
    collateral: Option<Vec<u8>>,
    now: u64,
    cert_chain: Option<Vec<u8>>,
    nonce: Option<[u8; 32]>,
    pubkey: Option<[u8; 32]>,
    policy: Option<Policy>,
    intel_root: Vec<u8>,
    nvidia_root: Vec<u8>,
}

/// What verification produced.
#[derive(Default)]
struct Outcome {
    tee: Option<TeeVerdict>,
    gpus: Vec<GpuVerdict>,
    trust_level: Option<String>,
    digest: Option<String>,
    reasons: Vec<String>,
}

/// Runs the command.
pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Verify {
        kind,
        file,
        collateral,
        now,
        cert_chain,
        nonce,
        pubkey,
        policy,
        intel_root,
        nvidia_root,
        json,
    } = cmd;
    let read_opt = |p: &Option<PathBuf>| p.as_deref().map(read).transpose();
    let intel_root = match &intel_root {
        Some(p) => proofmesh_attest::certs::der_of(&read(p)?)?,
        None => intel::INTEL_ROOT_CA_DER.to_vec(),
    };
    let policy = match &policy {
        Some(p) => Some(serde_json::from_slice(&read(p)?).context("parsing --policy")?),
        None => None,
    };
    let inputs = Inputs {
        kind,
        file: read(&file)?,
        collateral: read_opt(&collateral)?,
        now: now.unwrap_or_else(proofmesh_ambient::clock::now_s),
        cert_chain: read_opt(&cert_chain)?,
        nonce: nonce.as_deref().map(hex32).transpose().context("--nonce")?,
        pubkey: pubkey
            .as_deref()
            .map(hex32)
            .transpose()
            .context("--pubkey")?,
        policy,
        intel_root,
        nvidia_root: read_opt(&nvidia_root)?
            .unwrap_or_else(|| nvidia::NVIDIA_DEVICE_ROOT_PEM.to_vec()),
    };
    let out = verify(&inputs)?;
    if json {
        print_json(&inputs, &out)?;
    } else {
        print_human(&inputs, &out);
    }
    Ok(if out.reasons.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

fn hex32(s: &str) -> anyhow::Result<[u8; 32]> {
    let v = hex::decode(s.trim().trim_start_matches("0x"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("want 32 bytes, got {}", v.len()))
}

fn verify(i: &Inputs) -> anyhow::Result<Outcome> {
    let rev = Revocation::default();
    let mut out = Outcome::default();
    match i.kind {
        Kind::Tdx | Kind::Sgx => {
            let coll = i
                .collateral
                .as_ref()
                .context("--collateral (JSON) is required")?;
            let coll = intel::parse_collateral(coll)?;
            let quote = proofmesh_attest::decode_hex_or_raw(&i.file);
            match intel::verify_quote(&quote, &coll, i.now, &i.intel_root) {
                Ok(v) => out.tee = Some(v),
                Err(e) => out.reasons.push(format!("{e}")),
            }
        }
        Kind::Snp => {
            let vcek = i
                .collateral
                .clone()
                .context("--collateral (the VCEK) is required")?;
            let c = SnpCollateral {
                vcek,
                ask_ark_pem: i.cert_chain.clone(),
            };
            let report = proofmesh_attest::decode_hex_or_raw(&i.file);
            match snp::verify_report(&report, &c, i.now, &rev) {
                Ok(v) => out.tee = Some(v),
                Err(e) => out.reasons.push(format!("{e}")),
            }
        }
        Kind::Nvidia => verify_gpus(i, &rev, &mut out)?,
        Kind::Bundle => return verify_bundle(i, &rev),
    }
    check_extras(i, &mut out);
    Ok(out)
}

fn verify_gpus(i: &Inputs, rev: &Revocation, out: &mut Outcome) -> anyhow::Result<()> {
    let trimmed = i.file.trim_ascii_start();
    let list = if trimmed.starts_with(b"[") || trimmed.starts_with(b"{") {
        nvidia::parse_evidence_json(&i.file)?
    } else {
        let chain = i
            .cert_chain
            .as_ref()
            .context("--cert-chain (PEM) is required")?;
        vec![GpuEvidence {
            arch: None,
            evidence: proofmesh_attest::decode_hex_or_raw(&i.file),
            cert_chain: String::from_utf8(chain.clone()).context("--cert-chain is not text")?,
        }]
    };
    for (index, g) in list.iter().enumerate() {
        match nvidia::verify_gpu(g, &i.nvidia_root, i.now, rev) {
            Ok(v) => out.gpus.push(v),
            Err(e) => out.reasons.push(format!("GPU {index}: {e}")),
        }
    }
    Ok(())
}

fn verify_bundle(i: &Inputs, rev: &Revocation) -> anyhow::Result<Outcome> {
    let b = EvidenceBundle::from_json(&i.file)?;
    let o = VerifyOptions {
        now: i.now,
        intel_root_der: &i.intel_root,
        nvidia_root_pem: &i.nvidia_root,
        revocation: rev,
    };
    let mut out = Outcome {
        digest: Some(hex::encode(b.evidence_digest())),
        ..Outcome::default()
    };
    let (Some(pubkey), Some(nonce)) = (&i.pubkey, &i.nonce) else {
        match bundle::verify_bundle(&b, &o) {
            Ok(v) => (out.tee, out.gpus) = (v.tee, v.gpus),
            Err(e) => out.reasons.push(e.to_string()),
        }
        check_extras(i, &mut out);
        return Ok(out);
    };
    let expected = Expected::Provider {
        pubkey,
        nonce,
        known_keys: &[],
    };
    match bundle::admit_expecting(&b, &o, i.policy.as_ref(), &expected) {
        Ok(a) => {
            out.trust_level = Some(a.trust_level.to_string());
            (out.tee, out.gpus) = (a.verified.tee, a.verified.gpus);
        }
        Err(e) => out.reasons.push(e.to_string()),
    }
    Ok(out)
}

/// Optional binding, nonce and policy checks on what verified.
fn check_extras(i: &Inputs, out: &mut Outcome) {
    if let Some(nonce) = &i.nonce {
        if let Err(e) = proofmesh_attest::binding::check_gpu_nonces(&out.gpus, nonce) {
            out.reasons.push(e.to_string());
        }
        if let (Some(tee), Some(pk)) = (&out.tee, &i.pubkey) {
            let r = proofmesh_attest::binding::check_report_data(&tee.report_data, pk, nonce, &[]);
            if let Err(e) = r {
                out.reasons.push(e.to_string());
            }
        }
    }
    if let Some(p) = &i.policy {
        let ev = Evidence {
            tee: out.tee.as_ref(),
            gpus: &out.gpus,
        };
        if let Err(rs) = p.evaluate(ev) {
            out.reasons
                .extend(rs.iter().map(|r| format!("policy: {r}")));
        }
    }
}

fn earliest_expiry(out: &Outcome) -> Option<u64> {
    out.tee
        .iter()
        .map(|t| t.not_after)
        .chain(out.gpus.iter().map(|g| g.not_after))
        .min()
}

fn print_json(i: &Inputs, out: &Outcome) -> anyhow::Result<()> {
    let v = json!({
        "ok": out.reasons.is_empty(),
        "kind": format!("{:?}", i.kind).to_lowercase(),
        "now": i.now,
        "tee": out.tee,
        "gpus": out.gpus,
        "trust_level": out.trust_level,
        "evidence_digest": out.digest,
        "not_after": earliest_expiry(out),
        "reasons": out.reasons,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn print_human(i: &Inputs, out: &Outcome) {
    let ok = out.reasons.is_empty();
    println!(
        "verdict: {} ({:?} evidence, at {})",
        if ok { "VERIFIED" } else { "REJECTED" },
        i.kind,
        proofmesh_attest::time::format_unix(i.now)
    );
    if let Some(t) = &out.tee {
        println!(
            "tee: {}  tcb: {:?}  debug: {}",
            t.kind, t.tcb_status, t.debug
        );
        if !t.advisory_ids.is_empty() {
            println!("advisories: {}", t.advisory_ids.join(", "));
        }
        println!("report_data: {}", hex::encode(t.report_data));
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&t.measurements) {
            for (k, v) in m {
                println!(
                    "  {k}: {}",
                    v.as_str().map(str::to_string).unwrap_or(v.to_string())
                );
            }
        }
    }
    for (n, g) in out.gpus.iter().enumerate() {
        println!("gpu {n}: {:?}  nonce: {}", g.arch, hex::encode(g.nonce));
        println!("  device: {}", g.device_subject);
        println!(
            "  driver: {}  vbios: {}  measurements: {}",
            g.driver_version.as_deref().unwrap_or("?"),
            g.vbios_version.as_deref().unwrap_or("?"),
            g.measurements.len()
        );
        for m in &g.measurements {
            println!("    [{}] {}", m.index, hex::encode(&m.value));
        }
    }
    if let Some(t) = &out.trust_level {
        println!("trust level: {t}");
    }
    if let Some(d) = &out.digest {
        println!("evidence digest: {d}");
    }
    if let Some(na) = earliest_expiry(out) {
        println!("valid until: {}", proofmesh_attest::time::format_unix(na));
    }
    for r in &out.reasons {
        println!("reason: {r}");
    }
}
