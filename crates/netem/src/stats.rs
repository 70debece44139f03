//! Counters of a running proxy, so tests can compare what they measured
//! (round trips, stalls) with what the proxy did (chunks, lost segments,
//! bytes in flight).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::schedule::Delivery;

/// Figures of one direction, summed over all connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes read from the sending side.
    pub bytes_read: u64,
    /// Bytes written to the receiving side.
    pub bytes_written: u64,
    /// Read chunks scheduled.
    pub chunks: u64,
    /// Modelled TCP segments.
    pub segments: u64,
    /// Segments whose first transmission was lost.
    pub lost_segments: u64,
    /// Retransmissions lost again.
    pub lost_retransmissions: u64,
}

/// Figures of a proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Upstream connections that failed to open.
    pub upstream_connect_failures: u64,
    /// Client → upstream.
    pub client_to_upstream: DirectionStats,
    /// Upstream → client.
    pub upstream_to_client: DirectionStats,
}

#[derive(Debug, Default)]
pub(crate) struct DirectionCounters {
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    chunks: AtomicU64,
    segments: AtomicU64,
    lost_segments: AtomicU64,
    lost_retransmissions: AtomicU64,
}

impl DirectionCounters {
    pub(crate) fn read(&self, len: usize, d: &Delivery) {
        let add = |c: &AtomicU64, v: u64| c.fetch_add(v, Ordering::Relaxed);
        add(&self.bytes_read, len as u64);
        add(&self.chunks, 1);
        add(&self.segments, u64::from(d.segments));
        add(&self.lost_segments, u64::from(d.lost_segments));
        add(
            &self.lost_retransmissions,
            u64::from(d.lost_retransmissions),
        );
    }

    pub(crate) fn written(&self, len: usize) {
        self.bytes_written.fetch_add(len as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
            chunks: get(&self.chunks),
            segments: get(&self.segments),
            lost_segments: get(&self.lost_segments),
            lost_retransmissions: get(&self.lost_retransmissions),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) upstream_connect_failures: AtomicU64,
    pub(crate) directions: [DirectionCounters; 2],
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            connections: self.connections.load(Ordering::Relaxed),
            upstream_connect_failures: self.upstream_connect_failures.load(Ordering::Relaxed),
            client_to_upstream: self.directions[0].snapshot(),
            upstream_to_client: self.directions[1].snapshot(),
        }
    }
}
