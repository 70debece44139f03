//! Causal grouped-query attention over a per-generation KV cache, written by
//! hand so that each query row's arithmetic is fixed: scores are dot products
//! against keys 0..=pos in order, the softmax max/sum run in key order, and
//! the weighted value sum accumulates in key order. Nothing depends on how
//! many query rows are processed together or on how long the cache is.

use rayon::prelude::*;

use crate::ops::dot;

/// Positions added to a layer's key/value storage whenever it is full.
const KV_GROW_POSITIONS: usize = 256;

/// Keys and values for every layer, one `kv_dim`-wide row per position.
pub(crate) struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
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
    pub(crate) fn append(&mut self, layer: usize, k: &[f32], v: &[f32]) {
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

    fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.keys[layer], &self.values[layer])
    }
}

/// Head layout for attention.
#[derive(Clone, Copy)]
pub(crate) struct Heads {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
}

/// Attention for `m` query rows at positions `pos0..pos0+m` (their keys and
/// values already appended to `layer` of `cache`). `q` holds `m` rows of
/// `n_head * head_dim`; the result has the same layout.
pub(crate) fn attend(
    q: &[f32],
    m: usize,
    pos0: usize,
    cache: &KvCache,
    layer: usize,
    h: Heads,
) -> Vec<f32> {
    let (keys, values) = cache.layer(layer);
    let hd = h.head_dim;
    let group = h.n_head / h.n_head_kv;
    let kv_dim = h.n_head_kv * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; m * h.n_head * hd];
    let task = |(task, o): (usize, &mut [f32])| {
        let (row, head) = (task / h.n_head, task % h.n_head);
        let pos = pos0 + row;
        let kv_off = (head / group) * hd;
        let qh = &q[(row * h.n_head + head) * hd..][..hd];
        let mut scores: Vec<f32> = (0..=pos)
            .map(|j| dot(qh, &keys[j * kv_dim + kv_off..][..hd]) * scale)
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        for (j, &e) in scores.iter().enumerate() {
            let w = e * inv;
            let vj = &values[j * kv_dim + kv_off..][..hd];
            for (od, &vd) in o.iter_mut().zip(vj) {
                *od += w * vd;
            }
        }
    };
    // Each (row, head) task is computed the same way either way; only big
    // batches are worth waking the other threads for.
    if m * (pos0 + m) * h.n_head * hd >= PARALLEL_MIN_WORK {
        out.par_chunks_mut(hd).enumerate().for_each(task);
    } else {
        out.chunks_mut(hd).enumerate().for_each(task);
    }
    out
}

/// Multiply-adds (roughly) below which attention runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + salt) * 7919) % 211) as f32 / 50.0 - 2.0)
            .collect()
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
            filled(m * kv_dim, 1),
            filled(m * kv_dim, 2),
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
    fn first_position_attends_only_to_itself() {
        let h = Heads {
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
        };
        let mut cache = KvCache::new(1, 4);
        let v = [1.0, 2.0, 3.0, 4.0];
        cache.append(0, &[0.5, 0.5, 0.5, 0.5], &v);
        cache.commit(1);
        let out = attend(&[1.0; 8], 1, 0, &cache, 0, h);
        assert_eq!(&out[..4], &v);
        assert_eq!(&out[4..], &v);
    }
}
