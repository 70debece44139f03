//! Reading `proofmesh plan --fleet FILE --mix FILE` (JSON or TOML, chosen by
//! the `.toml` extension) into the placement crate's fleet and mix types.
//!
//! Why a file format of its own instead of the crate's serde types: people
//! write these by hand, so GPUs are named as they are spoken ("RTX 4090",
//! "a100_80", an `nvidia-smi` name), a built-in region name stands in for
//! coordinates, a catalog model id stands in for a full model spec, and a
//! class can be its header spelling (`"batch;deadline_s=3600"`).
//!
//! Fleet (TOML `[[fleet]]` tables; JSON an array or `{"fleet": [...]}`):
//! `gpu`, `boxes`, `region`, optional `gpus_per_box` (1), `interconnect`
//! (`pcie` | `nvlink` | `infiniband`, default `pcie`), `location`
//! (`{lat, lon}`, required unless `region` is a built-in site) and
//! `price_per_gpu_hour_micros` (default: the price floor scaled to the
//! market).
//!
//! Mix (TOML `[[mix]]`; JSON an array or `{"mix": [...]}`): `name`, `class`
//! (header spelling or `{class = "interactive", ttft_slo_ms = 500}`),
//! `model` (catalog id or `{id, params, size_bytes, vram_mib?}`),
//! `prompt_tokens`, `output_tokens`, `share`.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use proofmesh_placement::plan::{FleetEntry, MixItem};
use proofmesh_placement::synthetic::{CATALOG, SITES};
use proofmesh_placement::{GeoPoint, GpuModel, Interconnect, ModelSpec, WorkloadClass};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// One fleet entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFileEntry {
    gpu: String,
    boxes: u32,
    region: String,
    #[serde(default = "one")]
    gpus_per_box: u32,
    #[serde(default)]
    interconnect: Option<Interconnect>,
    #[serde(default)]
    location: Option<GeoPoint>,
    #[serde(default)]
    price_per_gpu_hour_micros: Option<u64>,
}

fn one() -> u32 {
    1
}

/// A workload class as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ClassRef {
    Text(String),
    Full(WorkloadClass),
}

/// A model as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ModelRef {
    Catalog(String),
    Spec {
        id: String,
        params: u64,
        size_bytes: u64,
        #[serde(default)]
        vram_mib: Option<u64>,
    },
}

/// One mix item as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFileItem {
    name: String,
    class: ClassRef,
    model: ModelRef,
    prompt_tokens: u32,
    output_tokens: u32,
    share: u32,
}

/// Reads the list under `key` from a JSON or TOML file.
fn load<T: DeserializeOwned>(path: &Path, key: &str) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if is_toml {
        use figment::providers::{Format, Toml};
        return figment::Figment::from(Toml::string(&text))
            .extract_inner::<Vec<T>>(key)
            .with_context(|| format!("{}: expected [[{key}]] entries", path.display()));
    }
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let list = match value {
        serde_json::Value::Array(_) => value,
        serde_json::Value::Object(mut o) => o
            .remove(key)
            .ok_or_else(|| anyhow!("{}: no \"{key}\" array", path.display()))?,
        _ => bail!("{}: expected an array or an object", path.display()),
    };
    serde_json::from_value(list).with_context(|| format!("{}: bad {key} entry", path.display()))
}

fn fleet_entry(index: usize, e: FleetFileEntry) -> anyhow::Result<FleetEntry> {
    let gpu = GpuModel::parse(&e.gpu)
        .ok_or_else(|| anyhow!("fleet entry {index}: unknown GPU {:?}", e.gpu))?;
    let location = match e.location {
        Some(p) => p,
        None => SITES
            .iter()
            .find(|s| s.region == e.region)
            .map(|s| s.point)
            .ok_or_else(|| {
                let known: Vec<&str> = SITES.iter().map(|s| s.region).collect();
                anyhow!(
                    "fleet entry {index}: region {:?} is not a built-in site ({}); give a location",
                    e.region,
                    known.join(", ")
                )
            })?,
    };
    if e.gpus_per_box == 0 {
        bail!("fleet entry {index}: gpus_per_box must be at least 1");
    }
    Ok(FleetEntry {
        gpu,
        gpus_per_box: e.gpus_per_box,
        interconnect: e.interconnect.unwrap_or(Interconnect::Pcie),
        region: e.region,
        location,
        boxes: e.boxes,
        price_per_gpu_hour_micros: e.price_per_gpu_hour_micros,
    })
}

fn mix_item(index: usize, m: MixFileItem) -> anyhow::Result<MixItem> {
    let class = match m.class {
        ClassRef::Full(c) => c,
        ClassRef::Text(t) => t
            .parse()
            .map_err(|e| anyhow!("mix item {index} ({}): class {t:?}: {e}", m.name))?,
    };
    let model = match m.model {
        ModelRef::Catalog(id) => {
            let c = CATALOG.iter().find(|c| c.id == id).ok_or_else(|| {
                anyhow!(
                    "mix item {index} ({}): {id:?} is not a catalog model; give {{id, params, size_bytes}}",
                    m.name
                )
            })?;
            ModelSpec::from_size(c.id, c.params, c.size_bytes)
        }
        ModelRef::Spec {
            id,
            params,
            size_bytes,
            vram_mib,
        } => {
            let mut spec = ModelSpec::from_size(&id, params, size_bytes);
            if let Some(v) = vram_mib {
                spec.vram_mib = v;
            }
            spec
        }
    };
    Ok(MixItem {
        name: m.name,
        class,
        model,
        prompt_tokens: m.prompt_tokens,
        output_tokens: m.output_tokens,
        share: m.share,
    })
}

/// Reads a fleet file.
pub fn fleet(path: &Path) -> anyhow::Result<Vec<FleetEntry>> {
    let entries: Vec<FleetFileEntry> = load(path, "fleet")?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| fleet_entry(i, e).with_context(|| path.display().to_string()))
        .collect()
}

/// Reads a mix file.
pub fn mix(path: &Path) -> anyhow::Result<Vec<MixItem>> {
    let items: Vec<MixFileItem> = load(path, "mix")?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, m)| mix_item(i, m).with_context(|| path.display().to_string()))
        .collect()
}
