//! The latency model: where round-trip times come from and how time to first
//! token (TTFT) is estimated.
//!
//! - Measured RTT: [`RttTracker`] keeps a window of heartbeat round trips and
//!   their median and p90 (nearest-rank).
//! - Physics: light in fiber covers about 204 km/ms (c divided by a
//!   refractive index of ~1.47), so an RTT over a great-circle distance `d` is
//!   at least `2 d / 204 km/ms` ([`fiber_floor_rtt_ms`]). Real routes are
//!   longer than great circles: the modelled RTT multiplies the floor by a
//!   path-stretch factor, default 1.5. Singla et al., "The Internet at the
//!   Speed of Light" (HotNets 2014), and Bozkurt et al., "Why Is the Internet
//!   so Slow?!" (PAM 2017), measured median ping RTTs of ~3× the vacuum
//!   speed-of-light bound, i.e. ~2× the fiber floor; 1.5 is therefore an
//!   optimistic model, used only until a measurement replaces it.
//! - A measured RTT below the fiber floor of the claimed coordinates is
//!   physically impossible, so it contradicts the location claim
//!   ([`LocationCheck::Contradicted`]); estimates never go below the floor.
//! - TTFT = RTT + queue wait + prefill time (+ cold-load time).

use serde::{Deserialize, Serialize};

/// Mean Earth radius, km (IUGG).
pub const EARTH_RADIUS_KM: f64 = 6_371.0;
/// Speed of light in optical fiber, km per ms (c / ~1.47).
pub const FIBER_KM_PER_MS: f64 = 204.0;
/// Default path-stretch factor over the great-circle fiber floor.
pub const DEFAULT_PATH_STRETCH: f64 = 1.5;

/// A point on Earth, degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
}

impl GeoPoint {
    /// A point (not validated; claims validation checks ranges).
    pub const fn new(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    /// Unit vector of this point, for cheap chord-length bounds.
    pub fn unit(self) -> [f64; 3] {
        let (la, lo) = (self.lat.to_radians(), self.lon.to_radians());
        [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()]
    }
}

/// Great-circle distance by the haversine formula, km.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dla = la2 - la1;
    let dlo = (b.lon - a.lon).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Chord length between two unit vectors, km. Never more than the
/// great-circle distance, so it gives valid lower bounds cheaply.
pub fn chord_km(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    EARTH_RADIUS_KM * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// The physical lower bound on RTT over `distance_km`: there and back at the
/// speed of light in fiber.
pub fn fiber_floor_rtt_ms(distance_km: f64) -> f64 {
    2.0 * distance_km / FIBER_KM_PER_MS
}

/// The latency model's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyConfig {
    /// Multiplier over the fiber floor for an unmeasured path (default 1.5).
    pub path_stretch: f64,
    /// Samples needed before the measured median replaces the model.
    pub min_samples: u32,
    /// Cold-load bandwidth, MB/s (weights read from disk into VRAM).
    pub cold_load_mb_per_s: f64,
    /// Weight of a fresh throughput measurement in the moving average
    /// (0 < α ≤ 1): estimates decay toward what the provider does now.
    pub throughput_alpha: f64,
    /// An idle provider whose throughput was last measured this long ago
    /// (or never) is not refused for a missed TTFT objective: its estimate
    /// may be stale, so it gets the job as a probe and is measured again
    /// ([`crate::Estimate::probe`]). 0 disables probing.
    pub probe_after_ms: u64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            path_stretch: DEFAULT_PATH_STRETCH,
            min_samples: 3,
            // NVMe sequential reads are 2–7 GB/s; 2 GB/s leaves room for
            // deserialisation and host-to-device copies.
            cold_load_mb_per_s: 2_000.0,
            throughput_alpha: 0.5,
            probe_after_ms: 30_000,
        }
    }
}

impl LatencyConfig {
    /// The modelled RTT over a distance: floor × stretch.
    pub fn modelled_rtt_ms(&self, distance_km: f64) -> f64 {
        fiber_floor_rtt_ms(distance_km) * self.path_stretch
    }
}

/// Samples an [`RttTracker`] keeps.
pub const RTT_WINDOW: usize = 32;

/// A sliding window of RTT samples (µs) with cached median, p90 and minimum.
/// Only the summary serialises.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RttTracker {
    #[serde(skip)]
    ring: Vec<u32>,
    #[serde(skip)]
    next: usize,
    /// Samples seen in total.
    pub samples_total: u64,
    /// Median of the window, µs (nearest rank).
    pub median_us: u32,
    /// 90th percentile of the window, µs (nearest rank).
    pub p90_us: u32,
    /// Minimum of the window, µs: the best estimate of propagation delay.
    pub min_us: u32,
}

impl RttTracker {
    /// An empty tracker.
    pub fn new() -> RttTracker {
        RttTracker::default()
    }

    /// Adds one sample and refreshes the summary.
    pub fn insert(&mut self, rtt_us: u32) {
        if self.ring.len() < RTT_WINDOW {
            self.ring.push(rtt_us);
        } else {
            self.ring[self.next] = rtt_us;
        }
        self.next = (self.next + 1) % RTT_WINDOW;
        self.samples_total += 1;
        let mut sorted = self.ring.clone();
        sorted.sort_unstable();
        self.median_us = nearest_rank(&sorted, 50);
        self.p90_us = nearest_rank(&sorted, 90);
        self.min_us = sorted[0];
    }

    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Median in ms once at least `min_samples` are in the window.
    pub fn median_ms(&self, min_samples: u32) -> Option<f64> {
        (self.ring.len() >= min_samples.max(1) as usize).then(|| f64::from(self.median_us) / 1e3)
    }
}

/// The `pct`-th percentile of a sorted non-empty slice, nearest-rank method.
fn nearest_rank(sorted: &[u32], pct: usize) -> u32 {
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Where an RTT figure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RttSource {
    /// Median of measured round trips.
    Measured,
    /// Nothing measured yet: the physical lower bound from the claimed
    /// coordinates (fiber floor) × path stretch.
    Modelled,
    /// Measured, but the median is below the physical floor of the claimed
    /// location, so the claim is contradicted
    /// ([`LocationCheck::Contradicted`]) and the floor is used instead: a
    /// false location can only make its claimant look slower.
    ClaimedFloor,
    /// No location known: counted as zero.
    Unknown,
}

/// Whether measured RTTs are consistent with the claimed coordinates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum LocationCheck {
    /// Not enough measurements yet.
    #[default]
    Unverified,
    /// The fastest measured RTT is at or above the fiber floor.
    Consistent,
    /// The fastest measured RTT is below the fiber floor: the provider cannot
    /// be where it claims to be.
    Contradicted {
        /// Fastest RTT in the window, ms.
        min_rtt_ms: f64,
        /// Fiber floor for the claimed coordinates, ms.
        floor_ms: f64,
    },
}

impl LocationCheck {
    /// Judges a tracker against the floor of the claimed location.
    pub fn judge(tracker: &RttTracker, floor_ms: f64, min_samples: u32) -> LocationCheck {
        if tracker.len() < min_samples.max(1) as usize {
            return LocationCheck::Unverified;
        }
        let min_rtt_ms = f64::from(tracker.min_us) / 1e3;
        if min_rtt_ms < floor_ms {
            LocationCheck::Contradicted {
                min_rtt_ms,
                floor_ms,
            }
        } else {
            LocationCheck::Consistent
        }
    }
}

/// The effective RTT of one leg: the measured median when there is one;
/// the floor when the median contradicts the claimed location (labelled
/// [`RttSource::ClaimedFloor`]); floor × stretch only while nothing is
/// measured. Never below the floor, so index lower bounds stay bounds.
pub fn leg_rtt_ms(measured_ms: Option<f64>, floor_ms: f64, stretch: f64) -> (f64, RttSource) {
    match measured_ms {
        Some(m) if m >= floor_ms => (m, RttSource::Measured),
        Some(_) => (floor_ms, RttSource::ClaimedFloor),
        None => (floor_ms * stretch, RttSource::Modelled),
    }
}

/// Queue wait before a new job starts: zero with a free slot; otherwise the
/// job waits for `ceil((queued + 1) / slots)` service rounds.
pub fn queue_wait_ms(active: u32, queued: u32, max_concurrency: u32, service_ms: f64) -> f64 {
    let slots = max_concurrency.max(1);
    if active < slots && queued == 0 {
        return 0.0;
    }
    let rounds = (queued + 1).div_ceil(slots);
    f64::from(rounds) * service_ms
}

/// Prefill time for `prompt_tokens` at `prefill_tps`.
pub fn prefill_ms(prompt_tokens: u32, prefill_tps: f64) -> f64 {
    f64::from(prompt_tokens) * 1e3 / prefill_tps
}

/// Time to load `size_bytes` of weights at `mb_per_s`.
pub fn cold_load_ms(size_bytes: u64, mb_per_s: f64) -> f64 {
    size_bytes as f64 / (mb_per_s * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // London–New York is about 5,570 km; Sydney–Tokyo about 7,800 km.
        let lon = GeoPoint::new(51.5074, -0.1278);
        let nyc = GeoPoint::new(40.7128, -74.0060);
        let d = haversine_km(lon, nyc);
        assert!((d - 5_570.0).abs() < 30.0, "{d}");
        let syd = GeoPoint::new(-33.8688, 151.2093);
        let tyo = GeoPoint::new(35.6762, 139.6503);
        let d2 = haversine_km(syd, tyo);
        assert!((d2 - 7_800.0).abs() < 60.0, "{d2}");
        assert_eq!(haversine_km(lon, lon), 0.0);
        // Antipodes: half the circumference.
        let anti = haversine_km(GeoPoint::new(0.0, 0.0), GeoPoint::new(0.0, 180.0));
        assert!((anti - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn chord_never_exceeds_arc() {
        let pts = [
            (0.0, 0.0),
            (51.0, -0.1),
            (-33.9, 151.2),
            (89.0, 10.0),
            (0.0, 180.0),
        ];
        for &(a, b) in &pts {
            for &(c, d) in &pts {
                let (p, q) = (GeoPoint::new(a, b), GeoPoint::new(c, d));
                assert!(chord_km(p.unit(), q.unit()) <= haversine_km(p, q) + 1e-6);
            }
        }
    }

    #[test]
    fn fiber_floor_is_two_way_at_204_km_per_ms() {
        // London–New York floor: 2 × 5,570 / 204 ≈ 54.6 ms.
        let f = fiber_floor_rtt_ms(5_570.0);
        assert!((f - 54.6).abs() < 0.1, "{f}");
        let cfg = LatencyConfig::default();
        assert!((cfg.modelled_rtt_ms(5_570.0) - f * 1.5).abs() < 1e-9);
    }

    #[test]
    fn tracker_median_p90_and_window() {
        let mut t = RttTracker::new();
        assert!(t.median_ms(1).is_none());
        for v in 1..=10u32 {
            t.insert(v * 1000);
        }
        assert_eq!(t.median_us, 5000);
        assert_eq!(t.p90_us, 9000);
        assert_eq!(t.min_us, 1000);
        assert_eq!(t.median_ms(3), Some(5.0));
        assert!(t.median_ms(11).is_none());
        // Old samples fall out of the window.
        for _ in 0..RTT_WINDOW {
            t.insert(50_000);
        }
        assert_eq!(t.len(), RTT_WINDOW);
        assert_eq!((t.median_us, t.p90_us, t.min_us), (50_000, 50_000, 50_000));
        assert_eq!(t.samples_total, 10 + RTT_WINDOW as u64);
    }

    #[test]
    fn location_check_flags_faster_than_light() {
        let mut t = RttTracker::new();
        for _ in 0..3 {
            t.insert(10_000);
        }
        assert_eq!(LocationCheck::judge(&t, 5.0, 3), LocationCheck::Consistent);
        assert!(matches!(
            LocationCheck::judge(&t, 54.6, 3),
            LocationCheck::Contradicted { .. }
        ));
        assert_eq!(LocationCheck::judge(&t, 54.6, 4), LocationCheck::Unverified);
    }

    #[test]
    fn leg_rtt_never_below_floor() {
        // Below the claimed location's floor: the floor, labelled as such.
        assert_eq!(
            leg_rtt_ms(Some(3.0), 10.0, 1.5),
            (10.0, RttSource::ClaimedFloor)
        );
        assert_eq!(
            leg_rtt_ms(Some(30.0), 10.0, 1.5),
            (30.0, RttSource::Measured)
        );
        assert_eq!(leg_rtt_ms(None, 10.0, 1.5), (15.0, RttSource::Modelled));
    }

    #[test]
    fn queue_wait_rounds() {
        assert_eq!(queue_wait_ms(0, 0, 2, 100.0), 0.0);
        assert_eq!(queue_wait_ms(1, 0, 2, 100.0), 0.0);
        assert_eq!(queue_wait_ms(2, 0, 2, 100.0), 100.0);
        assert_eq!(queue_wait_ms(2, 1, 2, 100.0), 100.0);
        assert_eq!(queue_wait_ms(2, 2, 2, 100.0), 200.0);
        assert_eq!(prefill_ms(1000, 2000.0), 500.0);
        assert_eq!(cold_load_ms(2_000_000_000, 2_000.0), 1_000.0);
    }
}
