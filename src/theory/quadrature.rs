//! Quadrature rules: Gauss-Hermite for smooth integrands against the
//! Gaussian, and composite Gauss-Legendre on graded panels for integrands
//! with kinks or with features much narrower than the Gaussian.

use std::sync::OnceLock;

/// Gauss-Hermite rule for the weight exp(-x^2) on the real line: nodes in
/// descending order and their weights (which sum to sqrt(pi)).
///
/// Golub-Welsch for the nodes: they are the eigenvalues of the symmetric
/// tridiagonal Jacobi matrix (zero diagonal, off-diagonal sqrt(k/2)), found
/// by the implicit QL method. Each node is then polished by Newton's method
/// on the orthonormal Hermite recurrence, and its weight is 2 / p_n'(x)^2
/// there, which keeps the tiny outer weights accurate in relative terms.
/// (Newton alone from the usual asymptotic guesses jumps to a neighbouring
/// root from n = 200 on.) The orthonormal polynomials stay within f64 up to
/// n = 400.
pub fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(
        (1..=400).contains(&n),
        "Gauss-Hermite order {n} out of 1..=400"
    );
    let off: Vec<f64> = (1..n).map(|k| (k as f64 / 2.0).sqrt()).collect();
    let mut x = symmetric_tridiagonal_eigenvalues(vec![0.0; n], off);
    x.sort_by(|a, b| b.total_cmp(a));
    let pi_m4 = std::f64::consts::PI.powf(-0.25);
    let nf = n as f64;
    // Orthonormal p_n(z) and its derivative sqrt(2n) p_{n-1}(z).
    let eval = |z: f64| {
        let (mut p1, mut p2) = (pi_m4, 0.0);
        for j in 0..n {
            let p3 = p2;
            p2 = p1;
            let jf = j as f64;
            p1 = z * (2.0 / (jf + 1.0)).sqrt() * p2 - (jf / (jf + 1.0)).sqrt() * p3;
        }
        (p1, (2.0 * nf).sqrt() * p2)
    };
    let mut w = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut z = x[i];
        for _ in 0..3 {
            let (p, dp) = eval(z);
            z -= p / dp;
        }
        let (_, dp) = eval(z);
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (dp * dp);
        w[n - 1 - i] = w[i];
    }
    if n % 2 == 1 {
        x[n / 2] = 0.0;
    }
    (x, w)
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and
/// off-diagonal `e` (e[i] couples i and i+1), by the implicit QL method with
/// Wilkinson shifts (Numerical Recipes' `tqli`, eigenvalues only).
fn symmetric_tridiagonal_eigenvalues(mut d: Vec<f64>, off: Vec<f64>) -> Vec<f64> {
    let n = d.len();
    let mut e = off;
    e.resize(n, 0.0);
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            assert!(iterations <= 60, "QL did not converge");
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    d
}

/// Gauss-Legendre rule on [-1, 1]: nodes and weights (which sum to 2), by
/// Newton's method on the Legendre recurrence.
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(n >= 1);
    let nf = n as f64;
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let eval = |z: f64| {
        let (mut p1, mut p2) = (1.0, 0.0);
        for j in 0..n {
            let p3 = p2;
            p2 = p1;
            let jf = j as f64;
            p1 = ((2.0 * jf + 1.0) * z * p2 - jf * p3) / (jf + 1.0);
        }
        // p1 = P_n(z), derivative from P_n and P_{n-1}
        let dp = nf * (z * p1 - p2) / (z * z - 1.0);
        (p1, dp)
    };
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        for _ in 0..100 {
            let (p, dp) = eval(z);
            let step = p / dp;
            z -= step;
            if step.abs() <= 1e-16 {
                break;
            }
        }
        let (_, dp) = eval(z);
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
        w[n - 1 - i] = w[i];
    }
    if n % 2 == 1 {
        x[n / 2] = 0.0;
    }
    (x, w)
}

/// A rule for E[f(z)], z ~ N(0,1): sum_i weight_i f(node_i).
pub struct NormalRule {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

/// Gauss-Hermite in the standard normal variable: z = sqrt(2) x, weights over
/// sqrt(pi), so that they sum to 1. Exact for polynomials of degree < 2n.
pub fn normal_rule(n: usize) -> NormalRule {
    let (x, w) = gauss_hermite(n);
    let s = std::f64::consts::PI.sqrt();
    NormalRule {
        nodes: x.iter().map(|x| std::f64::consts::SQRT_2 * x).collect(),
        weights: w.iter().map(|w| w / s).collect(),
    }
}

/// Nodes per panel of the composite rule.
pub const PANEL_ORDER: usize = 16;

pub fn panel_rule() -> &'static (Vec<f64>, Vec<f64>) {
    static RULE: OnceLock<(Vec<f64>, Vec<f64>)> = OnceLock::new();
    RULE.get_or_init(|| gauss_legendre(PANEL_ORDER))
}

/// A point where the integrand changes character (a kink, a jump, or the
/// centre of a feature) and the width of the first panel on either side:
/// the scale over which the integrand varies there.
#[derive(Clone, Copy, Debug)]
pub struct Feature {
    pub at: f64,
    pub scale: f64,
}

/// Panels covering [lo, hi] with a breakpoint at every feature inside, and
/// widths that grow geometrically (ratio 2) away from each feature, from
/// its scale up to `max_width`.
///
/// Why this works: on each piece the integrand is analytic, and a panel of
/// width w at distance about w from the feature sees the feature's nearest
/// complex singularity (or the steep part of an exponential boundary layer)
/// at a distance comparable to its own half-width; 16-point Gauss-Legendre
/// then converges like rho^-32 with rho >= 3 or so, below 1e-14 relative.
/// Away from features, panels of width <= 2 resolve the Gaussian itself:
/// exp(-z^2/2) on a width-2 panel has a Bernstein-ellipse bound of about
/// e^7.8 / 8^32 ~ 1e-25.
pub fn graded_panels(lo: f64, hi: f64, features: &[Feature], max_width: f64) -> Vec<(f64, f64)> {
    let inside: Vec<Feature> = features
        .iter()
        .filter(|f| f.at > lo && f.at < hi && f.at.is_finite())
        .map(|f| Feature {
            at: f.at,
            scale: f.scale.clamp(1e-14, max_width),
        })
        .collect();
    // A breakpoint grades from the finest scale any feature imposes on it: a
    // feature of scale h at distance d asks for max(h, d), the width its own
    // graded panels would have reached by then.
    let scale_at = |x: f64, own: f64| {
        inside
            .iter()
            .map(|f| f.scale.max((x - f.at).abs()))
            .fold(own, f64::min)
    };
    let mut points: Vec<f64> = inside.iter().map(|f| f.at).collect();
    points.sort_by(f64::total_cmp);
    points.dedup_by(|a, b| (*a - *b).abs() <= 1e-15 * a.abs().max(1.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(points.len() + 2);
    merged.push((lo, scale_at(lo, max_width)));
    for x in points {
        merged.push((x, scale_at(x, max_width)));
    }
    merged.push((hi, scale_at(hi, max_width)));
    let mut panels = Vec::new();
    for pair in merged.windows(2) {
        let ((a, ha), (b, hb)) = (pair[0], pair[1]);
        // Grade in from both ends, always advancing the finer side, and
        // close once the gap is at most 1.5 times the finer of the two next
        // widths (with two panels if one would exceed max_width).
        let (mut left, mut hl, mut right, mut hr) = (a, ha, b, hb);
        let mut right_cuts = Vec::new();
        loop {
            if right - left <= 1.5 * hl.min(hr) {
                break;
            }
            if hl <= hr {
                panels.push((left, left + hl));
                left += hl;
                hl = (2.0 * hl).min(max_width);
            } else {
                right_cuts.push((right - hr, right));
                right -= hr;
                hr = (2.0 * hr).min(max_width);
            }
        }
        if right - left <= max_width {
            panels.push((left, right));
        } else {
            let mid = 0.5 * (left + right);
            panels.push((left, mid));
            panels.push((mid, right));
        }
        panels.extend(right_cuts.into_iter().rev());
    }
    panels
}

/// sum over panels of the Gauss-Legendre rule for integral f(z) dz.
pub fn integrate_panels(panels: &[(f64, f64)], mut f: impl FnMut(f64) -> f64) -> f64 {
    let (t, w) = panel_rule();
    let mut total = 0.0;
    for &(a, b) in panels {
        let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
        let mut s = 0.0;
        for (t, w) in t.iter().zip(w) {
            s += w * f(c + h * t);
        }
        total += h * s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermite_rule_integrates_polynomials_exactly() {
        // E[z^2k] = (2k-1)!!, exact for 2k < 2n.
        for n in [1usize, 2, 5, 20, 64, 96, 160, 300] {
            let rule = normal_rule(n);
            let sum: f64 = rule.weights.iter().sum();
            assert!((sum - 1.0).abs() < 1e-13, "n={n}: sum of weights {sum}");
            let kmax = (n - 1).min(10);
            let mut double_factorial = 1.0;
            for k in 1..=kmax {
                double_factorial *= (2 * k - 1) as f64;
                let m: f64 = rule
                    .nodes
                    .iter()
                    .zip(&rule.weights)
                    .map(|(z, w)| w * z.powi(2 * k as i32))
                    .sum();
                assert!(
                    (m / double_factorial - 1.0).abs() < 1e-12,
                    "n={n} k={k}: {m} vs {double_factorial}"
                );
            }
        }
    }

    #[test]
    fn legendre_rule_integrates_polynomials_exactly() {
        let (x, w) = gauss_legendre(PANEL_ORDER);
        for k in 0..(2 * PANEL_ORDER) {
            let m: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
            let exact = if k % 2 == 0 {
                2.0 / (k as f64 + 1.0)
            } else {
                0.0
            };
            assert!((m - exact).abs() < 1e-14, "k={k}: {m} vs {exact}");
        }
    }

    #[test]
    fn panels_cover_the_interval_and_split_at_features() {
        let f = [
            Feature {
                at: 0.0,
                scale: 0.01,
            },
            Feature {
                at: 3.0,
                scale: 0.5,
            },
            Feature {
                at: 20.0,
                scale: 0.1,
            },
        ];
        let p = graded_panels(-9.0, 9.0, &f, 2.0);
        assert_eq!(p[0].0, -9.0);
        assert_eq!(p.last().unwrap().1, 9.0);
        for w in p.windows(2) {
            assert_eq!(w[0].1, w[1].0);
        }
        assert!(p.iter().any(|&(a, _)| a == 0.0) && p.iter().any(|&(a, _)| a == 3.0));
        assert!(p.iter().all(|&(a, b)| b - a <= 2.0 && b > a));
        // smallest panel next to the narrow feature
        assert!(p.iter().any(|&(a, b)| a == 0.0 && (b - 0.01).abs() < 1e-15));
    }
}
