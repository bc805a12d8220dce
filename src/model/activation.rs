//! Activations phi: value and derivative in f64 (the twin of the WGSL bodies in
//! `shaders/common/activation.wgsl`), PyTorch's gain, and the properties the engines
//! and the theory need (positive homogeneity, closed forms).

use crate::error::{Error, Result};

/// SELU constants (Klambauer et al. 2017), as in PyTorch.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// SIREN's frequency omega_0 (Sitzmann et al. 2020), the default of sin with
/// the siren init.
pub const SIREN_OMEGA: f64 = 30.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// max(z, a z)
    LeakyRelu {
        alpha: f64,
    },
    Tanh,
    Sigmoid,
    /// min(max(z, 0), 6)
    Relu6,
    /// sin(omega z)
    Sin {
        omega: f64,
    },
    Selu,
    /// exact GELU: z Phi(z)
    Gelu,
    /// alpha = 1
    Elu,
    /// z sigmoid(z)
    Silu,
    Erf,
    /// log(1 + e^z)
    Softplus,
    Abs,
}

/// Names accepted by `--act`, in the order `--help` lists them.
pub const ACTIVATION_NAMES: &[&str] = &[
    "identity",
    "relu",
    "leaky-relu",
    "tanh",
    "sigmoid",
    "relu6",
    "sin",
    "selu",
    "gelu",
    "elu",
    "silu",
    "erf",
    "softplus",
    "abs",
];

pub const DEFAULT_LEAKY_ALPHA: f64 = 0.01;
pub const DEFAULT_OMEGA: f64 = 1.0;

impl Activation {
    /// Parses an `--act` name; `alpha` (leaky-relu) and `omega` (sin) come from
    /// their own flags and are rejected for other activations.
    pub fn parse(name: &str, alpha: Option<f64>, omega: Option<f64>) -> Result<Self> {
        let act = match name {
            "identity" | "linear" => Activation::Identity,
            "relu" => Activation::Relu,
            "leaky-relu" | "leaky_relu" => Activation::LeakyRelu {
                alpha: alpha.unwrap_or(DEFAULT_LEAKY_ALPHA),
            },
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "relu6" => Activation::Relu6,
            "sin" => Activation::Sin {
                omega: omega.unwrap_or(DEFAULT_OMEGA),
            },
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "elu" => Activation::Elu,
            "silu" | "swish" => Activation::Silu,
            "erf" => Activation::Erf,
            "softplus" => Activation::Softplus,
            "abs" => Activation::Abs,
            _ => {
                return Err(Error::invalid(
                    "--act",
                    format!(
                        "unknown activation '{name}'; accepted: {}",
                        ACTIVATION_NAMES.join(", ")
                    ),
                ));
            }
        };
        if alpha.is_some() && !matches!(act, Activation::LeakyRelu { .. }) {
            return Err(Error::invalid(
                "--alpha",
                "applies to --act leaky-relu only",
            ));
        }
        if omega.is_some() && !matches!(act, Activation::Sin { .. }) {
            return Err(Error::invalid("--omega", "applies to --act sin only"));
        }
        if let Activation::LeakyRelu { alpha } = act {
            if !alpha.is_finite() {
                return Err(Error::invalid("--alpha", "must be a finite number"));
            }
        }
        if let Activation::Sin { omega } = act {
            if !(omega.is_finite() && omega > 0.0) {
                return Err(Error::invalid(
                    "--omega",
                    format!("must be > 0 (got {omega})"),
                ));
            }
        }
        Ok(act)
    }

    pub fn name(&self) -> &'static str {
        ACTIVATION_NAMES[self.id() as usize]
    }

    /// The activation's parameter (leaky slope or omega), 0 when it has none.
    pub fn param(&self) -> f64 {
        match *self {
            Activation::LeakyRelu { alpha } => alpha,
            Activation::Sin { omega } => omega,
            _ => 0.0,
        }
    }

    /// The case number of the `switch` in `shaders/common/activation.wgsl`.
    pub fn id(&self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu { .. } => 2,
            Activation::Tanh => 3,
            Activation::Sigmoid => 4,
            Activation::Relu6 => 5,
            Activation::Sin { .. } => 6,
            Activation::Selu => 7,
            Activation::Gelu => 8,
            Activation::Elu => 9,
            Activation::Silu => 10,
            Activation::Erf => 11,
            Activation::Softplus => 12,
            Activation::Abs => 13,
        }
    }

    /// phi(z)
    pub fn value(&self, z: f64) -> f64 {
        match *self {
            Activation::Identity => z,
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu { alpha } => {
                if z > 0.0 {
                    z
                } else {
                    alpha * z
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => sigmoid(z),
            Activation::Relu6 => z.clamp(0.0, 6.0),
            Activation::Sin { omega } => (omega * z).sin(),
            Activation::Selu => {
                if z > 0.0 {
                    SELU_SCALE * z
                } else {
                    SELU_SCALE * SELU_ALPHA * z.exp_m1()
                }
            }
            Activation::Gelu => 0.5 * z * libm::erfc(-z / std::f64::consts::SQRT_2),
            Activation::Elu => {
                if z > 0.0 {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Activation::Silu => z * sigmoid(z),
            Activation::Erf => libm::erf(z),
            Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
            Activation::Abs => z.abs(),
        }
    }

    /// phi'(z). At kinks the convention is PyTorch's: relu'(0) = 0,
    /// relu6' = 0 at 0 and 6, abs'(0) = 0, leaky'(0) = alpha.
    pub fn deriv(&self, z: f64) -> f64 {
        match *self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu { alpha } => {
                if z > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            // sech^2 and s (1 - s) in exp(-|z|) form: 1 - tanh^2 cancels
            Activation::Tanh => {
                let e = (-2.0 * z.abs()).exp();
                4.0 * e / ((1.0 + e) * (1.0 + e))
            }
            Activation::Sigmoid => {
                let e = (-z.abs()).exp();
                e / ((1.0 + e) * (1.0 + e))
            }
            Activation::Relu6 => {
                if z > 0.0 && z < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sin { omega } => omega * (omega * z).cos(),
            Activation::Selu => {
                if z > 0.0 {
                    SELU_SCALE
                } else {
                    SELU_SCALE * SELU_ALPHA * z.exp()
                }
            }
            Activation::Gelu => {
                0.5 * libm::erfc(-z / std::f64::consts::SQRT_2) + z * standard_normal_pdf(z)
            }
            Activation::Elu => {
                if z > 0.0 {
                    1.0
                } else {
                    z.exp()
                }
            }
            Activation::Silu => sigmoid(z) * (1.0 + z * sigmoid(-z)),
            Activation::Erf => std::f64::consts::FRAC_2_SQRT_PI * (-z * z).exp(),
            Activation::Softplus => sigmoid(z),
            Activation::Abs => {
                if z > 0.0 {
                    1.0
                } else if z < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// phi(a z) = a phi(z) for every a > 0: the stacks the engines can
    /// renormalise every layer and carry the scale as a log.
    pub fn is_positively_homogeneous(&self) -> bool {
        matches!(
            self,
            Activation::Identity
                | Activation::Relu
                | Activation::LeakyRelu { .. }
                | Activation::Abs
        )
    }

    /// phi(-z) = -phi(z): a symmetric input keeps mean 0.
    pub fn is_odd(&self) -> bool {
        matches!(
            self,
            Activation::Identity | Activation::Tanh | Activation::Sin { .. } | Activation::Erf
        )
    }

    /// PyTorch's `torch.nn.init.calculate_gain` for the activations it knows;
    /// None for the rest.
    pub fn torch_gain(&self) -> Option<f64> {
        match *self {
            Activation::Identity | Activation::Sigmoid => Some(1.0),
            Activation::Tanh => Some(5.0 / 3.0),
            Activation::Relu => Some(std::f64::consts::SQRT_2),
            Activation::LeakyRelu { alpha } => Some((2.0 / (1.0 + alpha * alpha)).sqrt()),
            Activation::Selu => Some(0.75),
            _ => None,
        }
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn standard_normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Activation::LeakyRelu { alpha } => write!(f, "leaky-relu(alpha={alpha})"),
            Activation::Sin { omega } => write!(f, "sin(omega={omega})"),
            _ => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_round_trips() {
        for name in ACTIVATION_NAMES {
            let act = Activation::parse(name, None, None).unwrap();
            assert_eq!(act.name(), *name);
        }
        assert!(Activation::parse("swishy", None, None).is_err());
        assert!(Activation::parse("relu", Some(0.1), None).is_err());
        assert!(Activation::parse("sin", None, Some(0.0)).is_err());
    }

    #[test]
    fn derivatives_match_central_differences() {
        // Away from kinks, (phi(z+h) - phi(z-h)) / 2h has error O(h^2 phi''').
        let h = 1e-5;
        for name in ACTIVATION_NAMES {
            let act = Activation::parse(name, None, None).unwrap();
            for &z in &[-3.1, -0.7, -0.2, 0.3, 0.9, 2.4, 5.5, 7.0] {
                let fd = (act.value(z + h) - act.value(z - h)) / (2.0 * h);
                let d = act.deriv(z);
                assert!((fd - d).abs() < 1e-6, "{name} at {z}: fd {fd} vs {d}");
            }
        }
    }
}
