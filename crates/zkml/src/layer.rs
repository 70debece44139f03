//! Layer geometry — dense, 2-D convolution and average pooling — as one
//! description shared by the float trainer, the int8 evaluator and the
//! circuit, so that all three wire every output to the same inputs.
//!
//! Every layer is a linear map followed by a requantization: output `j` is
//! `bias[b(j)] + Σ w[t.weight]·x[t.input]` over its [`Tap`]s. Tensors are
//! flattened channel-major (`CHW`): element `(c, y, x)` of a `C×H×W` tensor
//! sits at `c·H·W + y·W + x`. A dense layer after a convolution therefore
//! reads the feature map in `CHW` order (PyTorch's `flatten`).
//!
//! - **Dense** `in → out`: output `j` taps every input `i` with weight
//!   `j·in + i` and bias `j`.
//! - **Conv2d** `C_in×H×W → C_out×H'×W'` with a square `k×k` kernel, stride
//!   `s` and zero padding `p`: `H' = (H + 2p - k)/s + 1` (likewise `W'`).
//!   Output `(o, y, x)` taps input `(c, y·s + i - p, x·s + j - p)` with weight
//!   `((o·C_in + c)·k + i)·k + j` (the `[out, in, k, k]` layout) for each
//!   position inside the input; padding contributes nothing. Bias `o`.
//! - **AvgPool2d** `C×H×W → C×H'×W'` with window `k`, stride `s`, no
//!   padding: output `(c, y, x)` taps the `k×k` window at `(y·s, x·s)` with
//!   the constant weight 1 and no bias. The division by `k²` is the layer's
//!   requantization (`m / 2^s ≈ s_in / (k²·s_out)`, exact when `k²` is a power
//!   of two and the scales agree), so the circuit proves it with the same
//!   rounding gadget as every other layer.

/// Largest accepted spatial size, channel count or kernel side.
pub const MAX_SIDE: usize = 256;
/// Largest accepted kernel side.
pub const MAX_KERNEL: usize = 16;

/// The shape of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Fully connected.
    Dense {
        /// Input width.
        in_dim: usize,
        /// Output width.
        out_dim: usize,
    },
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// 2-D average pooling.
    AvgPool2d(Pool2d),
}

/// A square-kernel 2-D convolution over a `CHW` tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel side `k`.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

/// A square-window average pooling over a `CHW` tensor (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// Channels.
    pub channels: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Window side `k`.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

/// One input of one output: the input index and the weight index (`None`
/// for pooling's constant weight 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tap {
    /// Index into the layer input.
    pub input: usize,
    /// Index into the layer's weights, or `None` for a constant 1.
    pub weight: Option<usize>,
}

/// Output side of a sliding window, if the window fits.
fn out_side(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n + 2 * pad;
    (stride > 0 && k > 0 && padded >= k).then(|| (padded - k) / stride + 1)
}

impl Conv2d {
    /// `(H', W')`.
    pub fn out_hw(&self) -> (usize, usize) {
        let side = |n| out_side(n, self.kernel, self.stride, self.padding).unwrap_or(0);
        (side(self.in_h), side(self.in_w))
    }
}

impl Pool2d {
    /// `(H', W')`.
    pub fn out_hw(&self) -> (usize, usize) {
        let side = |n| out_side(n, self.kernel, self.stride, 0).unwrap_or(0);
        (side(self.in_h), side(self.in_w))
    }
}

impl Op {
    /// A short name: `dense`, `conv2d` or `avgpool2d`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Dense { .. } => "dense",
            Op::Conv2d(_) => "conv2d",
            Op::AvgPool2d(_) => "avgpool2d",
        }
    }

    /// Length of the flattened input.
    pub fn in_len(&self) -> usize {
        match *self {
            Op::Dense { in_dim, .. } => in_dim,
            Op::Conv2d(c) => c.in_c * c.in_h * c.in_w,
            Op::AvgPool2d(p) => p.channels * p.in_h * p.in_w,
        }
    }

    /// Length of the flattened output.
    pub fn out_len(&self) -> usize {
        match *self {
            Op::Dense { out_dim, .. } => out_dim,
            Op::Conv2d(c) => {
                let (h, w) = c.out_hw();
                c.out_c * h * w
            }
            Op::AvgPool2d(p) => {
                let (h, w) = p.out_hw();
                p.channels * h * w
            }
        }
    }

    /// Number of weights.
    pub fn weight_len(&self) -> usize {
        match *self {
            Op::Dense { in_dim, out_dim } => in_dim * out_dim,
            Op::Conv2d(c) => c.out_c * c.in_c * c.kernel * c.kernel,
            Op::AvgPool2d(_) => 0,
        }
    }

    /// Number of biases.
    pub fn bias_len(&self) -> usize {
        match *self {
            Op::Dense { out_dim, .. } => out_dim,
            Op::Conv2d(c) => c.out_c,
            Op::AvgPool2d(_) => 0,
        }
    }

    /// The bias of output `j`, if the layer has biases.
    pub fn bias_index(&self, j: usize) -> Option<usize> {
        match *self {
            Op::Dense { .. } => Some(j),
            Op::Conv2d(c) => {
                let (h, w) = c.out_hw();
                Some(j / (h * w).max(1))
            }
            Op::AvgPool2d(_) => None,
        }
    }

    /// The float value of a constant tap (pooling's `1/k²`); 1 otherwise.
    pub fn constant_tap_value(&self) -> f32 {
        match *self {
            Op::AvgPool2d(p) => 1.0 / (p.kernel * p.kernel) as f32,
            _ => 1.0,
        }
    }

    /// Calls `f` with every tap of output `j`, in a fixed order (ascending
    /// weight index for dense and convolution, row-major for pooling).
    pub fn for_each_tap(&self, j: usize, mut f: impl FnMut(Tap)) {
        match *self {
            Op::Dense { in_dim, .. } => {
                for i in 0..in_dim {
                    f(Tap {
                        input: i,
                        weight: Some(j * in_dim + i),
                    });
                }
            }
            Op::Conv2d(c) => {
                let (oh, ow) = c.out_hw();
                let (o, y, x) = (j / (oh * ow), (j / ow) % oh, j % ow);
                for ch in 0..c.in_c {
                    for ki in 0..c.kernel {
                        for kj in 0..c.kernel {
                            let iy = (y * c.stride + ki).checked_sub(c.padding);
                            let ix = (x * c.stride + kj).checked_sub(c.padding);
                            if let (Some(iy), Some(ix)) = (iy, ix) {
                                if iy < c.in_h && ix < c.in_w {
                                    f(Tap {
                                        input: (ch * c.in_h + iy) * c.in_w + ix,
                                        weight: Some(
                                            ((o * c.in_c + ch) * c.kernel + ki) * c.kernel + kj,
                                        ),
                                    });
                                }
                            }
                        }
                    }
                }
            }
            Op::AvgPool2d(p) => {
                let (oh, ow) = p.out_hw();
                let (ch, y, x) = (j / (oh * ow), (j / ow) % oh, j % ow);
                for ki in 0..p.kernel {
                    for kj in 0..p.kernel {
                        let (iy, ix) = (y * p.stride + ki, x * p.stride + kj);
                        f(Tap {
                            input: (ch * p.in_h + iy) * p.in_w + ix,
                            weight: None,
                        });
                    }
                }
            }
        }
    }

    /// The taps of output `j`.
    pub fn taps(&self, j: usize) -> Vec<Tap> {
        let mut v = Vec::new();
        self.for_each_tap(j, |t| v.push(t));
        v
    }

    /// Checks the geometry: every side, channel count and kernel in range, a
    /// window that fits, and non-empty input and output of at most `max_len`.
    pub fn validate(&self, max_len: usize) -> Result<(), String> {
        let side_ok = |v: usize| (1..=MAX_SIDE).contains(&v);
        let kernel_ok =
            |k: usize, s: usize| (1..=MAX_KERNEL).contains(&k) && (1..=k.max(1)).contains(&s);
        match *self {
            Op::Dense { in_dim, out_dim } => {
                if in_dim == 0 || out_dim == 0 || in_dim > max_len || out_dim > max_len {
                    return Err(format!("dims {out_dim}x{in_dim} out of range"));
                }
            }
            Op::Conv2d(c) => {
                if ![c.in_c, c.in_h, c.in_w, c.out_c].into_iter().all(side_ok)
                    || !kernel_ok(c.kernel, c.stride)
                    || c.padding >= c.kernel
                {
                    return Err(format!("conv2d geometry {c:?} out of range"));
                }
                if out_side(c.in_h, c.kernel, c.stride, c.padding).is_none()
                    || out_side(c.in_w, c.kernel, c.stride, c.padding).is_none()
                {
                    return Err("conv2d kernel larger than its padded input".into());
                }
            }
            Op::AvgPool2d(p) => {
                if ![p.channels, p.in_h, p.in_w].into_iter().all(side_ok)
                    || !kernel_ok(p.kernel, p.stride)
                {
                    return Err(format!("avgpool2d geometry {p:?} out of range"));
                }
                if p.kernel > p.in_h || p.kernel > p.in_w {
                    return Err("avgpool2d window larger than its input".into());
                }
            }
        }
        let (i, o) = (self.in_len(), self.out_len());
        if i == 0 || o == 0 || i > max_len || o > max_len {
            return Err(format!(
                "flattened sizes {i} -> {o} out of range (max {max_len})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_taps_follow_the_oihw_layout_and_skip_padding() {
        let op = Op::Conv2d(Conv2d {
            in_c: 2,
            in_h: 3,
            in_w: 3,
            out_c: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
        });
        assert_eq!((op.in_len(), op.out_len(), op.weight_len()), (18, 18, 36));
        // Output (o=1, y=0, x=0): the top-left corner sees a 2x2 window per channel.
        let taps = op.taps(9);
        assert_eq!(taps.len(), 8);
        assert_eq!(
            taps[0],
            Tap {
                input: 0,
                weight: Some(18 + 4)
            }
        );
        assert_eq!(
            taps[4],
            Tap {
                input: 9,
                weight: Some(27 + 4)
            }
        );
        assert_eq!(op.bias_index(9), Some(1));
        // The centre output sees every input once per channel.
        assert_eq!(op.taps(4).len(), 18);
        op.validate(4096).unwrap();
    }

    #[test]
    fn pool_taps_cover_disjoint_windows() {
        let op = Op::AvgPool2d(Pool2d {
            channels: 2,
            in_h: 4,
            in_w: 4,
            kernel: 2,
            stride: 2,
        });
        assert_eq!(op.out_len(), 8);
        let mut seen = vec![0; op.in_len()];
        for j in 0..op.out_len() {
            for t in op.taps(j) {
                assert_eq!(t.weight, None);
                seen[t.input] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(op.constant_tap_value(), 0.25);
        assert_eq!(op.bias_index(0), None);
    }

    #[test]
    fn bad_geometry_is_rejected() {
        let conv = Conv2d {
            in_c: 1,
            in_h: 2,
            in_w: 2,
            out_c: 1,
            kernel: 3,
            stride: 1,
            padding: 0,
        };
        assert!(Op::Conv2d(conv).validate(4096).is_err());
        assert!(Op::Conv2d(Conv2d { padding: 3, ..conv })
            .validate(4096)
            .is_err());
        assert!(Op::Conv2d(Conv2d { stride: 0, ..conv })
            .validate(4096)
            .is_err());
        assert!(Op::Conv2d(Conv2d {
            in_c: 1 << 40,
            ..conv
        })
        .validate(4096)
        .is_err());
        let pool = Pool2d {
            channels: 1,
            in_h: 2,
            in_w: 2,
            kernel: 3,
            stride: 1,
        };
        assert!(Op::AvgPool2d(pool).validate(4096).is_err());
        assert!(Op::Dense {
            in_dim: 0,
            out_dim: 1
        }
        .validate(4096)
        .is_err());
        // Too large once flattened.
        let big = Conv2d {
            in_c: 64,
            in_h: 64,
            in_w: 64,
            out_c: 1,
            kernel: 1,
            stride: 1,
            padding: 0,
        };
        assert!(Op::Conv2d(big).validate(4096).is_err());
    }
}
