//! Mean-field theory through the blocks of an architecture file: dense and
//! convolution layers, transposed convolutions, residual and highway
//! blocks, and the mean-preserving bias.
//!
//! The state between blocks is, per spatial position p (one position for a
//! vector), the second moment q(p) of one input's units, the cross moment
//! q12(p) of the two inputs of a pair, and the mean m(p). Weights are
//! independent of the signal, so at infinite width a layer's pre-activation
//! is Gaussian with
//!
//! ```text
//! q_h(p) = v C_in sum over the inputs reaching p of q(p') + sigma_b^2
//! ```
//!
//! (all units for a dense layer; the k x k neighbourhood for a convolution,
//! wrapped with circular padding and cut at the border with zero padding;
//! the input positions i with i s + t = p for a transposed convolution,
//! which is why its output alternates with the position modulo s when s
//! does not divide k). With circular padding and spatially iid inputs the
//! position-averaged q follows the dense recurrence with
//! v = gain^2 / (C_in k^2); zero padding departs from it at the borders.
//!
//! Residual blocks: y = x + alpha F(x) with F independent of x unit by unit,
//! so q_y = q_x + alpha^2 q_F + 2 alpha m_x m_F. Highway blocks:
//! y = T H + (1 - T) x with T = sigmoid(g), g ~ N(b_T, sigma_T^2 q_x) and
//! H = phi(h) driven by independent weights.

use super::gauss;
use super::uniform_bias::uniform_bias_moments;
use crate::model::activation::{Activation, sigmoid};
use crate::model::arch::{Architecture, Block, Layer, LayerKind, Padding, Shape};
use crate::model::init::Dist;

/// Per-position moments of one input's units (and of a pair).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub q: Vec<f64>,
    pub q12: Vec<f64>,
    pub m: Vec<f64>,
}

impl Field {
    fn uniform(positions: usize, q: f64, q12: f64, m: f64) -> Field {
        Field {
            q: vec![q; positions],
            q12: vec![q12; positions],
            m: vec![m; positions],
        }
    }

    fn average(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    pub fn q_mean(&self) -> f64 {
        Self::average(&self.q)
    }
    pub fn m_mean(&self) -> f64 {
        Self::average(&self.m)
    }
    /// The pair's correlation, position-averaged as the engines measure it
    /// (per position, then averaged).
    pub fn c_mean(&self) -> f64 {
        Self::average(
            &self
                .q12
                .iter()
                .zip(&self.q)
                .map(|(a, b)| a / b)
                .collect::<Vec<_>>(),
        )
    }
}

/// One row: the block's pre-activation (for composite blocks the output
/// itself) and output, position-resolved, and the factors by which E[delta^2]
/// and E[||J u||^2] change through it.
#[derive(Clone, Debug)]
pub struct ArchRow {
    pub pre: Field,
    pub post: Field,
    /// E[phi'(h)^2] per position (plain layers; 1 elsewhere)
    pub deriv_sq: Vec<f64>,
    /// E||J^T delta||^2 per input unit over E[delta^2] per output unit of the
    /// block (position-averaged), with delta the gradient with respect to the
    /// block's output
    pub backward_factor: f64,
    /// the same for a tangent going forward
    pub forward_factor: f64,
    /// the backward factor without the block's own phi' (for plain layers,
    /// whose rows report the gradient with respect to h): sigma_back^2
    pub back_linear: f64,
    /// the analytic mean subtracted with the mean-preserving bias, per weight
    /// layer of the block (0 without it; highway blocks are not shifted)
    pub shifts: Vec<f64>,
}

fn positions(shape: Shape) -> (usize, usize, usize) {
    match shape {
        Shape::Vector(n) => (n, 1, 1),
        Shape::Image(c, h, w) => (c, h, w),
    }
}

/// The pre-activation moments of `layer` given its input's field: the sums
/// over the inputs that reach each output position.
fn linear(layer: &Layer, layer_number: usize, x: &Field) -> Field {
    let law = layer.weight_law(layer_number);
    let v = law.variance;
    let b2 = layer.bias_law().variance;
    let (c_in, h_in, w_in) = positions(layer.input);
    let (_, h_out, w_out) = positions(layer.output);
    let reach = |field: &Vec<f64>| -> Vec<f64> {
        match &layer.kind {
            LayerKind::Dense { .. } => vec![v * c_in as f64 * field.iter().sum::<f64>() + b2],
            LayerKind::Conv {
                kernel, padding, ..
            } => {
                let r = (*kernel / 2) as isize;
                let taps: Vec<(isize, isize)> = if layer.delta_orthogonal {
                    vec![(0, 0)]
                } else {
                    (-r..=r)
                        .flat_map(|dy| (-r..=r).map(move |dx| (dy, dx)))
                        .collect()
                };
                let mut out = vec![0.0; h_out * w_out];
                for y in 0..h_out {
                    for x in 0..w_out {
                        let mut sum = 0.0;
                        for &(dy, dx) in &taps {
                            let (yy, xx) = (y as isize + dy, x as isize + dx);
                            let inside =
                                yy >= 0 && xx >= 0 && yy < h_in as isize && xx < w_in as isize;
                            let (yy, xx) = match padding {
                                Padding::Circular => {
                                    (yy.rem_euclid(h_in as isize), xx.rem_euclid(w_in as isize))
                                }
                                Padding::Zero if inside => (yy, xx),
                                Padding::Zero => continue,
                            };
                            sum += field[yy as usize * w_in + xx as usize];
                        }
                        out[y * w_out + x] = v * c_in as f64 * sum + b2;
                    }
                }
                out
            }
            LayerKind::ConvTranspose { kernel, stride, .. } => {
                let mut out = vec![0.0; h_out * w_out];
                for y in 0..h_in {
                    for x in 0..w_in {
                        for ty in 0..*kernel {
                            for tx in 0..*kernel {
                                out[(y * stride + ty) * w_out + x * stride + tx] +=
                                    v * c_in as f64 * field[y * w_in + x];
                            }
                        }
                    }
                }
                out.iter().map(|s| s + b2).collect()
            }
        }
    };
    let q = reach(&x.q);
    let q12 = reach(&x.q12);
    let m = vec![0.0; q.len()];
    Field { q, q12, m }
}

/// phi applied to a Gaussian pre-activation field, minus `shift`.
fn activate(act: &Activation, h: &Field, shift: f64) -> Field {
    let mut out = Field {
        q: Vec::new(),
        q12: Vec::new(),
        m: Vec::new(),
    };
    for p in 0..h.q.len() {
        let (q, q12) = (h.q[p], h.q12[p]);
        let m = gauss::mean(act, q);
        out.q
            .push(gauss::second_moment(act, q) - 2.0 * shift * m + shift * shift);
        out.q12
            .push(gauss::cross_moment(act, q, q, q12) - 2.0 * shift * m + shift * shift);
        out.m.push(m - shift);
    }
    out
}

/// A plain layer: (pre, post, E phi'^2 per position, shift). A uniform
/// bias (torch-default, siren) leaves h non-Gaussian: its moments average
/// over b (`theory::uniform_bias`).
fn plain(
    layer: &Layer,
    layer_number: usize,
    x: &Field,
    mean_preserving: bool,
) -> (Field, Field, Vec<f64>, f64) {
    let h = linear(layer, layer_number, x);
    let bias = layer.bias_law();
    if bias.dist == Dist::Uniform && bias.variance > 0.0 {
        return plain_uniform_bias(layer, h, bias.variance, mean_preserving);
    }
    let shift = if mean_preserving {
        gauss::mean(&layer.act, h.q_mean())
    } else {
        0.0
    };
    let post = activate(&layer.act, &h, shift);
    let deriv =
        h.q.iter()
            .map(|q| gauss::deriv_second_moment(&layer.act, *q))
            .collect();
    (h, post, deriv, shift)
}

/// [`plain`] for h = g + b with b ~ U(+-sqrt(3 b2)) per unit, g Gaussian
/// with the field's moments less b2.
fn plain_uniform_bias(
    layer: &Layer,
    h: Field,
    b2: f64,
    mean_preserving: bool,
) -> (Field, Field, Vec<f64>, f64) {
    let beta = (3.0 * b2).sqrt();
    let moments: Vec<_> = (0..h.q.len())
        .map(|p| uniform_bias_moments(&layer.act, h.q[p] - b2, h.q12[p] - b2, beta))
        .collect();
    let shift = if mean_preserving {
        moments.iter().map(|m| m.mean).sum::<f64>() / moments.len() as f64
    } else {
        0.0
    };
    let post = Field {
        q: moments
            .iter()
            .map(|m| m.second - 2.0 * shift * m.mean + shift * shift)
            .collect(),
        q12: moments
            .iter()
            .map(|m| m.cross - 2.0 * shift * m.mean + shift * shift)
            .collect(),
        m: moments.iter().map(|m| m.mean - shift).collect(),
    };
    let deriv = moments.iter().map(|m| m.deriv_second).collect();
    (h, post, deriv, shift)
}

/// E||J t||^2 / ||t||^2 through a plain layer for a spatially homogeneous
/// tangent t: the units reaching each output times v (the unit field
/// through the linear map, without bias), times E[phi'^2] there, summed over
/// the outputs and divided by the inputs.
fn forward_total(layer: &Layer, layer_number: usize, deriv: &[f64]) -> f64 {
    let (_, h, w) = positions(layer.input);
    let b2 = layer.bias_law().variance;
    let reach = linear(layer, layer_number, &Field::uniform(h * w, 1.0, 0.0, 0.0));
    let per_output: f64 = reach
        .q
        .iter()
        .zip(deriv)
        .map(|(r, d)| (r - b2) * d)
        .sum::<f64>()
        / deriv.len() as f64;
    per_output * layer.output.units() as f64 / layer.input.units() as f64
}

/// sigma^2 of the backward direction: how many outputs each input unit
/// reaches, times v.
fn sigma_back2(layer: &Layer, layer_number: usize) -> f64 {
    let v = layer.weight_law(layer_number).variance;
    match (&layer.kind, layer.output) {
        (LayerKind::Dense { width }, _) => *width as f64 * v,
        (LayerKind::Conv { kernel, .. }, Shape::Image(c, ..)) => {
            if layer.delta_orthogonal {
                c as f64 * v
            } else {
                (c * kernel * kernel) as f64 * v
            }
        }
        (LayerKind::ConvTranspose { kernel, .. }, Shape::Image(c, ..)) => {
            (c * kernel * kernel) as f64 * v
        }
        _ => unreachable!(),
    }
}

/// The rows of `arch`, 0..=L (row 0: the inputs, q0 per entry, pairs at c0).
pub fn arch_table(arch: &Architecture, q0: f64, c0: f64, mean_preserving: bool) -> Vec<ArchRow> {
    let (_, h, w) = positions(arch.input);
    let input = Field::uniform(h * w, q0, c0 * q0, 0.0);
    let mut rows = vec![ArchRow {
        pre: input.clone(),
        post: input.clone(),
        deriv_sq: vec![1.0; h * w],
        backward_factor: f64::NAN,
        forward_factor: f64::NAN,
        back_linear: f64::NAN,
        shifts: Vec::new(),
    }];
    let mut x = input;
    let mut layer_number = 0;
    for block in &arch.blocks {
        let row = match block {
            Block::Layer(layer) => {
                layer_number += 1;
                let (pre, post, deriv, shift) = plain(layer, layer_number, &x, mean_preserving);
                let chi = Field::average(&deriv);
                ArchRow {
                    forward_factor: forward_total(layer, layer_number, &deriv),
                    backward_factor: sigma_back2(layer, layer_number) * chi,
                    back_linear: sigma_back2(layer, layer_number),
                    pre,
                    post,
                    deriv_sq: deriv,
                    shifts: vec![shift],
                }
            }
            Block::Residual { branch, alpha } => {
                let mut f = x.clone();
                let mut chi = 1.0;
                let mut chi_back = 1.0;
                let mut shifts = Vec::new();
                for layer in branch {
                    layer_number += 1;
                    let (_, post, deriv, shift) = plain(layer, layer_number, &f, mean_preserving);
                    shifts.push(shift);
                    let d = Field::average(&deriv);
                    chi *= forward_total(layer, layer_number, &deriv);
                    chi_back *= sigma_back2(layer, layer_number) * d;
                    f = post;
                }
                let a = *alpha;
                let y = Field {
                    q: (0..x.q.len())
                        .map(|p| x.q[p] + a * a * f.q[p] + 2.0 * a * x.m[p] * f.m[p])
                        .collect(),
                    q12: (0..x.q.len())
                        .map(|p| {
                            x.q12[p] + a * a * f.q12[p] + a * (x.m[p] * f.m[p] + f.m[p] * x.m[p])
                        })
                        .collect(),
                    m: (0..x.q.len()).map(|p| x.m[p] + a * f.m[p]).collect(),
                };
                ArchRow {
                    pre: y.clone(),
                    post: y,
                    deriv_sq: vec![1.0; x.q.len()],
                    forward_factor: 1.0 + a * a * chi,
                    backward_factor: 1.0 + a * a * chi_back,
                    back_linear: 1.0 + a * a * chi_back,
                    shifts,
                }
            }
            Block::Highway {
                transform,
                gate,
                gate_bias,
            } => {
                layer_number += 1;
                let (_, hh, deriv, _) = plain(transform, layer_number, &x, false);
                layer_number += 1;
                let g = linear(gate, layer_number, &x);
                let (qx, q12x, mx) = (x.q[0], x.q12[0], x.m[0]);
                let (qg, q12g) = (g.q[0], g.q12[0]);
                let shifted = |f: fn(f64) -> f64| move |u: f64| f(u + gate_bias);
                let t = |u: f64| sigmoid(u);
                let one_minus = |u: f64| 1.0 - sigmoid(u);
                let t1 = gauss::expect_1d(shifted(t), qg);
                let t2 = gauss::expect_1d(|u| sigmoid(u + gate_bias).powi(2), qg);
                let u2 = gauss::expect_1d(|u| (1.0 - sigmoid(u + gate_bias)).powi(2), qg);
                let tu = gauss::expect_1d(
                    |u| sigmoid(u + gate_bias) * (1.0 - sigmoid(u + gate_bias)),
                    qg,
                );
                let tt12 = gauss::expect_2d(shifted(t), shifted(t), qg, qg, q12g);
                let uu12 = gauss::expect_2d(shifted(one_minus), shifted(one_minus), qg, qg, q12g);
                let tu12 = gauss::expect_2d(shifted(t), shifted(one_minus), qg, qg, q12g);
                let (qh, q12h, mh) = (hh.q[0], hh.q12[0], hh.m[0]);
                let y = Field {
                    q: vec![t2 * qh + u2 * qx + 2.0 * tu * mh * mx],
                    q12: vec![tt12 * q12h + uu12 * q12x + 2.0 * tu12 * mh * mx],
                    m: vec![t1 * mh + (1.0 - t1) * mx],
                };
                // d y / d x: (1 - T) + T phi'(h) W_H + sigmoid'(g) (H - x) W_T, the
                // three terms uncorrelated at infinite width
                let sig_d2 = gauss::expect_1d(
                    |u| (sigmoid(u + gate_bias) * (1.0 - sigmoid(u + gate_bias))).powi(2),
                    qg,
                );
                let h_minus_x2 = qh - 2.0 * mh * mx + qx;
                let d = deriv[0];
                let forward = u2
                    + t2 * transform.sigma_w2(layer_number - 1) * d
                    + sig_d2 * gate.sigma_w2(layer_number) * h_minus_x2;
                let backward = u2
                    + t2 * sigma_back2(transform, layer_number - 1) * d
                    + sig_d2 * sigma_back2(gate, layer_number) * h_minus_x2;
                ArchRow {
                    pre: y.clone(),
                    post: y,
                    deriv_sq: vec![1.0],
                    forward_factor: forward,
                    backward_factor: backward,
                    back_linear: backward,
                    shifts: vec![0.0, 0.0],
                }
            }
        };
        x = row.post.clone();
        rows.push(row);
    }
    rows
}
