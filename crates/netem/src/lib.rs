//! `proofmesh-netem`: a latency-injecting TCP proxy, the test tool that puts
//! real WAN delay between two processes on one machine.
//!
//! Why it exists: placement claims ("interactive work lands on providers
//! that meet the TTFT SLO") must be checked against measured latency, not
//! only modelled latency, and this machine's kernel has no `netem` qdisc.
//! The proxy sits between a client and an upstream server; every byte that
//! crosses it, in either direction, is held back by a one-way delay plus a
//! jitter sample, and read chunks can be "lost" (see below). It is
//! byte-level, so WebSockets, HTTP/1.1 and SSE all pass through unchanged.
//!
//! ```no_run
//! # async fn demo(upstream: std::net::SocketAddr) -> Result<(), proofmesh_netem::NetemError> {
//! use std::time::Duration;
//! use proofmesh_netem::{Impairment, Proxy};
//!
//! let imp = Impairment {
//!     one_way_delay: Duration::from_millis(40),
//!     jitter: Duration::from_millis(5),
//!     loss: 0.01,
//!     seed: 7,
//! };
//! let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream, imp).await?;
//! let addr = proxy.local_addr(); // dial this instead of `upstream`
//! # let _ = addr;
//! proxy.shutdown().await; // listener closed, open connections dropped
//! # Ok(()) }
//! ```
//!
//! The model, per direction of each connection (details in [`schedule`]):
//! - data read at time `t` is written at `t + one_way_delay + J`, with `J`
//!   uniform in `[0, jitter]`;
//! - delivery times never decrease, so bytes are never reordered (a late
//!   chunk holds back the ones behind it, as TCP's in-order delivery does);
//! - TCP is reliable, so "loss" is what loss does to a TCP stream: a read
//!   chunk counts as `ceil(len / 1460)` segments, each lost with probability
//!   `loss`, and a chunk with a lost segment arrives one retransmission
//!   timeout later (`RTO = max(200 ms, 2 × RTT)`, doubled for each lost
//!   retransmission); draws come from a seeded RNG per connection and
//!   direction, so a run is reproducible;
//! - buffering is bounded ([`MAX_BUFFERED_BYTES_PER_DIRECTION`]): a slow
//!   reader backs pressure up to the sender, memory never grows unbounded.
//!
//! Not modelled: bandwidth limits, the TCP handshake's round trip (the
//! upstream connection is opened as soon as a client connects), and resets
//! (an upstream reset reaches the client as an orderly close).
//!
//! Code map: [`impairment`] (settings and validation), [`schedule`] (the
//! pure delivery-time model), [`proxy`] (listener, per-connection pipes),
//! [`stats`] (counters), [`error`].

pub mod error;
pub mod impairment;
pub mod proxy;
pub mod schedule;
pub mod stats;

pub use error::NetemError;
pub use impairment::Impairment;
pub use proxy::{
    Proxy, ProxyHandle, MAX_BUFFERED_BYTES_PER_DIRECTION, MAX_QUEUED_CHUNKS_PER_DIRECTION,
    READ_CHUNK_BYTES,
};
pub use schedule::{Delivery, Schedule, MIN_RTO, SEGMENT_BYTES};
pub use stats::{DirectionStats, ProxyStats};
