//! Streaming top-k in exactly the order of [`crate::TopKLogits`] (value
//! descending by `f32::total_cmp`, ties by id ascending). It exists so the
//! top logits of a position can be kept while its logits are produced a few
//! columns at a time, and merged across threads, without holding the whole
//! vocabulary row; the order is total, so the result equals a full sort.

/// The best `k` (id, value) pairs offered so far, best first.
pub(crate) struct Running {
    k: usize,
    keys: Vec<i32>,
    ids: Vec<u32>,
    values: Vec<f32>,
}

/// `f32::total_cmp` as an integer key (the same transform std uses).
#[inline]
fn key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

impl Running {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            keys: Vec::with_capacity(k + 1),
            ids: Vec::with_capacity(k + 1),
            values: Vec::with_capacity(k + 1),
        }
    }

    /// Whether (`ka`, `ia`) comes before (`kb`, `ib`).
    #[inline]
    fn before(ka: i32, ia: u32, kb: i32, ib: u32) -> bool {
        ka > kb || (ka == kb && ia < ib)
    }

    /// Consider one pair (ids may come in any order, each at most once).
    #[inline]
    pub(crate) fn offer(&mut self, id: u32, v: f32) {
        let kv = key(v);
        let n = self.keys.len();
        if n == self.k {
            if self.k == 0 || !Self::before(kv, id, self.keys[n - 1], self.ids[n - 1]) {
                return;
            }
            self.keys.pop();
            self.ids.pop();
            self.values.pop();
        }
        let mut at = self.keys.len();
        while at > 0 && Self::before(kv, id, self.keys[at - 1], self.ids[at - 1]) {
            at -= 1;
        }
        self.keys.insert(at, kv);
        self.ids.insert(at, id);
        self.values.insert(at, v);
    }

    /// Offer `values[j]` as id `first_id + j` for every `j`; the ids must
    /// all be greater than any offered before (so a value equal to the
    /// current last one never displaces it).
    pub(crate) fn offer_all(&mut self, first_id: u32, values: &[f32]) {
        let mut worst = i32::MIN;
        let mut full = self.keys.len() == self.k;
        if full && self.k > 0 {
            worst = self.keys[self.k - 1];
        }
        for (j, &v) in values.iter().enumerate() {
            if full && key(v) <= worst {
                continue;
            }
            self.offer(first_id + j as u32, v);
            full = self.keys.len() == self.k;
            if full && self.k > 0 {
                worst = self.keys[self.k - 1];
            }
        }
    }

    /// The kept pairs, best first.
    pub(crate) fn into_parts(self) -> (Vec<u32>, Vec<f32>) {
        (self.ids, self.values)
    }

    /// The kept pairs, best first (borrowed).
    pub(crate) fn parts(&self) -> (&[u32], &[f32]) {
        (&self.ids, &self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopKLogits;

    /// The definition: a full sort.
    fn by_sort(logits: &[f32], k: usize) -> (Vec<u32>, Vec<f32>) {
        let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
        ids.sort_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        ids.truncate(k);
        let values = ids.iter().map(|&i| logits[i as usize]).collect();
        (ids, values)
    }

    #[test]
    fn streaming_and_merged_top_k_equal_a_full_sort() {
        let mut logits: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919 % 1013) as f32 / 37.0).sin() * 9.0)
            .collect();
        // Ties, signed zeros, NaNs and infinities.
        for (i, v) in [
            (3, 8.0),
            (40, 8.0),
            (41, 0.0),
            (42, -0.0),
            (43, f32::NAN),
            (44, -f32::NAN),
            (45, f32::INFINITY),
            (46, f32::NEG_INFINITY),
        ] {
            logits[i] = v;
        }
        for k in [0, 1, 5, 8, 64] {
            let want = by_sort(&logits, k);
            let mut one = Running::new(k);
            one.offer_all(0, &logits);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let got = one.into_parts();
            assert_eq!(
                (got.0.clone(), bits(&got.1)),
                (want.0.clone(), bits(&want.1)),
                "k={k}"
            );
            // Pieces merged in reverse order.
            let mut merged = Running::new(k);
            for c in (0..5).rev() {
                let mut part = Running::new(k);
                part.offer_all(c * 1000, &logits[c as usize * 1000..][..1000]);
                let (ids, vals) = part.parts();
                for (&i, &v) in ids.iter().zip(vals) {
                    merged.offer(i, v);
                }
            }
            let got = merged.into_parts();
            assert_eq!(
                (got.0, bits(&got.1)),
                (want.0.clone(), bits(&want.1)),
                "merged k={k}"
            );
            let t = TopKLogits::from_logits(&logits, k);
            assert_eq!(
                (t.ids, bits(&t.values)),
                (want.0, bits(&want.1)),
                "from_logits k={k}"
            );
        }
    }
}
