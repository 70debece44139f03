//! Seeds for the attestation fuzz targets: the real public evidence the
//! attest crate tests with (crates/attest/tests/data, origins in its
//! SOURCES.md), so mutations start from well-formed quotes, reports, SPDM
//! evidence, collateral and certificate chains.

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../attest/tests/data/");

fn file(rel: &str) -> Vec<u8> {
    let path = format!("{DATA}{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("seed {path}: {e}"))
}

fn hex(rel: &str) -> Vec<u8> {
    proofmesh_attest::decode_hex_or_raw(&file(rel))
}

/// Seeds for one `attest_*` target.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "attest_intel_quote" => vec![file("dcap-qvl/tdx_quote"), file("dcap-qvl/sgx_quote")],
        "attest_intel_collateral" => vec![file("dcap-qvl/tdx_quote_collateral.json")],
        "attest_snp_report" => vec![hex("sev/report_milan.hex")],
        "attest_nvidia_evidence" => vec![hex("nvtrust/hopperAttestationReport.txt")],
        "attest_nvidia_json" => vec![file("nvtrust/gpu_evidence.json")],
        "attest_bundle_json" => vec![bundle()],
        "attest_cert_chain_pem" => vec![
            file("nvtrust/hopperCertChain.txt"),
            file("sev/cert_chain_milan"),
        ],
        _ => Vec::new(),
    }
}

fn bundle() -> Vec<u8> {
    let mut b = proofmesh_attest::EvidenceBundle::none();
    b.kind = proofmesh_attest::EvidenceKind::Snp;
    b.evidence = hex("sev/report_milan.hex");
    b.collateral = Some(proofmesh_attest::Collateral::Snp {
        vcek: file("sev/vcek_milan.der"),
        ask_ark_pem: None,
    });
    serde_json::to_vec(&b).unwrap_or_default()
}
