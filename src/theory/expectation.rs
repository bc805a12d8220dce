//! Gaussian expectations by quadrature, for any function: E[f(sqrt(q) z)]
//! and E[f(u1) g(u2)] for a zero-mean Gaussian pair, by Gauss-Hermite of an
//! order accurate at the variance, or composite Gauss-Legendre on panels
//! broken at given kinks. `gauss` builds the activations' moments on them.

use std::sync::OnceLock;

use super::quadrature::{self, Feature, NormalRule};
use super::special::normal_pdf;

/// Gauss-Hermite orders, and for each the largest sqrt(q) / reach at which
/// it is used.
///
/// phi(m + sqrt(q) z) has complex singularities at distance reach / sqrt(q)
/// from the real axis (reach = pi/2 for tanh, pi for sigmoid, silu and
/// softplus), and n-point Gauss-Hermite converges like
/// exp(-const * reach * sqrt(n / q)): fast for small q, slowly for large q.
/// The limits are 0.85 times those measured against a fine composite
/// Gauss-Legendre reference, at which phi and phi' (tanh, sigmoid, gelu,
/// silu, softplus, shifted by any m in [-5, 5]) were within 1e-14 of it,
/// relative to 1 + |m| + sqrt(q). Beyond 128 nodes the gain is slow (300
/// nodes reach only tanh at q = 1), so larger q goes to graded panels,
/// accurate to ~1e-15 at every q.
pub const GH_ORDERS: [(usize, f64); 9] = [
    (8, 0.047),
    (12, 0.089),
    (16, 0.123),
    (24, 0.174),
    (32, 0.217),
    (48, 0.285),
    (64, 0.34),
    (96, 0.43),
    (128, 0.51),
];

/// The order of [`expect_1d`] and [`expect_2d`]: for smooth f analytic in a
/// strip of half-width 2 sqrt(q) or more about the real axis (see
/// [`GH_ORDERS`]).
pub const GH_ORDER: usize = 128;

/// The panels cover z in [-Z_RANGE, Z_RANGE]: beyond it the Gaussian mass
/// weighted by z^4 (the heaviest weight used, in the q-map slope) is below
/// 1e-19.
pub const Z_RANGE: f64 = 10.0;

/// Widest panel: it resolves exp(-z^2/2) to ~1e-17 with 16 nodes.
pub const MAX_PANEL: f64 = 4.0;

pub(super) fn gh_rule(order: usize) -> &'static NormalRule {
    static RULES: [OnceLock<NormalRule>; 9] = [const { OnceLock::new() }; 9];
    let i = GH_ORDERS
        .iter()
        .position(|&(n, _)| n == order)
        .expect("an order from GH_ORDERS");
    RULES[i].get_or_init(|| quadrature::normal_rule(order))
}

/// The smallest Gauss-Hermite order accurate for a smooth phi with this
/// reach at standard deviation `std`; None when 128 nodes would not do.
pub fn gauss_hermite_order(reach: f64, std: f64) -> Option<usize> {
    GH_ORDERS
        .iter()
        .find(|&&(_, limit)| std <= limit * reach)
        .map(|&(n, _)| n)
}

/// E[f(sqrt(q) z)], z ~ N(0,1), by Gauss-Hermite of order [`GH_ORDER`]: for
/// smooth f whose features are not much narrower than sqrt(q).
pub fn expect_1d(f: impl Fn(f64) -> f64, q: f64) -> f64 {
    expect_1d_order(f, q, GH_ORDER)
}

/// [`expect_1d`] with an order from [`GH_ORDERS`].
pub fn expect_1d_order(f: impl Fn(f64) -> f64, q: f64, order: usize) -> f64 {
    let s = q.max(0.0).sqrt();
    let rule = gh_rule(order);
    rule.nodes
        .iter()
        .zip(&rule.weights)
        .map(|(z, w)| w * f(s * z))
        .sum()
}

/// A zero-mean Gaussian pair written in independent standard normals:
/// u1 = s1 z1, u2 = a z1 + b z2.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pair {
    pub(super) s1: f64,
    pub(super) a: f64,
    pub(super) b: f64,
}

/// Correlation of a pair with the given covariance, clamped to [-1, 1];
/// 1 when both variances vanish (two identical constants), 0 when one does.
pub fn correlation(q11: f64, q22: f64, q12: f64) -> f64 {
    if q11 > 0.0 && q22 > 0.0 {
        (q12 / (q11 * q22).sqrt()).clamp(-1.0, 1.0)
    } else if q11 <= 0.0 && q22 <= 0.0 {
        1.0
    } else {
        0.0
    }
}

impl Pair {
    pub(super) fn new(q11: f64, q22: f64, q12: f64) -> Self {
        let c = correlation(q11, q22, q12);
        let s2 = q22.max(0.0).sqrt();
        // (1 - c)(1 + c) keeps b accurate near c = +-1.
        Pair {
            s1: q11.max(0.0).sqrt(),
            a: c * s2,
            b: s2 * ((1.0 - c) * (1.0 + c)).sqrt(),
        }
    }
}

/// E[f(u1) g(u2)] for (u1, u2) zero-mean Gaussian with Var u1 = q11,
/// Var u2 = q22, Cov = q12, by tensor Gauss-Hermite of order [`GH_ORDER`].
/// Correlations +-1 and zero variances are handled exactly (no NaN).
pub fn expect_2d(
    f: impl Fn(f64) -> f64,
    g: impl Fn(f64) -> f64,
    q11: f64,
    q22: f64,
    q12: f64,
) -> f64 {
    expect_2d_order(f, g, q11, q22, q12, GH_ORDER)
}

/// [`expect_2d`] with an order from [`GH_ORDERS`].
pub fn expect_2d_order(
    f: impl Fn(f64) -> f64,
    g: impl Fn(f64) -> f64,
    q11: f64,
    q22: f64,
    q12: f64,
    order: usize,
) -> f64 {
    expect_2d_orders(f, g, q11, q22, q12, order, order)
}

/// Tensor Gauss-Hermite with one order for z1 and another for z2: the inner
/// integrand g(a z1 + b z2) needs only as many nodes as its spread b asks
/// for, which is few when the pair is nearly collinear.
pub(super) fn expect_2d_orders(
    f: impl Fn(f64) -> f64,
    g: impl Fn(f64) -> f64,
    q11: f64,
    q22: f64,
    q12: f64,
    outer_order: usize,
    inner_order: usize,
) -> f64 {
    let p = Pair::new(q11, q22, q12);
    let outer = gh_rule(outer_order);
    let inner = gh_rule(inner_order);
    let mut total = 0.0;
    for (z1, w1) in outer.nodes.iter().zip(&outer.weights) {
        let fv = f(p.s1 * z1);
        if fv == 0.0 {
            continue;
        }
        let m = p.a * z1;
        let inner = if p.b == 0.0 {
            g(m)
        } else {
            inner
                .nodes
                .iter()
                .zip(&inner.weights)
                .map(|(z2, w2)| w2 * g(m + p.b * z2))
                .sum()
        };
        total += w1 * fv * inner;
    }
    total
}

/// Breakpoints (in z) for f(s z) with kinks `kinks` (in u) and, when f is
/// smooth, a feature of width about 1 in u centred at 0.
pub(super) fn features_1d(s: f64, kinks: &[f64], smooth: bool) -> Vec<Feature> {
    let scale = (1.0 / s).min(1.0);
    let mut out: Vec<Feature> = kinks.iter().map(|k| Feature { at: k / s, scale }).collect();
    if smooth {
        out.push(Feature { at: 0.0, scale });
    }
    out
}

/// E[f(sqrt(q) z)] by composite Gauss-Legendre on panels graded towards the
/// kinks of f (given in u = sqrt(q) z) and, when `smooth`, towards 0.
pub fn expect_1d_panels(f: impl Fn(f64) -> f64, q: f64, kinks: &[f64], smooth: bool) -> f64 {
    let s = q.max(0.0).sqrt();
    if s == 0.0 {
        return f(0.0);
    }
    let panels =
        quadrature::graded_panels(-Z_RANGE, Z_RANGE, &features_1d(s, kinks, smooth), MAX_PANEL);
    quadrature::integrate_panels(&panels, |z| f(s * z) * normal_pdf(z))
}

/// Outer panels (over z1) for E[f(u1) G(a z1)], where G(m) = E[g(m + b z2)]:
/// breakpoints at the kinks of f and where the kinks of g sit once smoothed
/// over b/|a| by the inner integral (z1 = k/a; a smooth feature keeps its
/// width (1 + b)/|a|).
pub(super) fn outer_panels(
    p: Pair,
    f_kinks: &[f64],
    g_points: &[f64],
    smooth: bool,
) -> Vec<(f64, f64)> {
    let mut outer = features_1d(p.s1, f_kinks, smooth);
    if p.a != 0.0 {
        let width = if smooth { 1.0 + p.b } else { p.b.min(1.0) };
        let scale = (width / p.a.abs()).min(1.0);
        outer.extend(g_points.iter().map(|k| Feature { at: k / p.a, scale }));
    }
    quadrature::graded_panels(-Z_RANGE, Z_RANGE, &outer, MAX_PANEL)
}

/// E[f(u1) g(u2)] by nested composite Gauss-Legendre. `f_kinks`, `g_kinks`
/// are the kinks of f and g in u; `smooth` adds a feature of width 1 at 0
/// for activations without kinks. The inner integral over z2 breaks where
/// u2 = a z1 + b z2 crosses a kink of g; the outer one at the kinks of f
/// and where the inner integral's smoothed kinks lie (z1 = k/a). With
/// `inner_order`, the inner integral is Gauss-Hermite of that order (g
/// smooth and b small enough for it).
#[allow(clippy::too_many_arguments)]
pub fn expect_2d_panels(
    f: impl Fn(f64) -> f64,
    g: impl Fn(f64) -> f64,
    q11: f64,
    q22: f64,
    q12: f64,
    f_kinks: &[f64],
    g_kinks: &[f64],
    smooth: bool,
    inner_order: Option<usize>,
) -> f64 {
    let p = Pair::new(q11, q22, q12);
    if p.s1 == 0.0 {
        return f(0.0) * expect_1d_panels(g, q22, g_kinks, smooth);
    }
    let mut g_points: Vec<f64> = g_kinks.to_vec();
    if smooth {
        g_points.push(0.0);
    }
    let inner_scale = (1.0 / p.b).min(1.0);
    let mut inner_features = vec![
        Feature {
            at: 0.0,
            scale: inner_scale
        };
        g_points.len()
    ];
    let inner_rule = inner_order.map(gh_rule);
    let inner = |m: f64| {
        if p.b == 0.0 {
            return g(m);
        }
        if let Some(rule) = inner_rule {
            return rule
                .nodes
                .iter()
                .zip(&rule.weights)
                .map(|(z2, w2)| w2 * g(m + p.b * z2))
                .sum();
        }
        for (feature, k) in inner_features.iter_mut().zip(&g_points) {
            feature.at = (k - m) / p.b;
        }
        let panels = quadrature::graded_panels(-Z_RANGE, Z_RANGE, &inner_features, MAX_PANEL);
        quadrature::integrate_panels(&panels, |z2| g(m + p.b * z2) * normal_pdf(z2))
    };
    let panels = outer_panels(p, f_kinks, &g_points, smooth);
    outer_integral(&panels, p, f, inner)
}

/// sum over the outer panels of f(s1 z1) G(a z1) pdf(z1), skipping G where
/// f vanishes (relu6 is 0 on half the line).
pub(super) fn outer_integral(
    panels: &[(f64, f64)],
    p: Pair,
    f: impl Fn(f64) -> f64,
    mut inner: impl FnMut(f64) -> f64,
) -> f64 {
    quadrature::integrate_panels(panels, |z1| {
        let fv = f(p.s1 * z1);
        if fv == 0.0 {
            return 0.0;
        }
        fv * inner(p.a * z1) * normal_pdf(z1)
    })
}
