//! Bad input: invalid provider claims are rejected with named errors, and a
//! provider cannot change another provider's record.

mod common;

use common::*;
use proofmesh_placement::{ClaimError, Interconnect, ProviderClaims, RegistryError};

fn good() -> ProviderClaims {
    claims(
        "a",
        "RTX 4090",
        1,
        Interconnect::Pcie,
        ASHBURN,
        500_000,
        vec![offer("m", 2.0, 100, 200, true)],
    )
}

fn err(f: impl FnOnce(&mut ProviderClaims)) -> ClaimError {
    let mut c = good();
    f(&mut c);
    c.validate().expect_err("claims should be rejected")
}

#[test]
fn good_claims_validate() {
    let v = good().validate().unwrap();
    assert_eq!(v.hardware.gpu, proofmesh_placement::GpuModel::Rtx4090);
    assert_eq!(v.offers.len(), 1);
}

#[test]
fn hardware_nonsense_is_named() {
    assert!(matches!(
        err(|c| c.vram_mib_per_gpu = -8),
        ClaimError::VramNotPositive { vram_mib: -8 }
    ));
    assert!(matches!(
        err(|c| c.vram_mib_per_gpu = 0),
        ClaimError::VramNotPositive { vram_mib: 0 }
    ));
    assert!(matches!(
        err(|c| c.vram_mib_per_gpu = 80 * 1024),
        ClaimError::VramExceedsGpu { .. }
    ));
    assert!(matches!(
        err(|c| c.gpu = "Radeon 7900".into()),
        ClaimError::UnknownGpu { .. }
    ));
    assert!(matches!(
        err(|c| c.gpu_count = 0),
        ClaimError::GpuCountOutOfRange { count: 0, .. }
    ));
    assert!(matches!(
        err(|c| c.gpu_count = 1_000),
        ClaimError::GpuCountOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.max_concurrency = 0),
        ClaimError::ConcurrencyOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.id.0.clear()),
        ClaimError::BadProviderId { len: 0, .. }
    ));
}

#[test]
fn coordinates_and_region_are_checked() {
    assert!(matches!(
        err(|c| c.lat = 91.0),
        ClaimError::LatitudeOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.lat = f64::NAN),
        ClaimError::LatitudeOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.lon = -180.5),
        ClaimError::LongitudeOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.lon = f64::INFINITY),
        ClaimError::LongitudeOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.region = "US East".into()),
        ClaimError::BadRegion { .. }
    ));
    assert!(matches!(
        err(|c| c.region.clear()),
        ClaimError::BadRegion { .. }
    ));
}

#[test]
fn absurd_prices_are_rejected() {
    assert!(matches!(
        err(|c| c.price_per_hour_micros = -1),
        ClaimError::PriceOutOfRange { value: -1, .. }
    ));
    assert!(matches!(
        err(|c| c.price_per_hour_micros = 0),
        ClaimError::PriceOutOfRange { .. }
    ));
    // $1,000/h for one GPU is beyond the $100/GPU-h bound...
    assert!(matches!(
        err(|c| c.price_per_hour_micros = 1_000_000_000),
        ClaimError::PriceOutOfRange { .. }
    ));
    // ...but the bound scales with GPU count.
    let mut eight = good();
    eight.gpu_count = 8;
    eight.price_per_hour_micros = 700_000_000;
    assert!(eight.validate().is_ok());
    let e = err(|c| c.offers[0].output_per_mtok_micros = 5_000_000_000);
    match e {
        ClaimError::PriceOutOfRange { field, .. } => assert_eq!(field, "m.output_per_mtok_micros"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        err(|c| c.offers[0].input_per_mtok_micros = -5),
        ClaimError::PriceOutOfRange { .. }
    ));
}

#[test]
fn offers_are_checked() {
    assert!(matches!(
        err(|c| c.offers.push(c.offers[0].clone())),
        ClaimError::DuplicateOffer { .. }
    ));
    assert!(matches!(
        err(|c| c.offers[0].size_bytes = -1),
        ClaimError::OfferFieldNotPositive {
            field: "size_bytes",
            ..
        }
    ));
    assert!(matches!(
        err(|c| c.offers[0].model.clear()),
        ClaimError::BadModelName { .. }
    ));
    assert!(matches!(
        err(|c| c.offers[0].prefill_tps = Some(-3.0)),
        ClaimError::ThroughputOutOfRange { .. }
    ));
    assert!(matches!(
        err(|c| c.offers[0].decode_tps = Some(f64::NAN)),
        ClaimError::ThroughputOutOfRange { .. }
    ));
    // A 40 GB model on one 24 GB card does not fit...
    assert!(matches!(
        err(|c| c.offers[0] = offer("big", 40.0, 1, 1, true)),
        ClaimError::OfferDoesNotFit { .. }
    ));
    // ...nor on two PCIe-linked cards (never split without NVLink)...
    let e = err(|c| {
        c.gpu_count = 2;
        c.offers[0] = offer("big", 30.0, 1, 1, true);
    });
    assert!(matches!(
        e,
        ClaimError::OfferDoesNotFit {
            interconnect: Interconnect::Pcie,
            ..
        }
    ));
    // ...but fits two NVLinked A100s.
    let mut nv = claims(
        "n",
        "A100 80GB",
        2,
        Interconnect::Nvlink,
        ASHBURN,
        4_000_000,
        vec![offer("big", 120.0, 1, 1, true)],
    );
    assert!(nv.validate().is_ok());
    nv.interconnect = Interconnect::Pcie;
    assert!(nv.validate().is_err());
}

#[test]
fn claims_from_json_with_negative_vram_get_a_named_error() {
    let mut v = serde_json::to_value(good()).unwrap();
    v["vram_mib_per_gpu"] = serde_json::json!(-24576);
    let c: ProviderClaims = serde_json::from_value(v).unwrap();
    let e = c.validate().unwrap_err();
    assert!(e.to_string().contains("-24576"), "{e}");
}

#[test]
fn a_provider_cannot_change_another_record() {
    let mut reg = registry();
    let a = good();
    add(&mut reg, &a);
    let mut forged = a.clone();
    forged.price_per_hour_micros = 1;
    let e = reg.upsert(&pid("mallory"), &forged, 1).unwrap_err();
    assert_eq!(
        e,
        RegistryError::NotOwner {
            authenticated: pid("mallory"),
            claimed: pid("a")
        }
    );
    assert_eq!(reg.get(&pid("a")).unwrap().price_per_hour_micros, 500_000);
    // Invalid claims from the owner leave the old record in place too.
    let mut bad = a.clone();
    bad.lat = 100.0;
    assert!(matches!(
        reg.upsert(&pid("a"), &bad, 2),
        Err(RegistryError::Claim(_))
    ));
    assert_eq!(
        reg.get(&pid("a")).unwrap().location.value.point.lat,
        ASHBURN.0
    );
}

#[test]
fn measurements_are_range_checked() {
    let mut reg = registry();
    add(&mut reg, &good());
    assert!(matches!(
        reg.record_rtt(&pid("a"), 0),
        Err(RegistryError::MeasurementOutOfRange { .. })
    ));
    assert!(matches!(
        reg.set_reputation(&pid("a"), 10_001),
        Err(RegistryError::MeasurementOutOfRange { .. })
    ));
    assert!(matches!(
        reg.record_throughput(&pid("a"), "m", Some(-1.0), None),
        Err(RegistryError::MeasurementOutOfRange { .. })
    ));
    assert!(matches!(
        reg.record_throughput(&pid("a"), "nope", Some(1.0), None),
        Err(RegistryError::UnknownOffer { .. })
    ));
    assert!(matches!(
        reg.record_rtt(&pid("ghost"), 5),
        Err(RegistryError::UnknownProvider { .. })
    ));
}
