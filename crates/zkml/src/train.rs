//! A deterministic float trainer (Adam on softmax cross-entropy, fixed seed,
//! single-threaded, no dependencies) for any stack of [`Op`]s with a ReLU
//! after every layer but the last. Backpropagation walks the same taps as
//! the forward pass, so dense, conv2d and avgpool2d layers share one code
//! path; bit-for-bit reproducible runs let the setup step retrain the
//! committed models and check their digests.
//!
//! Written by hand because the models are tiny and reproducibility matters
//! more than speed: a framework's kernels would make the committed digests
//! depend on its version and the CPU it ran on.

use crate::digits::{Sample, SplitMix};
use crate::layer::{Conv2d, Op, Pool2d};
use crate::quantize::{FloatLayer, FloatModel};

/// Training hyper-parameters and the architecture.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The layers, input first (ReLU after every one but the last).
    pub layers: Vec<Op>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// PRNG seed.
    pub seed: u64,
}

impl TrainConfig {
    /// The 64-32-10 MLP of the committed `digits-mlp`.
    pub fn mlp() -> Self {
        TrainConfig {
            layers: vec![
                Op::Dense {
                    in_dim: 64,
                    out_dim: 32,
                },
                Op::Dense {
                    in_dim: 32,
                    out_dim: 10,
                },
            ],
            epochs: 60,
            batch: 32,
            lr: 0.005,
            seed: 20_261_125,
        }
    }

    /// The CNN of the committed `digits-cnn`: conv 3×3, 1→8 channels, no
    /// padding (8×6×6), average pool 2×2 (8×3×3), dense 72→10.
    pub fn cnn() -> Self {
        TrainConfig {
            layers: vec![
                Op::Conv2d(Conv2d {
                    in_c: 1,
                    in_h: 8,
                    in_w: 8,
                    out_c: 8,
                    kernel: 3,
                    stride: 1,
                    padding: 0,
                }),
                Op::AvgPool2d(Pool2d {
                    channels: 8,
                    in_h: 6,
                    in_w: 6,
                    kernel: 2,
                    stride: 2,
                }),
                Op::Dense {
                    in_dim: 72,
                    out_dim: 10,
                },
            ],
            epochs: 60,
            batch: 32,
            lr: 0.005,
            seed: 20_261_202,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::mlp()
    }
}

/// Adam state for one parameter tensor.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32, t: i32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

/// Accumulates softmax cross-entropy gradients of one sample into `gw`, `gb`.
fn backprop(fm: &FloatModel, x: &[f32], label: usize, gw: &mut [Vec<f32>], gb: &mut [Vec<f32>]) {
    let acts = fm.activations(x);
    let logits = &acts[acts.len() - 1];
    let mx = logits.iter().fold(f32::MIN, |a, &b| a.max(b));
    let exps: Vec<f32> = logits.iter().map(|&z| (z - mx).exp()).collect();
    let total: f32 = exps.iter().sum();
    let mut delta: Vec<f32> = exps.iter().map(|e| e / total).collect();
    delta[label] -= 1.0;
    for li in (0..fm.layers.len()).rev() {
        let l = &fm.layers[li];
        let input = if li == 0 { x } else { &acts[li - 1] };
        let mut prev = vec![0f32; l.op.in_len()];
        let (gw, gb) = (&mut gw[li], &mut gb[li]);
        for (j, &d) in delta.iter().enumerate() {
            if let Some(b) = l.op.bias_index(j) {
                gb[b] += d;
            }
            l.op.for_each_tap(j, |t| {
                if let Some(w) = t.weight {
                    gw[w] += d * input[t.input];
                }
                prev[t.input] += d * l.tap_weight(t);
            });
        }
        if li > 0 && fm.layers[li - 1].relu {
            // ReLU derivative of the previous layer's output.
            for (p, a) in prev.iter_mut().zip(&acts[li - 1]) {
                if *a <= 0.0 {
                    *p = 0.0;
                }
            }
        }
        delta = prev;
    }
}

/// Inputs per output of a layer (He-uniform fan-in).
fn fan_in(op: &Op) -> usize {
    match *op {
        Op::Dense { in_dim, .. } => in_dim,
        Op::Conv2d(c) => c.in_c * c.kernel * c.kernel,
        Op::AvgPool2d(p) => p.kernel * p.kernel,
    }
}

/// He-uniform weights in weight-index order, zero biases.
fn init(cfg: &TrainConfig, rng: &mut SplitMix) -> FloatModel {
    let n = cfg.layers.len();
    let layers = cfg
        .layers
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let a = (6.0 / fan_in(op) as f32).sqrt();
            FloatLayer {
                op: *op,
                weight: (0..op.weight_len()).map(|_| rng.uniform(a)).collect(),
                bias: vec![0.0; op.bias_len()],
                relu: i + 1 < n,
            }
        })
        .collect();
    FloatModel { layers }
}

/// Trains the architecture of `cfg` with Adam on `train`.
pub fn train(train: &[Sample], cfg: &TrainConfig) -> FloatModel {
    let mut rng = SplitMix(cfg.seed);
    let mut fm = init(cfg, &mut rng);
    let mut opt: Vec<(Adam, Adam)> = fm
        .layers
        .iter()
        .map(|l| (Adam::new(l.weight.len()), Adam::new(l.bias.len())))
        .collect();
    let inputs: Vec<Vec<f32>> = train.iter().map(Sample::float).collect();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut t = 0;
    for _ in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        for chunk in order.chunks(cfg.batch.max(1)) {
            let mut gw: Vec<Vec<f32>> = fm
                .layers
                .iter()
                .map(|l| vec![0.0; l.weight.len()])
                .collect();
            let mut gb: Vec<Vec<f32>> = fm.layers.iter().map(|l| vec![0.0; l.bias.len()]).collect();
            for &k in chunk {
                backprop(
                    &fm,
                    &inputs[k],
                    usize::from(train[k].label),
                    &mut gw,
                    &mut gb,
                );
            }
            let scale = 1.0 / chunk.len() as f32;
            t += 1;
            for (li, l) in fm.layers.iter_mut().enumerate() {
                gw[li]
                    .iter_mut()
                    .chain(gb[li].iter_mut())
                    .for_each(|g| *g *= scale);
                opt[li].0.step(&mut l.weight, &gw[li], cfg.lr, t);
                opt[li].1.step(&mut l.bias, &gb[li], cfg.lr, t);
            }
        }
    }
    fm
}
