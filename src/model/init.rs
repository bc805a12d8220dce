//! Initialisation schemes: the law of W_l (distribution and entry variance
//! v_l) and of b_l for every layer, following PyTorch and Flax. The engines
//! draw from these laws and the theory reads v_l from them, so the two cannot
//! drift apart.

use crate::error::{Error, Result};
use crate::model::activation::Activation;

/// Flax's correction: the standard normal truncated to [-2, 2] has standard
/// deviation 0.87962566103423978, so the std is divided by it.
pub const TRUNCATED_NORMAL_STD: f64 = 0.879_625_661_034_239_8;
/// Truncation point of the truncated normal, in standard deviations.
pub const TRUNCATION: f64 = 2.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    XavierNormal,
    XavierUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    TruncatedNormal,
    Orthogonal,
    Siren,
    TorchDefault,
    Custom,
}

pub const SCHEME_NAMES: &[(&str, Scheme)] = &[
    ("xavier-normal", Scheme::XavierNormal),
    ("xavier-uniform", Scheme::XavierUniform),
    ("he-normal", Scheme::HeNormal),
    ("he-uniform", Scheme::HeUniform),
    ("lecun-normal", Scheme::LecunNormal),
    ("lecun-uniform", Scheme::LecunUniform),
    ("truncated-normal", Scheme::TruncatedNormal),
    ("orthogonal", Scheme::Orthogonal),
    ("siren", Scheme::Siren),
    ("torch-default", Scheme::TorchDefault),
    ("custom", Scheme::Custom),
];

impl Scheme {
    pub fn parse(name: &str) -> Result<Self> {
        let alias = match name {
            "kaiming-normal" => "he-normal",
            "kaiming-uniform" => "he-uniform",
            "glorot-normal" => "xavier-normal",
            "glorot-uniform" => "xavier-uniform",
            other => other,
        };
        SCHEME_NAMES
            .iter()
            .find(|(n, _)| *n == alias)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                let names: Vec<&str> = SCHEME_NAMES.iter().map(|(n, _)| *n).collect();
                Error::invalid(
                    "--init",
                    format!(
                        "unknown init scheme '{name}'; accepted: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    pub fn name(&self) -> &'static str {
        SCHEME_NAMES.iter().find(|(_, s)| s == self).unwrap().0
    }
}

/// Distribution of a weight or bias entry; the variance is carried beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dist {
    Normal,
    Uniform,
    TruncatedNormal,
    Orthogonal,
}

impl Dist {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "normal" => Ok(Dist::Normal),
            "uniform" => Ok(Dist::Uniform),
            "truncated-normal" => Ok(Dist::TruncatedNormal),
            _ => Err(Error::invalid(
                "--dist",
                format!(
                    "unknown distribution '{name}'; accepted: normal, uniform, truncated-normal"
                ),
            )),
        }
    }

    /// Code used by the WGSL kernels (`standard4` in `shaders/common/philox.wgsl`).
    pub fn code(&self) -> u32 {
        match self {
            Dist::Normal => 0,
            Dist::Uniform => 1,
            Dist::TruncatedNormal => 2,
            Dist::Orthogonal => 3,
        }
    }

    /// Excess-free fourth moment E[w^4]/v^2 of the distribution (3 for the
    /// normal, 9/5 for the uniform); the truncated normal's is computed.
    pub fn standardised_fourth_moment(&self) -> f64 {
        match self {
            Dist::Normal => 3.0,
            Dist::Uniform => 1.8,
            Dist::TruncatedNormal => {
                // E[z^4 | |z|<a] / E[z^2 | |z|<a]^2 for the standard normal:
                // E[z^2 1{|z|<a}] = P - 2 a phi(a), E[z^4 1{|z|<a}] = 3 P - 2 (a^3 + 3a) phi(a).
                let a = TRUNCATION;
                let phi = crate::model::activation::standard_normal_pdf(a);
                let p = libm::erf(a / std::f64::consts::SQRT_2);
                let m2 = (p - 2.0 * a * phi) / p;
                let m4 = (3.0 * p - 2.0 * (a * a * a + 3.0 * a) * phi) / p;
                m4 / (m2 * m2)
            }
            Dist::Orthogonal => f64::NAN,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

impl FanMode {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "fan_in" | "fan-in" => Ok(FanMode::FanIn),
            "fan_out" | "fan-out" => Ok(FanMode::FanOut),
            _ => Err(Error::invalid(
                "--fan-mode",
                format!("unknown fan mode '{name}'; accepted: fan_in, fan_out"),
            )),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
        }
    }
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
    /// normal, the half-width sqrt(3 v) for the uniform, the std over the
    /// truncation correction for the truncated normal.
    pub fn scale(&self) -> f64 {
        match self.dist {
            Dist::Normal | Dist::Orthogonal => self.variance.sqrt(),
            Dist::Uniform => (3.0 * self.variance).sqrt(),
            Dist::TruncatedNormal => self.variance.sqrt() / TRUNCATED_NORMAL_STD,
        }
    }
}

/// A resolved initialisation: the scheme and its parameters, validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InitSpec {
    pub scheme: Scheme,
    /// Gain; for `he-*` defaults to PyTorch's calculate_gain of the activation.
    pub gain: f64,
    pub fan_mode: FanMode,
    /// `custom` only: v = sigma_w2 / fan_in.
    pub sigma_w2: f64,
    /// `custom` only.
    pub dist: Dist,
    /// Bias variance from `--sigma-b2`; None means the scheme's default (0,
    /// or PyTorch's uniform bias for `torch-default`).
    pub sigma_b2: Option<f64>,
}

pub const INIT_HELP: &str = "Weight initialisation (PyTorch/Flax conventions; v = variance of one entry):
  xavier-normal, xavier-uniform   v = gain^2 * 2/(fan_in+fan_out), gain 1 unless --gain
  he-normal, he-uniform           v = gain^2/fan (--fan-mode, fan_in by default), gain = PyTorch's
                                  calculate_gain(act) (sqrt 2 for activations it does not know)
  lecun-normal, lecun-uniform     v = gain^2/fan_in (plain normal; Flax's lecun_normal is truncated:
                                  use truncated-normal for that)
  truncated-normal                Flax variance_scaling: N(0, v/0.8796^2) truncated at +-2 std, so the
                                  variance is exactly v = gain^2/fan
  siren                           layer 1 U(+-1/fan_in), then U(+-sqrt(6/fan_in)/omega); needs --act sin
                                  (the default with siren, omega 30)
  torch-default                   nn.Linear's default: U(+-1/sqrt(fan_in)), v = 1/(3 fan_in), and its
                                  bias U(+-1/sqrt(fan_in)) unless --sigma-b2 is given
  custom                          v = sigma_w2/fan_in (--sigma-w2, --dist)
  orthogonal                      Haar-random orthogonal (semi-orthogonal when not square) times gain (1 unless
                                  --gain), as PyTorch's orthogonal_; generated on the GPU by Householder QR of a
                                  Gaussian matrix: O(n^3) per layer (about 3n dispatches), regenerated in the
                                  backward pass
Aliases: kaiming-*, glorot-*. Default: he-normal, or custom when --sigma-w2 is given.";

/// The keys of an initialisation, declared once: the command line's flags
/// (`--init`, `--sigma-w2`, ...), and the keys of settings records, sweep
/// and suite files and each layer of an architecture file (`init`,
/// `sigma-w2` or `sigma_w2`, ...). `InitSpec::resolve` checks them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case")]
pub struct InitFlags {
    #[arg(long, long_help = INIT_HELP, help = "Weight initialisation (see --help for the list and formulas)")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Weight variance times fan_in for --init custom (implies it)
    #[arg(long = "sigma-w2", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_w2")]
    pub sigma_w2: Option<f64>,
    /// Bias variance sigma_b^2 (normal biases) [default: 0]
    #[arg(long = "sigma-b2", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_b2")]
    pub sigma_b2: Option<f64>,
    /// Distribution for --init custom: normal, uniform, truncated-normal
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    /// Gain multiplying the scheme's standard deviation
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain: Option<f64>,
    /// fan_in or fan_out for he-* and truncated-normal
    #[arg(long = "fan-mode")]
    #[serde(skip_serializing_if = "Option::is_none", alias = "fan_mode")]
    pub fan_mode: Option<String>,
}

impl InitSpec {
    /// Resolves and checks the flags: every combination that would be
    /// silently ignored is an error instead.
    pub fn resolve(flags: &InitFlags, act: &Activation) -> Result<Self> {
        let scheme = match (&flags.init, flags.sigma_w2) {
            (None, Some(_)) => Scheme::Custom,
            (None, None) => Scheme::HeNormal,
            (Some(name), _) => Scheme::parse(name)?,
        };
        if let Some(s) = flags.sigma_w2 {
            if scheme != Scheme::Custom {
                return Err(Error::invalid(
                    "--sigma-w2",
                    format!(
                        "sets the weight variance of --init custom only; --init {} fixes its own variance (drop one of the two)",
                        scheme.name()
                    ),
                ));
            }
            if !(s.is_finite() && s >= 0.0) {
                return Err(Error::invalid(
                    "--sigma-w2",
                    format!("must be a finite number >= 0 (got {s})"),
                ));
            }
        } else if scheme == Scheme::Custom {
            return Err(Error::invalid(
                "--sigma-w2",
                "is required with --init custom (v = sigma_w2 / fan_in)",
            ));
        }
        if let Some(b) = flags.sigma_b2 {
            if !(b.is_finite() && b >= 0.0) {
                return Err(Error::invalid(
                    "--sigma-b2",
                    format!("must be a finite number >= 0 (got {b})"),
                ));
            }
        }
        let dist = match &flags.dist {
            Some(d) if scheme == Scheme::Custom => Dist::parse(d)?,
            Some(_) => {
                return Err(Error::invalid(
                    "--dist",
                    format!(
                        "applies to --init custom only; --init {} fixes its distribution",
                        scheme.name()
                    ),
                ));
            }
            None => Dist::Normal,
        };
        let fan_mode = match &flags.fan_mode {
            Some(m) => {
                if !matches!(
                    scheme,
                    Scheme::HeNormal | Scheme::HeUniform | Scheme::TruncatedNormal
                ) {
                    return Err(Error::invalid(
                        "--fan-mode",
                        format!(
                            "applies to he-*, truncated-normal only, not {}",
                            scheme.name()
                        ),
                    ));
                }
                FanMode::parse(m)?
            }
            None => FanMode::FanIn,
        };
        if let Some(g) = flags.gain {
            if matches!(
                scheme,
                Scheme::Custom | Scheme::Siren | Scheme::TorchDefault
            ) {
                return Err(Error::invalid(
                    "--gain",
                    format!(
                        "does not apply to --init {} (its variance is fixed by its own rule)",
                        scheme.name()
                    ),
                ));
            }
            if !(g.is_finite() && g > 0.0) {
                return Err(Error::invalid("--gain", format!("must be > 0 (got {g})")));
            }
        }
        if scheme == Scheme::Siren && !matches!(act, Activation::Sin { .. }) {
            return Err(Error::invalid(
                "--init",
                "siren requires --act sin (sin(omega z), --omega, default 30 with siren)",
            ));
        }
        let gain = flags.gain.unwrap_or(match scheme {
            // kaiming_* with PyTorch's calculate_gain; for activations it does
            // not know, kaiming's own default nonlinearity (leaky_relu, a = 0).
            Scheme::HeNormal | Scheme::HeUniform => {
                act.torch_gain().unwrap_or(std::f64::consts::SQRT_2)
            }
            _ => 1.0,
        });
        Ok(InitSpec {
            scheme,
            gain,
            fan_mode,
            sigma_w2: flags.sigma_w2.unwrap_or(0.0),
            dist,
            sigma_b2: flags.sigma_b2,
        })
    }

    /// The law of W_l, for layer `layer` (1-based) with the given fans.
    pub fn weight_law(
        &self,
        act: &Activation,
        layer: usize,
        fan_in: usize,
        fan_out: usize,
    ) -> WeightLaw {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let g2 = gain_squared(self.gain);
        let fan = match self.fan_mode {
            FanMode::FanIn => fi,
            FanMode::FanOut => fo,
        };
        let (dist, variance) = match self.scheme {
            Scheme::XavierNormal => (Dist::Normal, g2 * 2.0 / (fi + fo)),
            Scheme::XavierUniform => (Dist::Uniform, g2 * 2.0 / (fi + fo)),
            Scheme::HeNormal => (Dist::Normal, g2 / fan),
            Scheme::HeUniform => (Dist::Uniform, g2 / fan),
            Scheme::LecunNormal => (Dist::Normal, g2 / fi),
            Scheme::LecunUniform => (Dist::Uniform, g2 / fi),
            Scheme::TruncatedNormal => (Dist::TruncatedNormal, g2 / fan),
            Scheme::Orthogonal => (Dist::Orthogonal, g2 / fi.max(fo)),
            Scheme::Siren => {
                let omega = act.param();
                if layer == 1 {
                    // U(-1/fan_in, 1/fan_in)
                    (Dist::Uniform, 1.0 / (3.0 * fi * fi))
                } else {
                    // U(+-sqrt(6/fan_in)/omega)
                    (Dist::Uniform, 2.0 / (fi * omega * omega))
                }
            }
            // kaiming_uniform(a = sqrt(5)): U(+-1/sqrt(fan_in))
            Scheme::TorchDefault => (Dist::Uniform, 1.0 / (3.0 * fi)),
            Scheme::Custom => (self.dist, self.sigma_w2 / fi),
        };
        WeightLaw { dist, variance }
    }

    /// The law of b_l: `--sigma-b2` (normal) when given; otherwise PyTorch's
    /// U(+-1/sqrt(fan_in)) bias for `torch-default`, and no bias for the rest.
    pub fn bias_law(&self, fan_in: usize) -> WeightLaw {
        match (self.sigma_b2, self.scheme) {
            (Some(b), _) => WeightLaw {
                dist: Dist::Normal,
                variance: b,
            },
            (None, Scheme::TorchDefault) => WeightLaw {
                dist: Dist::Uniform,
                variance: 1.0 / (3.0 * fan_in as f64),
            },
            (None, _) => WeightLaw {
                dist: Dist::Normal,
                variance: 0.0,
            },
        }
    }

    /// True when no layer has a bias.
    pub fn has_no_bias(&self) -> bool {
        match self.sigma_b2 {
            Some(b) => b == 0.0,
            None => self.scheme != Scheme::TorchDefault,
        }
    }
}

/// gain^2, exact where the gain is the square root of a whole number (He's
/// sqrt 2 squares to 2.0000000000000004 in f64, which the theory would
/// carry as rounding noise through every layer).
fn gain_squared(gain: f64) -> f64 {
    let g2 = gain * gain;
    let whole = g2.round();
    if whole >= 1.0 && (g2 - whole).abs() <= 4.0 * f64::EPSILON * whole && whole.sqrt() == gain {
        whole
    } else {
        g2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// He for relu: n v = 2 exactly, so q_pre = 2 q_post with no rounding
    /// noise for the theory to carry (sqrt(2)^2 is 2.0000000000000004);
    /// tanh's gain 5/3 and a gain given by hand are squared as they are.
    #[test]
    fn a_square_root_gain_squares_to_its_whole_number() {
        let relu = Activation::Relu;
        for fan in [1usize, 3, 128, 1000] {
            let law = spec("he-normal", &relu).weight_law(&relu, 1, fan, fan);
            assert_eq!(law.variance * fan as f64, 2.0, "fan {fan}");
        }
        assert_eq!(gain_squared(3f64.sqrt()), 3.0);
        assert_eq!(gain_squared(5.0 / 3.0), (5.0f64 / 3.0) * (5.0 / 3.0));
        assert_eq!(gain_squared(1.5), 2.25);
        assert_eq!(gain_squared(1.4142), 1.4142 * 1.4142);
    }

    fn spec(init: &str, act: &Activation) -> InitSpec {
        let flags = InitFlags {
            init: Some(init.into()),
            ..Default::default()
        };
        InitSpec::resolve(&flags, act).unwrap()
    }

    #[test]
    fn pytorch_variances() {
        let relu = Activation::Relu;
        let tanh = Activation::Tanh;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15 * b.abs().max(1.0);
        assert!(close(
            spec("he-normal", &relu)
                .weight_law(&relu, 2, 100, 50)
                .variance,
            2.0 / 100.0
        ));
        assert!(close(
            spec("he-normal", &tanh)
                .weight_law(&tanh, 2, 100, 50)
                .variance,
            25.0 / 9.0 / 100.0
        ));
        assert!(close(
            spec("xavier-normal", &relu)
                .weight_law(&relu, 2, 100, 50)
                .variance,
            2.0 / 150.0
        ));
        assert!(close(
            spec("torch-default", &relu)
                .weight_law(&relu, 2, 100, 50)
                .variance,
            1.0 / 300.0
        ));
        // torch-default's half-width is 1/sqrt(fan_in)
        assert!(close(
            spec("torch-default", &relu)
                .weight_law(&relu, 2, 100, 50)
                .scale(),
            0.1
        ));
        let flags = InitFlags {
            init: Some("he-uniform".into()),
            fan_mode: Some("fan_out".into()),
            ..Default::default()
        };
        let he_out = InitSpec::resolve(&flags, &relu).unwrap();
        assert!(close(
            he_out.weight_law(&relu, 2, 100, 50).variance,
            2.0 / 50.0
        ));
    }

    #[test]
    fn truncated_normal_correction_is_the_truncated_std() {
        // Var of N(0,1) truncated to [-2,2] = 1 - 2*2*phi(2)/P(|z|<2)
        let a = TRUNCATION;
        let p = libm::erf(a / std::f64::consts::SQRT_2);
        let var = 1.0 - 2.0 * a * crate::model::activation::standard_normal_pdf(a) / p;
        assert!((var.sqrt() - TRUNCATED_NORMAL_STD).abs() < 1e-15);
    }

    #[test]
    fn misused_flags_are_errors() {
        let relu = Activation::Relu;
        let bad = [
            InitFlags {
                init: Some("he-normal".into()),
                sigma_w2: Some(2.0),
                ..Default::default()
            },
            InitFlags {
                init: Some("custom".into()),
                ..Default::default()
            },
            InitFlags {
                init: Some("he-normal".into()),
                dist: Some("uniform".into()),
                ..Default::default()
            },
            InitFlags {
                init: Some("xavier-normal".into()),
                fan_mode: Some("fan_out".into()),
                ..Default::default()
            },
            InitFlags {
                sigma_w2: Some(-1.0),
                ..Default::default()
            },
            InitFlags {
                init: Some("siren".into()),
                ..Default::default()
            },
            InitFlags {
                init: Some("nope".into()),
                ..Default::default()
            },
        ];
        for flags in bad {
            assert!(InitSpec::resolve(&flags, &relu).is_err(), "{flags:?}");
        }
        let implied = InitFlags {
            sigma_w2: Some(2.0),
            ..Default::default()
        };
        assert_eq!(
            InitSpec::resolve(&implied, &relu).unwrap().scheme,
            Scheme::Custom
        );
    }
}
