//! The per-layer mean-field table (Poole et al. 2016, Schoenholz et al.
//! 2017) for any stack of widths and any init scheme, with the exact
//! finite-width law of log q beside it where one exists.
//!
//! Row 0 is the input x_0 (entries of second moment q0, pairs at correlation
//! c0); row l >= 1 is layer l:
//!
//! ```text
//! q_pre[1]   = n_0 v_1 q0 + sb_1
//! q_pre[l+1] = n_l v_{l+1} q_post[l] + sb_{l+1},  q_post[l] = E[phi(sqrt(q_pre[l]) z)^2]
//! q12[l+1]   = n_l v_{l+1} E[phi(u1) phi(u2)] + sb_{l+1},  c_pre[l+1] = q12[l+1] / q_pre[l+1]
//! ```
//!
//! where (u1, u2) have variances `q_pre[l]` and correlation `c_pre[l]` (for
//! l = 0, phi is the identity: the input enters as it is). v_l and sb_l
//! come from `NetworkSpec::weight_law` / `bias_law`, as the engines' do. A
//! uniform bias (torch-default, siren) leaves h non-Gaussian: its rows
//! average the Gaussian moments over b (`theory::uniform_bias`).

use std::collections::HashMap;

use super::finite_width::{ExactRow, exact_rows};
use super::gauss::{cross_moment, deriv_second_moment, mean, one_sided_slopes, second_moment};
use super::uniform_bias::uniform_bias_moments;
use crate::model::activation::Activation;
use crate::model::init::Dist;
use crate::spec::NetworkSpec;

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LayerTheory {
    pub layer: usize,
    pub width: usize,
    /// E[h^2] (row 0: q0).
    pub q_pre: f64,
    /// E[phi(h)^2] (row 0: q0).
    pub q_post: f64,
    /// ln q_pre, carried in log space: exact where q_pre itself under- or
    /// overflows (positively homogeneous stacks, e.g. a 10,000-layer relu
    /// net whose q halves every layer).
    pub q_pre_ln: f64,
    /// ln q_post, likewise.
    pub q_post_ln: f64,
    /// Correlation of h between the two inputs of a pair (row 0: c0).
    pub c_pre: f64,
    /// E[phi(h)] (row 0: 0).
    pub mean_post: f64,
    /// Mean and standard deviation over networks of log q_pre for one input
    /// at finite width, where the exact law applies (see
    /// `theory::finite_width`); None otherwise.
    pub log_q_pre_mean: Option<f64>,
    pub log_q_pre_std: Option<f64>,
    pub log_q_post_mean: Option<f64>,
    pub log_q_post_std: Option<f64>,
    /// `g[l] / g[l+1]` for the backward signal `g = E[delta^2]`:
    /// `n_{l+1} v_{l+1} E[phi'(sqrt(q_pre[l]) z)^2]`. Row 0 is the gradient
    /// with respect to the input, which passes no activation:
    /// n_1 v_1. None at l = L, where the backward pass starts.
    pub backward_factor: Option<f64>,
}

/// Below this q_pre (and with phi(0) = 0) the activation is replaced by its
/// linearisation at 0, phi(u) = phi'(0+) u+ - phi'(0-) u-: the relative
/// error is O(sqrt(q)) <= 1e-50, and the moments stay far from underflow.
const Q_LINEAR: f64 = 1e-100;

/// What one row passes to the next: the post-activation's second moment and
/// the correlation of the pair after phi, plus the row's own numbers.
#[derive(Clone, Copy, Debug)]
struct PostMoments {
    /// ln E[phi(h)^2]
    second_ln: f64,
    /// E[phi(u1) phi(u2)] / E[phi(h)^2]
    correlation: f64,
    mean: f64,
    deriv_second: f64,
}

/// ln(e^a + e^b), with ln 0 = -inf allowed on either side.
fn ln_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// Correlation after phi for the positively homogeneous activations, and
/// for the linearisation of any phi at 0: it does not depend on q.
fn scale_free_correlation(act: &Activation, c: f64) -> f64 {
    cross_moment(act, 1.0, 1.0, c) / second_moment(act, 1.0)
}

/// phi's linearisation at 0 as a leaky relu (up to a factor, which cancels
/// in correlations): slopes phi'(0+), phi'(0-); a zero right slope is
/// mirrored, which leaves correlations unchanged.
fn linearisation(act: &Activation) -> (Activation, f64) {
    let (up, down) = one_sided_slopes(act);
    let lin = if up == down {
        Activation::Identity
    } else if up.abs() >= down.abs() {
        Activation::LeakyRelu { alpha: down / up }
    } else {
        Activation::LeakyRelu { alpha: up / down }
    };
    (lin, 0.5 * (up * up + down * down))
}

/// The row's moments when its bias is uniform with variance sb: g (the
/// Gaussian part, variance e^kg_ln) and the pair's correlation before the
/// bias, rho.
fn uniform_post_moments(act: &Activation, kg_ln: f64, rho: f64, sb: f64) -> PostMoments {
    let kg = kg_ln.exp();
    let m = uniform_bias_moments(act, kg, rho * kg, (3.0 * sb).sqrt());
    PostMoments {
        second_ln: m.second.ln(),
        correlation: if rho == 1.0 {
            1.0
        } else if m.second > 0.0 {
            (m.cross / m.second).clamp(-1.0, 1.0)
        } else {
            1.0
        },
        mean: m.mean,
        deriv_second: m.deriv_second,
    }
}

fn post_moments(act: &Activation, q_ln: f64, c: f64) -> PostMoments {
    if act.is_positively_homogeneous() {
        let kappa = second_moment(act, 1.0);
        return PostMoments {
            second_ln: kappa.ln() + q_ln,
            correlation: if c == 1.0 {
                1.0
            } else {
                scale_free_correlation(act, c)
            },
            mean: mean(act, 1.0) * (0.5 * q_ln).exp(),
            deriv_second: deriv_second_moment(act, 1.0),
        };
    }
    let q = q_ln.exp();
    if q < Q_LINEAR && act.value(0.0) == 0.0 {
        let (lin, slope2) = linearisation(act);
        let (up, down) = one_sided_slopes(act);
        return PostMoments {
            second_ln: slope2.ln() + q_ln,
            correlation: if c == 1.0 || slope2 == 0.0 {
                c
            } else {
                scale_free_correlation(&lin, c)
            },
            mean: (up - down) * (q / (2.0 * std::f64::consts::PI)).sqrt(),
            deriv_second: slope2,
        };
    }
    let second = second_moment(act, q);
    let correlation = if c == 1.0 {
        // Identical inputs stay identical: exactly 1, no quadrature noise.
        1.0
    } else if second > 0.0 {
        (cross_moment(act, q, q, c * q) / second).clamp(-1.0, 1.0)
    } else {
        c
    };
    PostMoments {
        second_ln: second.ln(),
        correlation,
        mean: mean(act, q),
        deriv_second: deriv_second_moment(act, q),
    }
}

/// The mean-field table, rows 0..=L.
///
/// Moments are cached on the exact bits of (ln q_pre, c_pre): a deep stack
/// settles on its fixed point, after which the rows repeat and cost nothing.
/// Once q_pre overflows (an unbounded phi with a large sigma_w^2 and not
/// positively homogeneous), the rows that follow are not finite.
pub fn layer_table(net: &NetworkSpec) -> Vec<LayerTheory> {
    let act = net.act;
    let depth = net.depth();
    let exact = exact_rows(net);
    let mut cache: HashMap<(u64, u64), PostMoments> = HashMap::new();
    let mut uniform_cache: HashMap<(u64, u64, u64), PostMoments> = HashMap::new();
    let mut rows = Vec::with_capacity(depth + 1);

    let q0_ln = net.q0.ln();
    let e0: ExactRow = exact[0];
    rows.push(LayerTheory {
        layer: 0,
        width: net.widths[0],
        q_pre: net.q0,
        q_post: net.q0,
        q_pre_ln: q0_ln,
        q_post_ln: q0_ln,
        c_pre: net.c0,
        mean_post: 0.0,
        log_q_pre_mean: e0.log_q_pre.map(|m| m.mean),
        log_q_pre_std: e0.log_q_pre.map(|m| m.std()),
        log_q_post_mean: e0.log_q_post.map(|m| m.mean),
        log_q_post_std: e0.log_q_post.map(|m| m.std()),
        backward_factor: None,
    });
    // E[phi'^2] of each row, for the backward factors (identity at row 0).
    let mut deriv_second = vec![1.0];
    let (mut post_ln, mut post_correlation) = (q0_ln, net.c0);

    for l in 1..=depth {
        let nv = net.widths[l - 1] as f64 * net.weight_law(l).variance;
        let sb = net.bias_law(l).variance;
        let nv_ln = nv.ln();
        let q_ln = ln_add(nv_ln + post_ln, sb.ln());
        // c_pre = (nv q_post rho + sb) / (nv q_post + sb) with r = sb / (nv q_post)
        let c = if q_ln == f64::NEG_INFINITY {
            // Every pre-activation is 0: the pair is two equal constants.
            1.0
        } else {
            let r = (sb.ln() - nv_ln - post_ln).exp();
            if r.is_infinite() {
                1.0
            } else {
                ((post_correlation + r) / (1.0 + r)).clamp(-1.0, 1.0)
            }
        };
        let bias = net.bias_law(l);
        let m = if bias.dist == Dist::Uniform && sb > 0.0 {
            // h = g + b with b uniform: not Gaussian (theory::uniform_bias)
            let kg_ln = nv_ln + post_ln;
            *uniform_cache
                .entry((kg_ln.to_bits(), post_correlation.to_bits(), sb.to_bits()))
                .or_insert_with(|| uniform_post_moments(&act, kg_ln, post_correlation, sb))
        } else {
            *cache
                .entry((q_ln.to_bits(), c.to_bits()))
                .or_insert_with(|| post_moments(&act, q_ln, c))
        };
        let e = exact[l];
        rows.push(LayerTheory {
            layer: l,
            width: net.widths[l],
            q_pre: q_ln.exp(),
            q_post: m.second_ln.exp(),
            q_pre_ln: q_ln,
            q_post_ln: m.second_ln,
            c_pre: c,
            mean_post: m.mean,
            log_q_pre_mean: e.log_q_pre.map(|m| m.mean),
            log_q_pre_std: e.log_q_pre.map(|m| m.std()),
            log_q_post_mean: e.log_q_post.map(|m| m.mean),
            log_q_post_std: e.log_q_post.map(|m| m.std()),
            backward_factor: None,
        });
        deriv_second.push(m.deriv_second);
        post_ln = m.second_ln;
        post_correlation = m.correlation;
    }
    for l in 0..depth {
        let nv_next = net.widths[l + 1] as f64 * net.weight_law(l + 1).variance;
        rows[l].backward_factor = Some(nv_next * deriv_second[l]);
    }
    rows
}
