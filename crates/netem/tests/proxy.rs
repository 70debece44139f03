//! The proxy as a byte pipe: large payloads cross intact in both directions
//! (with half-close), a receiver that stops reading backs pressure up to
//! the sender instead of filling memory, WebSocket traffic passes through,
//! and shutdown closes the listener and open connections.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{echo_server, guard, payload};
use futures::{SinkExt, StreamExt};
use proofmesh_netem::{
    Impairment, NetemError, Proxy, MAX_BUFFERED_BYTES_PER_DIRECTION, READ_CHUNK_BYTES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

fn jittery() -> Impairment {
    Impairment {
        one_way_delay: Duration::from_millis(5),
        jitter: Duration::from_millis(5),
        loss: 0.0,
        seed: 11,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_cross_intact_in_both_directions() -> anyhow::Result<()> {
    const LEN: usize = 6 * 1024 * 1024;
    let (up, down) = (payload(LEN, 1), payload(LEN, 2));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = Proxy::start_local(listener.local_addr()?, jittery()).await?;
    let server_sends = down.clone();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await?;
        let (mut r, mut w) = s.into_split();
        let send = async {
            w.write_all(&server_sends).await?;
            w.shutdown().await
        };
        let mut got = Vec::new();
        let (sent, read) = tokio::join!(send, r.read_to_end(&mut got));
        sent?;
        read?;
        anyhow::Ok(got)
    });
    let (mut r, mut w) = TcpStream::connect(proxy.local_addr()).await?.into_split();
    let send = async {
        w.write_all(&up).await?;
        w.shutdown().await
    };
    let mut got = Vec::new();
    let (sent, read) = guard(120, "the transfer", async {
        tokio::join!(send, r.read_to_end(&mut got))
    })
    .await?;
    sent?;
    read?;
    let server_got = guard(30, "the server", server).await???;
    assert!(
        got == down,
        "upstream -> client stream corrupted ({} bytes)",
        got.len()
    );
    assert!(
        server_got == up,
        "client -> upstream stream corrupted ({} bytes)",
        server_got.len()
    );
    let st = proxy.stats();
    assert_eq!(st.client_to_upstream.bytes_written, LEN as u64);
    assert_eq!(st.upstream_to_client.bytes_written, LEN as u64);
    Ok(())
}

/// A listener whose accepted sockets have a small receive buffer.
fn small_buffer_listener() -> anyhow::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_recv_buffer_size(64 * 1024)?;
    sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok(sock.listen(16)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_backpressures_the_sender() -> anyhow::Result<()> {
    const BLOCK: usize = 64 * 1024;
    const BLOCKS: u64 = 2_048; // 128 MiB: far beyond every buffer on the way
    let listener = small_buffer_listener()?;
    let proxy = Proxy::start_local(
        listener.local_addr()?,
        Impairment::delay(Duration::from_millis(5)),
    )
    .await?;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let base = payload(BLOCK, 5);
    let expect = base.clone();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        released.await?; // read nothing until told
        let mut block = vec![0u8; BLOCK];
        for i in 0..BLOCKS {
            s.read_exact(&mut block).await?;
            anyhow::ensure!(
                block[..8] == i.to_be_bytes() && block[8..] == expect[8..],
                "block {i}"
            );
        }
        anyhow::Ok(())
    });
    let sock = TcpSocket::new_v4()?;
    sock.set_send_buffer_size(64 * 1024)?;
    let mut client = sock.connect(proxy.local_addr()).await?;
    let writer = tokio::spawn(async move {
        let mut block = base;
        for i in 0..BLOCKS {
            block[..8].copy_from_slice(&i.to_be_bytes());
            client.write_all(&block).await?;
        }
        anyhow::Ok(())
    });
    // Wait until the proxy stops reading (no progress for 1 s).
    let (mut last, mut still) = (0, 0);
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let read = proxy.stats().client_to_upstream.bytes_read;
        still = if read == last && read > 0 {
            still + 1
        } else {
            0
        };
        last = read;
        if still >= 10 {
            break;
        }
    }
    assert!(still >= 10, "the proxy never stalled");
    assert!(
        !writer.is_finished(),
        "128 MiB were absorbed without a reader"
    );
    let st = proxy.stats().client_to_upstream;
    let held = (st.bytes_read - st.bytes_written) as usize;
    assert!(
        held <= MAX_BUFFERED_BYTES_PER_DIRECTION,
        "proxy holds {held} bytes"
    );
    assert!(
        held > MAX_BUFFERED_BYTES_PER_DIRECTION - READ_CHUNK_BYTES,
        "proxy holds only {held} bytes"
    );
    // Once the receiver reads, everything flows, intact and in order.
    release
        .send(())
        .map_err(|_| anyhow::anyhow!("server gone"))?;
    guard(120, "the writer", writer).await???;
    guard(120, "the server", server).await???;
    Ok(())
}

async fn websocket_echo_server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_pass_through_delayed() -> anyhow::Result<()> {
    let delay = Duration::from_millis(20);
    let proxy =
        Proxy::start_local(websocket_echo_server().await?, Impairment::delay(delay)).await?;
    let url = format!("ws://{}/", proxy.local_addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    for i in 0..10 {
        let t = std::time::Instant::now();
        ws.send(Message::text(format!("token {i}"))).await?;
        let back = guard(30, "an echo", ws.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))??;
        assert!(
            t.elapsed() >= 2 * delay,
            "message {i} came back in {:?}",
            t.elapsed()
        );
        assert_eq!(back.into_text()?.as_str(), format!("token {i}"));
    }
    let big = payload(1 << 20, 9);
    ws.send(Message::binary(big.clone())).await?;
    let back = guard(30, "the binary echo", ws.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("closed"))??;
    assert!(
        back.into_data().as_ref() == big.as_slice(),
        "binary message corrupted"
    );
    ws.close(None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_listener_and_open_connections() -> anyhow::Result<()> {
    let proxy = Proxy::start_local(echo_server().await?, jittery()).await?;
    let addr = proxy.local_addr();
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    guard(10, "shutdown", proxy.shutdown()).await?;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
    let n = guard(10, "the closed connection", s.read(&mut buf)).await?;
    assert!(matches!(n, Ok(0) | Err(_)), "connection still open: {n:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_proxy() -> anyhow::Result<()> {
    let proxy = Proxy::start_local(echo_server().await?, Impairment::default()).await?;
    let addr = proxy.local_addr();
    drop(proxy);
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "listener still open after the handle was dropped");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_closes_the_client_and_is_counted() -> anyhow::Result<()> {
    let dead = TcpListener::bind("127.0.0.1:0").await?.local_addr()?; // dropped: nobody listens
    let proxy = Proxy::start_local(dead, Impairment::default()).await?;
    let mut s = TcpStream::connect(proxy.local_addr()).await?;
    let mut buf = [0u8; 1];
    let n = guard(10, "the close", s.read(&mut buf)).await?;
    assert!(matches!(n, Ok(0) | Err(_)), "got {n:?}");
    assert_eq!(proxy.stats().upstream_connect_failures, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_impairments_are_rejected_before_listening() -> anyhow::Result<()> {
    let up = echo_server().await?;
    let bad = Impairment {
        loss: 1.5,
        ..Impairment::default()
    };
    let err = Proxy::start_local(up, bad).await.err();
    assert!(
        matches!(err, Some(NetemError::LossOutOfRange { loss }) if loss == 1.5),
        "{err:?}"
    );
    let taken = TcpListener::bind("127.0.0.1:0").await?;
    let err = Proxy::start(taken.local_addr()?, up, Impairment::default())
        .await
        .err();
    assert!(matches!(err, Some(NetemError::Bind { .. })), "{err:?}");
    Ok(())
}
