//! The llama forward pass run by a thread team (`team.rs`): every member
//! runs the layer loop; the quantized matmuls are split by column groups and
//! attention by (row, head), each as one team stage, and the cheap row-wise
//! steps (norms, RoPE, activation quantization) are repeated by every member
//! so that only stage outputs cross threads. Each output element is computed
//! by one kernel call whose result does not depend on the split, so logits
//! are bit-identical at any team size and batch size.

use std::ops::Range;
use std::sync::{Mutex, RwLock};

use crate::attention::{attend_one, to_f16, Heads, KvCache, KvView, Scratch};
use crate::kernels::QActs;
use crate::linear::Linear;
use crate::model::{Layer, Model};
use crate::ops::{add_in_place, rms_norm, silu_mul};
use crate::qweight::group_cols;
use crate::sampling::TopKLogits;
use crate::team::{self, Team, MAX_TASKS};
use crate::topk::Running;
use crate::EngineError;

/// Tasks per member in a split stage (slack for a busy machine).
const TASKS_PER_MEMBER: usize = 4;
/// Most positions one team pass runs: a longer prompt is run as several
/// passes (bit-identical), so its activations stay a few megabytes.
pub const PREFILL_CHUNK: usize = 128;
/// Rows of logits computed per stage for [`Want::TopK`] with a non-native
/// output weight (bounds memory).
const TOPK_ROWS_PER_STAGE: usize = 16;
/// Columns of logits a top-k task computes at once (a multiple of GROUP).
const TOPK_COLS: usize = 256;

/// What a pass returns besides filling the cache.
#[derive(Clone, Copy)]
pub(crate) enum Want {
    /// Full logits of the last position.
    LastLogits,
    /// Full logits of positions `from..` of the pass (`(m - from) * vocab`).
    AllLogits { from: usize },
    /// Top-k logits of positions `from..` of the pass.
    TopK { k: usize, from: usize },
}

/// A pass's result.
pub(crate) enum Output {
    Logits(Vec<f32>),
    TopK(Vec<TopKLogits>),
}

/// Shared state of one pass.
struct Pass<'a> {
    tokens: &'a [u32],
    pos0: usize,
    cache: RwLock<&'a mut KvCache>,
    error: Mutex<Option<EngineError>>,
}

impl Model {
    /// Run `tokens` (positions `cache.len()..`) through every layer on
    /// `threads` threads, appending to the cache. Token ids must already be
    /// validated against the vocabulary.
    pub(crate) fn run(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        threads: usize,
        want: Want,
    ) -> Result<Output, EngineError> {
        let m = tokens.len();
        let pos0 = cache.len();
        if m == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if let Want::AllLogits { from } | Want::TopK { from, .. } = want {
            if from >= m {
                return Err(EngineError::LogitsFrom { from, tokens: m });
            }
        }
        if pos0 + m > self.max_positions() {
            return Err(EngineError::ContextOverflow {
                tokens: pos0 + m,
                context_length: self.max_positions(),
            });
        }
        // Passes of at most PREFILL_CHUNK rows, each returning its share of
        // `want`. Rows are independent and every pass reads earlier
        // positions from the cache, so the chunking never changes a bit; it
        // bounds the activation memory of a long prompt.
        let result = (|| {
            let mut out = match want {
                Want::TopK { .. } => Output::TopK(Vec::new()),
                _ => Output::Logits(Vec::new()),
            };
            for (i, chunk) in tokens.chunks(PREFILL_CHUNK).enumerate() {
                let (start, end) = (i * PREFILL_CHUNK, i * PREFILL_CHUNK + chunk.len());
                let part = match want {
                    Want::LastLogits => (end == m).then_some(Want::LastLogits),
                    Want::AllLogits { from } => (end > from).then(|| Want::AllLogits {
                        from: from.saturating_sub(start),
                    }),
                    Want::TopK { k, from } => (end > from).then(|| Want::TopK {
                        k,
                        from: from.saturating_sub(start),
                    }),
                };
                match (self.pass(chunk, cache, threads, part)?, &mut out) {
                    (Some(Output::Logits(l)), Output::Logits(all)) => all.extend(l),
                    (Some(Output::TopK(t)), Output::TopK(all)) => all.extend(t),
                    _ => {}
                }
            }
            Ok(out)
        })();
        if result.is_err() {
            // Nothing of a failed call stays: earlier chunks were committed,
            // and the failing one may have appended rows to some layers.
            cache.truncate(pos0);
        }
        result
    }

    /// One team pass over `tokens`, committed to the cache on success.
    fn pass(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        threads: usize,
        want: Option<Want>,
    ) -> Result<Option<Output>, EngineError> {
        let m = tokens.len();
        let pass = Pass {
            tokens,
            pos0: cache.len(),
            cache: RwLock::new(cache),
            error: Mutex::new(None),
        };
        let out = team::run(threads, |t| self.member(t, &pass, want));
        if let Some(e) = pass.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        let out = out?;
        pass.cache
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .commit(m);
        Ok(out)
    }

    fn member(
        &self,
        team: &Team<'_>,
        pass: &Pass<'_>,
        want: Option<Want>,
    ) -> Result<Option<Output>, EngineError> {
        let m = pass.tokens.len();
        let mut x = self.embed(pass.tokens)?;
        for (li, layer) in self.layers.iter().enumerate() {
            self.attention_block(team, pass, layer, li, &mut x)?;
            let h = rms_norm(&x, &layer.ffn_norm, self.hp.rms_eps);
            let g = gate_up(team, pass, layer, &h, m);
            let d = linears(team, pass, &[&layer.down], &g, m, true).remove(0);
            add_in_place(&mut x, &d);
        }
        let Some(want) = want else {
            return Ok(None);
        };
        let h = rms_norm(&x, &self.output_norm, self.hp.rms_eps);
        let d = self.hp.n_embd;
        Ok(Some(match want {
            Want::LastLogits => {
                let last = &h[(m - 1) * d..];
                Output::Logits(linears(team, pass, &[&self.output], last, 1, false).remove(0))
            }
            // Positions before `from` need no logits: skip their output
            // projection (rows are independent, so the rest keep their bits).
            Want::AllLogits { from } => {
                let rows = &h[from * d..];
                Output::Logits(
                    linears(team, pass, &[&self.output], rows, rows.len() / d, false).remove(0),
                )
            }
            Want::TopK { k, from } => Output::TopK(self.top_k(team, pass, &h[from * d..], k)),
        }))
    }

    fn attention_block(
        &self,
        team: &Team<'_>,
        pass: &Pass<'_>,
        layer: &Layer,
        li: usize,
        x: &mut [f32],
    ) -> Result<(), EngineError> {
        let hp = &self.hp;
        let m = pass.tokens.len();
        let h = rms_norm(x, &layer.attn_norm, hp.rms_eps);
        let [q, k, v] = &layer.qkv;
        let mut qkv = linears(team, pass, &[q, k, v], &h, m, true).into_iter();
        let (Some(mut q), Some(mut k), Some(v)) = (qkv.next(), qkv.next(), qkv.next()) else {
            unreachable!("qkv has three parts");
        };
        let rope = self.rope.rows(pass.pos0, m);
        let (qd, kvd) = (hp.n_head * hp.head_dim, hp.kv_dim());
        for r in 0..m {
            rope.apply(&mut q[r * qd..(r + 1) * qd], pass.pos0 + r);
            rope.apply(&mut k[r * kvd..(r + 1) * kvd], pass.pos0 + r);
        }
        // Rounded to the cache's f16 once; this pass reads the same halves.
        let (k, v) = (to_f16(&k), to_f16(&v));
        let heads = Heads {
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            head_dim: hp.head_dim,
        };
        let attn = {
            let cache = pass.cache.read().unwrap_or_else(|e| e.into_inner());
            let kv = KvView::new(&cache, li, &k, &v);
            let items = m * hp.n_head;
            let ranges = split(items, task_count(team, items));
            let st = team.tasks(ranges.len(), |t, out| {
                let mut scratch = Scratch::default();
                for item in ranges[t].clone() {
                    let (row, head) = (item / hp.n_head, item % hp.n_head);
                    attend_one(&q, row, head, &kv, heads, &mut scratch, out);
                }
            });
            let mut attn = Vec::with_capacity(m * qd);
            for t in 0..ranges.len() {
                attn.extend_from_slice(&team.result(st, t));
            }
            attn
        };
        if team.id == 0 {
            // Every member has finished reading this layer's cache.
            let mut cache = pass.cache.write().unwrap_or_else(|e| e.into_inner());
            cache.append(li, &k, &v);
        }
        let o = linears(team, pass, &[&layer.wo], &attn, m, true).remove(0);
        add_in_place(x, &o);
        Ok(())
    }

    /// Top-k logits of every row of `h`. With a native output weight, one
    /// stage: each task streams its columns' logits into per-row running
    /// top-k lists (a few columns at a time, all rows together, so the
    /// weights are read once), and the leader merges the lists.
    fn top_k(&self, team: &Team<'_>, pass: &Pass<'_>, h: &[f32], k: usize) -> Vec<TopKLogits> {
        let Some(w) = self.output.native() else {
            return self.top_k_generic(team, pass, h, k);
        };
        let m = h.len() / w.k;
        let a = QActs::quantize(h, m, w.k);
        let ranges: Vec<Range<usize>> = split(w.groups(), task_count(team, w.groups()))
            .into_iter()
            .map(|g| group_cols(g, w.n))
            .collect();
        let st = team.tasks(ranges.len(), |t, out| {
            let mut tops: Vec<Running> = (0..m).map(|_| Running::new(k)).collect();
            let mut logits = Vec::new();
            let cols = ranges[t].clone();
            for c0 in cols.clone().step_by(TOPK_COLS) {
                let width = TOPK_COLS.min(cols.end - c0);
                logits.resize(m * width, 0.0);
                w.matmul_cols(&a, c0..c0 + width, &mut logits, width);
                for (top, row) in tops.iter_mut().zip(logits.chunks_exact(width)) {
                    top.offer_all(c0 as u32, row);
                }
            }
            for top in &tops {
                let (ids, values) = top.parts();
                out.push(f32::from_bits(ids.len() as u32));
                out.extend(ids.iter().map(|&i| f32::from_bits(i)));
                out.extend_from_slice(values);
            }
        });
        if team.id != 0 {
            return Vec::new();
        }
        let mut merged: Vec<Running> = (0..m).map(|_| Running::new(k)).collect();
        for t in 0..ranges.len() {
            let v = team.result(st, t);
            let mut at = 0;
            for top in merged.iter_mut() {
                let n = v[at].to_bits() as usize;
                for i in 0..n {
                    top.offer(v[at + 1 + i].to_bits(), v[at + 1 + n + i]);
                }
                at += 1 + 2 * n;
            }
        }
        merged
            .into_iter()
            .map(|top| {
                let (ids, values) = top.into_parts();
                TopKLogits { ids, values }
            })
            .collect()
    }

    /// [`Model::top_k`] for other output weights: full logits a few rows at
    /// a time, then top-k split by rows.
    fn top_k_generic(
        &self,
        team: &Team<'_>,
        pass: &Pass<'_>,
        h: &[f32],
        k: usize,
    ) -> Vec<TopKLogits> {
        let d = self.hp.n_embd;
        let vocab = self.vocab_size;
        let mut tops = Vec::new();
        for rows in h.chunks(TOPK_ROWS_PER_STAGE * d) {
            let m = rows.len() / d;
            let (st, plan) = linear_stage(team, pass, &[&self.output], rows, m);
            let picks = team.tasks(m, |r, out| {
                let mut row = Vec::with_capacity(vocab);
                for (t, task) in plan.iter().enumerate() {
                    let width = task.cols.len();
                    row.extend_from_slice(&team.result(st, t)[r * width..][..width]);
                }
                let top = TopKLogits::from_logits(&row, k);
                out.extend(top.ids.iter().map(|&i| f32::from_bits(i)));
                out.extend_from_slice(&top.values);
            });
            if team.id == 0 {
                for r in 0..m {
                    let v = team.result(picks, r);
                    let n = v.len() / 2;
                    tops.push(TopKLogits {
                        ids: v[..n].iter().map(|f| f.to_bits()).collect(),
                        values: v[n..].to_vec(),
                    });
                }
            }
        }
        tops
    }
}

/// One task of a linear stage: columns `cols` of part `part`.
struct LinTask {
    part: usize,
    cols: Range<usize>,
}

/// Number of tasks for `items` units of work.
fn task_count(team: &Team<'_>, items: usize) -> usize {
    if team.size == 1 {
        1
    } else {
        items.clamp(1, (TASKS_PER_MEMBER * team.size).min(MAX_TASKS))
    }
}

/// `0..items` cut into `tasks` contiguous ranges (the last may be shorter).
fn split(items: usize, tasks: usize) -> Vec<Range<usize>> {
    let chunk = items.div_ceil(tasks.max(1)).max(1);
    (0..items)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(items))
        .collect()
}

/// Plan the tasks for `parts`: native parts split by column groups, others
/// as one task each.
fn plan(team: &Team<'_>, parts: &[&Linear]) -> Vec<LinTask> {
    let groups: usize = parts
        .iter()
        .map(|l| l.native().map_or(0, |w| w.groups()))
        .sum();
    let chunk = groups.div_ceil(task_count(team, groups)).max(1);
    let mut tasks = Vec::new();
    for (part, l) in parts.iter().enumerate() {
        match l.native() {
            Some(w) => tasks.extend(
                split(w.groups(), w.groups().div_ceil(chunk))
                    .into_iter()
                    .map(|g| LinTask {
                        part,
                        cols: group_cols(g, w.n),
                    }),
            ),
            None => tasks.push(LinTask {
                part,
                cols: 0..l.n(),
            }),
        }
    }
    tasks
}

/// Run `parts` on the `m` rows of `x` as one stage; each task's slot holds
/// its `m × cols` outputs.
fn linear_stage(
    team: &Team<'_>,
    pass: &Pass<'_>,
    parts: &[&Linear],
    x: &[f32],
    m: usize,
) -> (team::Stage, Vec<LinTask>) {
    let k = x.len() / m;
    let acts = parts
        .iter()
        .any(|l| l.native().is_some())
        .then(|| QActs::quantize(x, m, k));
    let tasks = plan(team, parts);
    let st = team.tasks(tasks.len(), |t, out| {
        let task = &tasks[t];
        match (parts[task.part].native(), &acts) {
            (Some(w), Some(a)) => {
                out.resize(m * task.cols.len(), 0.0);
                w.matmul_cols(a, task.cols.clone(), out, task.cols.len());
            }
            _ => match parts[task.part].forward(x, m) {
                Ok(y) => *out = y,
                Err(e) => {
                    out.resize(m * task.cols.len(), 0.0);
                    record(pass, e);
                }
            },
        }
    });
    (st, tasks)
}

/// Each part's `m × n` outputs, on every member (`everyone`) or on the
/// leader only (others get empty vectors).
fn linears(
    team: &Team<'_>,
    pass: &Pass<'_>,
    parts: &[&Linear],
    x: &[f32],
    m: usize,
    everyone: bool,
) -> Vec<Vec<f32>> {
    let (st, tasks) = linear_stage(team, pass, parts, x, m);
    let mut outs: Vec<Vec<f32>> = parts.iter().map(|_| Vec::new()).collect();
    if !everyone && team.id != 0 {
        return outs;
    }
    for (p, o) in outs.iter_mut().enumerate() {
        *o = vec![0f32; m * parts[p].n()];
    }
    for (t, task) in tasks.iter().enumerate() {
        let n = parts[task.part].n();
        let width = task.cols.len();
        let src = team.result(st, t);
        for (r, row) in src.chunks_exact(width).enumerate() {
            outs[task.part][r * n + task.cols.start..][..width].copy_from_slice(row);
        }
    }
    outs
}

/// `silu(x · gateᵀ) * (x · upᵀ)`: one stage when both are native (each task
/// computes the same columns of both), else two matmuls.
fn gate_up(team: &Team<'_>, pass: &Pass<'_>, layer: &Layer, x: &[f32], m: usize) -> Vec<f32> {
    let (Some(g), Some(u)) = (layer.gate.native(), layer.up.native()) else {
        let mut gu = linears(team, pass, &[&layer.gate, &layer.up], x, m, true).into_iter();
        let (Some(mut g), Some(u)) = (gu.next(), gu.next()) else {
            unreachable!("two parts");
        };
        silu_mul(&mut g, &u);
        return g;
    };
    let a = QActs::quantize(x, m, g.k);
    let n = g.n;
    let ranges: Vec<Range<usize>> = split(g.groups(), task_count(team, g.groups()))
        .into_iter()
        .map(|r| group_cols(r, n))
        .collect();
    let st = team.tasks(ranges.len(), |t, out| {
        let cols = ranges[t].clone();
        let w = cols.len();
        out.resize(m * w, 0.0);
        let mut up = vec![0f32; m * w];
        g.matmul_cols(&a, cols.clone(), out, w);
        u.matmul_cols(&a, cols, &mut up, w);
        silu_mul(out, &up);
    });
    let mut h = vec![0f32; m * n];
    for (t, cols) in ranges.iter().enumerate() {
        let src = team.result(st, t);
        for (r, row) in src.chunks_exact(cols.len()).enumerate() {
            h[r * n + cols.start..][..cols.len()].copy_from_slice(row);
        }
    }
    h
}

fn record(pass: &Pass<'_>, e: EngineError) {
    let mut slot = pass.error.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert(e);
}
