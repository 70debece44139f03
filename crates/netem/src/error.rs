//! Errors of the proxy: a rejected impairment or a listener that could not
//! be opened. Structured fields so a test harness can say which setting or
//! address was wrong.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

/// Why a proxy could not start.
#[derive(Debug, Error)]
pub enum NetemError {
    /// The loss probability is not a number in `0.0..=1.0`.
    #[error("loss probability {loss} is outside 0.0..=1.0")]
    LossOutOfRange {
        /// As given.
        loss: f64,
    },
    /// One-way delay plus jitter exceeds the supported maximum.
    #[error("one-way delay {delay:?} + jitter {jitter:?} exceeds {max:?}")]
    DelayTooLarge {
        /// One-way delay as given.
        delay: Duration,
        /// Jitter as given.
        jitter: Duration,
        /// The bound.
        max: Duration,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the listener's local address: {source}")]
    LocalAddr {
        /// The OS error.
        source: std::io::Error,
    },
}
