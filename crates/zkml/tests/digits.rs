//! The worked models on the real dataset: retraining reproduces the
//! committed MLP and CNN bit for bit, and float and int8 accuracy on the held-out split are
//! both at least 95%. Needs `PROOFMESH_DIGITS` (set by `cargo xtask test`,
//! or `cargo xtask fetch-digits`); fails, never skips, without it.

use proofmesh_zkml::train::TrainConfig;
use proofmesh_zkml::{digits, digits_cnn, digits_model, QuantModel};

fn dataset() -> Vec<digits::Sample> {
    let path = proofmesh_ambient::env::var(digits::ENV).unwrap_or_else(|| {
        panic!(
            "{} is not set: run `cargo xtask fetch-digits` and export it",
            digits::ENV
        )
    });
    digits::load(std::path::Path::new(&path)).unwrap()
}

/// Float and int8 held-out accuracy both at least 95%, within 2 points,
/// and the retrained model is the committed one bit for bit.
fn assert_reproduces(r: &digits::TrainReport, committed: &QuantModel) {
    println!("float {:.4} int8 {:.4}", r.float_accuracy, r.quant_accuracy);
    assert_eq!((r.train_len, r.test_len), (1437, 360));
    assert!(r.float_accuracy >= 0.95, "float {}", r.float_accuracy);
    assert!(r.quant_accuracy >= 0.95, "int8 {}", r.quant_accuracy);
    assert!(r.float_accuracy - r.quant_accuracy < 0.02);
    assert_eq!(
        r.quant_model.digest_hex(),
        committed.digest_hex(),
        "retraining must reproduce the committed model"
    );
}

#[test]
fn digits_mlp_retrains_to_committed_model_with_high_accuracy() {
    let data = dataset();
    assert_eq!(data.len(), digits::ROWS);
    let r = digits::train_digits(&data).unwrap();
    let committed = digits_model().unwrap();
    assert_reproduces(&r, &committed);
    let (_, test) = digits::split(&data);
    assert_eq!(digits::quant_accuracy(&committed, &test), r.quant_accuracy);
}

#[test]
fn digits_cnn_retrains_to_committed_model_with_high_accuracy() {
    let data = dataset();
    let r = digits::train_digits_with(&data, &TrainConfig::cnn()).unwrap();
    assert_reproduces(&r, &digits_cnn().unwrap());
}
