//! Causal grouped-query attention over a per-generation KV cache, written by
//! hand so that each query row's arithmetic is fixed: scores are dot products
//! against keys 0..=pos in order, the softmax max/sum run in key order, and
//! the weighted value sum accumulates in key order. Nothing depends on how
//! many query rows are processed together or on how long the cache is.
//!
//! Keys and values are stored in half precision (as llama.cpp does by
//! default): half the cache memory per position. Each new key/value row is
//! rounded to f16 once, right after it is computed, and every reader — the
//! pass that produced it as well as every later pass — sees those same
//! halves, so rounding never breaks prefill-equals-incremental.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::kernels::{axpy_f16, dot4_f16};
use crate::ops::dot_f16;

/// Positions added to a layer's key/value storage whenever it is full.
const KV_GROW_POSITIONS: usize = 32;

/// Keys and values for every layer, one `kv_dim`-wide f16 row per position.
pub(crate) struct KvCache {
    keys: Vec<Vec<f16>>,
    values: Vec<Vec<f16>>,
    kv_dim: usize,
    len: usize,
}

impl KvCache {
    pub(crate) fn new(n_layer: usize, kv_dim: usize) -> Self {
        Self {
            keys: vec![Vec::new(); n_layer],
            values: vec![Vec::new(); n_layer],
            kv_dim,
            len: 0,
        }
    }

    /// Number of positions whose keys/values are stored in every layer.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Append rows of keys and values for `layer`. Storage grows in steps
    /// of [`KV_GROW_POSITIONS`] positions rather than by doubling, so the
    /// cache never holds (or leaves behind) much more than it uses.
    pub(crate) fn append(&mut self, layer: usize, k: &[f16], v: &[f16]) {
        for (store, rows) in [(&mut self.keys[layer], k), (&mut self.values[layer], v)] {
            let need = store.len() + rows.len();
            if need > store.capacity() {
                let step = KV_GROW_POSITIONS * self.kv_dim;
                store.reserve_exact(need.next_multiple_of(step) - store.len());
            }
            store.extend_from_slice(rows);
        }
    }

    /// Mark `m` more positions as complete (after all layers appended them).
    pub(crate) fn commit(&mut self, m: usize) {
        self.len += m;
        debug_assert!(self.keys.iter().all(|k| k.len() == self.len * self.kv_dim));
    }

    /// Drop every row past the first `len` committed positions, in every
    /// layer, including rows a failed pass appended without committing, so
    /// the cache is again exactly what its committed passes produced.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        let keep = self.len * self.kv_dim;
        for store in self.keys.iter_mut().chain(self.values.iter_mut()) {
            store.truncate(keep);
        }
    }

    fn layer(&self, layer: usize) -> (&[f16], &[f16]) {
        (&self.keys[layer], &self.values[layer])
    }
}

impl Drop for KvCache {
    /// A request's cache is its largest allocation after the weights: free
    /// it, then hand the freed pages back (see `heap.rs`), so memory freed
    /// between requests does not pile up as heap fragmentation.
    fn drop(&mut self) {
        self.keys = Vec::new();
        self.values = Vec::new();
        crate::heap::trim();
    }
}

/// Rows of f32 keys or values rounded to the cache's f16 (round to nearest,
/// ties to even: IEEE conversion, exact and the same on every CPU).
pub(crate) fn to_f16(rows: &[f32]) -> Vec<f16> {
    let mut out = vec![f16::ZERO; rows.len()];
    out.convert_from_f32_slice(rows);
    out
}

/// Head layout for attention.
#[derive(Clone, Copy)]
pub(crate) struct Heads {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Keys and values of one layer for positions `0..pos0 + m`: those before
/// `pos0` from the cache, the `m` new ones from the current pass (not yet
/// appended). Either way a position's key is the same f16 row.
pub(crate) struct KvView<'a> {
    pub(crate) old_k: &'a [f16],
    pub(crate) old_v: &'a [f16],
    pub(crate) new_k: &'a [f16],
    pub(crate) new_v: &'a [f16],
    pub(crate) pos0: usize,
    pub(crate) kv_dim: usize,
}

impl<'a> KvView<'a> {
    /// View of `layer` of `cache` plus the new rows.
    pub(crate) fn new(
        cache: &'a KvCache,
        layer: usize,
        new_k: &'a [f16],
        new_v: &'a [f16],
    ) -> Self {
        let (old_k, old_v) = cache.layer(layer);
        Self {
            old_k,
            old_v,
            new_k,
            new_v,
            pos0: cache.len(),
            kv_dim: cache.kv_dim,
        }
    }

    fn row(&self, old: &'a [f16], new: &'a [f16], j: usize) -> &'a [f16] {
        if j < self.pos0 {
            &old[j * self.kv_dim..]
        } else {
            &new[(j - self.pos0) * self.kv_dim..]
        }
    }
}

/// Attention output of query row `row` (position `kv.pos0 + row`), head
/// `head`, appended to `out` (`head_dim` values). `q` holds the pass's query
/// rows; `scratch` is reused between calls.
pub(crate) fn attend_one(
    q: &[f32],
    row: usize,
    head: usize,
    kv: &KvView<'_>,
    h: Heads,
    scratch: &mut Scratch,
    out: &mut Vec<f32>,
) {
    let scores = &mut scratch.scores;
    let hd = h.head_dim;
    let group = h.n_head / h.n_head_kv;
    let scale = 1.0 / (hd as f32).sqrt();
    let pos = kv.pos0 + row;
    let kv_off = (head / group) * hd;
    let qh = &q[(row * h.n_head + head) * hd..][..hd];
    scores.clear();
    let key = |j: usize| &kv.row(kv.old_k, kv.new_k, j)[kv_off..][..hd];
    let mut j = 0;
    while j + 4 <= pos + 1 {
        let d = dot4_f16(qh, [key(j), key(j + 1), key(j + 2), key(j + 3)]);
        scores.extend(d.iter().map(|&d| d * scale));
        j += 4;
    }
    scores.extend((j..=pos).map(|j| dot_f16(qh, key(j)) * scale));
    let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    let inv = 1.0 / sum;
    let start = out.len();
    out.resize(start + hd, 0.0);
    let o = &mut out[start..];
    for (j, &e) in scores.iter().enumerate() {
        axpy_f16(o, e * inv, &kv.row(kv.old_v, kv.new_v, j)[kv_off..][..hd]);
    }
}

/// Reusable buffers of [`attend_one`].
#[derive(Default)]
pub(crate) struct Scratch {
    scores: Vec<f32>,
}

/// Attention for `m` query rows at positions `pos0..pos0+m` (their keys and
/// values already appended to `layer` of `cache`), on this thread: the
/// reference for [`attend_one`] used in tests. `q` holds `m` rows of
/// `n_head * head_dim`; the result has the same layout.
#[cfg(test)]
pub(crate) fn attend(
    q: &[f32],
    m: usize,
    pos0: usize,
    cache: &KvCache,
    layer: usize,
    h: Heads,
) -> Vec<f32> {
    let (keys, values) = cache.layer(layer);
    let split = pos0 * cache.kv_dim;
    let kv = KvView {
        old_k: &keys[..split],
        old_v: &values[..split],
        new_k: &keys[split..],
        new_v: &values[split..],
        pos0,
        kv_dim: cache.kv_dim,
    };
    let (mut scratch, mut out) = (Scratch::default(), Vec::new());
    for row in 0..m {
        for head in 0..h.n_head {
            attend_one(q, row, head, &kv, h, &mut scratch, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + salt) * 7919) % 211) as f32 / 50.0 - 2.0)
            .collect()
    }

    fn filled16(n: usize, salt: usize) -> Vec<f16> {
        to_f16(&filled(n, salt))
    }

    #[test]
    fn rows_are_identical_whether_batched_or_incremental() {
        let h = Heads {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 8,
        };
        let (m, kv_dim, qw) = (6, 16, 32);
        let (k, v, q) = (
            filled16(m * kv_dim, 1),
            filled16(m * kv_dim, 2),
            filled(m * qw, 3),
        );
        let mut all = KvCache::new(1, kv_dim);
        all.append(0, &k, &v);
        all.commit(m);
        let batched = attend(&q, m, 0, &all, 0, h);
        let mut inc = KvCache::new(1, kv_dim);
        for r in 0..m {
            inc.append(0, &k[r * kv_dim..][..kv_dim], &v[r * kv_dim..][..kv_dim]);
            inc.commit(1);
            let one = attend(&q[r * qw..][..qw], 1, r, &inc, 0, h);
            let b: Vec<u32> = batched[r * qw..][..qw]
                .iter()
                .map(|f| f.to_bits())
                .collect();
            let o: Vec<u32> = one.iter().map(|f| f.to_bits()).collect();
            assert_eq!(b, o, "row {r}");
        }
    }

    #[test]
    fn new_rows_from_the_pass_equal_rows_from_the_cache() {
        let h = Heads {
            n_head: 4,
            n_head_kv: 2,
            head_dim: 8,
        };
        let (old, m, kv_dim, qw) = (5, 3, 16, 32);
        let (k, v, q) = (
            filled16((old + m) * kv_dim, 4),
            filled16((old + m) * kv_dim, 5),
            filled(m * qw, 6),
        );
        let mut all = KvCache::new(1, kv_dim);
        all.append(0, &k, &v);
        all.commit(old + m);
        let want = attend(&q, m, old, &all, 0, h);
        let mut cache = KvCache::new(1, kv_dim);
        cache.append(0, &k[..old * kv_dim], &v[..old * kv_dim]);
        cache.commit(old);
        let view = KvView::new(&cache, 0, &k[old * kv_dim..], &v[old * kv_dim..]);
        let (mut scratch, mut got) = (Scratch::default(), Vec::new());
        for row in 0..m {
            for head in 0..h.n_head {
                attend_one(&q, row, head, &view, h, &mut scratch, &mut got);
            }
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    #[test]
    fn first_position_attends_only_to_itself() {
        let h = Heads {
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
        };
        let mut cache = KvCache::new(1, 4);
        let v = [1.0, 2.0, 3.0, 4.0];
        cache.append(0, &to_f16(&[0.5; 4]), &to_f16(&v));
        cache.commit(1);
        let out = attend(&[1.0; 8], 1, 0, &cache, 0, h);
        assert_eq!(&out[..4], &v);
        assert_eq!(&out[4..], &v);
    }

    #[test]
    fn truncate_drops_uncommitted_rows_in_every_layer() {
        let kv_dim = 4;
        let mut cache = KvCache::new(2, kv_dim);
        for layer in 0..2 {
            cache.append(
                layer,
                &filled16(2 * kv_dim, layer),
                &filled16(2 * kv_dim, 9),
            );
        }
        cache.commit(2);
        // A pass that fails after layer 0: one layer holds a third row.
        cache.append(0, &filled16(kv_dim, 3), &filled16(kv_dim, 4));
        cache.truncate(2);
        assert_eq!(cache.len(), 2);
        for layer in 0..2 {
            let (k, v) = cache.layer(layer);
            assert_eq!(
                (k.len(), v.len()),
                (2 * kv_dim, 2 * kv_dim),
                "layer {layer}"
            );
        }
        cache.truncate(1);
        assert_eq!((cache.len(), cache.layer(1).0.len()), (1, kv_dim));
    }

    #[test]
    fn rows_are_rounded_to_nearest_half() {
        let x = [1.0, 1.0 + f32::EPSILON, 65504.0, 1e-8, -2.5, 70000.0];
        let h = to_f16(&x);
        let back: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
        assert_eq!(back[..3], [1.0, 1.0, 65504.0]);
        assert_eq!(back[3], 0.0, "below the smallest subnormal half");
        assert_eq!(back[4], -2.5);
        assert!(back[5].is_infinite(), "overflow rounds to infinity");
    }
}
