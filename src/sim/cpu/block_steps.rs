//! The steps of the f64 block reference (`blocks`): a weight layer's draws
//! on its Philox stream, its forward map (dense, convolution, transposed
//! convolution, with zero or circular padding), and the tangent and backward
//! steps through a block from what its forward pass saved.

use crate::model::arch::{Block, Layer, LayerKind, Padding, Shape};
use crate::model::rng::{self, Stream};
use crate::spec::RunSpec;

/// One sample's units, channel-major ([c][y][x] for images).
pub(super) type Row = Vec<f64>;

/// A weight layer's drawn tensor and bias.
pub(super) struct Weights {
    pub(super) w: Vec<f64>,
    pub(super) b: Vec<f64>,
}

pub(super) fn draw_weights(
    spec: &RunSpec,
    network: usize,
    number: usize,
    layer: &Layer,
) -> Weights {
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

pub(super) fn dims(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Vector(n) => (n, 1, 1),
        Shape::Image(c, h, w) => (c, h, w),
    }
}

/// Every connection of a layer as (output index, input index, weight
/// index), in one fixed order per kind: `apply` and `apply_transposed` both
/// walk it, so each sum is accumulated in the same order.
fn for_each_connection(layer: &Layer, mut connect: impl FnMut(usize, usize, usize)) {
    let (c_in, h_in, w_in) = dims(layer.input);
    let (c_out, h_out, w_out) = dims(layer.output);
    match &layer.kind {
        LayerKind::Dense { .. } => {
            let (n_out, n_in) = (c_out * h_out * w_out, c_in * h_in * w_in);
            for i in 0..n_out {
                for j in 0..n_in {
                    connect(i, j, i * n_in + j);
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
                        let o = (co * h_out + y) * w_out + xx;
                        for ci in 0..c_in {
                            for ty in 0..k {
                                for tx in 0..k {
                                    if let Some(p) = source(y, xx, ty, tx, r, h_in, w_in, *padding)
                                    {
                                        let tap = (co * c_in + ci) * k * k + ty * k + tx;
                                        connect(o, ci * h_in * w_in + p, tap);
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
                        let i = (ci * h_in + y) * w_in + xx;
                        for co in 0..c_out {
                            for ty in 0..k {
                                for tx in 0..k {
                                    let o =
                                        (co * h_out + y * stride + ty) * w_out + xx * stride + tx;
                                    connect(o, i, (ci * c_out + co) * k * k + ty * k + tx);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// W x (+ b when `with_bias`).
pub(super) fn apply(layer: &Layer, wt: &Weights, x: &Row, with_bias: bool) -> Row {
    let mut out = vec![0.0; layer.output.units()];
    for_each_connection(layer, |o, i, w| out[o] += wt.w[w] * x[i]);
    if with_bias {
        let (_, h_out, w_out) = dims(layer.output);
        let per_channel = h_out * w_out;
        for (i, o) in out.iter_mut().enumerate() {
            *o += wt.b[i / per_channel];
        }
    }
    out
}

/// W^T d: the adjoint of `apply` without bias.
pub(super) fn apply_transposed(layer: &Layer, wt: &Weights, d: &Row) -> Row {
    let mut out = vec![0.0; layer.input.units()];
    for_each_connection(layer, |o, i, w| out[i] += wt.w[w] * d[o]);
    out
}

/// The input position a convolution tap reads for output (y, x), if any.
#[allow(clippy::too_many_arguments)]
pub(super) fn source(
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

/// What the backward pass and the tangents need of a block's forward pass.
pub(super) enum Saved {
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

pub(super) fn sigmoid(z: f64) -> f64 {
    crate::model::activation::sigmoid(z)
}

/// d(block output) along t: the forward-mode derivative.
pub(super) fn tangent_step(
    block: &Block,
    saved: &Saved,
    weights: &[Weights],
    t: &[Row],
) -> Vec<Row> {
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
pub(super) fn backward_step(
    block: &Block,
    saved: &Saved,
    weights: &[Weights],
    d: &[Row],
) -> Vec<Row> {
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
