//! Measures the default model's throughput with `bench::run` and prints one
//! greedy chat answer, so release-mode figures are easy to reproduce:
//! `cargo run --release -p proofmesh-engine --example bench -- [threads] [prompt] [gen] [runs]`.

use std::ops::ControlFlow;

use proofmesh_engine::{
    bench, default_model_path, ChatMessage, Engine, EngineOptions, GenerateRequest, SamplingParams,
};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = default_model_path();
    let engine = Engine::load(
        &path,
        EngineOptions {
            threads: Some(arg(1, 2)),
        },
    )?;
    println!("model {} ({})", engine.model_name(), engine.model_digest());
    let prompt =
        engine.chat_prompt(&[ChatMessage::new("user", "What is the capital of France?")])?;
    let req = GenerateRequest {
        prompt_tokens: engine.encode(&prompt)?,
        sampling: SamplingParams {
            max_tokens: 64,
            ..SamplingParams::default()
        },
    };
    let g = engine.generate(&req, &mut |_| ControlFlow::Continue(()))?;
    println!(
        "answer ({:?}, {} tokens): {:?}",
        g.finish_reason,
        g.completion_tokens.len(),
        g.text
    );
    let r = bench::run(&engine, arg(2, 128), arg(3, 64), arg(4, 3))?;
    println!("{r:#?}");
    Ok(())
}
