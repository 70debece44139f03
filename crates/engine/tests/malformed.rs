//! Broken model files must produce an `EngineError` that names the problem —
//! never a panic and never a silently wrong model.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use proofmesh_engine::testing::{write_tiny_gguf, write_tiny_gguf_with};
use proofmesh_engine::{Engine, EngineError, EngineOptions};

fn load(path: &Path) -> Result<Engine, EngineError> {
    Engine::load(path, EngineOptions { threads: Some(1) })
}

fn tiny_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gguf");
    write_tiny_gguf(&path, 3).unwrap();
    std::fs::read(path).unwrap()
}

fn load_bytes(bytes: &[u8]) -> Result<Engine, EngineError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, bytes).unwrap();
    load(&path)
}

fn load_variant(overrides: &[(&str, Value)], omit: &[&str]) -> Result<Engine, EngineError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.gguf");
    write_tiny_gguf_with(&path, 3, overrides, omit).unwrap();
    load(&path)
}

#[test]
fn the_unmodified_tiny_file_loads() {
    assert!(load_bytes(&tiny_bytes()).is_ok());
}

#[test]
fn missing_file_is_an_io_error() {
    let err = load(Path::new("/definitely/not/here.gguf")).unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
}

#[test]
fn wrong_magic_is_reported() {
    let mut bytes = tiny_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    let err = load_bytes(&bytes).unwrap_err();
    match &err {
        EngineError::MalformedGguf { reason, .. } => assert!(reason.contains("magic"), "{reason}"),
        other => panic!("expected MalformedGguf, got {other}"),
    }
    assert!(matches!(
        load_bytes(b"").unwrap_err(),
        EngineError::MalformedGguf { .. }
    ));
}

#[test]
fn truncated_header_is_reported() {
    let bytes = tiny_bytes();
    for cut in [6, 30, 200, 2000] {
        let err = load_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, EngineError::MalformedGguf { .. }),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn truncated_tensor_data_names_the_tensor() {
    let bytes = tiny_bytes();
    let err = load_bytes(&bytes[..bytes.len() - 100]).unwrap_err();
    match &err {
        EngineError::Truncated {
            tensor,
            end,
            file_size,
            ..
        } => {
            assert!(tensor.ends_with(".weight"), "{tensor}");
            assert!(end > file_size);
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(err.to_string().contains("truncated"));
}

#[test]
fn missing_tensor_is_named() {
    let err = load_variant(&[], &["blk.1.ffn_up.weight"]).unwrap_err();
    match err {
        EngineError::MissingTensor { name } => assert_eq!(name, "blk.1.ffn_up.weight"),
        other => panic!("expected MissingTensor, got {other}"),
    }
    let err = load_variant(&[], &["token_embd.weight"]).unwrap_err();
    assert!(
        matches!(err, EngineError::MissingTensor { ref name } if name == "token_embd.weight"),
        "{err}"
    );
}

#[test]
fn non_llama_architecture_is_rejected() {
    let err = load_variant(
        &[("general.architecture", Value::String("gpt2".into()))],
        &[],
    )
    .unwrap_err();
    match err {
        EngineError::UnsupportedArchitecture { arch } => assert_eq!(arch, "gpt2"),
        other => panic!("expected UnsupportedArchitecture, got {other}"),
    }
}

#[test]
fn inconsistent_hyper_parameters_are_rejected() {
    let err = load_variant(&[("llama.attention.head_count", Value::U32(0))], &[]).unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidMetadata { ref key, .. } if key == "llama.attention.head_count"),
        "{err}"
    );
    // Claims a wider model than the tensors hold.
    let wider = [
        ("llama.embedding_length", Value::U32(128)),
        ("llama.rope.dimension_count", Value::U32(32)),
    ];
    let err = load_variant(&wider, &[]).unwrap_err();
    assert!(matches!(err, EngineError::TensorShape { .. }), "{err}");
    let err = load_variant(&[("llama.block_count", Value::String("two".into()))], &[]).unwrap_err();
    assert!(matches!(err, EngineError::InvalidMetadata { .. }), "{err}");
}

#[test]
fn unsupported_tokenizer_is_rejected() {
    let err = load_variant(
        &[("tokenizer.ggml.model", Value::String("llama".into()))],
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::Tokenizer { .. }), "{err}");
    let err = load_variant(
        &[("tokenizer.ggml.eos_token_id", Value::U32(1_000_000))],
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::InvalidMetadata { .. }), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Random corruption anywhere in the header or data never panics.
    #[test]
    fn corrupted_files_never_panic(pos in 0usize..8192, byte in proptest::prelude::any::<u8>(), cut in proptest::prelude::any::<bool>()) {
        let mut bytes = tiny_bytes();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        if cut {
            bytes.truncate(pos + 1);
        }
        let _ = load_bytes(&bytes);
    }
}
