//! Shared helpers of the proxy tests: an echo server, a payload generator
//! and a guard against hangs.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rand::{RngCore, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// An echo server on a free local port; returns its address.
pub async fn echo_server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// `len` seeded random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Fails instead of hanging if `fut` takes longer than `secs`.
pub async fn guard<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .map_err(|_| anyhow::anyhow!("{what} did not finish within {secs} s"))
}
