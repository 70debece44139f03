//! The candidate index that keeps placement fast with many providers.
//!
//! One [`Index`] per model (entries = providers offering it) and one for
//! fine-tuning (entries = every provider). Entries are grouped into buckets
//! (by region and warm/cold for models; by hardware shape for fine-tune).
//! Each bucket keeps, per workload class, its entries sorted by the static
//! part of the score (descending), plus conservative aggregates: a centre
//! and radius (for an RTT lower bound from physics), the best prefill
//! throughput, attestation, reputation, uptime and VRAM, and the lowest
//! prices. The search visits buckets by score upper bound and stops as soon
//! as no unvisited entry can beat the current top k — an exact
//! branch-and-bound, so the fast path picks what a full scan would.
//!
//! Aggregates only ever widen (max grows, min shrinks) between rebuilds, so
//! they stay valid bounds after removals. Two global orders, by input and by
//! output price, serve the cheapest-first ranking (Fagin's threshold
//! algorithm: walk both, stop when the k-th best cost is below the cost of
//! the current prices in both lists).

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::gpu::GpuModel;
use crate::latency::{chord_km, fiber_floor_rtt_ms, haversine_km, GeoPoint};
use crate::provider::{AttestationLevel, Interconnect, Provenance};

/// What groups entries into a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BucketKey {
    /// Model entries: region label, whether the model must be loaded, and
    /// the GPU model (so a bucket's best prefill throughput is a tight bound).
    Region {
        region: String,
        cold: bool,
        gpu: GpuModel,
    },
    /// Fine-tune entries: hardware shape.
    Shape {
        gpu: GpuModel,
        gpus: u32,
        interconnect: Interconnect,
    },
}

/// One (provider, offer) pair with its static data.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub slot: u32,
    pub cold: bool,
    pub bucket: u32,
    pub input_price: u64,
    pub output_price: u64,
    pub prefill_tps: f64,
    pub decode_tps: f64,
    pub tps_source: Provenance,
    /// The model's VRAM need fits this provider (precomputed for model
    /// entries; fine-tune entries check per request).
    pub fits: bool,
    pub cost: f64,
    pub reputation: f64,
    /// Tier score (model entries; fine-tune computes it per request).
    pub tier: f64,
    /// Static score part per class.
    pub statics: [f64; 3],
    pub alive: bool,
}

/// What a bucket aggregates about a new member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Traits {
    pub point: GeoPoint,
    pub attestation: AttestationLevel,
    pub reputation_bp: u16,
    pub uptime_bp: u16,
    pub box_vram_mib: u64,
}

/// Slack subtracted from geometric distance bounds, km (float safety).
pub(crate) const DIST_SLACK_KM: f64 = 1.0;

/// A group of entries: its key, geometry and orders.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    pub center_point: GeoPoint,
    pub center: [f64; 3],
    /// Chord distance from the coordinator to the centre, km.
    pub coord_chord_km: f64,
    pub radius_km: f64,
    /// Entry ids per class, by static score descending then id.
    pub orders: [Vec<u32>; 3],
}

/// A bucket's conservative aggregates, kept contiguous (one per bucket) so
/// the per-request bound loop stays in cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    /// Static score of the best entry per class (−∞ when none).
    pub head_static: [f64; 3],
    /// Fiber-floor RTT from the coordinator to the nearest possible member.
    pub coord_rtt_lb_ms: f64,
    pub max_prefill_tps: f64,
    pub max_box_vram_mib: u64,
    pub min_input: u64,
    pub min_output: u64,
    pub max_attestation: AttestationLevel,
    pub max_reputation_bp: u16,
    pub max_uptime_bp: u16,
    pub cold: bool,
    pub len: u32,
}

impl Bucket {
    fn new(key: BucketKey, point: GeoPoint, coord_unit: [f64; 3]) -> (Bucket, Summary) {
        let coord_chord_km = chord_km(coord_unit, point.unit());
        let summary = Summary {
            head_static: [f64::NEG_INFINITY; 3],
            coord_rtt_lb_ms: fiber_floor_rtt_ms((coord_chord_km - DIST_SLACK_KM).max(0.0)),
            max_prefill_tps: 0.0,
            max_box_vram_mib: 0,
            min_input: u64::MAX,
            min_output: u64::MAX,
            max_attestation: AttestationLevel::None,
            max_reputation_bp: 0,
            max_uptime_bp: 0,
            cold: matches!(key, BucketKey::Region { cold: true, .. }),
            len: 0,
        };
        let bucket = Bucket {
            center_point: point,
            center: point.unit(),
            coord_chord_km,
            radius_km: 0.0,
            orders: [Vec::new(), Vec::new(), Vec::new()],
        };
        (bucket, summary)
    }

    fn widen(&mut self, s: &mut Summary, t: &Traits, e: &Entry) {
        self.radius_km = self.radius_km.max(haversine_km(self.center_point, t.point));
        let dist = (self.coord_chord_km - self.radius_km - DIST_SLACK_KM).max(0.0);
        s.coord_rtt_lb_ms = fiber_floor_rtt_ms(dist);
        s.max_prefill_tps = s.max_prefill_tps.max(e.prefill_tps);
        s.max_box_vram_mib = s.max_box_vram_mib.max(t.box_vram_mib);
        s.max_attestation = s.max_attestation.max(t.attestation);
        s.max_reputation_bp = s.max_reputation_bp.max(t.reputation_bp);
        s.max_uptime_bp = s.max_uptime_bp.max(t.uptime_bp);
        s.min_input = s.min_input.min(e.input_price);
        s.min_output = s.min_output.min(e.output_price);
    }
}

/// Entries, buckets and orders for one model (or for fine-tune).
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    pub entries: Vec<Entry>,
    free: Vec<u32>,
    pub buckets: Vec<Bucket>,
    /// One per bucket.
    pub summaries: Vec<Summary>,
    keys: HashMap<BucketKey, u32>,
    /// Entry ids by input price (hourly price for fine-tune) ascending, then id.
    pub by_in: Vec<u32>,
    /// Entry ids by output price ascending, then id.
    pub by_out: Vec<u32>,
    /// Which classes keep an order.
    classes: [bool; 3],
    /// Unit vector of the coordinator.
    coord_unit: [f64; 3],
    pub live_entries: usize,
}

/// Order within a class: static score descending, then id ascending.
fn by_static(entries: &[Entry], c: usize, a: u32, b: u32) -> Ordering {
    let (ea, eb) = (&entries[a as usize], &entries[b as usize]);
    eb.statics[c].total_cmp(&ea.statics[c]).then(a.cmp(&b))
}

/// Price of an entry in one of the two price orders.
fn price(e: &Entry, output: bool) -> u64 {
    if output {
        e.output_price
    } else {
        e.input_price
    }
}

fn by_price(entries: &[Entry], output: bool, a: u32, b: u32) -> Ordering {
    price(&entries[a as usize], output)
        .cmp(&price(&entries[b as usize], output))
        .then(a.cmp(&b))
}

impl Index {
    /// An empty index keeping orders for the given classes.
    pub fn new(classes: [bool; 3], coord_unit: [f64; 3]) -> Index {
        Index {
            classes,
            coord_unit,
            ..Index::default()
        }
    }

    /// Adds an entry; returns its id.
    pub fn insert(&mut self, key: BucketKey, traits: &Traits, mut entry: Entry) -> u32 {
        let b = match self.keys.get(&key) {
            Some(&b) => b,
            None => {
                let b = self.buckets.len() as u32;
                let (bucket, summary) = Bucket::new(key.clone(), traits.point, self.coord_unit);
                self.buckets.push(bucket);
                self.summaries.push(summary);
                self.keys.insert(key, b);
                b
            }
        };
        entry.bucket = b;
        entry.alive = true;
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let bucket = &mut self.buckets[b as usize];
        let summary = &mut self.summaries[b as usize];
        bucket.widen(summary, traits, &self.entries[id as usize]);
        summary.len += 1;
        for c in 0..3 {
            if self.classes[c] {
                let order = &mut bucket.orders[c];
                let pos = order
                    .partition_point(|&x| by_static(&self.entries, c, x, id) == Ordering::Less);
                order.insert(pos, id);
            }
        }
        self.refresh_heads(b as usize);
        for output in [false, true] {
            let order = if output {
                &mut self.by_out
            } else {
                &mut self.by_in
            };
            let pos = order
                .partition_point(|&x| by_price(&self.entries, output, x, id) == Ordering::Less);
            order.insert(pos, id);
        }
        self.live_entries += 1;
        id
    }

    /// Removes an entry by id.
    pub fn remove(&mut self, id: u32) {
        let b = self.entries[id as usize].bucket as usize;
        for c in 0..3 {
            if self.classes[c] {
                let order = &mut self.buckets[b].orders[c];
                let pos = order
                    .partition_point(|&x| by_static(&self.entries, c, x, id) == Ordering::Less);
                debug_assert_eq!(order.get(pos), Some(&id));
                order.remove(pos);
            }
        }
        for output in [false, true] {
            let order = if output {
                &mut self.by_out
            } else {
                &mut self.by_in
            };
            let pos = order
                .partition_point(|&x| by_price(&self.entries, output, x, id) == Ordering::Less);
            debug_assert_eq!(order.get(pos), Some(&id));
            order.remove(pos);
        }
        self.summaries[b].len -= 1;
        self.refresh_heads(b);
        self.entries[id as usize].alive = false;
        self.free.push(id);
        self.live_entries -= 1;
    }

    /// Updates an entry's throughput (not part of the static order).
    pub fn set_throughput(&mut self, id: u32, prefill: f64, decode: f64, source: Provenance) {
        let e = &mut self.entries[id as usize];
        e.prefill_tps = prefill;
        e.decode_tps = decode;
        e.tps_source = source;
        let s = &mut self.summaries[e.bucket as usize];
        s.max_prefill_tps = s.max_prefill_tps.max(prefill);
    }

    /// Re-reads the best static score per class of bucket `b`.
    fn refresh_heads(&mut self, b: usize) {
        for c in 0..3 {
            let head = self.buckets[b].orders[c].first();
            self.summaries[b].head_static[c] =
                head.map_or(f64::NEG_INFINITY, |&h| self.entries[h as usize].statics[c]);
        }
    }

    /// The entry with this id.
    pub fn entry(&self, id: u32) -> &Entry {
        &self.entries[id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: u32, s: f64, lo: u64) -> Entry {
        Entry {
            slot,
            cold: false,
            bucket: 0,
            input_price: lo,
            output_price: lo * 2,
            prefill_tps: 100.0 + f64::from(slot),
            decode_tps: 10.0,
            tps_source: Provenance::Modelled,
            fits: true,
            cost: 0.0,
            reputation: 0.0,
            tier: 0.0,
            statics: [s, -s, 0.0],
            alive: true,
        }
    }

    fn traits(lat: f64) -> Traits {
        Traits {
            point: GeoPoint::new(lat, 0.0),
            attestation: AttestationLevel::None,
            reputation_bp: 5_000,
            uptime_bp: 0,
            box_vram_mib: 1,
        }
    }

    #[test]
    fn orders_stay_sorted_through_inserts_and_removes() {
        let mut ix = Index::new([true, true, false], GeoPoint::new(0.0, 0.0).unit());
        let key = BucketKey::Region {
            region: "r".into(),
            cold: false,
            gpu: GpuModel::T4,
        };
        let ids: Vec<u32> = (0..20u32)
            .map(|i| {
                ix.insert(
                    key.clone(),
                    &traits(f64::from(i)),
                    entry(i, f64::from((i * 7) % 11), u64::from((i * 5) % 13)),
                )
            })
            .collect();
        for &id in ids.iter().step_by(3) {
            ix.remove(id);
        }
        let b = &ix.buckets[0];
        let len = ix.summaries[0].len as usize;
        assert_eq!(len, 20 - ids.iter().step_by(3).count());
        for c in 0..2 {
            assert_eq!(b.orders[c].len(), len);
            for w in b.orders[c].windows(2) {
                assert_eq!(by_static(&ix.entries, c, w[0], w[1]), Ordering::Less);
            }
        }
        assert!(b.orders[2].is_empty());
        for w in ix.by_in.windows(2) {
            assert!(ix.entry(w[0]).input_price <= ix.entry(w[1]).input_price);
        }
        for w in ix.by_out.windows(2) {
            assert!(ix.entry(w[0]).output_price <= ix.entry(w[1]).output_price);
        }
        assert_eq!((ix.by_in.len(), ix.by_out.len()), (len, len));
        // Aggregates are conservative: radius covers every member ever added.
        assert!(
            b.radius_km >= haversine_km(GeoPoint::new(0.0, 0.0), GeoPoint::new(19.0, 0.0)) - 1e-9
        );
        assert_eq!(ix.summaries[0].max_prefill_tps, 119.0);
        assert_eq!(
            ix.summaries[0].head_static[0],
            ix.entry(b.orders[0][0]).statics[0]
        );
        assert_eq!(ix.summaries[0].head_static[2], f64::NEG_INFINITY);
        // Freed ids are reused.
        let again = ix.insert(key, &traits(0.0), entry(99, 1.0, 1));
        assert!(ids.iter().step_by(3).any(|&i| i == again));
    }
}
