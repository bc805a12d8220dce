//! Special functions the theory needs, in f64: the standard normal law, and
//! digamma and trigamma for the log of a chi-squared variable.

use std::f64::consts::SQRT_2;

/// Euler-Mascheroni constant.
pub const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Standard normal density.
pub fn normal_pdf(z: f64) -> f64 {
    crate::model::activation::standard_normal_pdf(z)
}

/// P(Z <= x) for Z ~ N(0,1), through erfc so that the lower tail keeps its
/// relative accuracy.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// P(Z > x) for Z ~ N(0,1).
pub fn normal_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / SQRT_2)
}

/// The scaled complementary error function erfcx(x) = exp(x^2) erfc(x), for
/// x >= 0 (where erfc underflows long before erfcx does).
///
/// Below 26, exp(x^2) erfc(x) with x^2 split exactly into hi + lo (by a
/// fused multiply-add), so that the exponential adds no error of order
/// x^2 * 1e-16; from 26 on, the asymptotic series 1/(x sqrt(pi)) *
/// sum_k (-1)^k (2k-1)!! / (2x^2)^k to k = 7, whose first omitted term is
/// below 1e-17 there.
pub fn erfcx(x: f64) -> f64 {
    assert!(x >= 0.0 || x.is_nan(), "erfcx is implemented for x >= 0");
    if x < 26.0 {
        let hi = x * x;
        let lo = x.mul_add(x, -hi);
        hi.exp() * lo.exp() * libm::erfc(x)
    } else {
        let t = 1.0 / (2.0 * x * x);
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 1..=7 {
            term *= -((2 * k - 1) as f64) * t;
            sum += term;
        }
        sum / (x * std::f64::consts::PI.sqrt())
    }
}

/// Below this the recurrences psi(x) = psi(x+1) - 1/x and
/// psi'(x) = psi'(x+1) + 1/x^2 move the argument up before the asymptotic
/// series; at x >= 10 the first omitted series term is below 1e-16 relative.
const ASYMPTOTIC_FROM: f64 = 10.0;

/// Digamma psi(x) = d/dx ln Gamma(x), for x > 0 (NaN otherwise).
///
/// psi(x) ~ ln x - 1/(2x) - sum_k B_2k / (2k x^2k), seven terms.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let t = 1.0 / (x * x);
    let series = t
        * (1.0 / 12.0
            - t * (1.0 / 120.0
                - t * (1.0 / 252.0
                    - t * (1.0 / 240.0 - t * (1.0 / 132.0 - t * (691.0 / 32760.0 - t / 12.0))))));
    shift + x.ln() - 0.5 / x - series
}

/// Trigamma psi'(x), for x > 0 (NaN otherwise).
///
/// psi'(x) ~ 1/x + 1/(2x^2) + sum_k B_2k / x^(2k+1), seven terms.
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let t = 1.0 / (x * x);
    let series = t
        * (1.0 / 6.0
            - t * (1.0 / 30.0
                - t * (1.0 / 42.0
                    - t * (1.0 / 30.0 - t * (5.0 / 66.0 - t * (691.0 / 2730.0 - t * 7.0 / 6.0))))));
    shift + 1.0 / x + 0.5 * t + series / x
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{LN_2, PI};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn digamma_known_values() {
        // psi(1) = -gamma, psi(1/2) = -gamma - 2 ln 2, psi(n+1) = psi(n) + 1/n.
        assert!(close(digamma(1.0), -EULER_GAMMA, 1e-15));
        assert!(close(digamma(0.5), -EULER_GAMMA - 2.0 * LN_2, 1e-15));
        let h10: f64 = (1..10).map(|k| 1.0 / k as f64).sum();
        assert!(close(digamma(10.0), h10 - EULER_GAMMA, 1e-15));
        // psi(1/4) = -gamma - pi/2 - 3 ln 2
        assert!(close(
            digamma(0.25),
            -EULER_GAMMA - PI / 2.0 - 3.0 * LN_2,
            1e-15
        ));
        // Large argument: psi(x) - ln x + 1/(2x) -> -1/(12 x^2).
        let x = 1e6;
        assert!((digamma(x) - (x.ln() - 0.5 / x - 1.0 / (12.0 * x * x))).abs() < 1e-15);
        assert!(digamma(0.0).is_nan() && digamma(-1.0).is_nan());
    }

    #[test]
    fn erfcx_known_values() {
        // Reference values from mpmath (30 digits, rounded): exp(x^2) erfc(x).
        let known = [
            (0.0, 1.0),
            (0.5, 0.615_690_344_192_925_9),
            (1.0, 0.427_583_576_155_807),
            (5.0, 0.110_704_637_733_068_63),
            (25.9, 0.021_767_181_150_738_21),
            (26.1, 0.021_600_627_726_346_21),
            (100.0, 0.005_641_613_782_989_433),
        ];
        for (x, want) in known {
            let got = erfcx(x);
            assert!(
                ((got - want) / want).abs() < 1e-14,
                "erfcx({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn trigamma_known_values() {
        // psi'(1) = pi^2/6, psi'(1/2) = pi^2/2, psi'(n+1) = psi'(n) - 1/n^2.
        assert!(close(trigamma(1.0), PI * PI / 6.0, 1e-15));
        assert!(close(trigamma(0.5), PI * PI / 2.0, 1e-15));
        let s: f64 = (1..7).map(|k| 1.0 / (k * k) as f64).sum();
        assert!(close(trigamma(7.0), PI * PI / 6.0 - s, 1e-15));
        let x = 1e6;
        assert!(close(trigamma(x), 1.0 / x + 0.5 / (x * x), 1e-15));
    }
}
