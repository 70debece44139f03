//! Trains the 64-32-10 digits MLP deterministically, quantizes it, prints
//! float vs quantized held-out accuracy and writes the committed model file.
//!
//! `cargo run -p proofmesh-zkml --release --example train_digits -- [CSV] [OUT]`
//! (CSV defaults to `$PROOFMESH_DIGITS`, OUT to `crates/zkml/models/digits-mlp.safetensors`).

use proofmesh_zkml::digits;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let csv = match args.next() {
        Some(p) => p,
        None => std::env::var(digits::ENV)
            .map_err(|_| format!("pass the CSV or set {}", digits::ENV))?,
    };
    let out = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/digits-mlp.safetensors").into()
    });
    let data = digits::load(std::path::Path::new(&csv))?;
    let r = digits::train_digits(&data)?;
    println!(
        "train {} / test {}: float accuracy {:.4}, int8 accuracy {:.4}",
        r.train_len, r.test_len, r.float_accuracy, r.quant_accuracy
    );
    for (i, l) in r.quant_model.layers.iter().enumerate() {
        println!(
            "layer {i}: {}x{} m={} s={} relu={}",
            l.out_dim, l.in_dim, l.requant.multiplier, l.requant.shift, l.requant.relu
        );
    }
    std::fs::write(&out, r.quant_model.to_safetensors()?)?;
    println!("wrote {out} (model digest {})", r.quant_model.digest_hex());
    Ok(())
}
