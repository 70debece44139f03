//! Builders shared by the integration tests: provider claims and offers with
//! sensible defaults, and a registry holding them.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use proofmesh_placement::{
    Interconnect, OfferClaim, PlacementConfig, ProviderClaims, ProviderId, Registry,
};

/// Ashburn (the default coordinator site).
pub const ASHBURN: (f64, f64) = (39.04, -77.49);
/// Frankfurt.
pub const FRANKFURT: (f64, f64) = (50.11, 8.68);
/// Tokyo.
pub const TOKYO: (f64, f64) = (35.68, 139.65);
/// Sydney.
pub const SYDNEY: (f64, f64) = (-33.87, 151.21);

/// A model offer with explicit throughput.
pub fn offer(model: &str, size_gb: f64, input: i64, output: i64, loaded: bool) -> OfferClaim {
    let size = (size_gb * 1e9) as i64;
    OfferClaim {
        model: model.to_string(),
        params: size / 2,
        size_bytes: size,
        vram_mib: (size + size / 5) / (1 << 20) + 1,
        input_per_mtok_micros: input,
        output_per_mtok_micros: output,
        loaded,
        prefill_tps: Some(5_000.0),
        decode_tps: Some(50.0),
    }
}

/// Claims for a provider.
pub fn claims(
    id: &str,
    gpu: &str,
    gpus: i64,
    interconnect: Interconnect,
    at: (f64, f64),
    hourly: i64,
    offers: Vec<OfferClaim>,
) -> ProviderClaims {
    let spec = proofmesh_placement::GpuModel::parse(gpu)
        .expect("known gpu")
        .spec();
    ProviderClaims {
        id: ProviderId(id.to_string()),
        gpu: gpu.to_string(),
        gpu_count: gpus,
        vram_mib_per_gpu: i64::from(spec.vram_gib) * 1024,
        interconnect,
        region: "r".to_string(),
        lat: at.0,
        lon: at.1,
        price_per_hour_micros: hourly,
        max_concurrency: 4,
        attestation: Default::default(),
        offers,
    }
}

/// A registry with the default config.
pub fn registry() -> Registry {
    Registry::new(PlacementConfig::default()).expect("default config is valid")
}

/// Adds claims as their own provider.
pub fn add(reg: &mut Registry, c: &ProviderClaims) {
    reg.upsert(&c.id, c, 0).expect("valid claims");
}

/// Shorthand for an id.
pub fn pid(s: &str) -> ProviderId {
    ProviderId(s.to_string())
}
