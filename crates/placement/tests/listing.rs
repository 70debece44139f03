//! Provider listing for `GET /v1/providers`: filters, paging, provenance.

mod common;

use common::*;
use proofmesh_placement::{
    Architecture, AttestationLevel, FailureKind, GpuModel, Interconnect, Provenance, ProviderQuery,
    Registry,
};

fn three() -> Registry {
    let mut reg = registry();
    let a = offer("m", 1.0, 1, 1, true);
    let b = offer("m", 1.0, 1, 1, false);
    let c = offer("x", 1.0, 1, 1, true);
    add(
        &mut reg,
        &claims("a", "T4", 1, Interconnect::Pcie, ASHBURN, 300_000, vec![a]),
    );
    add(
        &mut reg,
        &claims(
            "b",
            "H100",
            8,
            Interconnect::Nvlink,
            TOKYO,
            9_000_000,
            vec![b],
        ),
    );
    add(
        &mut reg,
        &claims(
            "c",
            "RTX 4090",
            1,
            Interconnect::Pcie,
            SYDNEY,
            500_000,
            vec![c],
        ),
    );
    reg
}

/// Ids listed for a query built by `f` from the default.
fn ids(reg: &Registry, f: impl FnOnce(&mut ProviderQuery)) -> Vec<String> {
    let mut q = ProviderQuery::default();
    f(&mut q);
    reg.list(&q).into_iter().map(|v| v.record.id.0).collect()
}

#[test]
fn listing_filters_and_pages() {
    let mut reg = three();
    assert_eq!(ids(&reg, |_| {}), ["a", "b", "c"]);
    assert_eq!(ids(&reg, |q| q.model = Some("m".into())), ["a", "b"]);
    let loaded = |q: &mut ProviderQuery| {
        q.model = Some("m".into());
        q.loaded_only = true;
    };
    assert_eq!(ids(&reg, loaded), ["a"]);
    assert_eq!(
        ids(&reg, |q| q.min_architecture = Some(Architecture::Ada)),
        ["b", "c"]
    );
    assert_eq!(ids(&reg, |q| q.gpu = Some(GpuModel::T4)), ["a"]);
    assert_eq!(ids(&reg, |q| q.min_vram_mib = Some(100 * 1024)), ["b"]);
    assert_eq!(
        ids(&reg, |q| q.max_price_per_hour_micros = Some(400_000)),
        ["a"]
    );
    let page = |q: &mut ProviderQuery| {
        q.offset = 1;
        q.limit = 1;
    };
    assert_eq!(ids(&reg, page), ["b"]);
    reg.report_failure(&pid("a"), FailureKind::Error, 100)
        .unwrap();
    let available = |q: &mut ProviderQuery| {
        q.available_only = true;
        q.now_ms = 200;
    };
    assert_eq!(ids(&reg, available), ["b", "c"]);
    reg.set_attestation(&pid("c"), AttestationLevel::Tee, Provenance::Attested)
        .unwrap();
    assert_eq!(
        ids(&reg, |q| q.min_attestation = Some(AttestationLevel::Tee)),
        ["c"]
    );
}

#[test]
fn listing_marks_provenance_and_serialises() {
    let mut reg = three();
    reg.report_failure(&pid("a"), FailureKind::Error, 100)
        .unwrap();
    reg.set_attestation(&pid("c"), AttestationLevel::Tee, Provenance::Attested)
        .unwrap();
    assert!(reg.list(&ProviderQuery::default())[0].in_cooldown);
    let views = reg.list(&ProviderQuery {
        now_ms: 1_000_000,
        ..Default::default()
    });
    assert_eq!(
        views[0].record.hardware.provenance,
        Provenance::SelfDeclared
    );
    assert_eq!(views[2].record.hardware.provenance, Provenance::Attested);
    assert_eq!(views[2].effective_attestation, AttestationLevel::Tee);
    assert_eq!(views[1].gpu_year, GpuModel::H100.spec().year);
    let json = serde_json::to_value(&views[0]).unwrap();
    assert_eq!(json["id"], "a");
    assert_eq!(json["hardware"]["provenance"], "self_declared");
    assert_eq!(json["in_cooldown"], false);
}
