//! The law of one weight or bias entry: a distribution (normal, uniform,
//! truncated normal with its bound, orthogonal) and the entry's variance,
//! with the moments the theory reads and the scale the kernels multiply a
//! standard draw by.

use crate::error::{Error, Result};
use crate::model::activation::standard_normal_pdf;

/// Flax's correction: the standard normal truncated to [-2, 2] has standard
/// deviation 0.87962566103423978, so variance_scaling divides the std by it.
pub const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;
/// Truncation point of JAX's and Flax's truncated normals, in standard
/// deviations of the untruncated normal.
pub const TRUNCATION: f64 = 2.0;

/// Distribution of a weight or bias entry; the variance is carried beside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    Normal,
    Uniform,
    /// N(0, s^2) conditioned on |w| < bound s: `bound` is in standard
    /// deviations s of the untruncated normal (2 for JAX and Flax; 2/s for
    /// PyTorch's trunc_normal_, whose bounds +-2 are absolute).
    TruncatedNormal {
        bound: f64,
    },
    Orthogonal,
}

impl serde::Serialize for Dist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Dist {
    /// `--dist` of `--init custom`; its truncated normal keeps the variance
    /// exact (truncated at 2 std and rescaled, as Flax's variance_scaling).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "normal" => Ok(Dist::Normal),
            "uniform" => Ok(Dist::Uniform),
            "truncated-normal" => Ok(Dist::TruncatedNormal { bound: TRUNCATION }),
            _ => Err(Error::invalid(
                "--dist",
                format!(
                    "unknown distribution '{name}'; accepted: normal, uniform, truncated-normal"
                ),
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Dist::Normal => "normal",
            Dist::Uniform => "uniform",
            Dist::TruncatedNormal { .. } => "truncated-normal",
            Dist::Orthogonal => "orthogonal",
        }
    }

    /// The bound of a truncated normal in standard deviations of the
    /// untruncated one; None for the other distributions.
    pub fn truncation(&self) -> Option<f64> {
        match *self {
            Dist::TruncatedNormal { bound } => Some(bound),
            _ => None,
        }
    }

    /// Code used by the WGSL kernels (`standard4` in `shaders/common/philox.wgsl`).
    pub fn code(&self) -> u32 {
        match self {
            Dist::Normal => 0,
            Dist::Uniform => 1,
            Dist::TruncatedNormal { .. } => 2,
            Dist::Orthogonal => 3,
        }
    }

    /// The kernels' second parameter of `standard4`: P(|z| < bound) =
    /// erf(bound / sqrt 2) for the truncated normal, which its inverse CDF
    /// scales the uniform by; 0 for the rest.
    pub fn truncation_mass(&self) -> f64 {
        match *self {
            Dist::TruncatedNormal { bound } => libm::erf(bound / std::f64::consts::SQRT_2),
            _ => 0.0,
        }
    }

    /// Excess-free fourth moment E[w^4]/v^2 of the distribution (3 for the
    /// normal, 9/5 for the uniform); the truncated normal's is computed.
    pub fn standardised_fourth_moment(&self) -> f64 {
        match *self {
            Dist::Normal => 3.0,
            Dist::Uniform => 1.8,
            Dist::TruncatedNormal { bound } => {
                let (m2, m4) = truncated_normal_moments(bound);
                m4 / (m2 * m2)
            }
            Dist::Orthogonal => f64::NAN,
        }
    }
}

/// E[z^2] and E[z^4] of the standard normal conditioned on |z| < a:
/// E[z^2 1{|z|<a}] = P - 2 a phi(a), E[z^4 1{|z|<a}] = 3 P - 2 (a^3 + 3a) phi(a),
/// P = P(|z| < a).
pub fn truncated_normal_moments(a: f64) -> (f64, f64) {
    let phi = standard_normal_pdf(a);
    let p = libm::erf(a / std::f64::consts::SQRT_2);
    let m2 = (p - 2.0 * a * phi) / p;
    let m4 = (3.0 * p - 2.0 * (a * a * a + 3.0 * a) * phi) / p;
    (m2, m4)
}

/// The law of one layer's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightLaw {
    pub dist: Dist,
    /// Variance v of one entry.
    pub variance: f64,
}

impl WeightLaw {
    /// The number the kernels multiply a standard draw by: the std for the
    /// normal, the half-width sqrt(3 v) for the uniform, the std of the
    /// untruncated normal for the truncated one (v over its truncated
    /// second moment).
    pub fn scale(&self) -> f64 {
        match self.dist {
            Dist::Normal | Dist::Orthogonal => self.variance.sqrt(),
            Dist::Uniform => (3.0 * self.variance).sqrt(),
            Dist::TruncatedNormal { bound } => {
                (self.variance / truncated_normal_moments(bound).0).sqrt()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flax_correction_is_the_std_of_the_normal_truncated_at_two() {
        // Var of N(0,1) truncated to [-2,2] = 1 - 2*2*phi(2)/P(|z|<2)
        let a = TRUNCATION;
        let p = libm::erf(a / std::f64::consts::SQRT_2);
        let var = 1.0 - 2.0 * a * standard_normal_pdf(a) / p;
        assert!((var.sqrt() - TRUNCATED_NORMAL_STD).abs() < 1e-15);
        assert!((truncated_normal_moments(a).0.sqrt() - TRUNCATED_NORMAL_STD).abs() < 1e-15);
    }

    /// The closed forms against Simpson's rule on the density.
    #[test]
    fn truncated_moments_match_quadrature() {
        for a in [0.3, 1.0, 2.0, 3.5, 8.0, 32.0] {
            let n = 20_000;
            let h = 2.0 * a / n as f64;
            let (mut z0, mut z2, mut z4) = (0.0, 0.0, 0.0);
            for i in 0..=n {
                let z = -a + i as f64 * h;
                let w = if i == 0 || i == n {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                let f = w * (-0.5 * z * z).exp();
                z0 += f;
                z2 += f * z * z;
                z4 += f * z.powi(4);
            }
            let (m2, m4) = truncated_normal_moments(a);
            assert!((m2 - z2 / z0).abs() < 1e-10, "a {a}: {m2} vs {}", z2 / z0);
            assert!((m4 - z4 / z0).abs() < 1e-9, "a {a}: {m4} vs {}", z4 / z0);
        }
    }
}
