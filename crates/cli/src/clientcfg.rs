//! `client.json` in the data directory: what `proofmesh up` tells clients
//! (base URL, API key, coordinator key, log key), so `chat` and `receipt verify` work
//! with no flags. Written with mode 0600 because it holds an API key.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where the local network's client settings live.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientConfig {
    /// e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// API key.
    pub api_key: String,
    /// The coordinator's key, for pinning receipts.
    pub coordinator_key: String,
    /// The transparency log's checkpoint verifier key (C2SP signed-note
    /// vkey), for checking receipts' inclusion proofs offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
}

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = ".proofmesh";

/// Path of client.json in a data dir.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("client.json")
}

/// Reads client.json, if present.
pub fn load(data_dir: &Path) -> Option<ClientConfig> {
    let text = std::fs::read_to_string(path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes client.json (0600).
pub fn save(data_dir: &Path, cfg: &ClientConfig) -> anyhow::Result<()> {
    use std::io::Write;
    let p = path(data_dir);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&p)
        .with_context(|| format!("writing {}", p.display()))?;
    f.write_all(serde_json::to_string_pretty(cfg)?.as_bytes())?;
    Ok(())
}

/// Resolves base URL and key from flags, env (handled by clap) or client.json.
pub fn resolve(
    base_url: Option<String>,
    api_key: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(String, String)> {
    let file = load(data_dir);
    let base = base_url
        .or_else(|| file.as_ref().map(|f| f.base_url.clone()))
        .context(
            "no base URL: pass --base-url, set PROOFMESH_BASE_URL, or run `proofmesh up` first",
        )?;
    let key = api_key
        .or_else(|| file.as_ref().map(|f| f.api_key.clone()))
        .context(
            "no API key: pass --api-key, set PROOFMESH_API_KEY, or run `proofmesh up` first",
        )?;
    Ok((base.trim_end_matches('/').to_string(), key))
}

/// How a client command reaches the API: flags, `PROOFMESH_*` env, or
/// client.json.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// API base URL.
    #[arg(long, env = "PROOFMESH_BASE_URL")]
    pub base_url: Option<String>,
    /// API key.
    #[arg(long, env = "PROOFMESH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Data directory holding client.json.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// An authenticated `GET {base}{path}` returning JSON; a non-2xx answer is
/// an error naming the API's message.
pub async fn api_get(
    api: ApiArgs,
    path: &str,
    query: &[(&str, String)],
) -> anyhow::Result<serde_json::Value> {
    let (base, key) = resolve(api.base_url, api.api_key, &api.data_dir)?;
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .query(query)
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("GET {base}{path}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await?;
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        body["error"]["message"]
    );
    Ok(body)
}
