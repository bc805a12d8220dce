//! The steps of the f64 block reference (`blocks`): a weight layer's draws
//! on its Philox stream, its forward map (dense, convolution, transposed
//! convolution, with zero or circular padding), the normalisations, and the
//! tangent and backward steps through a block from what its forward pass
//! saved.

use crate::model::arch::{Block, Layer, LayerKind, NormKind, Padding, Shape};
use crate::model::rng::{self, Stream};
use crate::spec::RunSpec;

/// One sample's units, channel-major ([c][y][x] for images).
pub(super) type Row = Vec<f64>;

/// A weight layer's drawn tensor and bias, and for a standardised layer
/// each row's factor gain / std of its raw draws (what the NTK's gradient
/// with respect to the raw draws needs).
#[derive(Default)]
pub(super) struct Weights {
    pub(super) w: Vec<f64>,
    pub(super) b: Vec<f64>,
    pub(super) row_scales: Vec<f64>,
}

pub(super) fn draw_weights(
    spec: &RunSpec,
    network: usize,
    number: usize,
    layer: &Layer,
) -> Weights {
    match layer.kind {
        LayerKind::Norm { .. } => {
            return Weights::default();
        }
        // the window's mean: 1 / (kh kw) at every tap, no bias
        LayerKind::AvgPool { kh, kw, .. } => {
            return Weights {
                w: vec![1.0 / (kh * kw) as f64; kh * kw],
                b: vec![0.0; dims(layer.output).0],
                ..Default::default()
            };
        }
        // its factor; 1/sqrt(q) comes from the theory, which the caller's
        // program holds (`sim::plan::Program::factors`)
        LayerKind::Scale { factor } => {
            let value = match factor {
                crate::model::arch::ScaleFactor::Value(v) => v,
                crate::model::arch::ScaleFactor::InverseRootQ => 1.0,
            };
            return Weights {
                w: vec![value],
                b: vec![0.0; dims(layer.output).0],
                ..Default::default()
            };
        }
        LayerKind::Attention(_) => return super::attention::draw(spec, network, number, layer),
        _ => {}
    }
    let law = layer.draw_law(number);
    let scale = law.scale();
    let (rows, per_row) = match (&layer.kind, layer.input, layer.output) {
        // the fan-in: every unit of a vector, a token's units on a sequence
        (LayerKind::Dense { width }, ..) => (*width, layer.fans().0),
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
        _ => unreachable!("convolutions have image inputs; norms were handled"),
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
    let mut row_scales = Vec::new();
    if let Some(ws) = layer.standardise {
        row_scales = standardise_rows(&mut w, per_row, ws.gain(per_row) * layer.scale);
    }
    let out_channels = layer.output.channels();
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
    Weights { w, b, row_scales }
}

/// Weight standardisation: each row of `w` (an output's fan-in) becomes
/// gain (row - mean) / std, std the population one. Two passes. Returns
/// each row's factor gain / std.
pub(super) fn standardise_rows(w: &mut [f64], per_row: usize, gain: f64) -> Vec<f64> {
    w.chunks_mut(per_row)
        .map(|row| {
            let n = per_row as f64;
            let mean = row.iter().sum::<f64>() / n;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let s = gain / var.sqrt();
            for v in row.iter_mut() {
                *v = (*v - mean) * s;
            }
            s
        })
        .collect()
}

pub(super) fn dims(shape: Shape) -> (usize, usize, usize) {
    shape.dims()
}

/// Every connection of a layer as (output index, input index, weight
/// index), in one fixed order per kind: `apply` and `apply_transposed` both
/// walk it, so each sum is accumulated in the same order.
pub(super) fn for_each_connection(layer: &Layer, mut connect: impl FnMut(usize, usize, usize)) {
    let (c_in, h_in, w_in) = dims(layer.input);
    let (c_out, h_out, w_out) = dims(layer.output);
    match &layer.kind {
        // on a sequence: W at every token, a 1 x 1 convolution
        LayerKind::Dense { .. } if layer.input.is_sequence() => {
            let tokens = w_in;
            for i in 0..c_out {
                for t in 0..tokens {
                    for j in 0..c_in {
                        connect(i * tokens + t, j * tokens + t, i * c_in + j);
                    }
                }
            }
        }
        LayerKind::Dense { .. } => {
            let (n_out, n_in) = (c_out * h_out * w_out, c_in * h_in * w_in);
            for i in 0..n_out {
                for j in 0..n_in {
                    connect(i, j, i * n_in + j);
                }
            }
        }
        LayerKind::Scale { .. } => {
            for i in 0..c_out * h_out * w_out {
                connect(i, i, 0);
            }
        }
        LayerKind::AvgPool { kh, kw, stride } => {
            for c in 0..c_out {
                for y in 0..h_out {
                    for xx in 0..w_out {
                        let o = (c * h_out + y) * w_out + xx;
                        for ty in 0..*kh {
                            for tx in 0..*kw {
                                let i = (c * h_in + y * stride + ty) * w_in + xx * stride + tx;
                                connect(o, i, ty * kw + tx);
                            }
                        }
                    }
                }
            }
        }
        LayerKind::Conv {
            kernel,
            padding,
            stride,
            ..
        } => {
            let (k, r) = (*kernel, (*kernel / 2) as isize);
            for co in 0..c_out {
                for y in 0..h_out {
                    for xx in 0..w_out {
                        let o = (co * h_out + y) * w_out + xx;
                        for ci in 0..c_in {
                            for ty in 0..k {
                                for tx in 0..k {
                                    let (sy, sx) = (y * stride, xx * stride);
                                    if let Some(p) = source(sy, sx, ty, tx, r, h_in, w_in, *padding)
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
        LayerKind::Norm { .. } | LayerKind::Attention(_) => {
            unreachable!("normalisations and attention are not linear maps")
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

/// The input position a convolution tap reads for the output at input
/// coordinates (y, x) (the output's times the stride), if any.
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

/// The units a normalisation's statistics run over, as groups of (row,
/// unit): each input's units for layer-norm and rms-norm (each token's on a
/// sequence); for batch-norm each channel's positions over the rows.
fn norm_groups(kind: NormKind, shape: Shape, rows: usize) -> Vec<Vec<(usize, usize)>> {
    let (c, h, w) = dims(shape);
    let (n, hw) = (c * h * w, h * w);
    match kind {
        NormKind::LayerNorm | NormKind::RmsNorm if shape.is_sequence() => (0..rows)
            .flat_map(|r| (0..hw).map(move |t| (0..c).map(|ch| (r, ch * hw + t)).collect()))
            .collect(),
        NormKind::LayerNorm | NormKind::RmsNorm => (0..rows)
            .map(|r| (0..n).map(|i| (r, i)).collect())
            .collect(),
        NormKind::BatchNorm => (0..c)
            .map(|ch| {
                (0..rows)
                    .flat_map(|r| (0..hw).map(move |p| (r, ch * hw + p)))
                    .collect()
            })
            .collect(),
    }
}

/// A normalisation of the rows x: y = (x - mean) / sqrt(var + eps) per
/// group (rms-norm: y = x / sqrt(mean x^2 + eps)), and 1/sqrt(var + eps)
/// per group.
fn normalise(kind: NormKind, eps: f64, shape: Shape, x: &[Row]) -> (Vec<Row>, Vec<f64>) {
    let mut y: Vec<Row> = x.to_vec();
    let mut inv = Vec::new();
    for group in norm_groups(kind, shape, x.len()) {
        let m = group.len() as f64;
        let mean = match kind {
            NormKind::RmsNorm => 0.0,
            _ => group.iter().map(|&(r, i)| x[r][i]).sum::<f64>() / m,
        };
        let var = group
            .iter()
            .map(|&(r, i)| (x[r][i] - mean).powi(2))
            .sum::<f64>()
            / m;
        let s = 1.0 / (var + eps).sqrt();
        for &(r, i) in &group {
            y[r][i] = (x[r][i] - mean) * s;
        }
        inv.push(s);
    }
    (y, inv)
}

/// The normalisation's Jacobian at (y, inv) applied to the rows a:
/// inv (a - mean(a) - y mean(a y)) per group (rms-norm: without mean(a)).
/// It is symmetric, so it is also the adjoint the backward pass applies.
fn norm_jacobian(kind: NormKind, shape: Shape, y: &[Row], inv: &[f64], a: &[Row]) -> Vec<Row> {
    let mut out: Vec<Row> = a.to_vec();
    for (group, s) in norm_groups(kind, shape, a.len()).iter().zip(inv) {
        let m = group.len() as f64;
        let mean_a = match kind {
            NormKind::RmsNorm => 0.0,
            _ => group.iter().map(|&(r, i)| a[r][i]).sum::<f64>() / m,
        };
        let mean_ay = group.iter().map(|&(r, i)| a[r][i] * y[r][i]).sum::<f64>() / m;
        for &(r, i) in group {
            out[r][i] = s * (a[r][i] - mean_a - y[r][i] * mean_ay);
        }
    }
    out
}

/// What a layer's tangent and adjoint need of its forward pass besides its
/// output: nothing for a linear map, a normalisation's inverse scales per
/// group, an attention layer's input rows.
pub(super) enum LayerState {
    Linear,
    Norm(Vec<f64>),
    Attention(Vec<Row>),
}

/// A layer's pre-activation over the batch (a normalisation couples the
/// rows): W x (+ b) for a weight layer, the normalised rows for a norm,
/// attention on each sequence, with what its derivatives need.
pub(super) fn forward_rows(
    layer: &Layer,
    wt: &Weights,
    x: &[Row],
    with_bias: bool,
) -> (Vec<Row>, LayerState) {
    match layer.kind {
        LayerKind::Norm { kind, eps, .. } => {
            let (y, inv) = normalise(kind, eps, layer.input, x);
            (y, LayerState::Norm(inv))
        }
        LayerKind::Attention(_) => (
            x.iter()
                .map(|r| super::attention::forward(layer, wt, r))
                .collect(),
            LayerState::Attention(x.to_vec()),
        ),
        _ => (
            x.iter().map(|r| apply(layer, wt, r, with_bias)).collect(),
            LayerState::Linear,
        ),
    }
}

/// The derivative of the layer's pre-activation along the rows t: W t, the
/// normalisation's Jacobian at its saved output y and scales, or
/// attention's at its saved input.
pub(super) fn tangent_rows(
    layer: &Layer,
    wt: &Weights,
    y: &[Row],
    state: &LayerState,
    t: &[Row],
) -> Vec<Row> {
    match (&layer.kind, state) {
        (LayerKind::Norm { kind, .. }, LayerState::Norm(inv)) => {
            norm_jacobian(*kind, layer.input, y, inv, t)
        }
        (LayerKind::Attention(_), LayerState::Attention(x)) => x
            .iter()
            .zip(t)
            .map(|(x, t)| super::attention::tangent(layer, wt, x, t))
            .collect(),
        _ => t.iter().map(|r| apply(layer, wt, r, false)).collect(),
    }
}

/// Its adjoint: W^T d, the (symmetric) normalisation Jacobian, or
/// attention's adjoint.
pub(super) fn adjoint_rows(
    layer: &Layer,
    wt: &Weights,
    y: &[Row],
    state: &LayerState,
    d: &[Row],
) -> Vec<Row> {
    match (&layer.kind, state) {
        (LayerKind::Norm { kind, .. }, LayerState::Norm(inv)) => {
            norm_jacobian(*kind, layer.input, y, inv, d)
        }
        (LayerKind::Attention(_), LayerState::Attention(x)) => x
            .iter()
            .zip(d)
            .map(|(x, d)| super::attention::adjoint(layer, wt, x, d))
            .collect(),
        _ => d.iter().map(|r| apply_transposed(layer, wt, r)).collect(),
    }
}

/// What the backward pass and the tangents need of a block's forward pass.
pub(super) enum Saved {
    /// h (for a normalisation its output y) and what the layer's
    /// derivatives need
    Plain { h: Vec<Row>, inv: LayerState },
    /// the branch's h and normalisation scales per layer, and its output
    /// F(x) (the SPP's branch statistics)
    Residual {
        hs: Vec<Vec<Row>>,
        invs: Vec<LayerState>,
        f: Vec<Row>,
    },
    Highway {
        g: Vec<Row>,
        hh: Vec<Row>,
        x: Vec<Row>,
    },
}

/// x = phi(h) - shift, entry by entry (the mean-preserving shift, 0 without it).
pub(super) fn post_activation(layer: &Layer, h: &[Row], shift: f64) -> Vec<Row> {
    h.iter()
        .map(|r| r.iter().map(|v| layer.act.value(*v) - shift).collect())
        .collect()
}

/// phi'(h) v, entry by entry.
pub(super) fn times_deriv(layer: &Layer, h: &[Row], mut v: Vec<Row>) -> Vec<Row> {
    for (row, hr) in v.iter_mut().zip(h) {
        for (vi, hi) in row.iter_mut().zip(hr) {
            *vi *= layer.act.deriv(*hi);
        }
    }
    v
}

pub(super) fn sigmoid(z: f64) -> f64 {
    crate::model::activation::sigmoid(z)
}

/// Block `block`'s forward step on the rows x (the stored scale): its pre
/// and post rows, the units with phi' = 0, and what its tangent and
/// backward steps need. `weights` and `shifts` start at its first layer.
pub(super) fn forward_step(
    block: &Block,
    weights: &[Weights],
    shifts: &[f64],
    x: &[Row],
) -> (Vec<Row>, Vec<Row>, f64, Saved) {
    match block {
        Block::Layer(layer) => {
            let wt = &weights[0];
            let shift = shifts[0];
            let (h, inv) = forward_rows(layer, wt, x, true);
            let post = post_activation(layer, &h, shift);
            let zeros = h
                .iter()
                .flatten()
                .filter(|v| layer.act.deriv(**v) == 0.0)
                .count() as f64;
            (h.clone(), post, zeros, Saved::Plain { h, inv })
        }
        Block::Residual {
            branch,
            alpha,
            shared,
            shortcut,
        } => {
            let mut f: Vec<Row> = x.to_vec();
            let mut hs = Vec::new();
            let mut invs = Vec::new();
            // the shortcut: x, or the projection of the shared layers' output
            let project = |z: &[Row]| {
                let p = shortcut.as_ref().expect("a projection");
                forward_rows(p, &weights[branch.len()], z, true).0
            };
            let mut s = match shortcut {
                Some(_) if *shared == 0 => Some(project(x)),
                Some(_) => None,
                None => Some(x.to_vec()),
            };
            for (i, layer) in branch.iter().enumerate() {
                let wt = &weights[i];
                let shift = shifts[i];
                let (h, inv) = forward_rows(layer, wt, &f, true);
                invs.push(inv);
                f = post_activation(layer, &h, shift);
                hs.push(h);
                if i + 1 == *shared {
                    s = Some(project(&f));
                }
            }
            let s = s.expect("the shortcut was formed");
            let y: Vec<Row> = s
                .iter()
                .zip(&f)
                .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u + alpha * v).collect())
                .collect();
            let saved = Saved::Residual { hs, invs, f };
            (y.clone(), y, 0.0, saved)
        }
        Block::Highway {
            transform,
            gate,
            gate_bias,
        } => {
            let (wh, wg) = (&weights[0], &weights[1]);
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
            let y: Vec<Row> = (0..x.len())
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
                    x: x.to_vec(),
                },
            )
        }
    }
}

/// d(block output) along t: the forward-mode derivative.
pub(super) fn tangent_step(
    block: &Block,
    saved: &Saved,
    weights: &[Weights],
    t: &[Row],
) -> Vec<Row> {
    match (block, saved) {
        (Block::Layer(layer), Saved::Plain { h, inv }) => {
            times_deriv(layer, h, tangent_rows(layer, &weights[0], h, inv, t))
        }
        (
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            },
            Saved::Residual { hs, invs, .. },
        ) => {
            // the shortcut's tangent: t, or the projection of the shared
            // layers' tangent
            let project = |z: &[Row]| {
                let p = shortcut.as_ref().expect("a projection");
                z.iter()
                    .map(|r| apply(p, &weights[branch.len()], r, false))
                    .collect::<Vec<Row>>()
            };
            let mut s = match shortcut {
                Some(_) if *shared == 0 => Some(project(t)),
                Some(_) => None,
                None => Some(t.to_vec()),
            };
            let mut f: Vec<Row> = t.to_vec();
            for (i, layer) in branch.iter().enumerate() {
                let u = tangent_rows(layer, &weights[i], &hs[i], &invs[i], &f);
                f = times_deriv(layer, &hs[i], u);
                if i + 1 == *shared {
                    s = Some(project(&f));
                }
            }
            s.expect("the shortcut was formed")
                .iter()
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
    backward_step_with(block, saved, weights, d, &mut |_, _| {})
}

/// [`backward_step`], telling `at_layer(slot, delta)` the gradient with
/// respect to the pre-activation of each of the block's layers
/// (`block.layers()[slot]`) on the way: what its parameters' gradients
/// need (the NTK, `ntk`).
pub(super) fn backward_step_with(
    block: &Block,
    saved: &Saved,
    weights: &[Weights],
    d: &[Row],
    at_layer: &mut dyn FnMut(usize, &[Row]),
) -> Vec<Row> {
    match (block, saved) {
        (Block::Layer(layer), Saved::Plain { h, inv }) => {
            at_layer(0, d);
            adjoint_rows(layer, &weights[0], h, inv, d)
        }
        (
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            },
            Saved::Residual { hs, invs, .. },
        ) => {
            let add = |a: &[Row], b: &[Row]| -> Vec<Row> {
                a.iter()
                    .zip(b)
                    .map(|(u, v)| u.iter().zip(v).map(|(x, y)| x + y).collect())
                    .collect()
            };
            // the projection's adjoint, added where the shared layers' output is
            let through_shortcut = || -> Vec<Row> {
                let p = shortcut.as_ref().expect("a projection");
                d.iter()
                    .map(|r| apply_transposed(p, &weights[branch.len()], r))
                    .collect()
            };
            if shortcut.is_some() {
                at_layer(branch.len(), d);
            }
            // through the branch from its output: delta_f = alpha dy, then
            // per layer (last first) phi'(h) and the adjoint
            let mut g: Vec<Row> = d
                .iter()
                .map(|r| r.iter().map(|v| alpha * v).collect())
                .collect();
            for i in (0..branch.len()).rev() {
                let layer = &branch[i];
                let through = times_deriv(layer, &hs[i], g);
                at_layer(i, &through);
                g = adjoint_rows(layer, &weights[i], &hs[i], &invs[i], &through);
                if shortcut.is_some() && *shared > 0 && i == *shared {
                    g = add(&g, &through_shortcut());
                }
            }
            match shortcut {
                None => add(d, &g),
                Some(_) if *shared == 0 => add(&through_shortcut(), &g),
                Some(_) => g,
            }
        }
        (
            Block::Highway {
                transform, gate, ..
            },
            Saved::Highway { g, hh, x },
        ) => {
            let n = d[0].len();
            let s: Vec<Row> = g
                .iter()
                .map(|gb| gb.iter().map(|v| sigmoid(*v)).collect())
                .collect();
            // the gradients with respect to the transform's and the gate's pre-activations
            let to_h: Vec<Row> = (0..d.len())
                .map(|b| {
                    (0..n)
                        .map(|i| s[b][i] * transform.act.deriv(hh[b][i]) * d[b][i])
                        .collect()
                })
                .collect();
            let to_g: Vec<Row> = (0..d.len())
                .map(|b| {
                    (0..n)
                        .map(|i| {
                            let carry = transform.act.value(hh[b][i]) - x[b][i];
                            s[b][i] * (1.0 - s[b][i]) * carry * d[b][i]
                        })
                        .collect()
                })
                .collect();
            at_layer(0, &to_h);
            at_layer(1, &to_g);
            (0..d.len())
                .map(|b| {
                    let via_h = apply_transposed(transform, &weights[0], &to_h[b]);
                    let via_g = apply_transposed(gate, &weights[1], &to_g[b]);
                    (0..n)
                        .map(|i| (1.0 - s[b][i]) * d[b][i] + via_h[i] + via_g[i])
                        .collect()
                })
                .collect()
        }
        _ => unreachable!("saved state matches its block"),
    }
}

#[cfg(test)]
mod tests;
