//! The CPU reference engine for architecture files: dense, convolution and
//! transposed-convolution layers, residual and highway blocks and the
//! mean-preserving bias, forward, backward and with tangents, in f64, as
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

use crate::model::arch::{Block, Layer, LayerKind, Padding, Shape};
use crate::model::rng::{self, Stream};
use crate::spec::RunSpec;
use crate::sim::plan::Program;
use crate::sim::stats::{LayerSums, NetworkSums, RowSums};

/// One sample's units, channel-major ([c][y][x] for images).
type Row = Vec<f64>;

/// A weight layer's drawn tensor and bias.
struct Weights {
    w: Vec<f64>,
    b: Vec<f64>,
}

fn draw_weights(spec: &RunSpec, network: usize, number: usize, layer: &Layer) -> Weights {
    let law = layer.weight_law(number);
    let scale = law.scale();
    let (rows, per_row) = match (&layer.kind, layer.input, layer.output) {
        (LayerKind::Dense { width }, input, _) => (*width, input.units()),
        (
            LayerKind::Conv {
                channels, kernel, ..
            },
            Shape::Image(c, ..),
            _,
        ) => (*channels, c * kernel * kernel),
        (
            LayerKind::ConvTranspose {
                channels, kernel, ..
            },
            Shape::Image(c, ..),
            _,
        ) => (c, channels * kernel * kernel),
        _ => unreachable!("convolutions have image inputs"),
    };
    let mut w = vec![0.0; rows * per_row];
    if layer.delta_orthogonal {
        let (LayerKind::Conv { kernel, .. }, Shape::Image(c_in, ..)) = (&layer.kind, layer.input)
        else {
            unreachable!()
        };
        let gain = (law.variance * c_in.max(rows) as f64).sqrt();
        let q = super::dense::orthogonal_matrix(spec.seed, network, number, rows, c_in, gain);
        let centre = (kernel / 2) * kernel + kernel / 2;
        for co in 0..rows {
            for ci in 0..c_in {
                w[co * per_row + ci * kernel * kernel + centre] = q[co * c_in + ci];
            }
        }
    } else if law.dist == crate::model::init::Dist::Orthogonal {
        let gain = (law.variance * rows.max(per_row) as f64).sqrt();
        w = super::dense::orthogonal_matrix(spec.seed, network, number, rows, per_row, gain);
    } else {
        for r in 0..rows {
            for g in 0..per_row.div_ceil(4) {
                let z = rng::standard4(
                    law.dist,
                    rng::bits(
                        spec.seed,
                        Stream::Weight,
                        network as u32,
                        number as u32,
                        r as u32,
                        g as u32,
                    ),
                );
                for e in 0..4 {
                    if 4 * g + e < per_row {
                        w[r * per_row + 4 * g + e] = scale * z[e];
                    }
                }
            }
        }
    }
    let out_channels = match layer.output {
        Shape::Vector(n) => n,
        Shape::Image(c, ..) => c,
    };
    let bias = layer.bias_law();
    let b = (0..out_channels)
        .map(|c| {
            if bias.variance == 0.0 {
                0.0
            } else {
                bias.scale()
                    * rng::standard4(
                        bias.dist,
                        rng::bits(
                            spec.seed,
                            Stream::Bias,
                            network as u32,
                            number as u32,
                            0,
                            (c / 4) as u32,
                        ),
                    )[c % 4]
            }
        })
        .collect();
    Weights { w, b }
}

fn dims(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Vector(n) => (n, 1, 1),
        Shape::Image(c, h, w) => (c, h, w),
    }
}

/// W x (+ b when `with_bias`).
fn apply(layer: &Layer, wt: &Weights, x: &Row, with_bias: bool) -> Row {
    let (c_in, h_in, w_in) = dims(layer.input);
    let (c_out, h_out, w_out) = dims(layer.output);
    let mut out = vec![0.0; c_out * h_out * w_out];
    match &layer.kind {
        LayerKind::Dense { .. } => {
            let n_in = x.len();
            for (i, o) in out.iter_mut().enumerate() {
                *o = (0..n_in).map(|j| wt.w[i * n_in + j] * x[j]).sum();
            }
        }
        LayerKind::Conv {
            kernel, padding, ..
        } => {
            let (k, r) = (*kernel, (*kernel / 2) as isize);
            for co in 0..c_out {
                for y in 0..h_out {
                    for xx in 0..w_out {
                        let mut sum = 0.0;
                        for ci in 0..c_in {
                            for ty in 0..k {
                                for tx in 0..k {
                                    if let Some(p) = source(y, xx, ty, tx, r, h_in, w_in, *padding)
                                    {
                                        sum += wt.w[(co * c_in + ci) * k * k + ty * k + tx]
                                            * x[ci * h_in * w_in + p];
                                    }
                                }
                            }
                        }
                        out[(co * h_out + y) * w_out + xx] = sum;
                    }
                }
            }
        }
        LayerKind::ConvTranspose { kernel, stride, .. } => {
            let k = *kernel;
            for ci in 0..c_in {
                for y in 0..h_in {
                    for xx in 0..w_in {
                        let v = x[(ci * h_in + y) * w_in + xx];
                        for co in 0..c_out {
                            for ty in 0..k {
                                for tx in 0..k {
                                    let o =
                                        (co * h_out + y * stride + ty) * w_out + xx * stride + tx;
                                    out[o] += wt.w[(ci * c_out + co) * k * k + ty * k + tx] * v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if with_bias {
        let per_channel = h_out * w_out;
        for (i, o) in out.iter_mut().enumerate() {
            *o += wt.b[i / per_channel];
        }
    }
    out
}

/// The input position a convolution tap reads for output (y, x), if any.
#[allow(clippy::too_many_arguments)]
fn source(
    y: usize,
    x: usize,
    ty: usize,
    tx: usize,
    r: isize,
    h: usize,
    w: usize,
    padding: Padding,
) -> Option<usize> {
    let (yy, xx) = (y as isize + ty as isize - r, x as isize + tx as isize - r);
    match padding {
        Padding::Circular => {
            Some(yy.rem_euclid(h as isize) as usize * w + xx.rem_euclid(w as isize) as usize)
        }
        Padding::Zero => (yy >= 0 && xx >= 0 && yy < h as isize && xx < w as isize)
            .then(|| yy as usize * w + xx as usize),
    }
}

/// W^T d: the adjoint of `apply` without bias.
fn apply_transposed(layer: &Layer, wt: &Weights, d: &Row) -> Row {
    let (c_in, h_in, w_in) = dims(layer.input);
    let (c_out, h_out, w_out) = dims(layer.output);
    let mut out = vec![0.0; c_in * h_in * w_in];
    match &layer.kind {
        LayerKind::Dense { .. } => {
            let n_in = out.len();
            for (i, di) in d.iter().enumerate() {
                for j in 0..n_in {
                    out[j] += wt.w[i * n_in + j] * di;
                }
            }
        }
        LayerKind::Conv {
            kernel, padding, ..
        } => {
            let (k, r) = (*kernel, (*kernel / 2) as isize);
            for co in 0..c_out {
                for y in 0..h_out {
                    for xx in 0..w_out {
                        let g = d[(co * h_out + y) * w_out + xx];
                        for ci in 0..c_in {
                            for ty in 0..k {
                                for tx in 0..k {
                                    if let Some(p) = source(y, xx, ty, tx, r, h_in, w_in, *padding)
                                    {
                                        out[ci * h_in * w_in + p] +=
                                            wt.w[(co * c_in + ci) * k * k + ty * k + tx] * g;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        LayerKind::ConvTranspose { kernel, stride, .. } => {
            let k = *kernel;
            for ci in 0..c_in {
                for y in 0..h_in {
                    for xx in 0..w_in {
                        let mut sum = 0.0;
                        for co in 0..c_out {
                            for ty in 0..k {
                                for tx in 0..k {
                                    let o =
                                        (co * h_out + y * stride + ty) * w_out + xx * stride + tx;
                                    sum += wt.w[(ci * c_out + co) * k * k + ty * k + tx] * d[o];
                                }
                            }
                        }
                        out[(ci * h_in + y) * w_in + xx] = sum;
                    }
                }
            }
        }
    }
    out
}

/// What the backward pass and the tangents need of a block's forward pass.
enum Saved {
    Plain {
        h: Vec<Row>,
    },
    Residual {
        hs: Vec<Vec<Row>>,
    },
    Highway {
        g: Vec<Row>,
        hh: Vec<Row>,
        x: Vec<Row>,
    },
}

fn sigmoid(z: f64) -> f64 {
    crate::model::activation::sigmoid(z)
}

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

fn renorm_of(rows: &[Row]) -> f64 {
    let count: usize = rows.iter().map(Vec::len).sum();
    let mean = rows.iter().flatten().map(|v| v * v).sum::<f64>() / count as f64;
    if mean > 0.0 && mean.is_finite() {
        1.0 / mean.sqrt()
    } else {
        1.0
    }
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
    let act_of = |l: &Layer| l.act;
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
    scale_rows(&mut x, first.renorm);
    forward.push(first);
    let mut saved = Vec::with_capacity(depth);
    let mut weights: Vec<Weights> = Vec::new();
    let mut number = 0;
    for (l, block) in arch.blocks.iter().enumerate() {
        for layer in block.layers() {
            number += 1;
            weights.push(draw_weights(spec, network, number, layer));
        }
        let first_weight = weights.len() - block.layers().len();
        let (pre, post, zeros, keep) = match block {
            Block::Layer(layer) => {
                let wt = &weights[first_weight];
                let shift = program.shifts[first_weight];
                let h: Vec<Row> = x.iter().map(|r| apply(layer, wt, r, true)).collect();
                let post: Vec<Row> = h
                    .iter()
                    .map(|r| r.iter().map(|v| layer.act.value(*v) - shift).collect())
                    .collect();
                let zeros = h
                    .iter()
                    .flatten()
                    .filter(|v| layer.act.deriv(**v) == 0.0)
                    .count() as f64;
                (h.clone(), post, zeros, Saved::Plain { h })
            }
            Block::Residual { branch, alpha } => {
                let mut f = x.clone();
                let mut hs = Vec::new();
                for (i, layer) in branch.iter().enumerate() {
                    let wt = &weights[first_weight + i];
                    let shift = program.shifts[first_weight + i];
                    let h: Vec<Row> = f.iter().map(|r| apply(layer, wt, r, true)).collect();
                    f = h
                        .iter()
                        .map(|r| r.iter().map(|v| act_of(layer).value(*v) - shift).collect())
                        .collect();
                    hs.push(h);
                }
                let y: Vec<Row> = x
                    .iter()
                    .zip(&f)
                    .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u + alpha * v).collect())
                    .collect();
                (y.clone(), y, 0.0, Saved::Residual { hs })
            }
            Block::Highway {
                transform,
                gate,
                gate_bias,
            } => {
                let (wh, wg) = (&weights[first_weight], &weights[first_weight + 1]);
                let g: Vec<Row> = x
                    .iter()
                    .map(|r| {
                        apply(gate, wg, r, false)
                            .iter()
                            .map(|v| v + gate_bias)
                            .collect()
                    })
                    .collect();
                let hh: Vec<Row> = x.iter().map(|r| apply(transform, wh, r, true)).collect();
                let y: Vec<Row> = (0..batch)
                    .map(|b| {
                        (0..x[b].len())
                            .map(|i| {
                                let t = sigmoid(g[b][i]);
                                t * transform.act.value(hh[b][i]) + (1.0 - t) * x[b][i]
                            })
                            .collect()
                    })
                    .collect();
                (
                    y.clone(),
                    y,
                    0.0,
                    Saved::Highway {
                        g,
                        hh,
                        x: x.clone(),
                    },
                )
            }
        };
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
        saved.push(keep);
    }

    // tangents: t_0 = u, forward-mode through each block
    let probes = spec.probes;
    let mut tangent = None;
    let mut t_top = Vec::new();
    if probes.jacobian {
        let mut t: Vec<Row> = (0..batch)
            .map(|r| {
                (0..n0)
                    .map(|i| {
                        rng::normal4(rng::bits(
                            spec.seed,
                            Stream::Tangent,
                            network as u32,
                            0,
                            r as u32,
                            (i / 4) as u32,
                        ))[i % 4]
                    })
                    .collect()
            })
            .collect();
        let mut out = vec![RowSums {
            norms: norms(&t),
            renorm: [renorm_of(&t), 1.0],
        }];
        let mut number = 0;
        for (l, block) in arch.blocks.iter().enumerate() {
            let r = out[l].renorm[0];
            scale_rows(&mut t, r);
            let w0 = number;
            number += block.layers().len();
            t = tangent_step(block, &saved[l], &weights[w0..number], &t);
            out.push(RowSums {
                norms: norms(&t),
                renorm: [renorm_of(&t), 1.0],
            });
        }
        t_top = t;
        tangent = Some(out);
    }

    // backward: the gradient with respect to each row's output, as h for
    // plain layers
    let mut backward = None;
    if probes.needs_backward() {
        let n_top = arch.units(depth);
        let mut d: Vec<Row> = (0..batch)
            .map(|r| {
                (0..n_top)
                    .map(|i| {
                        rng::normal4(rng::bits(
                            spec.seed,
                            Stream::Delta,
                            network as u32,
                            depth as u32,
                            r as u32,
                            (i / 4) as u32,
                        ))[i % 4]
                    })
                    .collect()
            })
            .collect();
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
        let record = |d: &[Row], v: &Option<Vec<Row>>| {
            let mut n = norms(d);
            let mut r = [renorm_of(d), 1.0];
            if let Some(v) = v {
                n.extend(norms(v));
                r[1] = renorm_of(v);
            }
            RowSums {
                norms: n,
                renorm: r,
            }
        };
        let mut out = vec![RowSums::default(); depth + 1];
        out[depth] = record(&d, &v);
        let mut number = weights.len();
        for l in (1..=depth).rev() {
            let block = &arch.blocks[l - 1];
            let w1 = number;
            number -= block.layers().len();
            let [rd, rv] = out[l].renorm;
            scale_rows(&mut d, rd);
            d = backward_step(block, &saved[l - 1], &weights[number..w1], &d);
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
        forward,
        tangent,
        backward,
        grams: None,
        positions,
    }
}

fn norms(rows: &[Row]) -> Vec<f64> {
    rows.iter().map(|r| r.iter().map(|v| v * v).sum()).collect()
}

/// d(block output) along t: the forward-mode derivative.
fn tangent_step(block: &Block, saved: &Saved, weights: &[Weights], t: &[Row]) -> Vec<Row> {
    match (block, saved) {
        (Block::Layer(layer), Saved::Plain { h, .. }) => t
            .iter()
            .zip(h)
            .map(|(tr, hr)| {
                apply(layer, &weights[0], tr, false)
                    .iter()
                    .zip(hr)
                    .map(|(v, hi)| layer.act.deriv(*hi) * v)
                    .collect()
            })
            .collect(),
        (Block::Residual { branch, alpha }, Saved::Residual { hs, .. }) => {
            let mut f: Vec<Row> = t.to_vec();
            for (i, layer) in branch.iter().enumerate() {
                f = f
                    .iter()
                    .zip(&hs[i])
                    .map(|(fr, hr)| {
                        apply(layer, &weights[i], fr, false)
                            .iter()
                            .zip(hr)
                            .map(|(v, hi)| layer.act.deriv(*hi) * v)
                            .collect()
                    })
                    .collect();
            }
            t.iter()
                .zip(&f)
                .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u + alpha * v).collect())
                .collect()
        }
        (
            Block::Highway {
                transform, gate, ..
            },
            Saved::Highway { g, hh, x },
        ) => (0..t.len())
            .map(|b| {
                let wt_t = apply(transform, &weights[0], &t[b], false);
                let wg_t = apply(gate, &weights[1], &t[b], false);
                (0..t[b].len())
                    .map(|i| {
                        let s = sigmoid(g[b][i]);
                        let h = transform.act.value(hh[b][i]);
                        (1.0 - s) * t[b][i]
                            + s * transform.act.deriv(hh[b][i]) * wt_t[i]
                            + s * (1.0 - s) * wg_t[i] * (h - x[b][i])
                    })
                    .collect()
            })
            .collect(),
        _ => unreachable!("saved state matches its block"),
    }
}

/// The gradient with respect to the block's input from the one with respect
/// to its output (for a plain layer: with respect to its h).
fn backward_step(block: &Block, saved: &Saved, weights: &[Weights], d: &[Row]) -> Vec<Row> {
    match (block, saved) {
        (Block::Layer(layer), Saved::Plain { .. }) => d
            .iter()
            .map(|r| apply_transposed(layer, &weights[0], r))
            .collect(),
        (Block::Residual { branch, alpha }, Saved::Residual { hs, .. }) => d
            .iter()
            .enumerate()
            .map(|(b, dy)| {
                // through the branch from its output: delta_f = alpha dy
                let mut g: Row = dy.iter().map(|v| alpha * v).collect();
                for i in (0..branch.len()).rev() {
                    let layer = &branch[i];
                    let through: Row = g
                        .iter()
                        .zip(&hs[i][b])
                        .map(|(v, hi)| layer.act.deriv(*hi) * v)
                        .collect();
                    g = apply_transposed(layer, &weights[i], &through);
                }
                dy.iter().zip(&g).map(|(a, c)| a + c).collect()
            })
            .collect(),
        (
            Block::Highway {
                transform, gate, ..
            },
            Saved::Highway { g, hh, x },
        ) => (0..d.len())
            .map(|b| {
                let n = d[b].len();
                let s: Row = (0..n).map(|i| sigmoid(g[b][i])).collect();
                let to_h: Row = (0..n)
                    .map(|i| s[i] * transform.act.deriv(hh[b][i]) * d[b][i])
                    .collect();
                let to_g: Row = (0..n)
                    .map(|i| {
                        s[i] * (1.0 - s[i]) * (transform.act.value(hh[b][i]) - x[b][i]) * d[b][i]
                    })
                    .collect();
                let via_h = apply_transposed(transform, &weights[0], &to_h);
                let via_g = apply_transposed(gate, &weights[1], &to_g);
                (0..n)
                    .map(|i| (1.0 - s[i]) * d[b][i] + via_h[i] + via_g[i])
                    .collect()
            })
            .collect(),
        _ => unreachable!("saved state matches its block"),
    }
}
