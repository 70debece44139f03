//! The delivery-time model of one direction of one connection, kept pure
//! (the caller passes the read time) so ordering, jitter and loss can be
//! tested without sockets or clocks.
//!
//! For a chunk of `len` bytes read at `t`:
//! - `segments = max(1, ceil(len / SEGMENT_BYTES))`;
//! - each segment is lost with probability `loss`; a lost segment is
//!   retransmitted after `RTO`, and each retransmission is itself lost with
//!   probability `loss`, doubling the timeout (exponential backoff, at most
//!   [`MAX_RETRANSMISSIONS`] times);
//! - `extra` is the largest recovery delay among the chunk's segments (they
//!   are retransmitted side by side);
//! - `deliver_at = max(previous deliver_at, t + delay + J + extra)` with
//!   `J` uniform in `[0, jitter]`.
//!
//! Delivery times are therefore monotone: bytes never overtake each other,
//! and a lost chunk delays every chunk behind it (head-of-line blocking).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::impairment::Impairment;

/// Bytes per modelled TCP segment (Ethernet MSS).
pub const SEGMENT_BYTES: usize = 1_460;
/// Linux's minimum retransmission timeout.
pub const MIN_RTO: Duration = Duration::from_millis(200);
/// Retransmissions after which a segment is assumed delivered.
pub const MAX_RETRANSMISSIONS: u32 = 6;

/// When and how one chunk is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// When its bytes may be written to the other side.
    pub at: Instant,
    /// Modelled segments in the chunk.
    pub segments: u32,
    /// Segments whose first transmission was lost.
    pub lost_segments: u32,
    /// Retransmissions that were lost again.
    pub lost_retransmissions: u32,
}

/// The schedule of one direction of one connection.
#[derive(Debug)]
pub struct Schedule {
    delay: Duration,
    jitter_ns: u64,
    loss: f64,
    rto: Duration,
    rng: StdRng,
    last: Option<Instant>,
}

/// SplitMix64: spreads a seed so nearby seeds give unrelated streams.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of one direction (`0` = client to upstream, `1` = back) of the
/// `connection`-th accepted connection.
pub fn stream_seed(seed: u64, connection: u64, direction: u8) -> u64 {
    mix(seed
        ^ mix(connection
            .wrapping_mul(2)
            .wrapping_add(u64::from(direction))))
}

impl Schedule {
    /// A schedule for a validated impairment, drawing from `stream_seed`.
    pub fn new(imp: &Impairment, stream_seed: u64) -> Schedule {
        Schedule {
            delay: imp.one_way_delay,
            jitter_ns: u64::try_from(imp.jitter.as_nanos()).unwrap_or(u64::MAX),
            loss: imp.loss.clamp(0.0, 1.0),
            rto: imp.rto(),
            rng: StdRng::seed_from_u64(stream_seed),
            last: None,
        }
    }

    fn jitter(&mut self) -> Duration {
        if self.jitter_ns == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.gen_range(0..=self.jitter_ns))
    }

    fn lost(&mut self) -> bool {
        self.loss > 0.0 && self.rng.gen_bool(self.loss)
    }

    /// Recovery delay of one segment: zero, or the sum of its backed-off
    /// timeouts; also how many of its retransmissions were lost.
    fn recovery(&mut self) -> Option<(Duration, u32)> {
        if !self.lost() {
            return None;
        }
        let (mut extra, mut timeout, mut relost) = (self.rto, self.rto, 0);
        while relost < MAX_RETRANSMISSIONS && self.lost() {
            relost += 1;
            timeout *= 2;
            extra += timeout;
        }
        Some((extra, relost))
    }

    fn monotone(&mut self, at: Instant) -> Instant {
        let at = self.last.map_or(at, |last| last.max(at));
        self.last = Some(at);
        at
    }

    /// Schedules a chunk of `len` bytes read at `read_at`.
    pub fn chunk(&mut self, read_at: Instant, len: usize) -> Delivery {
        let segments = len.div_ceil(SEGMENT_BYTES).max(1);
        let (mut extra, mut lost, mut relost) = (Duration::ZERO, 0u32, 0u32);
        for _ in 0..segments {
            if let Some((d, r)) = self.recovery() {
                extra = extra.max(d);
                lost += 1;
                relost += r;
            }
        }
        let jitter = self.jitter();
        let at = self.monotone(read_at + self.delay + jitter + extra);
        Delivery {
            at,
            segments: u32::try_from(segments).unwrap_or(u32::MAX),
            lost_segments: lost,
            lost_retransmissions: relost,
        }
    }

    /// Schedules the end of the stream (a FIN) seen at `read_at`: after
    /// every byte before it, never lost.
    pub fn end(&mut self, read_at: Instant) -> Instant {
        let at = read_at + self.delay + self.jitter();
        self.monotone(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn imp(delay_ms: u64, jitter_ms: u64, loss: f64) -> Impairment {
        Impairment {
            one_way_delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss,
            seed: 0,
        }
    }

    proptest! {
        #[test]
        fn deliveries_are_monotone_and_never_early(
            delay_ms in 0u64..200,
            jitter_ms in 0u64..100,
            loss in 0.0f64..0.5,
            seed: u64,
            steps in proptest::collection::vec((0u64..50_000, 1usize..20_000), 1..200),
        ) {
            let i = imp(delay_ms, jitter_ms, loss);
            let mut s = Schedule::new(&i, seed);
            let mut t = Instant::now();
            let mut prev: Option<Instant> = None;
            for (gap_us, len) in steps {
                t += Duration::from_micros(gap_us);
                let d = s.chunk(t, len);
                prop_assert!(d.at >= t + i.one_way_delay);
                prop_assert!(prev.is_none_or(|p| d.at >= p));
                if d.lost_segments == 0 {
                    let bound = t + i.one_way_delay + i.jitter;
                    prop_assert!(d.at <= bound || prev.is_some_and(|p| d.at == p));
                } else {
                    prop_assert!(d.at >= t + i.one_way_delay + i.rto());
                }
                prop_assert_eq!(d.segments as usize, len.div_ceil(SEGMENT_BYTES));
                prev = Some(d.at);
            }
        }
    }

    #[test]
    fn same_seed_same_schedule_other_seed_differs() {
        let i = imp(10, 30, 0.2);
        let t0 = Instant::now();
        let run = |seed| {
            let mut s = Schedule::new(&i, seed);
            (0..500u64)
                .map(|k| s.chunk(t0 + Duration::from_millis(k), 700))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(stream_seed(5, 0, 0)), run(stream_seed(5, 0, 0)));
        assert_ne!(run(stream_seed(5, 0, 0)), run(stream_seed(5, 0, 1)));
        assert_ne!(run(stream_seed(5, 0, 0)), run(stream_seed(6, 0, 0)));
    }

    #[test]
    fn loss_rate_matches_the_setting() {
        let mut s = Schedule::new(&imp(0, 0, 0.1), 42);
        let t0 = Instant::now();
        let n = 20_000u32;
        let lost: u32 = (0..n).map(|_| s.chunk(t0, 100).lost_segments).sum();
        // Binomial(20000, 0.1): mean 2000, sd ~42; allow 6 sd.
        assert!((1_750..=2_250).contains(&lost), "lost {lost} of {n}");
    }

    #[test]
    fn a_lost_chunk_holds_back_the_ones_behind_it() {
        let i = imp(5, 0, 1.0);
        let mut s = Schedule::new(&i, 1);
        let t0 = Instant::now();
        let first = s.chunk(t0, 10);
        assert_eq!(first.lost_segments, 1);
        assert_eq!(first.lost_retransmissions, MAX_RETRANSMISSIONS);
        let mut clean = Schedule::new(&imp(5, 0, 0.0), 1);
        let later = clean.chunk(t0 + Duration::from_millis(1), 10);
        assert!(later.at < first.at);
        // In one schedule, the later chunk cannot overtake the lost one.
        let end = s.end(t0 + Duration::from_millis(1));
        assert!(end >= first.at);
    }

    #[test]
    fn big_chunks_count_segments() {
        let mut s = Schedule::new(&imp(0, 0, 0.0), 0);
        let t0 = Instant::now();
        assert_eq!(s.chunk(t0, 1).segments, 1);
        assert_eq!(s.chunk(t0, 1_460).segments, 1);
        assert_eq!(s.chunk(t0, 1_461).segments, 2);
        assert_eq!(s.chunk(t0, 16_384).segments, 12);
        assert_eq!(s.chunk(t0, 0).segments, 1);
    }
}
