//! Self-declared hardware advert, read from the OS: CPU model and cores,
//! memory, and NVIDIA GPUs as `nvidia-smi` reports them (none when it is
//! absent). Self-declared until attested; the coordinator marks it so.

use proofmesh_wire::{Gpu, Hardware};

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`.
fn parse_nvidia_smi(out: &str) -> Vec<Gpu> {
    out.lines()
        .filter_map(|l| {
            let (name, mib) = l.rsplit_once(',')?;
            let mib: u64 = mib.trim().parse().ok()?;
            Some(Gpu {
                model: name.trim().to_string(),
                vram_bytes: mib * 1024 * 1024,
            })
        })
        .collect()
}

fn gpus() -> Vec<Gpu> {
    std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// What this machine is.
pub fn detect_hardware() -> Hardware {
    Hardware {
        cpu_model: cpu_model(),
        cpu_cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: memory_bytes(),
        gpus: gpus(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_nvidia_smi_csv() {
        let g = super::parse_nvidia_smi(
            "NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\ngarbage\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].model, "NVIDIA H100 80GB HBM3");
        assert_eq!(g[0].vram_bytes, 81559 * 1024 * 1024);
    }

    #[test]
    fn reports_something_real() {
        let h = super::detect_hardware();
        assert!(h.cpu_cores >= 1);
        assert!(!h.cpu_model.is_empty());
    }
}
