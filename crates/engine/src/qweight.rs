//! Natively supported quantized weights (Q4_0, Q4_1, Q8_0): byte ranges of
//! the file's tensor data, repacked in place into the kernels' layout
//! (`kernels/packed.rs`), plus row lookup for the token embedding. Work is
//! split by output column only, and each output is one kernel dot product,
//! so the result of a (row, column) pair is the same whatever the batch
//! size, the column split or the number of threads.

use std::ops::Range;
use std::sync::Arc;

use crate::kernels::{matmul_cols, packed, Kernel, QActs, QType, BLOCK, GROUP};
use crate::EngineError;

/// A `[n][k]` matrix of quantized blocks in packed layout: a byte range of a
/// shared buffer (the file's tensor data, read once).
#[derive(Clone)]
pub(crate) struct QWeight {
    pub(crate) t: QType,
    pub(crate) n: usize,
    pub(crate) k: usize,
    data: Arc<Vec<u8>>,
    off: usize,
}

/// Check that `range` holds exactly `n` rows of `k` values of type `t`.
pub(crate) fn check_range(
    name: &str,
    t: QType,
    n: usize,
    k: usize,
    range: &Range<usize>,
    len: usize,
) -> Result<(), EngineError> {
    let want = n
        .checked_mul(k / BLOCK)
        .and_then(|b| b.checked_mul(t.block_bytes()));
    if !k.is_multiple_of(BLOCK) || want != Some(range.len()) || range.end > len {
        return Err(EngineError::UnsupportedTensorType {
            name: name.into(),
            dtype: format!("{t:?} with {} bytes for [{n}][{k}]", range.len()),
        });
    }
    Ok(())
}

impl QWeight {
    /// View `data[range]`, which must hold `n` rows of `k` values ALREADY
    /// packed with [`packed::pack_in_place`].
    pub(crate) fn new(
        name: &str,
        t: QType,
        n: usize,
        k: usize,
        data: Arc<Vec<u8>>,
        range: Range<usize>,
    ) -> Result<Self, EngineError> {
        check_range(name, t, n, k, &range, data.len())?;
        Ok(Self {
            t,
            n,
            k,
            data,
            off: range.start,
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        let row_bytes = self.k / BLOCK * self.t.block_bytes();
        &self.data[self.off..self.off + self.n * row_bytes]
    }

    /// Dequantize row `i` (an embedding lookup) into `out` (`k` floats).
    pub(crate) fn dequantize_row(&self, i: usize, out: &mut [f32]) {
        packed::dequantize_row(self.t, self.bytes(), self.n, self.k, i, out);
    }

    /// Column groups (of [`GROUP`]) of this weight.
    pub(crate) fn groups(&self) -> usize {
        self.n.div_ceil(GROUP)
    }

    /// Outputs for columns `cols` (group-aligned) into `out` (`a.m` rows of
    /// stride `ldo`, starting at column `cols.start`).
    pub(crate) fn matmul_cols(&self, a: &QActs, cols: Range<usize>, out: &mut [f32], ldo: usize) {
        matmul_cols(
            Kernel::best(),
            self.t,
            self.bytes(),
            self.n,
            a,
            cols,
            out,
            ldo,
        );
    }

    /// `y = x · Wᵀ` for already-quantized activation rows, on this thread.
    pub(crate) fn matmul(&self, a: &QActs) -> Vec<f32> {
        let mut out = vec![0f32; a.m * self.n];
        self.matmul_cols(a, 0..self.n, &mut out, self.n);
        out
    }
}

/// The column range of group range `g` of a weight with `n` columns.
pub(crate) fn group_cols(g: Range<usize>, n: usize) -> Range<usize> {
    g.start * GROUP..(g.end * GROUP).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    #[test]
    fn views_are_checked_and_rows_dequantize() {
        let (n, k) = (11, 64);
        let rb = k / BLOCK * QType::Q8_0.block_bytes();
        let raw: Vec<u8> = (0..n * rb)
            .map(|i| if i % 34 == 1 { 0x1C } else { (i * 31) as u8 })
            .collect();
        let mut data = raw.clone();
        packed::pack_in_place(QType::Q8_0, &mut data, n, k);
        let w = QWeight::new("w", QType::Q8_0, n, k, Arc::new(data), 0..n * rb).unwrap();
        for i in [2, 9] {
            let mut row = vec![0f32; k];
            w.dequantize_row(i, &mut row);
            let mut want = vec![0f32; 32];
            QType::Q8_0.dequantize_block(&raw[i * rb..i * rb + 34], &mut want);
            assert_eq!(bits(&row[..32]), bits(&want), "row {i}");
        }
        let data = Arc::new(vec![0u8; 100]);
        assert!(QWeight::new("w", QType::Q8_0, 2, 64, data.clone(), 0..10).is_err());
        assert!(QWeight::new("w", QType::Q8_0, 1, 64, data.clone(), 60..128).is_err());
        assert!(QWeight::new("w", QType::Q8_0, 1, 64, data, 0..68).is_ok());
    }
}
