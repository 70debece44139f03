//! Delay, jitter and loss as measured through a real proxied connection to
//! an echo server: the round trip is at least twice the one-way delay,
//! jitter never reorders bytes, and loss shows up as retransmission
//! timeouts at about the configured rate.

mod common;

use std::time::{Duration, Instant};

use common::{echo_server, guard};
use proofmesh_netem::{Impairment, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    s.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await?;
    anyhow::ensure!(back == msg, "echo differs");
    Ok(t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_is_at_least_twice_the_one_way_delay() -> anyhow::Result<()> {
    let delay = Duration::from_millis(30);
    let proxy = Proxy::start_local(echo_server().await?, Impairment::delay(delay)).await?;
    let mut s = TcpStream::connect(proxy.local_addr()).await?;
    s.set_nodelay(true)?;
    // Generous slack: the upper bound only catches a proxy that delays
    // twice (or not at all is caught by the lower bound).
    let slack = Duration::from_millis(1_500);
    for i in 0..8u8 {
        let rtt = round_trip(&mut s, &[i; 64]).await?;
        assert!(
            rtt >= 2 * delay,
            "round trip {i}: {rtt:?} < {:?}",
            2 * delay
        );
        assert!(rtt < 2 * delay + slack, "round trip {i}: {rtt:?}");
    }
    let stats = proxy.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.client_to_upstream.bytes_written, 8 * 64);
    assert_eq!(stats.upstream_to_client.bytes_written, 8 * 64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_never_reorders_bytes() -> anyhow::Result<()> {
    let imp = Impairment {
        one_way_delay: Duration::from_millis(2),
        jitter: Duration::from_millis(40),
        loss: 0.0,
        seed: 3,
    };
    let proxy = Proxy::start_local(echo_server().await?, imp).await?;
    let s = TcpStream::connect(proxy.local_addr()).await?;
    s.set_nodelay(true)?;
    let (mut r, mut w) = s.into_split();
    const N: u64 = 300;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            w.write_all(&i.to_be_bytes()).await?;
            // Separate writes become separate chunks with their own jitter.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        w.shutdown().await?;
        anyhow::Ok(())
    });
    let mut got = Vec::new();
    guard(60, "reading the echo", r.read_to_end(&mut got)).await??;
    writer.await??;
    assert_eq!(got.len() as u64, N * 8);
    for (i, c) in got.chunks(8).enumerate() {
        let v = u64::from_be_bytes(c.try_into()?);
        assert_eq!(v, i as u64, "message {i} arrived out of order");
    }
    // The jitter range (40 ms) is far wider than the gap between writes
    // (~1 ms), so these chunks would have overtaken each other if delivery
    // times were not kept monotone.
    let chunks = proxy.stats().client_to_upstream.chunks;
    assert!(
        chunks >= 30,
        "only {chunks} chunks: jitter was barely exercised"
    );
    // And jitter is really applied: sequential round trips spread out
    // (two U(0, 40 ms) draws each; 20 of them span far more than 10 ms).
    let mut s = TcpStream::connect(proxy.local_addr()).await?;
    s.set_nodelay(true)?;
    let mut rtts = Vec::new();
    for i in 0..20u8 {
        rtts.push(round_trip(&mut s, &[i; 8]).await?);
    }
    let (lo, hi) = (rtts.iter().min(), rtts.iter().max());
    let spread = hi.zip(lo).map(|(h, l)| *h - *l).unwrap_or_default();
    assert!(spread >= Duration::from_millis(10), "round trips {rtts:?}");
    assert!(rtts.iter().all(|r| *r >= 2 * imp.one_way_delay), "{rtts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_adds_retransmission_timeouts_at_the_configured_rate() -> anyhow::Result<()> {
    let imp = Impairment {
        one_way_delay: Duration::from_millis(2),
        jitter: Duration::ZERO,
        loss: 0.1,
        seed: 7,
    };
    let rto = imp.rto();
    assert_eq!(rto, Duration::from_millis(200));
    let proxy = Proxy::start_local(echo_server().await?, imp).await?;
    let mut s = TcpStream::connect(proxy.local_addr()).await?;
    s.set_nodelay(true)?;
    let rounds = 100usize;
    let mut slow = 0usize;
    for i in 0..rounds {
        let rtt = round_trip(&mut s, &(i as u128).to_be_bytes()).await?;
        assert!(rtt >= 2 * imp.one_way_delay, "round trip {i}: {rtt:?}");
        slow += usize::from(rtt >= 2 * imp.one_way_delay + rto);
    }
    let st = proxy.stats();
    let segments = st.client_to_upstream.segments + st.upstream_to_client.segments;
    let lost = (st.client_to_upstream.lost_segments + st.upstream_to_client.lost_segments) as f64;
    assert_eq!(
        segments,
        2 * rounds as u64,
        "one segment per message each way"
    );
    // Binomial(200, 0.1): mean 20, sd ~4.2; accept 5 sd either side.
    let n = segments as f64;
    let (mean, sd) = (n * imp.loss, (n * imp.loss * (1.0 - imp.loss)).sqrt());
    assert!(
        lost >= 1.0 && (lost - mean).abs() <= 5.0 * sd,
        "lost {lost} of {n}"
    );
    // Each round trip carries one segment each way, so the round trips that
    // took an RTO longer are between lost/2 and lost (a few more allowed for
    // a machine that stalled for an RTO on its own).
    let slow = slow as f64;
    assert!(
        slow * 2.0 >= lost,
        "{slow} slow round trips for {lost} lost segments"
    );
    assert!(
        slow <= lost + 5.0,
        "{slow} slow round trips for {lost} lost segments"
    );
    Ok(())
}
