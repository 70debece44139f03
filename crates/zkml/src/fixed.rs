//! The fixed-point arithmetic rules shared by the plain evaluator and the
//! circuit, kept in one place so that both sides cannot drift apart.
//!
//! A dense layer accumulates `acc = bias + Σ w·x` exactly in integers (int8
//! weights and activations, int32 bias). Requantization maps the accumulator
//! back to int8 with a multiplier `m` and a right shift `s`:
//!
//! ```text
//! t = acc·m + 2^(s-1)          (0 when s = 0)
//! q = floor(t / 2^s)           (= round half up of acc·m / 2^s)
//! y = clamp(q, lo, 127)        lo = 0 with a fused ReLU, -128 without
//! ```
//!
//! So the real-valued multiplier `M = scale_in·scale_w / scale_out` is
//! approximated by `m / 2^s`, and ties round towards +∞. `floor` is the
//! arithmetic shift on a two's-complement integer.

/// Largest accepted multiplier (exclusive): 16 bits.
pub const MAX_MULTIPLIER: u32 = 1 << 16;
/// Largest accepted shift.
pub const MAX_SHIFT: u32 = 40;

/// Requantization parameters of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Requant {
    /// Integer multiplier, `1 ≤ m < 2^16`.
    pub multiplier: u32,
    /// Right shift, `0 ≤ s ≤ 40`.
    pub shift: u32,
    /// Whether a ReLU is fused (clamp to `[0, 127]` instead of `[-128, 127]`).
    pub relu: bool,
}

impl Requant {
    /// The rounding constant `2^(s-1)`, or 0 for `s = 0`.
    pub fn rounding(&self) -> i128 {
        if self.shift == 0 {
            0
        } else {
            1i128 << (self.shift - 1)
        }
    }

    /// `t = acc·m + 2^(s-1)`, the value whose floor-shift is the result.
    pub fn pre_shift(&self, acc: i64) -> i128 {
        i128::from(acc) * i128::from(self.multiplier) + self.rounding()
    }

    /// The unclamped rounded quotient `q = floor(t / 2^s)`.
    pub fn quotient(&self, acc: i64) -> i128 {
        self.pre_shift(acc) >> self.shift
    }

    /// Lower clamp bound: 0 with a fused ReLU, else -128.
    pub fn lower(&self) -> i128 {
        if self.relu {
            0
        } else {
            -128
        }
    }

    /// The requantized int8 output.
    pub fn apply(&self, acc: i64) -> i8 {
        let q = self.quotient(acc).clamp(self.lower(), 127);
        // In range by the clamp.
        q as i8
    }
}

/// Round half away from zero and clamp to int8 (used by quantization).
pub fn quantize_i8(x: f64) -> i8 {
    x.round().clamp(-127.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_up_and_clamps() {
        let r = Requant {
            multiplier: 1,
            shift: 1,
            relu: false,
        };
        // 3/2 = 1.5 -> 2; -3/2 = -1.5 -> -1 (half up); 5/2 -> 3
        assert_eq!(r.apply(3), 2);
        assert_eq!(r.apply(-3), -1);
        assert_eq!(r.apply(-4), -2);
        assert_eq!(r.apply(1000), 127);
        assert_eq!(r.apply(-1000), -128);
        let relu = Requant { relu: true, ..r };
        assert_eq!(relu.apply(-3), 0);
        assert_eq!(relu.apply(7), 4);
        let m = Requant {
            multiplier: 3,
            shift: 2,
            relu: false,
        };
        // 5*3 = 15, (15 + 2) >> 2 = 4 (15/4 = 3.75 -> 4)
        assert_eq!(m.apply(5), 4);
        let s0 = Requant {
            multiplier: 2,
            shift: 0,
            relu: false,
        };
        assert_eq!(s0.apply(-7), -14);
    }
}
