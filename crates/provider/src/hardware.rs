//! Self-declared hardware advert, read from the OS. (GPU discovery arrives
//! with the `gpu` engine feature; CPU providers advertise no GPUs.)

use proofmesh_wire::Hardware;

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

/// What this machine is.
pub fn detect_hardware() -> Hardware {
    Hardware {
        cpu_model: cpu_model(),
        cpu_cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: memory_bytes(),
        gpus: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_something_real() {
        let h = super::detect_hardware();
        assert!(h.cpu_cores >= 1);
        assert!(!h.cpu_model.is_empty());
    }
}
