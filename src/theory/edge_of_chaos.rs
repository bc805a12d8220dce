//! The edge of chaos, chi_1 = 1 (Schoenholz et al. 2017): the sigma_w^2 for
//! a given sigma_b^2, or the sigma_b^2 for a given sigma_w^2, by bracketing
//! chi_1 - 1 at the fixed point q*; positively homogeneous activations in
//! closed form.

use super::fixed_point::*;
use super::gauss::{deriv_second_moment, one_sided_slopes};
use crate::error::{Error, Result};
use crate::model::activation::Activation;

/// A point on the edge of chaos, chi_1 = 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EdgeOfChaos {
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    /// q* there: infinite when q* diverges at the edge, NaN when every q is a
    /// fixed point (see `note`).
    pub q_star: f64,
    pub note: Option<String>,
}

/// chi_1 - 1 at the fixed point reached from q = 1; None where q* diverges.
fn chi1_excess(act: &Activation, sigma_w2: f64, sigma_b2: f64) -> Option<(f64, f64)> {
    let q = q_star(act, sigma_w2, sigma_b2, 1.0).ok()?;
    Some((chi1(act, sigma_w2, q) - 1.0, q))
}

/// Homogeneous phi: chi_1 = sigma_w^2 E[phi'^2] for every q.
fn homogeneous_edge(sigma_w2: f64, sigma_b2: f64) -> EdgeOfChaos {
    let (q_star, note) = if sigma_b2 == 0.0 {
        (
            f64::NAN,
            "chi_1 = sigma_w2 E[phi'^2] for every q; at the edge every q is a fixed point of q' = q",
        )
    } else {
        (
            f64::INFINITY,
            "chi_1 = sigma_w2 E[phi'^2] for every q; with a bias, q* diverges at the edge (q' = q + sigma_b2)",
        )
    };
    EdgeOfChaos {
        sigma_w2,
        sigma_b2,
        q_star,
        note: Some(note.into()),
    }
}

/// sigma_w^2 on the edge of chaos for this sigma_b^2: the root of
/// chi_1(sigma_w^2, q*(sigma_w^2)) = 1, q* the fixed point reached from
/// q = 1.
///
/// Bracketed by doubling sigma_w^2 from 1 (chi_1 = 0 at sigma_w^2 = 0),
/// then bisected until the bracket is within 1e-13 relative (not until
/// chi_1 - 1 is small: near sigma_b^2 = 0 it is flat in sigma_w^2), and
/// |chi_1 - 1| <= EDGE_TOL is checked at the answer. Where q* diverges
/// before chi_1 reaches 1, divergence counts as the chaotic side: if the
/// bracket closes on that boundary with chi_1 within 1e-6 of 1 (relu-like
/// tails such as softplus, where chi_1 -> 1 only like 1/sqrt(q*)), the edge
/// is the boundary, reported with q* infinite; otherwise (chi_1 jumps
/// across 1, or q* jumps to infinity first) it is an error.
pub fn edge_of_chaos_sigma_w2(act: &Activation, sigma_b2: f64) -> Result<EdgeOfChaos> {
    check_variances(0.0, sigma_b2)?;
    if act.is_positively_homogeneous() {
        let sigma_w2 = 1.0 / deriv_second_moment(act, 1.0);
        return Ok(homogeneous_edge(sigma_w2, sigma_b2));
    }
    // Without bias and with phi(0) = 0, q = 0 is a fixed point that loses
    // stability at sigma_w^2 = 2 / (phi'(0+)^2 + phi'(0-)^2), where chi_1 = 1
    // exactly: the edge when q* (from q = 1) is 0 there. chi_1 - 1 is
    // tangent to 0 at that point (it grows like (sigma_w^2 - 1)^2 / 3 for
    // tanh), which bisection alone would only locate to ~1e-8.
    if sigma_b2 == 0.0 && act.value(0.0) == 0.0 {
        let (up, down) = one_sided_slopes(act);
        let w0 = 2.0 / (up * up + down * down);
        if let Some((h, q)) = chi1_excess(act, w0, 0.0)
            && q == 0.0
            && h.abs() <= EDGE_TOL
        {
            return Ok(EdgeOfChaos {
                sigma_w2: w0,
                sigma_b2,
                q_star: 0.0,
                note: Some(
                    "no bias and phi(0) = 0: the edge is where q* = 0 loses stability, sigma_w2 = 2 / (phi'(0+)^2 + phi'(0-)^2)".into(),
                ),
            });
        }
    }
    // Each end: (sigma_w2, Some((chi_1 - 1, q*)) or None where q* diverges).
    let mut lo: (f64, Option<(f64, f64)>) = (0.0, Some((-1.0, sigma_b2)));
    let mut hi = (1.0, chi1_excess(act, 1.0, sigma_b2));
    while let Some((h, _)) = hi.1 {
        if h >= 0.0 {
            break;
        }
        lo = hi;
        let w = 2.0 * hi.0;
        if w > 1e6 {
            return Err(Error::invalid(
                "--sigma-b2",
                format!(
                    "no edge of chaos for {act} at sigma_b2 = {sigma_b2}: chi_1 < 1 for every sigma_w2 up to 1e6"
                ),
            ));
        }
        hi = (w, chi1_excess(act, w, sigma_b2));
    }
    while hi.0 - lo.0 > 1e-13 * hi.0 {
        let mid = 0.5 * (lo.0 + hi.0);
        let at = (mid, chi1_excess(act, mid, sigma_b2));
        match at.1 {
            Some((h, _)) if h < 0.0 => lo = at,
            _ => hi = at,
        }
    }
    let edge = |(w, h): (f64, Option<(f64, f64)>)| {
        h.filter(|(h, _)| h.abs() <= EDGE_TOL)
            .map(|(_, q)| EdgeOfChaos {
                sigma_w2: w,
                sigma_b2,
                q_star: q,
                note: None,
            })
    };
    let (lo_excess, lo_q) = lo.1.expect("the lower end always has a finite q*");
    if let Some(e) = edge(hi).or_else(|| edge(lo)) {
        return Ok(e);
    }
    match hi.1 {
        None if lo_excess.abs() <= 1e-6 => Ok(EdgeOfChaos {
            sigma_w2: lo.0,
            sigma_b2,
            q_star: f64::INFINITY,
            note: Some(format!(
                "chi_1 -> 1 only as q* -> infinity: the edge is where q* diverges (just below it, q* = {lo_q:.3e} and chi_1 = {})",
                1.0 + lo_excess
            )),
        }),
        None => Err(Error::invalid(
            "--sigma-b2",
            format!(
                "no edge of chaos for {act} at sigma_b2 = {sigma_b2}: q* (from q = 1) diverges at sigma_w2 = {} while chi_1 = {} there",
                lo.0,
                1.0 + lo_excess
            ),
        )),
        Some((h, _)) => Err(Error::invalid(
            "--sigma-b2",
            format!(
                "no edge of chaos for {act} at sigma_b2 = {sigma_b2}: chi_1 jumps across 1 at sigma_w2 = {} (chi_1 - 1 = {lo_excess} below, {h} above)",
                hi.0
            ),
        )),
    }
}

/// sigma_b^2 on the edge of chaos for this sigma_w^2, or None when chi_1 = 1
/// has no root in sigma_b^2 >= 0.
///
/// chi_1 at sigma_b^2 = 0 and on the grid 1e-4 * 2^k up to ~1.6e4 is
/// scanned for the first sign change, which is bisected to 1e-13 relative;
/// the root is returned if |chi_1 - 1| <= EDGE_TOL there (a jump of chi_1,
/// where q* jumps, is no root). Roots beyond the grid, or where chi_1
/// touches 1 without crossing, are not found. For positively homogeneous phi chi_1 does not
/// depend on sigma_b^2: every sigma_b^2 is on the edge when sigma_w^2
/// E[phi'^2] = 1 (within CRITICAL_TOL; 0 is returned), none otherwise.
pub fn edge_of_chaos_sigma_b2(act: &Activation, sigma_w2: f64) -> Result<Option<EdgeOfChaos>> {
    check_variances(sigma_w2, 0.0)?;
    if act.is_positively_homogeneous() {
        let chi1 = sigma_w2 * deriv_second_moment(act, 1.0);
        return Ok(if (chi1 - 1.0).abs() <= CRITICAL_TOL {
            Some(homogeneous_edge(sigma_w2, 0.0))
        } else {
            None
        });
    }
    let grid = std::iter::once(0.0).chain((0..28).map(|k| 1e-4 * 2f64.powi(k)));
    let mut previous: Option<(f64, f64)> = None;
    for b in grid {
        let Some((h, q)) = chi1_excess(act, sigma_w2, b) else {
            previous = None;
            continue;
        };
        if h.abs() <= EDGE_TOL {
            return Ok(Some(EdgeOfChaos {
                sigma_w2,
                sigma_b2: b,
                q_star: q,
                note: None,
            }));
        }
        if let Some((b_prev, h_prev)) = previous
            && h_prev.signum() != h.signum()
        {
            // Bisect to 1e-13 relative, then check chi_1 there.
            let (mut lo, mut hi) = (b_prev, b);
            // The last point evaluated: (sigma_b2, chi_1 - 1, q*).
            let mut at = (b, h, q);
            while hi - lo > 1e-13 * hi {
                let mid = 0.5 * (lo + hi);
                let Some((hm, qm)) = chi1_excess(act, sigma_w2, mid) else {
                    return Ok(None);
                };
                at = (mid, hm, qm);
                if hm.signum() == h_prev.signum() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return Ok((at.1.abs() <= EDGE_TOL).then_some(EdgeOfChaos {
                sigma_w2,
                sigma_b2: at.0,
                q_star: at.2,
                note: None,
            }));
        }
        previous = Some((b, h));
    }
    Ok(None)
}
