//! `proofmesh chat "..."`: a streaming OpenAI-style client for the network.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use futures::StreamExt;
use proofmesh_wire::openai::{ChatCompletion, ChatCompletionChunk, ErrorBody};

use crate::clientcfg;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The user message.
    pub message: String,
    /// Optional system message (none by default: it degrades small models).
    #[arg(long)]
    pub system: Option<String>,
    /// API base URL, e.g. http://127.0.0.1:8080/v1.
    #[arg(long, env = "PROOFMESH_BASE_URL")]
    pub base_url: Option<String>,
    /// API key.
    #[arg(long, env = "PROOFMESH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Data directory holding client.json from `proofmesh up`.
    #[arg(long, default_value = clientcfg::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Model name or digest.
    #[arg(long, default_value = "SmolLM2-135M-Instruct")]
    pub model: String,
    /// Completion token limit.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Sampling seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Wait for the whole answer instead of streaming.
    #[arg(long)]
    pub no_stream: bool,
    /// "sampled" (audited at the network's rate) or "always" (re-executed by a verifier, for a fee).
    #[arg(long, default_value = "sampled")]
    pub verification: String,
}

fn error_text(status: reqwest::StatusCode, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => format!("{} ({}): {}", status, e.error.code, e.error.message),
        Err(_) => format!("{status}: {body}"),
    }
}

/// Sends the message and prints the answer.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (base, key) =
        clientcfg::resolve(args.base_url.clone(), args.api_key.clone(), &args.data_dir)?;
    let mut messages = Vec::new();
    if let Some(s) = &args.system {
        messages.push(serde_json::json!({"role": "system", "content": s}));
    }
    messages.push(serde_json::json!({"role": "user", "content": args.message}));
    let mut body = serde_json::json!({
        "model": args.model, "messages": messages, "max_tokens": args.max_tokens,
        "temperature": args.temperature, "stream": !args.no_stream,
        "verification": args.verification,
    });
    if let Some(seed) = args.seed {
        body["seed"] = seed.into();
    }
    let resp = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("connecting to {base}"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!("{}", error_text(status, &text));
    }
    if args.no_stream {
        let c: ChatCompletion = resp.json().await?;
        println!(
            "{}",
            c.choices
                .first()
                .map(|c| c.message.content.as_str())
                .unwrap_or("")
        );
        eprintln!("receipt: {}", c.proofmesh.receipt_id);
        return Ok(ExitCode::SUCCESS);
    }
    stream_answer(resp).await
}

async fn stream_answer(resp: reqwest::Response) -> anyhow::Result<ExitCode> {
    let mut bytes = resp.bytes_stream();
    let mut buf = String::new();
    let mut receipt = None;
    let mut out = std::io::stdout();
    while let Some(chunk) = bytes.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(pos) = buf.find("\n\n") {
            let event: String = buf.drain(..pos + 2).collect();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if data == "[DONE]" {
                    println!();
                    if let Some(r) = &receipt {
                        eprintln!("receipt: {r}");
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                if let Ok(e) = serde_json::from_str::<ErrorBody>(data) {
                    anyhow::bail!("stream failed ({}): {}", e.error.code, e.error.message);
                }
                let c: ChatCompletionChunk =
                    serde_json::from_str(data).context("malformed chunk")?;
                if let Some(text) = c.choices.first().and_then(|c| c.delta.content.as_deref()) {
                    print!("{text}");
                    out.flush()?;
                }
                if let Some(p) = c.proofmesh {
                    receipt = Some(p.receipt_id);
                }
            }
        }
    }
    anyhow::bail!("stream ended without [DONE]")
}
