//! The proxy itself: a listener that, for every accepted client, opens a
//! connection to the upstream and runs two pipes (client → upstream and
//! back). Each pipe is a reader that stamps every chunk with its delivery
//! time ([`Schedule`]) and a writer that sleeps until that time; the queue
//! between them is bounded in bytes and chunks, so a slow receiver stalls
//! the reader and, through TCP flow control, the sender.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::error::NetemError;
use crate::impairment::Impairment;
use crate::schedule::{stream_seed, Schedule};
use crate::stats::{Counters, DirectionCounters, ProxyStats};

/// Largest single read from a socket.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Bytes one direction of one connection may hold (read, not yet written).
pub const MAX_BUFFERED_BYTES_PER_DIRECTION: usize = 4 * 1024 * 1024;
/// Chunks one direction of one connection may queue.
pub const MAX_QUEUED_CHUNKS_PER_DIRECTION: usize = 4_096;

/// Starts proxies.
#[derive(Debug)]
pub struct Proxy;

/// A running proxy. Dropping it stops the proxy as [`ProxyHandle::shutdown`]
/// does, without waiting.
#[derive(Debug)]
pub struct ProxyHandle {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    impairment: Impairment,
    counters: Arc<Counters>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (port 0 picks a free one) and forwards every
    /// accepted connection to `upstream` with `impairment` applied.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        impairment: Impairment,
    ) -> Result<ProxyHandle, NetemError> {
        impairment.validate()?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| NetemError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| NetemError::LocalAddr { source })?;
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            impairment,
            Arc::clone(&counters),
            stopped,
        ));
        debug!(%local_addr, %upstream, ?impairment, "netem proxy listening");
        Ok(ProxyHandle {
            local_addr,
            upstream,
            impairment,
            counters,
            stop,
            task,
        })
    }

    /// [`Proxy::start`] on `127.0.0.1` with a free port.
    pub async fn start_local(
        upstream: SocketAddr,
        impairment: Impairment,
    ) -> Result<ProxyHandle, NetemError> {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        Proxy::start(listen, upstream, impairment).await
    }
}

impl ProxyHandle {
    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The impairment applied.
    pub fn impairment(&self) -> Impairment {
        self.impairment
    }

    /// Counters so far.
    pub fn stats(&self) -> ProxyStats {
        self.counters.snapshot()
    }

    /// Closes the listener and every proxied connection; returns once they
    /// are closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            warn!(error = %e, "netem accept task ended abnormally");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    impairment: Impairment,
    counters: Arc<Counters>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            // A stop message or a dropped handle.
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let index = counters.connections.fetch_add(1, Ordering::Relaxed);
                    let counters = Arc::clone(&counters);
                    conns.spawn(serve(client, peer, upstream, impairment, index, counters));
                }
                Err(e) => {
                    warn!(error = %e, "netem accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Proxies one client connection.
async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    impairment: Impairment,
    index: u64,
    counters: Arc<Counters>,
) {
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            counters
                .upstream_connect_failures
                .fetch_add(1, Ordering::Relaxed);
            warn!(%peer, %upstream, error = %e, "netem cannot reach upstream");
            return;
        }
    };
    // The proxy must not add Nagle delays of its own.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let seed = impairment.seed;
    let up = pipe(
        client_read,
        server_write,
        Schedule::new(&impairment, stream_seed(seed, index, 0)),
        &counters.directions[0],
    );
    let down = pipe(
        server_read,
        client_write,
        Schedule::new(&impairment, stream_seed(seed, index, 1)),
        &counters.directions[1],
    );
    tokio::join!(up, down);
    debug!(%peer, index, "netem connection closed");
}

/// What travels from a pipe's reader to its writer.
enum Item {
    /// Bytes, with the buffer budget they hold until written.
    Data {
        at: Instant,
        bytes: Vec<u8>,
        _budget: OwnedSemaphorePermit,
    },
    /// The sender closed its side.
    End { at: Instant },
}

/// One direction: read, stamp, queue; sleep, write. A writer that fails
/// ends the reader too; a reader that ends lets the writer drain first.
async fn pipe(src: OwnedReadHalf, dst: OwnedWriteHalf, sched: Schedule, c: &DirectionCounters) {
    let (tx, rx) = mpsc::channel(MAX_QUEUED_CHUNKS_PER_DIRECTION);
    let budget = Arc::new(Semaphore::new(MAX_BUFFERED_BYTES_PER_DIRECTION));
    let reader = read_side(src, sched, tx, budget, c);
    let writer = write_side(dst, rx, c);
    tokio::pin!(reader, writer);
    tokio::select! {
        _ = &mut writer => {}
        _ = &mut reader => writer.await,
    }
}

async fn read_side(
    mut src: OwnedReadHalf,
    mut sched: Schedule,
    tx: mpsc::Sender<Item>,
    budget: Arc<Semaphore>,
    c: &DirectionCounters,
) {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        // Reserve room for a full read first: memory stays bounded and a
        // full queue stops reads, which closes the sender's TCP window.
        let Ok(mut permit) = Arc::clone(&budget)
            .acquire_many_owned(READ_CHUNK_BYTES as u32)
            .await
        else {
            return;
        };
        let n = match src.read(&mut buf).await {
            Ok(0) => {
                let _ = tx
                    .send(Item::End {
                        at: sched.end(Instant::now()),
                    })
                    .await;
                return;
            }
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "netem read failed");
                return;
            }
        };
        let delivery = sched.chunk(Instant::now(), n);
        drop(permit.split(READ_CHUNK_BYTES - n));
        c.read(n, &delivery);
        let item = Item::Data {
            at: delivery.at,
            bytes: buf[..n].to_vec(),
            _budget: permit,
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

async fn write_side(mut dst: OwnedWriteHalf, mut rx: mpsc::Receiver<Item>, c: &DirectionCounters) {
    while let Some(item) = rx.recv().await {
        match item {
            Item::Data { at, bytes, _budget } => {
                tokio::time::sleep_until(at.into()).await;
                if let Err(e) = dst.write_all(&bytes).await {
                    debug!(error = %e, "netem write failed");
                    return;
                }
                c.written(bytes.len());
            }
            Item::End { at } => {
                tokio::time::sleep_until(at.into()).await;
                let _ = dst.shutdown().await;
                return;
            }
        }
    }
}
