//! The CPU reference engine for architecture files: dense, convolution and
//! transposed-convolution layers, normalisations, residual and highway
//! blocks and the mean-preserving bias, forward, backward and with tangents, in f64, as
//! plainly as possible. The GPU block engine computes the same things on the
//! same random streams.
//!
//! Random streams: weight layers are numbered 1, 2, ... through the blocks
//! (a residual branch's layers in order, a highway block's transform then
//! gate); that number is the `layer` of their Philox counters. A weight
//! tensor is drawn row by row: dense W[i][j] (row i = output unit), conv
//! W[c_out][c_in k^2 + t], transposed conv W[c_in][c_out k^2 + t] (PyTorch's
//! layouts), t = ty k + tx; biases per output unit or channel. The backward
//! pass's delta and the tangent probes use the row index (block number) as
//! `layer`, as the dense engine does.
//!
//! Rows: row l is block l's output. For a plain layer its pre columns
//! measure h and its backward column the gradient with respect to h; for
//! residual and highway blocks pre = post = the block's output, and the
//! gradient is with respect to it.

use crate::model::arch::{Block, LayerKind, Shape};
use crate::model::rng::{self, Stream};
use crate::sim::plan::Program;
use crate::sim::stats::tokens::TokenSums;
use crate::sim::stats::{ChannelSums, LayerSums, NetworkSums, RowSums};
use crate::spec::RunSpec;

use super::block_steps::*;
use super::{norm_sums, renorm_of};

/// Pair sums of a row: pre rows and post rows, `zeros` units with phi' = 0.
fn row_sums(pre: &[Row], post: &[Row], zeros: f64, renorm: f64) -> LayerSums {
    let n = pre[0].len();
    let mut s = LayerSums {
        width: n,
        batch: pre.len(),
        renorm,
        zeros,
        ..Default::default()
    };
    for pair in 0..pre.len() / 2 {
        let (ha, hb, xa, xb) = (
            &pre[2 * pair],
            &pre[2 * pair + 1],
            &post[2 * pair],
            &post[2 * pair + 1],
        );
        let dot = |a: &Row, b: &Row| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        s.pairs.push([
            dot(ha, ha),
            dot(hb, hb),
            dot(ha, hb),
            dot(xa, xa),
            dot(xb, xb),
            ha.iter().zip(hb).map(|(u, v)| (u - v) * (u - v)).sum(),
        ]);
        for r in [ha, hb] {
            s.sum_h += r.iter().sum::<f64>();
            s.sum_h4 += r.iter().map(|v| v.powi(4)).sum::<f64>();
        }
        s.sum_x += xa.iter().chain(xb).sum::<f64>();
    }
    s
}

fn scale_rows(rows: &mut [Row], r: f64) {
    for row in rows {
        for v in row {
            *v *= r;
        }
    }
}

/// Per-position sums over channels and batch of pre^2 and post^2 of a row.
fn position_sums(
    row: usize,
    pre: &[Row],
    post: &[Row],
    shape: Shape,
) -> crate::sim::stats::PositionSums {
    let (c, h, w) = dims(shape);
    let mut p_pre = vec![0.0; h * w];
    let mut p_post = vec![0.0; h * w];
    for (a, b) in pre.iter().zip(post) {
        for ch in 0..c {
            for p in 0..h * w {
                p_pre[p] += a[ch * h * w + p].powi(2);
                p_post[p] += b[ch * h * w + p].powi(2);
            }
        }
    }
    crate::sim::stats::PositionSums {
        row,
        count: c * pre.len(),
        pre: p_pre,
        post: p_post,
    }
}

/// The per-channel sums of rows of `shape` (and of a branch's output).
fn channel_sums(rows: &[Row], branch: Option<&[Row]>, shape: Shape) -> ChannelSums {
    let (c, h, w) = dims(shape);
    let sums = |r: &[Row]| ChannelSums::of(r.len(), c, h * w, |b, ch, p| r[b][ch * h * w + p]);
    ChannelSums {
        count: rows.len() * h * w,
        output: sums(rows),
        branch: branch.map(sums),
    }
}

/// Everything one network measures through an architecture. `position_row`:
/// the row whose per-position sums to keep.
pub fn run_network(
    spec: &RunSpec,
    program: &Program,
    network: usize,
    position_row: Option<usize>,
) -> NetworkSums {
    let arch = program.arch;
    let depth = arch.depth();
    let batch = spec.batch;
    let n0 = arch.input.units();
    let flat = super::dense::inputs(spec, network);
    let mut x: Vec<Row> = flat.chunks(n0).map(|c| c.to_vec()).collect();
    let mut forward = Vec::with_capacity(depth + 1);
    let first = row_sums(
        &x,
        &x,
        0.0,
        if program.renormalise {
            renorm_of(&x)
        } else {
            1.0
        },
    );
    let mut positions = None;
    if position_row == Some(0) {
        positions = Some(position_sums(0, &x, &x, arch.input));
    }
    let spp = spec.arch.as_ref().is_some_and(|a| a.spp);
    let mut channels = spp.then(|| vec![channel_sums(&x, None, arch.input)]);
    let token_sums = |rows: &[Row], shape: Shape, entropy| {
        let (width, _, tokens) = shape.dims();
        TokenSums::of(rows, tokens, width, entropy)
    };
    let mut token_rows = arch
        .input
        .is_sequence()
        .then(|| vec![token_sums(&x, arch.input, None)]);
    scale_rows(&mut x, first.renorm);
    // --ntk: the rows entering each block and the top, and the log of
    // their stored over true scale
    let ntk = spec.probes.ntk;
    let mut inputs = Vec::new();
    let mut log_scale = vec![first.renorm.ln()];
    if ntk.is_some() {
        inputs.push(x.clone());
    }
    forward.push(first);
    let mut saved = Vec::with_capacity(depth);
    let mut weights: Vec<Weights> = Vec::new();
    let mut number = 0;
    for (l, block) in arch.blocks.iter().enumerate() {
        for layer in block.layers() {
            number += 1;
            let mut wt = draw_weights(spec, network, number, layer);
            if let LayerKind::Scale { .. } = layer.kind {
                wt.w[0] = program.factors[number - 1];
            }
            weights.push(wt);
        }
        let first_weight = weights.len() - block.layers().len();
        let (pre, post, zeros, keep) = forward_step(
            block,
            &weights[first_weight..],
            &program.shifts[first_weight..],
            &x,
        );
        if let Some(t) = token_rows.as_mut() {
            let entropy = attention_entropy(block, &weights[first_weight..], &keep);
            t.push(token_sums(&post, block.output(), entropy));
        }
        if let Some(c) = channels.as_mut() {
            let branch = match &keep {
                Saved::Residual { f, .. } => Some(f.as_slice()),
                _ => None,
            };
            c.push(channel_sums(&post, branch, block.output()));
        }
        let renorm = if program.renormalise {
            renorm_of(&post)
        } else {
            1.0
        };
        if position_row == Some(l + 1) {
            positions = Some(position_sums(l + 1, &pre, &post, block.output()));
        }
        forward.push(row_sums(&pre, &post, zeros, renorm));
        x = post;
        scale_rows(&mut x, renorm);
        if ntk.is_some() {
            inputs.push(x.clone());
            log_scale.push(log_scale[l] + renorm.ln());
        }
        saved.push(keep);
    }
    let ntk_terms = ntk.map(|param| {
        super::block_ntk::ntk_terms(
            spec, program, network, param, &saved, &weights, &inputs, &log_scale,
        )
    });

    // tangents: t_0 = u, forward-mode through each block
    let probes = spec.probes;
    let mut tangent = None;
    let mut t_top = Vec::new();
    if probes.jacobian {
        let mut t: Vec<Row> = rng::normal_rows(spec.seed, Stream::Tangent, network, 0, batch, n0);
        let mut out = vec![norm_sums(&t, None)];
        let mut number = 0;
        for (l, block) in arch.blocks.iter().enumerate() {
            let r = out[l].renorm[0];
            scale_rows(&mut t, r);
            let w0 = number;
            number += block.layers().len();
            t = tangent_step(block, &saved[l], &weights[w0..number], &t);
            out.push(norm_sums(&t, None));
        }
        t_top = t;
        tangent = Some(out);
    }

    // backward: the gradient with respect to each row's output, as h for
    // plain layers
    let mut backward = None;
    if probes.needs_backward() {
        let n_top = arch.units(depth);
        let mut d: Vec<Row> =
            rng::normal_rows(spec.seed, Stream::Delta, network, depth, batch, n_top);
        // the vector-Jacobian rows start as t_L, through phi' for a plain top
        let mut v: Option<Vec<Row>> = probes.jacobian.then(|| match &saved[depth - 1] {
            Saved::Plain { h, .. } => {
                let Block::Layer(layer) = &arch.blocks[depth - 1] else {
                    unreachable!()
                };
                t_top
                    .iter()
                    .zip(h)
                    .map(|(t, hr)| {
                        t.iter()
                            .zip(hr)
                            .map(|(ti, hi)| layer.act.deriv(*hi) * ti)
                            .collect()
                    })
                    .collect()
            }
            _ => t_top.clone(),
        });
        let record = |d: &[Row], v: &Option<Vec<Row>>| norm_sums(d, v.as_deref());
        let mut out = vec![RowSums::default(); depth + 1];
        out[depth] = record(&d, &v);
        let mut number = weights.len();
        // ln of the stored over the true scale of d
        let mut log_d_scale = 0.0;
        for l in (1..=depth).rev() {
            let block = &arch.blocks[l - 1];
            let w1 = number;
            number -= block.layers().len();
            let [rd, rv] = out[l].renorm;
            scale_rows(&mut d, rd);
            log_d_scale += rd.ln();
            let block_weights = &weights[number..w1];
            let mut grads: Option<[f64; 3]> = None;
            let mut at_layer = |slot: usize, delta: &[Row]| {
                let layer = block.layers()[slot];
                if let Some(LayerState::Attention(x)) = layer_state(&saved[l - 1], slot) {
                    let sum = grads.get_or_insert([0.0; 3]);
                    let entries = attention_matrix_entries(layer);
                    let unscale = (-2.0 * log_d_scale).exp();
                    for (xr, dr) in x.iter().zip(delta) {
                        let g =
                            super::attention::weight_gradients(layer, &block_weights[slot], xr, dr);
                        for k in 0..3 {
                            sum[k] += g[k] * unscale / entries[k];
                        }
                    }
                }
            };
            d = backward_step_with(block, &saved[l - 1], block_weights, &d, &mut at_layer);
            if let (Some(rows), Some(g)) = (token_rows.as_mut(), grads) {
                rows[l].weight_grads = Some(g);
            }
            if let Some(vv) = v.as_mut() {
                scale_rows(vv, rv);
                *vv = backward_step(block, &saved[l - 1], &weights[number..w1], vv);
            }
            // below a plain layer the row's gradient is with respect to its h
            if l >= 2 {
                if let (Block::Layer(below), Saved::Plain { h, .. }) =
                    (&arch.blocks[l - 2], &saved[l - 2])
                {
                    let through = |rows: &mut Vec<Row>| {
                        for (row, hr) in rows.iter_mut().zip(h) {
                            for (ri, hi) in row.iter_mut().zip(hr) {
                                *ri *= below.act.deriv(*hi);
                            }
                        }
                    };
                    through(&mut d);
                    if let Some(vv) = v.as_mut() {
                        through(vv);
                    }
                }
            }
            out[l - 1] = record(&d, &v);
        }
        backward = Some(out);
    }
    NetworkSums {
        positions,
        ntk: None,
        ntk_terms,
        channels,
        tokens: token_rows,
        ..NetworkSums::new(forward, tangent, backward, None)
    }
}

/// The attention entropy of a block's attention layers over the batch (their
/// sum and terms), None if it has none.
fn attention_entropy(block: &Block, weights: &[Weights], saved: &Saved) -> Option<(f64, usize)> {
    let states: Vec<&LayerState> = match saved {
        Saved::Plain { inv, .. } => vec![inv],
        Saved::Residual { invs, .. } => invs.iter().collect(),
        Saved::Highway { .. } => Vec::new(),
    };
    let mut found = None;
    for ((layer, wt), state) in block.layers().into_iter().zip(weights).zip(states) {
        if let LayerState::Attention(x) = state {
            let (sum, terms) = found.get_or_insert((0.0, 0));
            for row in x {
                let (s, t) = super::attention::entropy(layer, wt, row);
                *sum += s;
                *terms += t;
            }
        }
    }
    found
}

/// What the derivatives of layer `slot` of a block need (None for a
/// highway block's layers, which keep none).
fn layer_state(saved: &Saved, slot: usize) -> Option<&LayerState> {
    match saved {
        Saved::Plain { inv, .. } => (slot == 0).then_some(inv),
        Saved::Residual { invs, .. } => invs.get(slot),
        Saved::Highway { .. } => None,
    }
}

/// The entries of an attention layer's W_Q, W_K and W_V.
fn attention_matrix_entries(layer: &crate::model::arch::Layer) -> [f64; 3] {
    let LayerKind::Attention(a) = &layer.kind else {
        unreachable!("an attention layer")
    };
    let ms = a.matrices(layer.input.channels());
    [0, 1, 2].map(|k| (ms[k].rows * ms[k].cols) as f64)
}
