//! The known-accelerator table: every GPU model a provider may claim, with the
//! public figures placement and economics need (architecture generation, the
//! year it entered service, VRAM, TDP, approximate capex, dense BF16/FP16
//! tensor throughput, memory bandwidth). A claim naming a GPU outside this
//! table is rejected, so every figure used downstream comes from one place.
//!
//! Sources (approximate, public; good to ~±20%, which is all the tier and
//! price-floor arithmetic needs): NVIDIA product data sheets for VRAM, TDP,
//! dense tensor TFLOPS (without sparsity) and bandwidth; launch MSRPs for
//! GeForce cards; reported street/OEM prices for data-centre parts (e.g.
//! H100 SXM ~$25–40k, A100 80GB ~$15k at its peak, B200 ~$30–40k).
//! `Cpu` stands for a CPU-only provider (today's proofmesh engine is
//! CPU-only): its "VRAM" is the RAM it gives to models.

use serde::{Deserialize, Serialize};

/// Architecture generation, oldest first (the derived order is by age).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// CPU-only provider.
    Cpu,
    /// NVIDIA Volta (2017).
    Volta,
    /// NVIDIA Turing (2018).
    Turing,
    /// NVIDIA Ampere (2020).
    Ampere,
    /// NVIDIA Ada Lovelace (2022).
    Ada,
    /// NVIDIA Hopper (2022).
    Hopper,
    /// NVIDIA Blackwell (2024–25).
    Blackwell,
}

/// A GPU model from the known table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuModel {
    /// CPU-only provider (RAM stands in for VRAM).
    Cpu,
    /// Tesla V100 SXM2 32 GB.
    V100,
    /// Tesla T4 16 GB.
    T4,
    /// GeForce RTX 3090 24 GB.
    Rtx3090,
    /// A10 24 GB.
    A10,
    /// A100 40 GB (SXM).
    A100_40,
    /// A100 80 GB (SXM).
    A100_80,
    /// GeForce RTX 4090 24 GB.
    Rtx4090,
    /// L4 24 GB.
    L4,
    /// L40S 48 GB.
    L40S,
    /// H100 PCIe 80 GB.
    H100Pcie,
    /// H100 SXM 80 GB.
    H100,
    /// H200 SXM 141 GB.
    H200,
    /// GeForce RTX 5090 32 GB.
    Rtx5090,
    /// B200 192 GB.
    B200,
}

/// Public figures for one GPU model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GpuSpec {
    /// Which model.
    pub model: GpuModel,
    /// Canonical name as claims spell it.
    pub name: &'static str,
    /// Architecture generation.
    pub architecture: Architecture,
    /// Year it entered service.
    pub year: u16,
    /// Nominal memory per GPU, GiB (marketed figure; CPU: a typical RAM share).
    pub vram_gib: u32,
    /// Typical board power, watts.
    pub tdp_w: u32,
    /// Approximate purchase price per GPU, whole USD.
    pub capex_usd: u64,
    /// Dense BF16/FP16 tensor throughput, TFLOPS (no sparsity).
    pub dense_tflops: f64,
    /// Memory bandwidth, GB/s.
    pub mem_bw_gbps: f64,
    /// Data-centre part (NVLink-capable boxes exist); GeForce cards and CPUs
    /// are not.
    pub datacenter: bool,
}

const fn g(
    model: GpuModel,
    name: &'static str,
    architecture: Architecture,
    year: u16,
    vram_gib: u32,
    tdp_w: u32,
    capex_usd: u64,
    dense_tflops: f64,
    mem_bw_gbps: f64,
) -> GpuSpec {
    let datacenter = !matches!(
        model,
        GpuModel::Cpu | GpuModel::Rtx3090 | GpuModel::Rtx4090 | GpuModel::Rtx5090
    );
    GpuSpec {
        model,
        name,
        architecture,
        year,
        vram_gib,
        tdp_w,
        capex_usd,
        dense_tflops,
        mem_bw_gbps,
        datacenter,
    }
}

use Architecture as A;
use GpuModel as M;

/// The table, oldest architecture first. Figures: NVIDIA data sheets (V100,
/// T4, A10, A100, L4, L40S, H100, H200, B200), GeForce launch MSRPs (3090
/// $1,499; 4090 $1,599; 5090 $1,999); data-centre capex as reported street
/// prices. The CPU row is a 2-socket server share and DDR bandwidth.
pub const GPU_TABLE: [GpuSpec; 15] = [
    g(M::Cpu, "cpu", A::Cpu, 2019, 2_048, 200, 2_000, 2.0, 100.0),
    g(
        M::V100,
        "V100",
        A::Volta,
        2017,
        32,
        300,
        10_000,
        125.0,
        900.0,
    ),
    g(M::T4, "T4", A::Turing, 2018, 16, 70, 2_500, 65.0, 320.0),
    g(
        M::Rtx3090,
        "RTX 3090",
        A::Ampere,
        2020,
        24,
        350,
        1_499,
        71.0,
        936.0,
    ),
    g(M::A10, "A10", A::Ampere, 2021, 24, 150, 3_500, 125.0, 600.0),
    g(
        M::A100_40,
        "A100 40GB",
        A::Ampere,
        2020,
        40,
        400,
        10_000,
        312.0,
        1_555.0,
    ),
    g(
        M::A100_80,
        "A100 80GB",
        A::Ampere,
        2020,
        80,
        400,
        15_000,
        312.0,
        2_039.0,
    ),
    g(
        M::Rtx4090,
        "RTX 4090",
        A::Ada,
        2022,
        24,
        450,
        1_599,
        165.0,
        1_008.0,
    ),
    g(M::L4, "L4", A::Ada, 2023, 24, 72, 2_500, 121.0, 300.0),
    g(M::L40S, "L40S", A::Ada, 2023, 48, 350, 8_000, 362.0, 864.0),
    g(
        M::H100Pcie,
        "H100 PCIe",
        A::Hopper,
        2022,
        80,
        350,
        25_000,
        756.0,
        2_000.0,
    ),
    g(
        M::H100,
        "H100",
        A::Hopper,
        2022,
        80,
        700,
        30_000,
        989.0,
        3_350.0,
    ),
    g(
        M::H200,
        "H200",
        A::Hopper,
        2024,
        141,
        700,
        35_000,
        989.0,
        4_800.0,
    ),
    g(
        M::Rtx5090,
        "RTX 5090",
        A::Blackwell,
        2025,
        32,
        575,
        1_999,
        209.0,
        1_792.0,
    ),
    g(
        M::B200,
        "B200",
        A::Blackwell,
        2025,
        192,
        1_000,
        40_000,
        2_250.0,
        8_000.0,
    ),
];

/// Name prefixes (normalised: lowercase alphanumerics, with "nvidia",
/// "tesla" and "geforce" removed) that identify a model in a claim or an
/// `nvidia-smi` name. Checked in order, so the more specific spelling comes
/// first ("a100" before "a10", "l40s" before "l4", "h100pcie" before "h100").
const ALIASES: [(&str, GpuModel); 16] = [
    ("cpu", M::Cpu),
    ("v100", M::V100),
    ("t4", M::T4),
    ("rtx3090", M::Rtx3090),
    ("a100", M::A100_80),
    ("a10g", M::A10),
    ("a10", M::A10),
    ("rtx4090", M::Rtx4090),
    ("l40s", M::L40S),
    ("l4", M::L4),
    ("h100pcie", M::H100Pcie),
    ("h100nvl", M::H100),
    ("h100", M::H100),
    ("h200", M::H200),
    ("rtx5090", M::Rtx5090),
    ("b200", M::B200),
];

impl GpuModel {
    /// Its row of [`GPU_TABLE`].
    pub fn spec(self) -> &'static GpuSpec {
        // The table is in declaration order of the enum, so the discriminant
        // is the row; `table_is_in_enum_order` tests this.
        &GPU_TABLE[self as usize]
    }

    /// Parses a claimed name: a canonical name ("H100", "RTX 4090"), a
    /// snake_case id ("a100_80"), or an `nvidia-smi` name ("NVIDIA H100 80GB
    /// HBM3", "NVIDIA GeForce RTX 4090"). `None` if no known model matches.
    pub fn parse(name: &str) -> Option<GpuModel> {
        let norm: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let norm = norm
            .strip_prefix("nvidia")
            .unwrap_or(&norm)
            .replace("tesla", "")
            .replace("geforce", "");
        // "A100 40GB", "A100-SXM4-40GB", "a100_40"; any other A100 is 80 GB.
        if norm.starts_with("a100") && !norm.starts_with("a10080") && norm.contains("40") {
            return Some(M::A100_40);
        }
        ALIASES
            .iter()
            .find(|(alias, _)| norm.starts_with(alias))
            .map(|&(_, m)| m)
    }

    /// Every known model, oldest architecture first.
    pub fn all() -> impl Iterator<Item = GpuModel> {
        GPU_TABLE.iter().map(|s| s.model)
    }
}

impl std::fmt::Display for GpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.spec().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order() {
        for (i, s) in GPU_TABLE.iter().enumerate() {
            assert_eq!(s.model as usize, i, "{} out of order", s.name);
        }
    }

    #[test]
    fn parses_canonical_and_nvidia_smi_names() {
        for s in &GPU_TABLE {
            assert_eq!(GpuModel::parse(s.name), Some(s.model), "{}", s.name);
        }
        let cases = [
            ("NVIDIA H100 80GB HBM3", M::H100),
            ("NVIDIA H100 PCIe", M::H100Pcie),
            ("NVIDIA GeForce RTX 4090", M::Rtx4090),
            ("NVIDIA A100-SXM4-40GB", M::A100_40),
            ("NVIDIA A100-SXM4-80GB", M::A100_80),
            ("Tesla T4", M::T4),
            ("Tesla V100-SXM2-32GB", M::V100),
            ("NVIDIA L40S", M::L40S),
            ("NVIDIA L4", M::L4),
            ("NVIDIA A10G", M::A10),
            ("NVIDIA H200", M::H200),
            ("a100_80", M::A100_80),
        ];
        for (name, want) in cases {
            assert_eq!(GpuModel::parse(name), Some(want), "{name}");
        }
        for bad in ["", "Radeon RX 7900", "TPU v5e", "NVIDIA"] {
            assert_eq!(GpuModel::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn architectures_are_ordered_by_year() {
        // A newer architecture's first chip never predates an older one's:
        // the enum order is meaningful for "older chip" decisions.
        let first_year = |a: Architecture| {
            GPU_TABLE
                .iter()
                .filter(|s| s.architecture == a)
                .map(|s| s.year)
                .min()
                .unwrap()
        };
        let archs = [
            A::Volta,
            A::Turing,
            A::Ampere,
            A::Ada,
            A::Hopper,
            A::Blackwell,
        ];
        for w in archs.windows(2) {
            assert!(w[0] < w[1]);
            assert!(
                first_year(w[0]) <= first_year(w[1]),
                "{:?} vs {:?}",
                w[0],
                w[1]
            );
        }
    }
}
