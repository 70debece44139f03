//! Writes the seed corpus of every fuzz target to `<dir>/<target>/seed-<n>`
//! (default dir: `fuzz/corpus`), for `cargo +nightly fuzz run <target>`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/corpus"));
    for (name, _) in proofmesh_fuzzing::TARGETS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in proofmesh_fuzzing::seeds::for_target(name)
            .iter()
            .enumerate()
        {
            std::fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
        println!("{}", dir.display());
    }
    Ok(())
}
