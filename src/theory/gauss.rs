//! Gaussian expectations in f64: E[f(sqrt(q) z)] and E[f(u1) g(u2)] for a
//! zero-mean Gaussian pair, and the moments of an activation that the
//! mean-field recurrences need.
//!
//! Each moment uses a closed form where one exists:
//!
//! | activation | closed forms |
//! |---|---|
//! | identity, relu, leaky-relu, abs | all (arc-cosine kernel, Cho & Saul 2009) |
//! | erf | all (Williams 1997) |
//! | sin(omega z) | all (E[cos(w . u)] = exp(-Var/2)) |
//! | relu6 | the 1-D ones |
//! | gelu | the mean, q / sqrt(2 pi (1 + q)) |
//!
//! The rest is numeric:
//!
//! - **Smooth** activations (tanh, sigmoid, silu, softplus, gelu):
//!   Gauss-Hermite, of the smallest order in [`GH_ORDERS`] that is accurate
//!   at this variance (8 to 128 nodes); beyond 128 nodes' reach (tanh at
//!   q > 0.64, sigmoid at q > 2.6), composite Gauss-Legendre on panels
//!   graded towards 0, where phi(sqrt(q) z) varies on the scale 1/sqrt(q).
//!   In 2-D: tensor Gauss-Hermite, or panels outside and Gauss-Hermite
//!   inside when the conditional spread allows.
//! - **Kinked** activations (relu6, elu and selu, which are not smooth at 0):
//!   composite Gauss-Legendre on panels with a breakpoint at every kink
//!   (elu's and selu's 1-D moments). Their 2-D moments integrate only the
//!   outer variable: the inner expectation E[phi(m + b z)] of a function
//!   made of linear and exponential pieces has a closed form (erfc, erfcx).
//!   The outer panels break at the kinks of phi(u1) and where the kinks of
//!   the inner expectation, smoothed over b/|a|, lie.
//!
//! Measured against closed forms and fine reference integrations these are
//! within ~1e-13 relative (worst seen: 4e-14 in 2-D, 2e-12 for tanh at
//! q = 1e6); the promise is 1e-9.
//!
//! At q = 0 the moments are the limits q -> 0+, so that the derivative's
//! convention at a kink never enters: E[phi'(sqrt(q) z)^2] -> (phi'(0+)^2 +
//! phi'(0-)^2) / 2 (1/2 for relu, not relu'(0)^2 = 0).

use std::f64::consts::{FRAC_1_PI, PI, SQRT_2};

use super::expectation::*;
pub use super::expectation::{
    GH_ORDER, GH_ORDERS, MAX_PANEL, Z_RANGE, correlation, expect_1d, expect_1d_order,
    expect_1d_panels, expect_2d, expect_2d_order, expect_2d_panels, gauss_hermite_order,
};
use super::special::{erfcx, normal_cdf, normal_pdf, normal_sf};
use crate::model::activation::{Activation, SELU_ALPHA, SELU_SCALE};

/// Activations made of linear and exponential pieces: E[phi(w)] and
/// E[phi'(w)] for w ~ N(m, b^2) have closed forms, so the 2-D moments need
/// only the outer integral.
#[derive(Clone, Copy, Debug)]
enum Pieces {
    /// min(max(w, 0), 6)
    Relu6,
    /// scale * (w for w > 0, alpha * (e^w - 1) for w < 0): elu, selu
    ScaledElu { scale: f64, alpha: f64 },
}

fn pieces(act: &Activation) -> Option<Pieces> {
    match act {
        Activation::Relu6 => Some(Pieces::Relu6),
        Activation::Elu => Some(Pieces::ScaledElu {
            scale: 1.0,
            alpha: 1.0,
        }),
        Activation::Selu => Some(Pieces::ScaledElu {
            scale: SELU_SCALE,
            alpha: SELU_ALPHA,
        }),
        _ => None,
    }
}

/// P(lo < Z < hi) for Z ~ N(0,1), from the tail on the side where both ends
/// lie, so that a small probability far out keeps its relative accuracy.
fn normal_interval(lo: f64, hi: f64) -> f64 {
    if lo >= 0.0 {
        normal_sf(lo) - normal_sf(hi)
    } else if hi <= 0.0 {
        normal_cdf(hi) - normal_cdf(lo)
    } else {
        1.0 - normal_cdf(lo) - normal_sf(hi)
    }
}

/// E[e^w 1{w < 0}] for w ~ N(m, b^2), b > 0: e^(m + b^2/2) Phi(-(m + b^2)/b),
/// written with erfcx where the exponential would overflow:
/// = e^(-m^2/(2b^2)) erfcx(x) / 2 with x = (m + b^2)/(b sqrt 2) >= 0.
fn exp_below_zero(m: f64, b: f64) -> f64 {
    let x = (m + b * b) / (b * SQRT_2);
    if x >= 0.0 {
        let t = m / b;
        0.5 * (-0.5 * t * t).exp() * erfcx(x)
    } else {
        (m + 0.5 * b * b).exp() * 0.5 * libm::erfc(x)
    }
}

impl Pieces {
    /// E[phi(m + b Z)], b > 0.
    fn mean_value(&self, m: f64, b: f64) -> f64 {
        match *self {
            Pieces::Relu6 => {
                let (lo, hi) = (-m / b, (6.0 - m) / b);
                // E[w 1{0 < w < 6}] + 6 P(w > 6)
                m * normal_interval(lo, hi)
                    + b * (normal_pdf(lo) - normal_pdf(hi))
                    + 6.0 * normal_sf(hi)
            }
            Pieces::ScaledElu { scale, alpha } => {
                let t = -m / b;
                // E[w 1{w > 0}] + alpha E[(e^w - 1) 1{w < 0}]
                let positive = m * normal_sf(t) + b * normal_pdf(t);
                scale * (positive + alpha * (exp_below_zero(m, b) - normal_cdf(t)))
            }
        }
    }

    /// E[phi'(m + b Z)], b > 0.
    fn mean_deriv(&self, m: f64, b: f64) -> f64 {
        match *self {
            Pieces::Relu6 => normal_interval(-m / b, (6.0 - m) / b),
            Pieces::ScaledElu { scale, alpha } => {
                scale * (normal_sf(-m / b) + alpha * exp_below_zero(m, b))
            }
        }
    }
}

/// Below this variance the closed-form E[elu(m + b Z)] loses relative
/// accuracy (its terms are O(1) while it is O(sqrt q): about 1e-16/sqrt(q)
/// relative), and the elu and selu value moments integrate both variables
/// numerically instead.
const ELU_SEMI_ANALYTIC_MIN_Q: f64 = 1e-6;

/// E[h(u1) h(u2)] with h = phi or phi' of a piecewise activation: outer
/// panels, inner closed form.
fn expect_2d_pieces(
    pieces: Pieces,
    deriv: bool,
    h: impl Fn(f64) -> f64,
    kinks: &[f64],
    q11: f64,
    q22: f64,
    q12: f64,
) -> f64 {
    let p = Pair::new(q11, q22, q12);
    if p.s1 == 0.0 || p.b == 0.0 {
        return expect_2d_panels(&h, &h, q11, q22, q12, kinks, kinks, false, None);
    }
    let panels = outer_panels(p, kinks, kinks, false);
    if deriv {
        outer_integral(&panels, p, &h, |m| pieces.mean_deriv(m, p.b))
    } else {
        outer_integral(&panels, p, &h, |m| pieces.mean_value(m, p.b))
    }
}

/// How an activation's moments without a closed form are integrated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Smooth on the real line; `reach` is the distance of its nearest
    /// complex singularity from the real axis, in u (an effective one for
    /// the entire functions, see [`rule`]).
    Smooth { reach: f64 },
    /// Piecewise smooth, with kinks (or jumps of the derivative) at these u.
    Kinked { kinks: &'static [f64] },
}

/// The numeric rule for `act` (also defined for the activations with closed
/// forms, so that the tests can integrate them numerically too).
pub fn rule(act: &Activation) -> Rule {
    match *act {
        // tanh has poles at u = i pi/2; sigmoid(u) = (1 + tanh(u/2))/2 at
        // i pi; silu and softplus inherit sigmoid's.
        Activation::Tanh => Rule::Smooth { reach: PI / 2.0 },
        Activation::Sigmoid | Activation::Silu | Activation::Softplus => Rule::Smooth { reach: PI },
        // Entire, but growing like exp(Im(u)^2/2) off the axis: measured, it
        // converges at least as fast as sigmoid, so it gets sigmoid's reach;
        // erf alike.
        Activation::Gelu | Activation::Erf => Rule::Smooth { reach: PI },
        // Entire, growing like exp(omega |Im u|): like a singularity at
        // distance about pi / omega.
        Activation::Sin { omega } => Rule::Smooth { reach: PI / omega },
        Activation::Identity => Rule::Kinked { kinks: &[] },
        Activation::Relu6 => Rule::Kinked { kinks: &[0.0, 6.0] },
        Activation::Relu
        | Activation::LeakyRelu { .. }
        | Activation::Abs
        | Activation::Elu
        | Activation::Selu => Rule::Kinked { kinks: &[0.0] },
    }
}

/// E[h(sqrt(q) z)] for an integrand built from `act`, by its numeric rule:
/// Gauss-Hermite of the smallest order accurate at this q for smooth
/// activations, graded panels otherwise.
fn numeric_1d(act: &Activation, q: f64, h: impl Fn(f64) -> f64) -> f64 {
    if q <= 0.0 {
        return h(0.0);
    }
    match rule(act) {
        Rule::Smooth { reach } => match gauss_hermite_order(reach, q.max(0.0).sqrt()) {
            Some(order) => expect_1d_order(h, q, order),
            None => expect_1d_panels(h, q, &[], true),
        },
        Rule::Kinked { kinks } => expect_1d_panels(h, q, kinks, false),
    }
}

/// E[phi(u1) phi(u2)] (or E[phi'(u1) phi'(u2)] when `deriv`) by the numeric
/// rule of `act`.
fn numeric_2d(act: &Activation, q11: f64, q22: f64, q12: f64, deriv: bool) -> f64 {
    let h = |u: f64| if deriv { act.deriv(u) } else { act.value(u) };
    match (rule(act), pieces(act)) {
        (Rule::Kinked { kinks }, Some(p))
            if deriv || matches!(p, Pieces::Relu6) || q11.min(q22) >= ELU_SEMI_ANALYTIC_MIN_Q =>
        {
            expect_2d_pieces(p, deriv, h, kinks, q11, q22, q12)
        }
        (Rule::Smooth { reach }, _) => {
            // The outer integrand f(s1 z1) G(a z1) varies on the scale of
            // the larger of s1 and |a| <= sqrt(q22); the inner one on b's.
            let std = q11.max(q22).max(0.0).sqrt();
            let inner = gauss_hermite_order(reach, Pair::new(q11, q22, q12).b);
            match (gauss_hermite_order(reach, std), inner) {
                (Some(outer), Some(inner)) => expect_2d_orders(h, h, q11, q22, q12, outer, inner),
                // Panels outside; inside, Gauss-Hermite when the conditional
                // spread b is small enough (c near +-1).
                _ => expect_2d_panels(h, h, q11, q22, q12, &[], &[], true, inner),
            }
        }
        (Rule::Kinked { kinks }, _) => {
            expect_2d_panels(h, h, q11, q22, q12, kinks, kinks, false, None)
        }
    }
}

/// phi'(0+) and phi'(0-): the slopes of phi on either side of 0.
pub fn one_sided_slopes(act: &Activation) -> (f64, f64) {
    let tiny = 1e-300;
    (act.deriv(tiny), act.deriv(-tiny))
}

/// Arc-cosine kernel of degree 1 for unit variances (Cho & Saul 2009):
/// E[relu(z1) relu(z2)] at correlation c, = (sin t + (pi - t) cos t) / (2 pi)
/// with t = acos c.
fn arc_cosine_1(c: f64) -> f64 {
    if c <= -1.0 {
        // relu(z) relu(-z) = 0: exactly 0, where sin(acos(-1)) = sin(pi)
        // would leave 1.2e-16 (c_pre printed 3.9e-17 at c0 = -1). Only this
        // end: elsewhere the formula is kept bit for bit.
        return 0.0;
    }
    let t = c.clamp(-1.0, 1.0).acos();
    (t.sin() + (PI - t) * c) / (2.0 * PI)
}

/// E[relu(-z1) relu(z2)] at correlation c = arc_cosine_1(-c), written so as
/// not to lose accuracy: (sin t - t cos t) / (2 pi).
fn arc_cosine_1_opposite(c: f64) -> f64 {
    let t = c.clamp(-1.0, 1.0).acos();
    (t.sin() - t * c) / (2.0 * PI)
}

/// alpha for the activations of the form max(u,0) + alpha min(u,0).
fn leaky_slope(act: &Activation) -> Option<f64> {
    match *act {
        Activation::Identity => Some(1.0),
        Activation::Relu => Some(0.0),
        Activation::LeakyRelu { alpha } => Some(alpha),
        Activation::Abs => Some(-1.0),
        _ => None,
    }
}

/// e^-A sinh(B) and e^-A cosh(B) without overflow and, for small B, without
/// cancellation.
fn exp_sinh(a: f64, b: f64) -> f64 {
    if b.abs() < 1.0 {
        (-a).exp() * b.sinh()
    } else {
        0.5 * ((b - a).exp() - (-b - a).exp())
    }
}

fn exp_cosh(a: f64, b: f64) -> f64 {
    0.5 * ((b - a).exp() + (-b - a).exp())
}

/// E[phi(sqrt(q) z)^2].
pub fn second_moment(act: &Activation, q: f64) -> f64 {
    let q = q.max(0.0);
    if let Some(alpha) = leaky_slope(act) {
        return 0.5 * (1.0 + alpha * alpha) * q;
    }
    match *act {
        // Williams 1997 at q11 = q22 = q12 = q.
        Activation::Erf => 2.0 * FRAC_1_PI * (2.0 * q / (1.0 + 2.0 * q)).asin(),
        // (1 - E[cos 2 omega u]) / 2
        Activation::Sin { omega } => -0.5 * (-2.0 * omega * omega * q).exp_m1(),
        Activation::Relu6 => {
            if q == 0.0 {
                return 0.0;
            }
            // q E[z^2 1{0 < z < a}] + 36 P(z > a), a = 6/sqrt(q)
            let a = 6.0 / q.sqrt();
            q * (0.5 * libm::erf(a / SQRT_2) - a * normal_pdf(a))
                + 36.0 * 0.5 * libm::erfc(a / SQRT_2)
        }
        _ => numeric_1d(act, q, |u| {
            let v = act.value(u);
            v * v
        }),
    }
}

/// E[phi(sqrt(q) z)].
pub fn mean(act: &Activation, q: f64) -> f64 {
    let q = q.max(0.0);
    if let Some(alpha) = leaky_slope(act) {
        return (1.0 - alpha) * (q / (2.0 * PI)).sqrt();
    }
    match *act {
        // Odd activations.
        Activation::Tanh | Activation::Erf | Activation::Sin { .. } => 0.0,
        // sigmoid - 1/2 is odd.
        Activation::Sigmoid => 0.5,
        // Stein: E[u Phi(u)] = q E[pdf(u)] = q / sqrt(2 pi (1 + q)).
        Activation::Gelu => q / (2.0 * PI * (1.0 + q)).sqrt(),
        Activation::Relu6 => {
            if q == 0.0 {
                return 0.0;
            }
            let s = q.sqrt();
            let a = 6.0 / s;
            s * (normal_pdf(0.0) - normal_pdf(a)) + 6.0 * 0.5 * libm::erfc(a / SQRT_2)
        }
        _ => numeric_1d(act, q, |u| act.value(u)),
    }
}

/// E[phi'(sqrt(q) z)^2].
pub fn deriv_second_moment(act: &Activation, q: f64) -> f64 {
    let q = q.max(0.0);
    if let Some(alpha) = leaky_slope(act) {
        return 0.5 * (1.0 + alpha * alpha);
    }
    match *act {
        // (4/pi) E[exp(-2 u^2)] = (4/pi) / sqrt(1 + 4 q)
        Activation::Erf => 4.0 * FRAC_1_PI / (1.0 + 4.0 * q).sqrt(),
        // omega^2 (1 + E[cos 2 omega u]) / 2
        Activation::Sin { omega } => {
            let w2 = omega * omega;
            0.5 * w2 * (1.0 + (-2.0 * w2 * q).exp())
        }
        // P(0 < u < 6)
        Activation::Relu6 => {
            if q == 0.0 {
                0.5
            } else {
                0.5 * libm::erf(6.0 / (2.0 * q).sqrt())
            }
        }
        _ if q == 0.0 => {
            let (up, down) = one_sided_slopes(act);
            0.5 * (up * up + down * down)
        }
        _ => numeric_1d(act, q, |u| {
            let d = act.deriv(u);
            d * d
        }),
    }
}

/// E[phi'(sqrt(q) z)^4], for the spread of the Jacobian's spectrum.
pub fn deriv_fourth_moment(act: &Activation, q: f64) -> f64 {
    let q = q.max(0.0);
    if let Some(alpha) = leaky_slope(act) {
        return 0.5 * (1.0 + alpha.powi(4));
    }
    match *act {
        // (16/pi^2) E[exp(-4 u^2)] = (16/pi^2) / sqrt(1 + 8 q)
        Activation::Erf => 16.0 * FRAC_1_PI * FRAC_1_PI / (1.0 + 8.0 * q).sqrt(),
        // omega^4 E[cos^4] with cos^4 x = (3 + 4 cos 2x + cos 4x) / 8
        Activation::Sin { omega } => {
            let w2 = omega * omega;
            w2 * w2 * (3.0 + 4.0 * (-2.0 * w2 * q).exp() + (-8.0 * w2 * q).exp()) / 8.0
        }
        // phi' is 0 or 1: the fourth moment is the second
        Activation::Relu6 => deriv_second_moment(act, q),
        _ if q == 0.0 => {
            let (up, down) = one_sided_slopes(act);
            0.5 * (up.powi(4) + down.powi(4))
        }
        _ => numeric_1d(act, q, |u| act.deriv(u).powi(4)),
    }
}

/// d/dq E[phi(sqrt(q) z)^2], the slope of the q-map over sigma_w^2.
///
/// By Gaussian integration by parts this is E[(z^2 - 1) phi(sqrt(q) z)^2] /
/// (2q), which needs no phi''. Closed where the second moment is.
pub fn second_moment_slope(act: &Activation, q: f64) -> f64 {
    let q = q.max(0.0);
    if let Some(alpha) = leaky_slope(act) {
        return 0.5 * (1.0 + alpha * alpha);
    }
    match *act {
        Activation::Erf => 4.0 * FRAC_1_PI / ((1.0 + 2.0 * q) * (1.0 + 4.0 * q).sqrt()),
        Activation::Sin { omega } => {
            let w2 = omega * omega;
            w2 * (-2.0 * w2 * q).exp()
        }
        Activation::Relu6 => {
            if q == 0.0 {
                return 0.5;
            }
            // (1/2) E[(phi^2)''] = P(0 < u < 6) - 6 pdf_u(6)
            let a = 6.0 / q.sqrt();
            0.5 * libm::erf(a / SQRT_2) - a * normal_pdf(a)
        }
        _ if q == 0.0 => {
            let phi0 = act.value(0.0);
            if phi0 == 0.0 {
                // E[phi(sqrt(q) z)^2] / q -> mean of the one-sided slopes squared
                let (up, down) = one_sided_slopes(act);
                0.5 * (up * up + down * down)
            } else {
                // (1/2) (phi^2)''(0) by a central difference (smooth phi):
                // truncation ~h^2, rounding ~1e-16/h^2, both ~1e-8.
                let h = 1e-4;
                let sq = |u: f64| act.value(u).powi(2);
                (sq(h) - 2.0 * sq(0.0) + sq(-h)) / (2.0 * h * h)
            }
        }
        _ => {
            let s = q.sqrt();
            let integrand = |u: f64| {
                let z = u / s;
                let v = act.value(u);
                (z * z - 1.0) * v * v
            };
            numeric_1d(act, q, integrand) / (2.0 * q)
        }
    }
}

/// E[phi(u1) phi(u2)] for the zero-mean Gaussian pair with Var u1 = q11,
/// Var u2 = q22, Cov = q12.
pub fn cross_moment(act: &Activation, q11: f64, q22: f64, q12: f64) -> f64 {
    let (q11, q22) = (q11.max(0.0), q22.max(0.0));
    let c = correlation(q11, q22, q12);
    let scale = (q11 * q22).sqrt();
    if let Some(alpha) = leaky_slope(act) {
        if alpha == 1.0 {
            return c * scale;
        }
        // phi(u) = relu(u) - alpha relu(-u); (-u1, -u2) has correlation c,
        // (u1, -u2) has -c.
        return scale
            * ((1.0 + alpha * alpha) * arc_cosine_1(c) - 2.0 * alpha * arc_cosine_1_opposite(c));
    }
    match *act {
        Activation::Erf => {
            let x = 2.0 * c * scale / ((1.0 + 2.0 * q11) * (1.0 + 2.0 * q22)).sqrt();
            2.0 * FRAC_1_PI * x.clamp(-1.0, 1.0).asin()
        }
        // (E[cos w(u1 - u2)] - E[cos w(u1 + u2)]) / 2 = e^-A sinh(B)
        Activation::Sin { omega } => {
            let w2 = omega * omega;
            exp_sinh(0.5 * w2 * (q11 + q22), w2 * c * scale)
        }
        _ if q11 == 0.0 && q22 == 0.0 => act.value(0.0).powi(2),
        _ if c == 1.0 && q11 == q22 => second_moment(act, q11),
        // Uncorrelated Gaussians are independent (exactly 0 for odd phi).
        _ if c == 0.0 => mean(act, q11) * mean(act, q22),
        _ => numeric_2d(act, q11, q22, c * scale, false),
    }
}

/// E[phi'(u1) phi'(u2)] for the pair of [`cross_moment`]. Where a variance
/// vanishes, phi' at a kink is the mean of the one-sided slopes (and the
/// pair at q11 = q22 = 0 has correlation 1, giving the limit of
/// [`deriv_second_moment`]).
pub fn deriv_cross_moment(act: &Activation, q11: f64, q22: f64, q12: f64) -> f64 {
    let (q11, q22) = (q11.max(0.0), q22.max(0.0));
    let c = correlation(q11, q22, q12);
    let scale = (q11 * q22).sqrt();
    if let Some(alpha) = leaky_slope(act) {
        // P(same sign) = (pi - t)/pi, split evenly between ++ and --.
        let t = c.acos();
        return ((1.0 + alpha * alpha) * (PI - t) + 2.0 * alpha * t) / (2.0 * PI);
    }
    match *act {
        // (4/pi) E[exp(-u1^2 - u2^2)] = (4/pi) det(I + 2 Sigma)^(-1/2)
        Activation::Erf => {
            let det = 1.0 + 2.0 * (q11 + q22) + 4.0 * q11 * q22 * (1.0 - c) * (1.0 + c);
            4.0 * FRAC_1_PI / det.sqrt()
        }
        Activation::Sin { omega } => {
            let w2 = omega * omega;
            w2 * exp_cosh(0.5 * w2 * (q11 + q22), w2 * c * scale)
        }
        _ if q11 == 0.0 || q22 == 0.0 => {
            let (up, down) = one_sided_slopes(act);
            if q11 == 0.0 && q22 == 0.0 {
                0.5 * (up * up + down * down)
            } else {
                let d0 = 0.5 * (up + down);
                let other = if q11 == 0.0 { q22 } else { q11 };
                d0 * numeric_1d(act, other, |u| act.deriv(u))
            }
        }
        _ if c == 1.0 && q11 == q22 => deriv_second_moment(act, q11),
        _ if c == 0.0 => {
            numeric_1d(act, q11, |u| act.deriv(u)) * numeric_1d(act, q22, |u| act.deriv(u))
        }
        _ => numeric_2d(act, q11, q22, c * scale, true),
    }
}

#[cfg(test)]
mod tests;
