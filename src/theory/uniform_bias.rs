//! Post-activation moments when each unit's bias is uniform (nn.Linear's
//! default U(+-1/sqrt(fan_in)), which torch-default and siren keep).
//!
//! At infinite width the pre-activation of unit i is h_i = g_i + b_i: g_i
//! is Gaussian (Var nv q_post, the pair's covariance nv q_post rho_post) and
//! b_i ~ U(-beta, beta) is independent of it and the same for both inputs
//! of a pair. A Gaussian bias folds into g's covariance (the recurrence's
//! "+ sb"); a uniform one does not, since h is then not Gaussian: every
//! moment is the average over b of the Gaussian moments of phi(u + b),
//!
//! ```text
//! E[phi(h_a) phi(h_b)] = (1 / 2 beta) int_{-beta}^{beta} E_g[phi(g_a + b) phi(g_b + b)] db,
//! ```
//!
//! by Gauss-Legendre panels in b around the Gaussian expectations of
//! `expectation` with the activation shifted by b.

use super::expectation::{
    Pair, expect_1d_order, expect_1d_panels, expect_2d_orders, expect_2d_panels,
    gauss_hermite_order,
};
use super::gauss::{Rule, rule};
use super::quadrature::integrate_panels;
use crate::model::activation::Activation;

/// Moments of phi(g + b) averaged over g and b.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShiftedMoments {
    /// E[phi(h)^2]
    pub second: f64,
    /// E[phi(h_a) phi(h_b)]
    pub cross: f64,
    /// E[phi(h)]
    pub mean: f64,
    /// E[phi'(h)^2]
    pub deriv_second: f64,
}

/// The moments for g with variance `kg` and pair covariance `kg12`, and b
/// uniform on (-beta, beta).
pub fn uniform_bias_moments(act: &Activation, kg: f64, kg12: f64, beta: f64) -> ShiftedMoments {
    let kg = kg.max(0.0);
    let panels = b_panels(act, kg, beta);
    let average = |f: &dyn Fn(f64) -> f64| integrate_panels(&panels, f) / (2.0 * beta);
    let value = |b: f64| move |u: f64| act.value(u + b);
    ShiftedMoments {
        second: average(&|b| gaussian_1d(act, kg, b, |u| value(b)(u).powi(2))),
        cross: average(&|b| gaussian_2d(act, kg, kg12, b)),
        mean: average(&|b| gaussian_1d(act, kg, b, value(b))),
        deriv_second: average(&|b| gaussian_1d(act, kg, b, |u| act.deriv(u + b).powi(2))),
    }
}

/// Panels over (-beta, beta) narrow enough for the b-dependence: the
/// Gaussian moments of phi(u + b) vary in b on the scale of phi's own
/// features (a smooth phi's reach) or, for a kinked phi, of the Gaussian
/// smoothing sqrt(kg).
fn b_panels(act: &Activation, kg: f64, beta: f64) -> Vec<(f64, f64)> {
    const MAX_PANELS: usize = 64;
    let scale = match rule(act) {
        Rule::Smooth { reach } => reach,
        Rule::Kinked { kinks } if kinks.is_empty() => f64::INFINITY,
        Rule::Kinked { .. } => kg.sqrt(),
    };
    let count = if scale > 0.0 {
        ((2.0 * beta / scale).ceil() as usize).clamp(2, MAX_PANELS)
    } else {
        MAX_PANELS
    };
    let width = 2.0 * beta / count as f64;
    (0..count)
        .map(|i| (-beta + i as f64 * width, -beta + (i + 1) as f64 * width))
        .collect()
}

/// E[h(g)] for g ~ N(0, kg), h built from phi(u + b): phi's kinks move to k - b.
fn gaussian_1d(act: &Activation, kg: f64, b: f64, h: impl Fn(f64) -> f64) -> f64 {
    if kg == 0.0 {
        return h(0.0);
    }
    match rule(act) {
        Rule::Smooth { reach } => match gauss_hermite_order(reach, kg.sqrt()) {
            Some(order) => expect_1d_order(h, kg, order),
            None => expect_1d_panels(h, kg, &[-b], false),
        },
        Rule::Kinked { kinks } => {
            let shifted: Vec<f64> = kinks.iter().map(|k| k - b).collect();
            expect_1d_panels(h, kg, &shifted, false)
        }
    }
}

/// E[phi(g_a + b) phi(g_b + b)] for the Gaussian pair (kg, kg, kg12).
fn gaussian_2d(act: &Activation, kg: f64, kg12: f64, b: f64) -> f64 {
    let phi = |u: f64| act.value(u + b);
    match rule(act) {
        Rule::Smooth { reach } => {
            let inner = gauss_hermite_order(reach, Pair::new(kg, kg, kg12).b);
            match (gauss_hermite_order(reach, kg.sqrt()), inner) {
                (Some(outer), Some(inner)) => {
                    expect_2d_orders(phi, phi, kg, kg, kg12, outer, inner)
                }
                _ => expect_2d_panels(phi, phi, kg, kg, kg12, &[-b], &[-b], false, inner),
            }
        }
        Rule::Kinked { kinks } => {
            let shifted: Vec<f64> = kinks.iter().map(|k| k - b).collect();
            expect_2d_panels(phi, phi, kg, kg, kg12, &shifted, &shifted, false, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sin(w h) has closed forms: with E[cos 2 w b] = sin(2 w beta)/(2 w beta)
    /// for the uniform b, E[sin^2] = (1 - e^{-2 w^2 kg} E cos 2wb)/2 and
    /// E[sin sin] = (e^{-w^2 (kg - kg12)} - e^{-w^2 (kg + kg12)} E cos 2wb)/2.
    #[test]
    fn sine_matches_its_closed_form() {
        let w = 30.0;
        let act = Activation::Sin { omega: w };
        for (kg, rho, beta) in [
            (0.0011, 0.4, 0.088),
            (0.004, 0.9, 0.02),
            (0.0002, -0.3, 0.3),
        ] {
            let kg12 = rho * kg;
            let m = uniform_bias_moments(&act, kg, kg12, beta);
            let cos_b = (2.0 * w * beta).sin() / (2.0 * w * beta);
            let second = 0.5 * (1.0 - (-2.0 * w * w * kg).exp() * cos_b);
            let cross = 0.5 * ((-w * w * (kg - kg12)).exp() - (-w * w * (kg + kg12)).exp() * cos_b);
            // E[sin(w(g + b))] = 0 by symmetry; E[w^2 cos^2] = w^2 (1 + e^{-2w^2 kg} E cos 2wb)/2
            let deriv = 0.5 * w * w * (1.0 + (-2.0 * w * w * kg).exp() * cos_b);
            assert!(
                (m.second - second).abs() < 1e-12,
                "{kg} {rho} {beta}: {m:?} vs {second}"
            );
            assert!(
                (m.cross - cross).abs() < 1e-12,
                "{kg} {rho} {beta}: {m:?} vs {cross}"
            );
            assert!(m.mean.abs() < 1e-12, "{m:?}");
            assert!(
                (m.deriv_second - deriv).abs() < 1e-9 * deriv,
                "{m:?} vs {deriv}"
            );
        }
    }

    /// relu: E[relu(g + b)^2] for fixed b is (kg + b^2) Phi(b/s) + b s phi(b/s)
    /// (s = sqrt kg); the b average by a fine Riemann sum stands in for the
    /// closed form in b.
    #[test]
    fn relu_matches_a_direct_integration() {
        let act = Activation::Relu;
        let (kg, beta): (f64, f64) = (0.5, 0.4);
        let s = kg.sqrt();
        let phi = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = |x: f64| 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let n = 200_000;
        let mut second = 0.0;
        let mut mean = 0.0;
        for i in 0..n {
            let b = -beta + (i as f64 + 0.5) * 2.0 * beta / n as f64;
            second += (kg + b * b) * cdf(b / s) + b * s * phi(b / s);
            mean += b * cdf(b / s) + s * phi(b / s);
        }
        second /= n as f64;
        mean /= n as f64;
        let m = uniform_bias_moments(&act, kg, 0.3 * kg, beta);
        assert!((m.second - second).abs() < 1e-9, "{} vs {second}", m.second);
        assert!((m.mean - mean).abs() < 1e-9, "{} vs {mean}", m.mean);
        // E[relu'(h)^2] = P(h > 0) = 1/2 by symmetry of g + b
        assert!((m.deriv_second - 0.5).abs() < 1e-12, "{}", m.deriv_second);
    }
}
