//! Trains the digits MLP and CNN deterministically, quantizes them, prints
//! float vs quantized held-out accuracy and writes the committed model files.
//!
//! `cargo run -p proofmesh-zkml --release --example train_digits -- [CSV] [mlp|cnn|all]`
//! (CSV defaults to `$PROOFMESH_DIGITS`; the files go to
//! `crates/zkml/models/digits-{mlp,cnn}.safetensors`).

use proofmesh_zkml::digits;
use proofmesh_zkml::train::TrainConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let csv = match args.next() {
        Some(p) => p,
        None => proofmesh_ambient::env::var(digits::ENV)
            .ok_or_else(|| format!("pass the CSV or set {}", digits::ENV))?,
    };
    let which = args.next().unwrap_or_else(|| "all".into());
    let data = digits::load(std::path::Path::new(&csv))?;
    for (name, cfg) in [("mlp", TrainConfig::mlp()), ("cnn", TrainConfig::cnn())] {
        if which != "all" && which != name {
            continue;
        }
        let t = std::time::Instant::now();
        let r = digits::train_digits_with(&data, &cfg)?;
        println!(
            "digits-{name}: train {} / test {}: float accuracy {:.4}, int8 accuracy {:.4} ({:.1} s)",
            r.train_len,
            r.test_len,
            r.float_accuracy,
            r.quant_accuracy,
            t.elapsed().as_secs_f64()
        );
        for (i, l) in r.quant_model.layers.iter().enumerate() {
            println!(
                "  layer {i}: {} {} -> {} m={} s={} relu={}",
                l.op.kind(),
                l.in_len(),
                l.out_len(),
                l.requant.multiplier,
                l.requant.shift,
                l.requant.relu
            );
        }
        let out = format!(
            "{}/models/digits-{name}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(&out, r.quant_model.to_safetensors()?)?;
        println!(
            "  wrote {out} (model digest {})",
            r.quant_model.digest_hex()
        );
    }
    Ok(())
}
