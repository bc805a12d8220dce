//! Mean-field theory through the blocks of an architecture file: dense and
//! convolution layers, transposed convolutions, residual and highway
//! blocks, and the mean-preserving bias.
//!
//! The state between blocks is, per spatial position p (one position for a
//! vector), the second moment q(p) of one input's units, the cross moment
//! q12(p) of the two inputs of a pair, the cross moment q_ab(p) of two
//! independent inputs (different pairs; also, with circular padding, of two
//! positions of one input, whose covariance starts at 0 and follows the same
//! map: the Signal Propagation Plot's channel means come from it,
//! `spp_moments`), and the mean m(p). Weights are
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
//! Normalisations (infinite width): layer-norm divides each input by its
//! own statistics over its units, which concentrate at the position
//! averages m_bar and v = q_bar - m_bar^2, so y = (x - m_bar) / sqrt(v + eps)
//! (q_bar of y is v / (v + eps), 1 up to eps); rms-norm divides by
//! sqrt(q_bar + eps). Both map a Gaussian field to a Gaussian field. Batch-
//! norm's statistics run over the B inputs of the batch (and the
//! positions), which do not concentrate at finite B: its output has, per
//! channel, mean 0 and second moment v / (v + eps) exactly, so q_y = 1 up to
//! eps whatever comes in, but it is not Gaussian and the pair's cross moment
//! has no closed form (NaN). When its input is a symmetric Gaussian (m = 0),
//! so is the law of y symmetric, and a positively homogeneous phi then has
//! E[phi(y)^2] = (a_+^2 + a_-^2) / 2 E[y^2] and an odd phi has mean 0:
//! those are exact; every other moment after batch-norm is NaN. An
//! activation applied to a non-Gaussian field (after layer-norm of an
//! activation's output, say) has no closed form either (NaN).
//!
//! Residual blocks: y = x + alpha F(x) with F independent of x unit by unit,
//! so q_y = q_x + alpha^2 q_F + 2 alpha m_x m_F. Highway blocks:
//! y = T H + (1 - T) x with T = sigmoid(g), g ~ N(b_T, sigma_T^2 q_x) and
//! H = phi(h) driven by independent weights.

use super::gauss;
use super::uniform_bias::uniform_bias_moments;
use crate::model::activation::{Activation, sigmoid};
use crate::model::arch::{
    Architecture, Block, Layer, LayerKind, NormKind, Padding, ScaleFactor, Shape,
};
use crate::model::init::Dist;

/// Per-position moments of one input's units (and of a pair).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub q: Vec<f64>,
    pub q12: Vec<f64>,
    /// on sequences: E[x_t x_s] for two different tokens of one input, and
    /// k12 the same for tokens of the pair's two inputs (tokens are
    /// exchangeable: every position has the same); unused elsewhere
    pub k: Vec<f64>,
    pub k12: Vec<f64>,
    /// E[x_a x_b] for independent inputs a, b: the squared channel mean's
    /// expectation over networks, at infinite batch
    pub q_ab: Vec<f64>,
    pub m: Vec<f64>,
    /// the units are Gaussian at infinite width (inputs, linear maps of
    /// anything, sums of independent Gaussians): an activation's moments
    /// are Gaussian expectations only then
    pub gaussian: bool,
    /// two different positions of one input (or of a pair) are as two
    /// independent inputs, covariance q_ab: true from iid inputs through
    /// convolutions and pooling with disjoint windows (circular padding
    /// keeps the field translation invariant), false after overlapping
    /// windows or a transposed convolution
    pub positions_independent: bool,
}

impl Field {
    fn uniform(positions: usize, q: f64, q12: f64, m: f64) -> Field {
        Field {
            q: vec![q; positions],
            q12: vec![q12; positions],
            k: vec![0.0; positions],
            k12: vec![0.0; positions],
            q_ab: vec![0.0; positions],
            m: vec![m; positions],
            gaussian: true,
            positions_independent: true,
        }
    }

    /// No prediction (NaN) at any of `positions` positions.
    fn unknown(positions: usize) -> Field {
        Field {
            q: vec![f64::NAN; positions],
            q12: vec![f64::NAN; positions],
            k: vec![f64::NAN; positions],
            k12: vec![f64::NAN; positions],
            q_ab: vec![f64::NAN; positions],
            m: vec![f64::NAN; positions],
            gaussian: false,
            positions_independent: false,
        }
    }

    /// The same value at every position, for q, q12 and q_ab.
    pub fn is_uniform(&self) -> bool {
        let uniform = |v: &[f64]| {
            v.iter()
                .all(|x| (x - v[0]).abs() <= 1e-12 * v[0].abs().max(1e-300))
        };
        uniform(&self.q) && uniform(&self.q12) && uniform(&self.q_ab)
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
    /// a residual block's branch output F(x), before alpha
    pub branch: Option<Field>,
    /// per layer of the block, a scale layer's factor (1 elsewhere):
    /// 1/sqrt(q) of its input where the file says so
    pub factors: Vec<f64>,
}

/// The Signal Propagation Plot's statistics of a field (timm's
/// `avg_sq_ch_mean` and `avg_ch_var`) over N = B P samples per channel (B
/// inputs, P positions): the mean over channels of the squared channel mean,
/// E = (q + q12) / N + (1 - 2/N) q_ab (each sample, its pair partner at the
/// same position, and N - 2 samples independent of it), and of the unbiased
/// channel variance, N / (N - 1) (q - E). Exact at infinite width for a
/// field that is the same at every position (vectors, circular padding);
/// NaN where positions differ (zero padding, strides), whose cross-position
/// covariances are not tracked.
pub fn spp_moments(f: &Field, batch: usize) -> (f64, f64) {
    let (q, q12, q_ab) = (f.q_mean(), Field::average(&f.q12), Field::average(&f.q_ab));
    if !(f.is_uniform() && f.positions_independent) {
        return (f64::NAN, f64::NAN);
    }
    let n = (batch * f.q.len()) as f64;
    let mean2 = (q + q12) / n + (1.0 - 2.0 / n) * q_ab;
    (mean2, n / (n - 1.0) * (q - mean2))
}

fn positions(shape: Shape) -> (usize, usize, usize) {
    shape.dims()
}

/// The pre-activation moments of `layer` given its input's field: the sums
/// over the inputs that reach each output position.
fn linear(layer: &Layer, layer_number: usize, x: &Field) -> Field {
    let law = layer.weight_law(layer_number);
    let v = law.variance;
    let b2 = layer.bias_law().variance;
    let (c_in, h_in, w_in) = positions(layer.input);
    let (_, h_out, w_out) = positions(layer.output);
    // per output position: the sum of `field` over the input positions
    // that reach it, per input channel (dense and conv layers). A dense
    // layer's input is flattened: its c_in counts every unit, so it takes
    // the mean over the positions of an image's field
    let reach_sum = |field: &Vec<f64>| -> Vec<f64> {
        match &layer.kind {
            // on a sequence each token's own units
            LayerKind::Dense { .. } if layer.input.is_sequence() => field.clone(),
            LayerKind::Dense { .. } => vec![field.iter().sum::<f64>() / field.len() as f64],
            LayerKind::Conv {
                kernel,
                padding,
                stride,
                ..
            } => {
                let r = (*kernel / 2) as isize;
                let s = *stride as isize;
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
                            let (yy, xx) = (s * y as isize + dy, s * x as isize + dx);
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
                        out[y * w_out + x] = sum;
                    }
                }
                out
            }
            _ => unreachable!("dense and conv layers"),
        }
    };
    // Weight standardisation makes each output's fan-in weights sum to 0:
    // E[h_a h_b | x] = v (sum_j x_aj x_bj - (sum_j x_aj)(sum_j x_bj) / N),
    // and at infinite width (sum_j x_j)^2 / N = C_in (sum over the reached
    // positions of m)^2 / K, K the taps (positions, for a dense layer):
    // the mean shift that WS removes
    let mean_shift: Vec<f64> = match (&layer.kind, layer.standardise) {
        (LayerKind::Dense { .. } | LayerKind::Conv { .. }, Some(_)) => {
            let taps = match &layer.kind {
                LayerKind::Conv { kernel, .. } => (kernel * kernel) as f64,
                _ => (h_in * w_in) as f64,
            };
            reach_sum(&x.m).iter().map(|s| s * s / taps).collect()
        }
        _ => vec![0.0; h_out * w_out],
    };
    let reach = |field: &Vec<f64>| -> Vec<f64> {
        match &layer.kind {
            LayerKind::Dense { .. } | LayerKind::Conv { .. } => reach_sum(field)
                .iter()
                .zip(&mean_shift)
                .map(|(sum, shift)| v * c_in as f64 * (sum - shift) + b2)
                .collect(),
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
            LayerKind::Norm { .. }
            | LayerKind::AvgPool { .. }
            | LayerKind::Scale { .. }
            | LayerKind::Attention(_) => {
                unreachable!(
                    "normalisations, pooling, scales and attention are not random linear maps"
                )
            }
        }
    };
    let q = reach(&x.q);
    let q12 = reach(&x.q12);
    let q_ab = reach(&x.q_ab);
    // a token's covariance with another token maps like the pair's at one
    // position (a dense layer acts on every token alike)
    let (k, k12) = (reach(&x.k), reach(&x.k12));
    let m = vec![0.0; q.len()];
    Field {
        q,
        q12,
        k,
        k12,
        q_ab,
        m,
        gaussian: true,
        // a dense layer's output has one position; a transposed
        // convolution's positions differ by their phase modulo the stride
        positions_independent: match &layer.kind {
            LayerKind::Dense { .. } if layer.input.is_sequence() => x.positions_independent,
            LayerKind::Dense { .. } => true,
            LayerKind::ConvTranspose { .. } => false,
            _ => x.positions_independent,
        },
    }
}

/// An attention layer's output field. Exact at infinite width where the
/// mixing is closed-form: with Value-SkipInit's alpha I + beta A (He et al.
/// 2023; alpha 0, beta 1 by default) and A uniform, A_ts = 1/T (zero
/// queries, or temperature 0; not causal), or beta = 0 (any A), every
/// token's output is W_o (alpha v_t + beta v_bar), v_bar the mean over tokens
/// of v_s = W_v x_s, so with g = (v_o H d_v)(v_v d) and
/// m = (q + (T - 1) k) / T
///   q_h = g (alpha^2 q + (2 alpha beta + beta^2) m),
///   k_h = g (alpha^2 k + (2 alpha beta + beta^2) m),
/// and alike across the pair with q12, k12 (Noci et al. 2022's uniform
/// attention at alpha = 0: all tokens equal). Otherwise the scores tau q_t .
/// k_s are O(1) random at infinite width and the field is not closed-form
/// here: NaN.
fn attention(layer: &Layer, layer_number: usize, x: &Field) -> Field {
    let LayerKind::Attention(a) = &layer.kind else {
        unreachable!("an attention layer")
    };
    let n = x.q.len();
    let (alpha, beta) = (a.identity_mix, a.attention_mix);
    let uniform = (a.zero_queries || a.temperature == 0.0) && !a.causal;
    if !(uniform || beta == 0.0) || !x.is_uniform() {
        return Field::unknown(n);
    }
    let (_, _, tokens) = layer.input.dims();
    let t = tokens as f64;
    let [_, _, value, output] = a.matrices(layer.input.channels());
    let gain = layer.matrix_law(layer_number, &value).variance
        * value.cols as f64
        * layer.matrix_law(layer_number, &output).variance
        * output.cols as f64;
    // the covariances (same token, another token) of the mixed values
    let mixed = |own: f64, other: f64| {
        let m = (own + (t - 1.0) * other) / t;
        let through_mean = 2.0 * alpha * beta + beta * beta;
        (
            gain * (alpha * alpha * own + through_mean * m),
            gain * (alpha * alpha * other + through_mean * m),
        )
    };
    let (q, k) = mixed(x.q[0], x.k[0]);
    let (q12, k12) = mixed(x.q12[0], x.k12[0]);
    Field {
        q: vec![q; n],
        q12: vec![q12; n],
        k: vec![k; n],
        k12: vec![k12; n],
        // independent inputs: every token pair has covariance q_ab
        q_ab: vec![gain * (alpha + beta).powi(2) * x.q_ab[0]; n],
        m: vec![0.0; n],
        gaussian: true,
        positions_independent: false,
    }
}

/// A scale layer's factor given its input's field (1 for other layers).
pub fn scale_factor(layer: &Layer, x: &Field) -> f64 {
    match layer.kind {
        LayerKind::Scale {
            factor: ScaleFactor::Value(v),
        } => v,
        LayerKind::Scale {
            factor: ScaleFactor::InverseRootQ,
        } => 1.0 / x.q_mean().sqrt(),
        _ => 1.0,
    }
}

/// y = f x: second moments times f^2, means times f.
fn scaled(f: f64, x: &Field) -> Field {
    let times = |v: &[f64], by: f64| v.iter().map(|e| e * by).collect();
    Field {
        q: times(&x.q, f * f),
        q12: times(&x.q12, f * f),
        k: times(&x.k, f * f),
        k12: times(&x.k12, f * f),
        q_ab: times(&x.q_ab, f * f),
        m: times(&x.m, f),
        gaussian: x.gaussian,
        positions_independent: x.positions_independent,
    }
}

/// Average pooling of a field that is the same at every position, whose
/// positions are as independent inputs: a window's mean of K = kh kw
/// values has q / K + (1 - 1/K) q_ab (and the same with q12 for the pair;
/// q_ab and m stay). Disjoint windows (stride >= kernel) keep the positions
/// independent; overlapping ones do not. NaN where the field differs by
/// position (its cross-position covariances are not tracked).
fn pooled(kh: usize, kw: usize, stride: usize, positions: usize, x: &Field) -> Field {
    let n = positions;
    if !(x.is_uniform() && x.positions_independent) {
        return Field {
            q: vec![f64::NAN; n],
            q12: vec![f64::NAN; n],
            k: vec![f64::NAN; n],
            k12: vec![f64::NAN; n],
            q_ab: vec![f64::NAN; n],
            m: vec![f64::NAN; n],
            gaussian: x.gaussian,
            positions_independent: false,
        };
    }
    let k = (kh * kw) as f64;
    let (q, q12, q_ab, m) = (x.q[0], x.q12[0], x.q_ab[0], x.m[0]);
    Field {
        q: vec![q / k + (1.0 - 1.0 / k) * q_ab; n],
        q12: vec![q12 / k + (1.0 - 1.0 / k) * q_ab; n],
        // pooling takes images, whose tokens are not tracked
        k: vec![f64::NAN; n],
        k12: vec![f64::NAN; n],
        q_ab: vec![q_ab; n],
        m: vec![m; n],
        gaussian: x.gaussian,
        // one output position (global pooling) has no pair to correlate
        positions_independent: (stride >= kh && stride >= kw) || n == 1,
    }
}

/// A normalisation's output field from its input's (see the module's
/// comment): layer-norm and rms-norm exactly at infinite width; batch-norm
/// q = v / (v + eps) per position, m = 0, the cross moment NaN.
fn normalised(kind: NormKind, eps: f64, x: &Field) -> Field {
    let (q_bar, m_bar) = (x.q_mean(), x.m_mean());
    match kind {
        NormKind::LayerNorm => {
            let d = q_bar - m_bar * m_bar + eps;
            let centred = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .zip(&x.m)
                    .map(|(q, m)| (q - 2.0 * m_bar * m + m_bar * m_bar) / d)
                    .collect()
            };
            Field {
                q: centred(&x.q),
                q12: centred(&x.q12),
                k: centred(&x.k),
                k12: centred(&x.k12),
                q_ab: centred(&x.q_ab),
                m: x.m.iter().map(|m| (m - m_bar) / d.sqrt()).collect(),
                gaussian: x.gaussian,
                positions_independent: x.positions_independent,
            }
        }
        NormKind::RmsNorm => {
            let d = q_bar + eps;
            Field {
                q: x.q.iter().map(|q| q / d).collect(),
                q12: x.q12.iter().map(|q| q / d).collect(),
                k: x.k.iter().map(|q| q / d).collect(),
                k12: x.k12.iter().map(|q| q / d).collect(),
                q_ab: x.q_ab.iter().map(|q| q / d).collect(),
                m: x.m.iter().map(|m| m / d.sqrt()).collect(),
                gaussian: x.gaussian,
                positions_independent: x.positions_independent,
            }
        }
        NormKind::BatchNorm => {
            // each channel's variance over the batch and positions, at
            // infinite batch: q - q_ab (its mean's square is q_ab)
            let n = x.q.len();
            let v = x.q_mean() - Field::average(&x.q_ab);
            if x.gaussian {
                // given the weights a channel is N(mu_c, q - q_ab) over the
                // inputs: y = (x - mu_c) / sqrt(q - q_ab + eps) is Gaussian,
                // its channel means are gone
                let d = v + eps;
                Field {
                    q: x.q.iter().zip(&x.q_ab).map(|(q, s)| (q - s) / d).collect(),
                    q12: x
                        .q12
                        .iter()
                        .zip(&x.q_ab)
                        .map(|(q, s)| (q - s) / d)
                        .collect(),
                    k: x.k.iter().zip(&x.q_ab).map(|(q, s)| (q - s) / d).collect(),
                    k12: x
                        .k12
                        .iter()
                        .zip(&x.q_ab)
                        .map(|(q, s)| (q - s) / d)
                        .collect(),
                    q_ab: vec![0.0; n],
                    m: vec![0.0; n],
                    gaussian: true,
                    positions_independent: x.positions_independent,
                }
            } else {
                // a channel's variance over inputs depends on its weights:
                // only q = 1 (up to eps) is known
                Field {
                    q: vec![v / (v + eps); n],
                    q12: vec![f64::NAN; n],
                    k: vec![f64::NAN; n],
                    k12: vec![f64::NAN; n],
                    q_ab: vec![f64::NAN; n],
                    m: vec![f64::NAN; n],
                    gaussian: false,
                    positions_independent: false,
                }
            }
        }
    }
}

/// A normalisation layer: (pre, post, E phi'^2 per position, shift), as
/// [`plain`] (an activation of a non-Gaussian y has no closed form: NaN).
fn norm_plain(
    layer: &Layer,
    kind: NormKind,
    eps: f64,
    x: &Field,
    mean_preserving: bool,
) -> (Field, Field, Vec<f64>, f64) {
    let y = normalised(kind, eps, x);
    let act = &layer.act;
    let shift = if mean_preserving {
        gauss::mean(act, y.q_mean())
    } else {
        0.0
    };
    let post = activate(act, &y, shift);
    let deriv = if y.gaussian || *act == Activation::Identity {
        deriv_field(act, &y)
    } else {
        vec![f64::NAN; y.q.len()]
    };
    (y, post, deriv, shift)
}

/// E[phi'(h)^2] per position (NaN where q is).
fn deriv_field(act: &Activation, h: &Field) -> Vec<f64> {
    h.q.iter()
        .map(|&q| {
            if q.is_nan() {
                f64::NAN
            } else {
                gauss::deriv_second_moment(act, q)
            }
        })
        .collect()
}

/// phi applied to a Gaussian pre-activation field, minus `shift` (NaN for
/// a non-Gaussian field, unless phi is the identity).
fn activate(act: &Activation, h: &Field, shift: f64) -> Field {
    if *act == Activation::Identity {
        let shifted = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&h.m)
                .map(|(q, m)| q - 2.0 * shift * m + shift * shift)
                .collect()
        };
        return Field {
            q: shifted(&h.q),
            q12: shifted(&h.q12),
            k: shifted(&h.k),
            k12: shifted(&h.k12),
            q_ab: shifted(&h.q_ab),
            m: h.m.iter().map(|m| m - shift).collect(),
            gaussian: h.gaussian,
            positions_independent: h.positions_independent,
        };
    }
    if !h.gaussian {
        let n = h.q.len();
        return Field {
            q: vec![f64::NAN; n],
            q12: vec![f64::NAN; n],
            k: vec![f64::NAN; n],
            k12: vec![f64::NAN; n],
            q_ab: vec![f64::NAN; n],
            m: vec![f64::NAN; n],
            gaussian: false,
            positions_independent: false,
        };
    }
    let mut out = Field {
        q: Vec::new(),
        q12: Vec::new(),
        k: Vec::new(),
        k12: Vec::new(),
        q_ab: Vec::new(),
        m: Vec::new(),
        gaussian: false,
        positions_independent: h.positions_independent,
    };
    for p in 0..h.q.len() {
        let (q, q12) = (h.q[p], h.q12[p]);
        if q.is_nan() {
            // no closed form upstream (the Gaussian moments would read NaN as 0)
            out.q.push(f64::NAN);
            out.q12.push(f64::NAN);
            out.k.push(f64::NAN);
            out.k12.push(f64::NAN);
            out.q_ab.push(f64::NAN);
            out.m.push(f64::NAN);
            continue;
        }
        let m = gauss::mean(act, q);
        out.q
            .push(gauss::second_moment(act, q) - 2.0 * shift * m + shift * shift);
        out.q12
            .push(gauss::cross_moment(act, q, q, q12) - 2.0 * shift * m + shift * shift);
        out.q_ab
            .push(gauss::cross_moment(act, q, q, h.q_ab[p]) - 2.0 * shift * m + shift * shift);
        for (to, cov) in [(&mut out.k, h.k[p]), (&mut out.k12, h.k12[p])] {
            to.push(if cov.is_nan() {
                f64::NAN
            } else {
                gauss::cross_moment(act, q, q, cov) - 2.0 * shift * m + shift * shift
            });
        }
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
    if let LayerKind::Norm { kind, eps, .. } = layer.kind {
        return norm_plain(layer, kind, eps, x, mean_preserving);
    }
    if layer.is_attention() {
        let h = attention(layer, layer_number, x);
        let post = activate(&layer.act, &h, 0.0);
        let deriv = deriv_field(&layer.act, &h);
        return (h, post, deriv, 0.0);
    }
    let h = match layer.kind {
        LayerKind::AvgPool { kh, kw, stride } => {
            let (_, h_out, w_out) = positions(layer.output);
            pooled(kh, kw, stride, h_out * w_out, x)
        }
        LayerKind::Scale { .. } => scaled(scale_factor(layer, x), x),
        _ => linear(layer, layer_number, x),
    };
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
    let deriv = deriv_field(&layer.act, &h);
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
        q_ab: (0..h.q.len())
            .map(|p| {
                let independent =
                    uniform_bias_moments(&layer.act, h.q[p] - b2, h.q_ab[p] - b2, beta);
                independent.cross - 2.0 * shift * moments[p].mean + shift * shift
            })
            .collect(),
        q12: moments
            .iter()
            .map(|m| m.cross - 2.0 * shift * m.mean + shift * shift)
            .collect(),
        k: (0..h.q.len())
            .map(|p| {
                let other = uniform_bias_moments(&layer.act, h.q[p] - b2, h.k[p] - b2, beta);
                other.cross - 2.0 * shift * moments[p].mean + shift * shift
            })
            .collect(),
        k12: (0..h.q.len())
            .map(|p| {
                let other = uniform_bias_moments(&layer.act, h.q[p] - b2, h.k12[p] - b2, beta);
                other.cross - 2.0 * shift * moments[p].mean + shift * shift
            })
            .collect(),
        m: moments.iter().map(|m| m.mean - shift).collect(),
        gaussian: false,
        positions_independent: h.positions_independent,
    };
    let deriv = moments.iter().map(|m| m.deriv_second).collect();
    (h, post, deriv, shift)
}

/// E||J t||^2 / ||t||^2 through a plain layer for a spatially homogeneous
/// tangent t: the units reaching each output times v (the unit field
/// through the linear map, without bias), times E[phi'^2] there, summed over
/// the outputs and divided by the inputs.
fn forward_total(layer: &Layer, layer_number: usize, deriv: &[f64], x: &Field) -> f64 {
    if layer.is_attention() {
        return f64::NAN;
    }
    if layer.is_norm() {
        return norm_gain(layer, x) * Field::average(deriv);
    }
    if let LayerKind::AvgPool { kh, kw, .. } = layer.kind {
        return pool_gain(layer, kh, kw) * Field::average(deriv);
    }
    if let LayerKind::Scale { .. } = layer.kind {
        return scale_factor(layer, x).powi(2) * Field::average(deriv);
    }
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
fn sigma_back2(layer: &Layer, layer_number: usize, x: &Field) -> f64 {
    let v = layer.weight_law(layer_number).variance;
    match (&layer.kind, layer.output) {
        (LayerKind::Norm { .. }, _) => norm_gain(layer, x),
        (LayerKind::AvgPool { kh, kw, .. }, _) => pool_gain(layer, *kh, *kw),
        (LayerKind::Scale { .. }, _) => scale_factor(layer, x).powi(2),
        (LayerKind::Attention(_), _) => f64::NAN,
        (LayerKind::Dense { width }, _) => *width as f64 * v,
        (LayerKind::Conv { kernel, stride, .. }, Shape::Image(c, ..)) => {
            // an input unit reaches k^2 / s^2 output positions on average
            let per_stride = (stride * stride) as f64;
            if layer.delta_orthogonal {
                c as f64 * v / per_stride
            } else {
                (c * kernel * kernel) as f64 * v / per_stride
            }
        }
        (LayerKind::ConvTranspose { kernel, .. }, Shape::Image(c, ..)) => {
            (c * kernel * kernel) as f64 * v
        }
        _ => unreachable!(),
    }
}

/// E||P t||^2 / ||t||^2 of average pooling for t iid over units (and the
/// backward factor alike): each output is the mean of K = kh kw of them,
/// n_out / (n_in K).
fn pool_gain(layer: &Layer, kh: usize, kw: usize) -> f64 {
    layer.output.units() as f64 / (layer.input.units() * kh * kw) as f64
}

/// E||J t||^2 / ||t||^2 of a normalisation (its Jacobian is symmetric, so
/// forward and backward alike) for a tangent t independent of the signal:
/// J = (I - 1 1^T / n - y y^T / n) / sigma projects out the mean and y,
/// two of each input's n dimensions (rms-norm: y only), so the factor is
/// (1 - 2/n) / (v + eps) (rms-norm (1 - 1/n) / (q_bar + eps)). Batch-norm's
/// 1/sigma^2 is averaged over channels whose variance over a finite batch
/// is random: no closed form (NaN).
fn norm_gain(layer: &Layer, x: &Field) -> f64 {
    let LayerKind::Norm { kind, eps, .. } = layer.kind else {
        unreachable!("a normalisation")
    };
    let n = layer.input.units() as f64;
    let (q_bar, m_bar) = (x.q_mean(), x.m_mean());
    match kind {
        NormKind::LayerNorm => (1.0 - 2.0 / n) / (q_bar - m_bar * m_bar + eps),
        NormKind::RmsNorm => (1.0 - 1.0 / n) / (q_bar + eps),
        NormKind::BatchNorm => f64::NAN,
    }
}

/// The rows of `arch`, 0..=L (row 0: the inputs, q0 per entry, pairs at c0).
pub fn arch_table(arch: &Architecture, q0: f64, c0: f64, mean_preserving: bool) -> Vec<ArchRow> {
    arch_table_with_tokens(arch, q0, c0, 0.0, mean_preserving)
}

/// [`arch_table`] with a sequence's tokens at correlation `token_c0`
/// (--token-c0): E[x_t x_s] = token_c0 q0 within an input, token_c0 c0 q0
/// across a pair's inputs at different positions (`sim::cpu::dense::inputs`).
pub fn arch_table_with_tokens(
    arch: &Architecture,
    q0: f64,
    c0: f64,
    token_c0: f64,
    mean_preserving: bool,
) -> Vec<ArchRow> {
    let (_, h, w) = positions(arch.input);
    let mut input = Field::uniform(h * w, q0, c0 * q0, 0.0);
    if arch.input.is_sequence() {
        input.k = vec![token_c0 * q0; h * w];
        input.k12 = vec![token_c0 * c0 * q0; h * w];
        // a sequence's tokens may be correlated, unlike the independent
        // inputs `positions_independent` promises
        input.positions_independent = false;
    }
    let mut rows = vec![ArchRow {
        pre: input.clone(),
        post: input.clone(),
        deriv_sq: vec![1.0; h * w],
        backward_factor: f64::NAN,
        forward_factor: f64::NAN,
        back_linear: f64::NAN,
        shifts: Vec::new(),
        branch: None,
        factors: Vec::new(),
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
                    forward_factor: forward_total(layer, layer_number, &deriv, &x),
                    backward_factor: sigma_back2(layer, layer_number, &x) * chi,
                    back_linear: sigma_back2(layer, layer_number, &x),
                    pre,
                    post,
                    deriv_sq: deriv,
                    shifts: vec![shift],
                    branch: None,
                    factors: vec![scale_factor(layer, &x)],
                }
            }
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            } => {
                let mut f = x.clone();
                // the forward and backward factors of the branch's layers
                // after the shared ones, and of the shared ones
                let (mut chi, mut chi_back) = (1.0, 1.0);
                let (mut chi_shared, mut chi_back_shared) = (1.0, 1.0);
                let mut z = x.clone();
                let mut shifts = Vec::new();
                let mut factors = Vec::new();
                for (i, layer) in branch.iter().enumerate() {
                    layer_number += 1;
                    let (_, post, deriv, shift) = plain(layer, layer_number, &f, mean_preserving);
                    shifts.push(shift);
                    factors.push(scale_factor(layer, &f));
                    let d = Field::average(&deriv);
                    let forward = forward_total(layer, layer_number, &deriv, &f);
                    let backward = sigma_back2(layer, layer_number, &f) * d;
                    if i < *shared {
                        chi_shared *= forward;
                        chi_back_shared *= backward;
                    } else {
                        chi *= forward;
                        chi_back *= backward;
                    }
                    f = post;
                    if i + 1 == *shared {
                        z = f.clone();
                    }
                }
                let a = *alpha;
                // the shortcut S: x, or the projection of z; and the
                // factors of the whole block (the shared layers carry both
                // paths)
                let (s, forward_factor, backward_factor) = match shortcut {
                    None => (x.clone(), 1.0 + a * a * chi, 1.0 + a * a * chi_back),
                    Some(p) => {
                        layer_number += 1;
                        shifts.push(0.0);
                        factors.push(1.0);
                        let ones = vec![1.0; f.q.len()];
                        let forward = forward_total(p, layer_number, &ones, &z);
                        let backward = sigma_back2(p, layer_number, &z);
                        (
                            linear(p, layer_number, &z),
                            chi_shared * (forward + a * a * chi),
                            chi_back_shared * (backward + a * a * chi_back),
                        )
                    }
                };
                // m_S m_F, 0 where either is 0 (a mean without closed form
                // after batch-norm, NaN, does not matter against a zero one)
                let mm = |p: usize| {
                    if s.m[p] == 0.0 || f.m[p] == 0.0 {
                        0.0
                    } else {
                        s.m[p] * f.m[p]
                    }
                };
                let n = f.q.len();
                let y = Field {
                    q: (0..n)
                        .map(|p| s.q[p] + a * a * f.q[p] + 2.0 * a * mm(p))
                        .collect(),
                    q12: (0..n)
                        .map(|p| s.q12[p] + a * a * f.q12[p] + 2.0 * a * mm(p))
                        .collect(),
                    k: (0..n)
                        .map(|p| s.k[p] + a * a * f.k[p] + 2.0 * a * mm(p))
                        .collect(),
                    k12: (0..n)
                        .map(|p| s.k12[p] + a * a * f.k12[p] + 2.0 * a * mm(p))
                        .collect(),
                    q_ab: (0..n)
                        .map(|p| s.q_ab[p] + a * a * f.q_ab[p] + 2.0 * a * mm(p))
                        .collect(),
                    m: (0..n).map(|p| s.m[p] + a * f.m[p]).collect(),
                    gaussian: s.gaussian && f.gaussian,
                    positions_independent: s.positions_independent && f.positions_independent,
                };
                ArchRow {
                    pre: y.clone(),
                    post: y,
                    deriv_sq: vec![1.0; n],
                    forward_factor,
                    backward_factor,
                    back_linear: backward_factor,
                    shifts,
                    factors,
                    branch: Some(f),
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
                    // highway blocks take vectors, which have no tokens
                    k: vec![f64::NAN],
                    k12: vec![f64::NAN],
                    // not worked out for highway blocks
                    q_ab: vec![f64::NAN],
                    m: vec![t1 * mh + (1.0 - t1) * mx],
                    gaussian: false,
                    positions_independent: true,
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
                    + t2 * sigma_back2(transform, layer_number - 1, &x) * d
                    + sig_d2 * sigma_back2(gate, layer_number, &x) * h_minus_x2;
                ArchRow {
                    pre: y.clone(),
                    post: y,
                    deriv_sq: vec![1.0],
                    forward_factor: forward,
                    backward_factor: backward,
                    back_linear: backward,
                    shifts: vec![0.0, 0.0],
                    branch: None,
                    factors: vec![1.0, 1.0],
                }
            }
        };
        x = row.post.clone();
        rows.push(row);
    }
    rows
}
