//! Fixed points, order and chaos for constant-width stacks (Poole et al.
//! 2016, Schoenholz et al. 2017), with sigma_w^2 = n v and sigma_b^2:
//!
//! ```text
//! q-map  q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2
//! c-map  c' = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q'
//! chi_1  = sigma_w^2 E[phi'(sqrt(q*) z)^2]
//! xi_q   = -1 / ln(dq'/dq at q*),    xi_c = -1 / ln(chi_c),
//! chi_c  = sigma_w^2 E[phi'(u1) phi'(u2)] at (q*, c*)
//! ```
//!
//! Degenerate cases are handled explicitly; see [`fixed_point`].

use super::gauss::{
    cross_moment, deriv_cross_moment, deriv_second_moment, one_sided_slopes, second_moment,
    second_moment_slope,
};
use crate::error::{Error, Result};
use crate::model::activation::Activation;
use crate::spec::NetworkSpec;

/// |chi_1 - 1| <= CRITICAL_TOL is critical. The moments are accurate to
/// ~1e-12 and sigma_w^2 = n v carries rounding (2/n * n != 2 in general), so
/// the tolerance sits well above both.
pub const CRITICAL_TOL: f64 = 1e-9;

/// The edge-of-chaos root finders stop at |chi_1 - 1| <= EDGE_TOL.
pub const EDGE_TOL: f64 = 1e-10;

/// q* is bracketed by doubling up to this value; beyond, q diverges.
const Q_MAX: f64 = 1e30;

/// Below this q, with phi(0) = 0 and no bias, the q-map is its linearisation
/// at 0 to 1e-50 relative: if it still shrinks q there, q* = 0.
const Q_MIN: f64 = 1e-100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// chi_1 < 1 - CRITICAL_TOL: nearby inputs converge (c -> 1).
    Ordered,
    /// chi_1 > 1 + CRITICAL_TOL: nearby inputs decorrelate (c -> c* < 1).
    Chaotic,
    /// |chi_1 - 1| <= CRITICAL_TOL.
    Critical,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Ordered => "ordered",
            Phase::Chaotic => "chaotic",
            Phase::Critical => "critical",
        })
    }
}

impl Phase {
    pub fn of_chi1(chi1: f64) -> Phase {
        if (chi1 - 1.0).abs() <= CRITICAL_TOL {
            Phase::Critical
        } else if chi1 < 1.0 {
            Phase::Ordered
        } else {
            Phase::Chaotic
        }
    }
}

/// q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2.
pub fn q_map(act: &Activation, sigma_w2: f64, sigma_b2: f64, q: f64) -> f64 {
    sigma_w2 * second_moment(act, q) + sigma_b2
}

/// dq'/dq = sigma_w^2 E[(z^2 - 1) phi(sqrt(q) z)^2] / (2q).
pub fn q_map_slope(act: &Activation, sigma_w2: f64, q: f64) -> f64 {
    sigma_w2 * second_moment_slope(act, q)
}

/// c' for a pair at variance q and correlation c, normalised by q' (which
/// is q itself at the fixed point).
pub fn c_map(act: &Activation, sigma_w2: f64, sigma_b2: f64, q: f64, c: f64) -> f64 {
    if c == 1.0 {
        return 1.0;
    }
    let q_next = q_map(act, sigma_w2, sigma_b2, q);
    ((sigma_w2 * cross_moment(act, q, q, c * q) + sigma_b2) / q_next).clamp(-1.0, 1.0)
}

/// chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2].
pub fn chi1(act: &Activation, sigma_w2: f64, q: f64) -> f64 {
    sigma_w2 * deriv_second_moment(act, q)
}

/// chi_c = sigma_w^2 E[phi'(u1) phi'(u2)], the slope of the c-map at c when
/// q is at its fixed point.
pub fn chi_c(act: &Activation, sigma_w2: f64, q: f64, c: f64) -> f64 {
    sigma_w2 * deriv_cross_moment(act, q, q, c * q)
}

/// -1/ln(slope) for a contraction with this slope; infinite at |slope| >= 1.
fn depth_scale(slope: f64) -> f64 {
    let s = slope.abs();
    if s >= 1.0 {
        f64::INFINITY
    } else {
        -1.0 / s.ln()
    }
}

pub(super) fn check_variances(sigma_w2: f64, sigma_b2: f64) -> Result<()> {
    if !(sigma_w2.is_finite() && sigma_w2 >= 0.0) {
        return Err(Error::invalid(
            "--sigma-w2",
            format!("must be a finite number >= 0 (got {sigma_w2})"),
        ));
    }
    if !(sigma_b2.is_finite() && sigma_b2 >= 0.0) {
        return Err(Error::invalid(
            "--sigma-b2",
            format!("must be a finite number >= 0 (got {sigma_b2})"),
        ));
    }
    Ok(())
}

/// The stable fixed point of the q-map reached from `q_start`.
///
/// Found by bracketing and bisection on F(q) = q' - q: from q_start, double
/// q while F > 0 (or divide it by 4 while F <= 0, down to Q_MIN) until F
/// has clearly changed sign (beyond 1e-13 relative, the moments' error),
/// then bisect until the bracket is within 4e-16 relative. F crosses from + to - there, so dq'/dq <= 1: the fixed
/// point attracts the iteration from q_start. The accuracy of q* is that
/// of the moments (~1e-13 relative) over 1 - dq'/dq.
///
/// Positively homogeneous activations (identity, relu, leaky relu, abs)
/// have the linear map q' = m q + sigma_b^2 with m = sigma_w^2 E[phi(z)^2]:
/// q* = sigma_b^2 / (1 - m) for m < 1. Without bias, q* = 0 for m < 1, and
/// every q is a fixed point at m = 1 (within CRITICAL_TOL), where q_start is
/// returned. Errors when q grows without bound.
pub fn q_star(act: &Activation, sigma_w2: f64, sigma_b2: f64, q_start: f64) -> Result<f64> {
    check_variances(sigma_w2, sigma_b2)?;
    if !(q_start.is_finite() && q_start > 0.0) {
        return Err(Error::invalid(
            "--q0",
            format!("the starting q must be finite and > 0 (got {q_start})"),
        ));
    }
    if sigma_w2 == 0.0 {
        return Ok(sigma_b2);
    }
    if act.is_positively_homogeneous() {
        let m = sigma_w2 * second_moment(act, 1.0);
        let marginal = (m - 1.0).abs() <= CRITICAL_TOL;
        return match (sigma_b2 == 0.0, marginal) {
            (true, true) => Ok(q_start),
            (true, false) if m < 1.0 => Ok(0.0),
            (false, false) if m < 1.0 => Ok(sigma_b2 / (1.0 - m)),
            _ => Err(diverges(
                act,
                sigma_w2,
                sigma_b2,
                &format!(
                    "q' = {m} q + sigma_b2 grows without bound (sigma_w2 E[phi(z)^2] must be < 1, or = 1 without bias)"
                ),
            )),
        };
    }
    let f = |q: f64| q_map(act, sigma_w2, sigma_b2, q) - q;
    // F is "clearly" positive or negative beyond the moments' error, so that
    // a q-map that is the identity to double precision over a range (relu6
    // at sigma_w^2 = 2 and q < 0.5, where q' - q ~ -exp(-18/q)) is not
    // mistaken for a fixed point.
    let noise = |q: f64| 1e-13 * (q + q_map(act, sigma_w2, sigma_b2, q));
    let (mut lo, mut hi) = if f(q_start) > noise(q_start) {
        let (mut lo, mut hi) = (q_start, 2.0 * q_start);
        while f(hi) >= -noise(hi) {
            lo = hi;
            hi *= 2.0;
            if hi > Q_MAX {
                return Err(diverges(
                    act,
                    sigma_w2,
                    sigma_b2,
                    "q' > q for every q tried up to 1e30",
                ));
            }
        }
        (lo, hi)
    } else {
        let (mut lo, mut hi) = (0.25 * q_start, q_start);
        while f(lo) <= noise(lo) {
            hi = lo;
            lo *= 0.25;
            if lo < Q_MIN {
                // F(0) = sigma_w^2 phi(0)^2 + sigma_b^2 >= 0, so F <= 0 all
                // the way down means F(0) = 0: q = 0 is the fixed point.
                return Ok(0.0);
            }
        }
        (lo, hi)
    };
    while hi - lo > 4e-16 * hi {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn diverges(act: &Activation, sigma_w2: f64, sigma_b2: f64, why: &str) -> Error {
    Error::invalid(
        "--sigma-w2",
        format!("no fixed point for {act} at sigma_w2 = {sigma_w2}, sigma_b2 = {sigma_b2}: {why}"),
    )
}

/// The fixed point and what follows from it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FixedPoint {
    pub q_star: f64,
    /// NaN when the map does not determine it (see `note`).
    pub c_star: f64,
    pub chi1: f64,
    /// Depth scale of q's approach to q* (infinite at a marginal q-map).
    pub xi_q: f64,
    /// Depth scale of c's approach to c* (infinite at criticality).
    pub xi_c: f64,
    pub phase: Phase,
    /// Set for the degenerate cases, saying what the numbers mean there.
    pub note: Option<String>,
}

/// The stable correlation for a pair at the fixed point q > 0.
///
/// c = 1 is always a fixed point, stable iff chi_1 < 1. In the chaotic phase
/// the other one lies in [0, 1): on [0, 1] the c-map is increasing and
/// convex (its Hermite expansion sum_n a_n^2 c^n / n! has non-negative
/// coefficients), with C(0) >= 0, C(1) = 1 and C'(1) = chi_1 > 1, so
/// G(c) = C(c) - c has exactly one root there. It is bracketed between 0
/// and 1 - delta (delta = 10^-1 ... 10^-12, the first with G < 0) and
/// bisected to 1e-15. If G(0) <= 0 (odd phi, no bias: C(0) = 0), c* = 0. If
/// no delta works, c* is within 1e-12 of 1 and reported as 1.
fn chaotic_c_star(act: &Activation, sigma_w2: f64, sigma_b2: f64, q: f64) -> f64 {
    let g = |c: f64| c_map(act, sigma_w2, sigma_b2, q, c) - c;
    if g(0.0) <= 0.0 {
        return 0.0;
    }
    let mut lo = 0.0;
    let mut hi = None;
    for k in 1..=12 {
        let c = 1.0 - 10f64.powi(-k);
        if g(c) < 0.0 {
            hi = Some(c);
            break;
        }
        lo = c;
    }
    let Some(mut hi) = hi else {
        return 1.0;
    };
    while hi - lo > 1e-15 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// q*, c*, chi_1, the depth scales and the phase for a constant-width stack
/// with these sigma_w^2 and sigma_b^2, starting from q_start (the stack's
/// `q_pre[1]`).
///
/// Degenerate cases:
/// - sigma_w^2 = 0: the layer outputs its bias; q* = sigma_b^2, c* = 1
///   (NaN without bias: all outputs are 0), chi_1 = 0, xi_q = xi_c = 0.
/// - Positively homogeneous phi without bias: the q-map is q' = m q and the
///   c-map does not depend on q, with slope 1 at c = 1; chi_1 = m. At m < 1,
///   q* = 0 (q decays like m^l, xi_q = -1/ln m); at m = 1 every q is fixed
///   and q* = q_start; m > 1 is an error (q grows without bound). c -> 1
///   only polynomially, so c* = 1 and xi_c is infinite; for the identity
///   c never changes, and c* is NaN.
/// - q* = 0 with phi(0) = 0 and no bias (tanh, erf, sin, gelu, ... with
///   small sigma_w^2): the network becomes linear as q -> 0, and the c-map
///   tends to that of phi's linearisation at 0. If phi is differentiable at
///   0 that map is the identity: c keeps a memory of the input, c* is NaN
///   and xi_c infinite (see the layer table for the c actually reached).
///   If phi has a kink at 0 (selu), c -> 1 polynomially: c* = 1, xi_c
///   infinite.
/// - Critical phase: c* = 1, xi_c infinite.
pub fn fixed_point(
    act: &Activation,
    sigma_w2: f64,
    sigma_b2: f64,
    q_start: f64,
) -> Result<FixedPoint> {
    check_variances(sigma_w2, sigma_b2)?;
    if sigma_w2 == 0.0 {
        let no_bias = sigma_b2 == 0.0;
        return Ok(FixedPoint {
            q_star: sigma_b2,
            c_star: if no_bias { f64::NAN } else { 1.0 },
            chi1: 0.0,
            xi_q: 0.0,
            xi_c: 0.0,
            phase: Phase::Ordered,
            note: Some(if no_bias {
                "sigma_w2 = 0 and no bias: every pre-activation is 0, c is undefined".into()
            } else {
                "sigma_w2 = 0: every layer outputs its bias alone".into()
            }),
        });
    }
    let q = q_star(act, sigma_w2, sigma_b2, q_start)?;
    let chi1 = chi1(act, sigma_w2, q);
    let phase = Phase::of_chi1(chi1);
    let xi_q = depth_scale(q_map_slope(act, sigma_w2, q));
    let linear = matches!(act, Activation::Identity)
        || matches!(act, Activation::LeakyRelu { alpha } if *alpha == 1.0);

    if act.is_positively_homogeneous() && sigma_b2 == 0.0 {
        let (c_star, note) = if linear {
            (
                f64::NAN,
                "linear network: c_l = c_1 for every layer, c* is the input's".to_string(),
            )
        } else {
            (
                1.0,
                "positively homogeneous phi without bias: the c-map has slope 1 at c = 1, so c -> 1 only polynomially (xi_c infinite)".to_string(),
            )
        };
        let q_note = if phase == Phase::Critical {
            "; every q is a fixed point, q* is the network's q_pre[1]"
        } else {
            "; q decays geometrically to 0"
        };
        return Ok(FixedPoint {
            q_star: q,
            c_star,
            chi1,
            // chi_1 = dq'/dq = m here: marginal (infinite) at the critical m = 1.
            xi_q: if phase == Phase::Critical {
                f64::INFINITY
            } else {
                xi_q
            },
            xi_c: f64::INFINITY,
            phase,
            note: Some(note + q_note),
        });
    }

    if q == 0.0 {
        let (up, down) = one_sided_slopes(act);
        let (c_star, note) = if up == down {
            (
                f64::NAN,
                "q* = 0: the network becomes linear as q -> 0 and the c-map tends to the identity, so c keeps a memory of the input (see the layer table); xi_c infinite",
            )
        } else {
            (
                1.0,
                "q* = 0: the c-map tends to that of phi's kink at 0, with slope 1 at c = 1, so c -> 1 only polynomially; xi_c infinite",
            )
        };
        return Ok(FixedPoint {
            q_star: 0.0,
            c_star,
            chi1,
            xi_q,
            xi_c: f64::INFINITY,
            phase,
            note: Some(note.into()),
        });
    }

    let (c_star, xi_c) = match phase {
        Phase::Critical => (1.0, f64::INFINITY),
        Phase::Ordered => (1.0, depth_scale(chi1)),
        Phase::Chaotic => {
            let c = chaotic_c_star(act, sigma_w2, sigma_b2, q);
            (c, depth_scale(chi_c(act, sigma_w2, q, c)))
        }
    };
    Ok(FixedPoint {
        q_star: q,
        c_star,
        chi1,
        xi_q,
        xi_c,
        phase,
        note: None,
    })
}

/// The fixed-point summary of a network: its (sigma_w^2, sigma_b^2) and
/// the fixed point they have.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    #[serde(flatten)]
    pub fixed_point: FixedPoint,
}

/// The summary for a constant-width stack: layers 2..=L must share the
/// width n, the weight variance v and the bias variance (layer 1 may differ:
/// it maps the input). sigma_w^2 = n v, sigma_b^2 the bias variance; the
/// fixed point is the one reached from the network's `q_pre[1]`.
pub fn summary(net: &NetworkSpec) -> Result<Summary> {
    let depth = net.depth();
    if depth < 2 {
        return Err(Error::invalid(
            "--depth",
            "the fixed-point summary needs at least 2 layers: layers 2..L define sigma_w2 and sigma_b2",
        ));
    }
    let n = net.widths[1];
    if let Some(l) = (2..=depth).find(|&l| net.widths[l] != n) {
        return Err(Error::invalid(
            "--widths",
            format!(
                "the fixed-point summary needs a constant width after the input; layer {l} has width {} but layer 1 has {n}",
                net.widths[l]
            ),
        ));
    }
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
    let v = net.weight_law(2).variance;
    let sb = net.bias_law(2).variance;
    for l in 3..=depth {
        if !same(net.weight_law(l).variance, v) {
            return Err(Error::invalid(
                "--init",
                format!(
                    "the fixed-point summary needs one weight variance for layers 2..L; layer {l} differs from layer 2"
                ),
            ));
        }
        if !same(net.bias_law(l).variance, sb) {
            return Err(Error::invalid(
                "--sigma-b2",
                format!(
                    "the fixed-point summary needs one bias variance for layers 2..L; layer {l} differs from layer 2"
                ),
            ));
        }
    }
    if net.bias_law(2).dist == crate::model::init::Dist::Uniform && sb > 0.0 {
        // q-map, c-map and chi_1 here take h Gaussian; with a uniform b they
        // would be plausible and wrong (the per-layer table averages over b).
        return Err(Error::invalid(
            "--init",
            format!(
                "{} keeps nn.Linear's uniform bias, and the fixed-point summary assumes a Gaussian one; give --sigma-b2 for a normal bias, or read the per-layer table (theory without --summary), which averages over the uniform bias",
                net.init.scheme.name()
            ),
        ));
    }
    let sigma_w2 = n as f64 * v;
    let q_start =
        net.widths[0] as f64 * net.weight_law(1).variance * net.q0 + net.bias_law(1).variance;
    let q_start = if q_start > 0.0 { q_start } else { 1.0 };
    Ok(Summary {
        sigma_w2,
        sigma_b2: sb,
        fixed_point: fixed_point(&net.act, sigma_w2, sb, q_start)?,
    })
}
