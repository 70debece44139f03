//! Load-robust timing probe for a busy machine: best and median per-token
//! decode time, best one-pass verification time, for the default model:
//! `cargo run --release -p proofmesh-engine --example probe -- [threads] [runs]`.
//! (The median figures providers advertise come from `proofmesh bench engine`.)

use std::time::Instant;

use proofmesh_engine::{argmax, default_model_path, Engine, EngineOptions, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (threads, runs) = (arg(1, 2), arg(2, 3));
    let engine = Engine::load(
        &default_model_path(),
        EngineOptions {
            threads: Some(threads),
        },
    )?;
    let rss = |w: &str| {
        if proofmesh_ambient::env::var_os("PM_RSS").is_some() {
            let st = std::fs::read_to_string("/proc/self/status").unwrap();
            let f = |k: &str| {
                st.lines()
                    .find(|l| l.starts_with(k))
                    .unwrap_or("")
                    .to_string()
            };
            eprintln!("{w}: {} {}", f("VmRSS"), f("VmHWM"));
        }
    };
    rss("loaded");
    let unit = engine.encode("The quick brown fox jumps over the lazy dog. ")?;
    let plen = proofmesh_ambient::env::parse("PROBE_PROMPT").unwrap_or(16);
    let prompt: Vec<u32> = unit.iter().copied().cycle().take(plen).collect();
    if proofmesh_ambient::env::var_os("PROBE_VERIFY_ONLY").is_some() {
        let tokens: Vec<u32> = unit.iter().copied().cycle().take(80).collect();
        for _ in 0..runs {
            let t = Instant::now();
            engine.prefill_top_k(&tokens, 8)?;
            println!("verify {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
        return Ok(());
    }
    let (mut steps, mut verify, mut gen) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_dec, mut cpu_ver) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut s = Session::new(&engine);
        let mut logits = s.feed(&prompt)?;
        rss("prefilled");
        let c0 = cpu_ms();
        let mut tokens = prompt.clone();
        for _ in 0..64 {
            let t = Instant::now();
            let next = argmax(&logits);
            tokens.push(next);
            logits = s.feed(&[next])?;
            steps.push(t.elapsed().as_secs_f64() * 1e3);
        }
        cpu_dec.push((cpu_ms() - c0) / 64.0);
        rss("decoded");
        gen.push(t0.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let c1 = cpu_ms();
        engine.prefill_top_k(&tokens, 8)?;
        cpu_ver.push(cpu_ms() - c1);
        rss("verified");
        verify.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let sort = |v: &mut Vec<f64>| v.sort_by(f64::total_cmp);
    sort(&mut steps);
    sort(&mut verify);
    sort(&mut gen);
    sort(&mut cpu_dec);
    sort(&mut cpu_ver);
    println!(
        "  cpu per decode token {:.2} ms (best run), cpu per verify {:.1} ms (cpu ratio {:.3}), load {}",
        cpu_dec[0],
        cpu_ver[0],
        cpu_ver[0] / (cpu_dec[0] * 64.0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!(
        "threads {threads}: decode best {:.2} ms p25 {:.2} median {:.2} ms/token; generate best {:.1} ms; verify best {:.1} ms; best ratio {:.3}; rss {:.1} MB",
        steps[0],
        steps[steps.len() / 4],
        steps[steps.len() / 2],
        gen[0],
        verify[0],
        verify[0] / gen[0],
        peak_rss_bytes() as f64 / 1e6
    );
    Ok(())
}

/// CPU time of the whole process (all threads, including exited ones), ms.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 (utime, stime) are at 11, 12 after the ')' split;
    // clock ticks of 10 ms.
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) * 10.0
}

/// Peak resident set (`VmHWM` in `/proc/self/status`), bytes; 0 if unknown.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
