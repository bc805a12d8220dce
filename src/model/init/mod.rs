//! Initialisation schemes: the law of W_l (distribution and entry variance
//! v_l) and of b_l for every layer, following PyTorch and Flax. The engines
//! draw from these laws and the theory reads v_l from them, so the two cannot
//! drift apart.

use crate::error::{Error, Result};
use crate::model::activation::Activation;

pub mod describe;
mod dist;
mod gain;

pub use dist::{Dist, TRUNCATED_NORMAL_STD, TRUNCATION, WeightLaw, truncated_normal_moments};
pub use gain::{GainSource, TORCH_NONLINEARITIES, calculate_gain};

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

    fn is_he(&self) -> bool {
        matches!(self, Scheme::HeNormal | Scheme::HeUniform)
    }
}

/// Whose meaning the scheme names take. They differ in three places: the
/// gain of he-* (PyTorch's from its `nonlinearity` argument, JAX's scale 2),
/// the "normal" schemes (plain in PyTorch, truncated at 2 std with the
/// variance kept in JAX and Flax), and `truncated-normal` (below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// torch.nn.init; `truncated-normal` is trunc_normal_(std = gain/sqrt(fan)),
    /// whose bounds +-2 are absolute.
    Pytorch,
    /// jax.nn.initializers; `truncated-normal` is
    /// truncated_normal(stddev = gain/sqrt(fan)): +-2 std, variance not corrected.
    Jax,
    /// flax.linen.initializers; `truncated-normal` is
    /// variance_scaling(gain^2, fan, "truncated_normal"): variance exactly gain^2/fan.
    Flax,
}

pub const CONVENTION_NAMES: &[(&str, Convention)] = &[
    ("pytorch", Convention::Pytorch),
    ("jax", Convention::Jax),
    ("flax", Convention::Flax),
];

impl Convention {
    pub fn parse(name: &str) -> Result<Self> {
        CONVENTION_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                Error::invalid(
                    "--convention",
                    format!("unknown convention '{name}'; accepted: pytorch, jax, flax"),
                )
            })
    }

    pub fn name(&self) -> &'static str {
        CONVENTION_NAMES.iter().find(|(_, c)| c == self).unwrap().0
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

/// A resolved initialisation: the scheme and its parameters, validated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InitSpec {
    pub scheme: Scheme,
    pub convention: Convention,
    /// Gain multiplying the scheme's standard deviation (1 where it has none).
    pub gain: f64,
    pub gain_source: GainSource,
    pub fan_mode: FanMode,
    /// `custom` only: v = sigma_w2 / fan_in.
    pub sigma_w2: f64,
    /// `custom` only.
    pub dist: Dist,
    /// Bias variance from `--sigma-b2`; None means the scheme's default (0,
    /// or nn.Linear's uniform bias for `torch-default` and `siren`).
    pub sigma_b2: Option<f64>,
}

pub const INIT_HELP: &str = "Weight initialisation; the names mean what they mean in --convention (pytorch by default,
or jax, flax). v = variance of one entry, fan = fan_in unless --fan-mode; `varprop inits` prints the
table with the library functions.
  xavier-normal, xavier-uniform   v = gain^2 * 2/(fan_in+fan_out), gain 1 unless --gain
  he-normal, he-uniform           v = gain^2/fan. pytorch: gain = calculate_gain(--nonlinearity, --kaiming-a),
                                  by default kaiming's leaky_relu with a = 0, i.e. sqrt 2 whatever --act is
                                  (--gain-from-act: calculate_gain of --act, as varprop did before);
                                  jax, flax: sqrt 2 (he_normal's scale 2)
  lecun-normal, lecun-uniform     v = gain^2/fan_in
  (the *-normal schemes are plain normals in pytorch; in jax and flax they are truncated at +-2 std and
  rescaled so that the variance is exactly v, as variance_scaling's \"truncated_normal\")
  truncated-normal                std s = gain/sqrt(fan) of the untruncated normal. pytorch: trunc_normal_(std=s),
                                  bounds +-2 absolute; jax: truncated_normal(stddev=s), +-2 s, variance 0.774 s^2;
                                  flax: variance_scaling, +-2 std rescaled, variance exactly s^2
  siren                           layer 1 U(+-1/fan_in), then U(+-sqrt(6/fan_in)/omega); biases nn.Linear's
                                  U(+-1/sqrt(fan_in)) unless --sigma-b2; needs --act sin (the default with
                                  siren, omega 30)
  torch-default                   nn.Linear's default: U(+-1/sqrt(fan_in)), v = 1/(3 fan_in), and its
                                  bias U(+-1/sqrt(fan_in)) unless --sigma-b2 is given
  custom                          v = sigma_w2/fan_in (--sigma-w2, --dist; its truncated-normal keeps v exact)
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
    /// Whose meaning the init names take: pytorch, jax or flax (see --init's --help and `varprop
    /// inits`) [default: pytorch]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convention: Option<String>,
    /// Weight variance times fan_in for --init custom (implies it)
    #[arg(long = "sigma-w2", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_w2")]
    pub sigma_w2: Option<f64>,
    /// Bias variance sigma_b^2 (normal biases) [default: 0; nn.Linear's uniform bias for
    /// torch-default and siren]
    #[arg(long = "sigma-b2", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_b2")]
    pub sigma_b2: Option<f64>,
    /// Distribution for --init custom: normal, uniform, truncated-normal
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    /// Gain multiplying the scheme's standard deviation, in place of its default
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain: Option<f64>,
    /// he-* with --convention pytorch: kaiming's `nonlinearity` argument, whose
    /// calculate_gain is the gain (linear, conv1d..3d, conv_transpose1d..3d, sigmoid, tanh,
    /// relu, leaky_relu, selu) [default: leaky_relu]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonlinearity: Option<String>,
    /// he-* with --convention pytorch: kaiming's `a`, the negative slope of leaky_relu
    /// [default: 0]
    #[arg(long = "kaiming-a", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "kaiming_a")]
    pub kaiming_a: Option<f64>,
    /// he-* with --convention pytorch: the gain is calculate_gain of --act (tanh 5/3, selu 3/4,
    /// leaky-relu sqrt(2/(1+alpha^2)), ...) instead of kaiming's default nonlinearity
    #[arg(long = "gain-from-act", action = clap::ArgAction::SetTrue)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "gain_from_act")]
    pub gain_from_act: Option<bool>,
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
        let convention = match &flags.convention {
            Some(name) => Convention::parse(name)?,
            None => Convention::Pytorch,
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
                if !(scheme.is_he() || scheme == Scheme::TruncatedNormal) {
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
        let (gain, gain_source) = Self::resolve_gain(flags, scheme, convention, act)?;
        Ok(InitSpec {
            scheme,
            convention,
            gain,
            gain_source,
            fan_mode,
            sigma_w2: flags.sigma_w2.unwrap_or(0.0),
            dist,
            sigma_b2: flags.sigma_b2,
        })
    }

    /// The gain and where it comes from. For he-* under PyTorch it is
    /// kaiming's: calculate_gain(nonlinearity, a), with its defaults
    /// leaky_relu and a = 0 (sqrt 2); `--gain-from-act` asks calculate_gain
    /// of the run's activation instead. A gain PyTorch cannot give is an
    /// error, as calculate_gain raises, unless `--gain` supplies it.
    fn resolve_gain(
        flags: &InitFlags,
        scheme: Scheme,
        convention: Convention,
        act: &Activation,
    ) -> Result<(f64, GainSource)> {
        let from_act = flags.gain_from_act == Some(true);
        let pytorch_he = scheme.is_he() && convention == Convention::Pytorch;
        for (given, flag) in [
            (flags.nonlinearity.is_some(), "--nonlinearity"),
            (flags.kaiming_a.is_some(), "--kaiming-a"),
            (from_act, "--gain-from-act"),
        ] {
            if given && !pytorch_he {
                let why = if scheme.is_he() {
                    format!(
                        "--convention {}'s he_* have no nonlinearity: their scale is 2 (gain sqrt 2; --gain to change it)",
                        convention.name()
                    )
                } else {
                    format!("--init {} takes its gain from --gain", scheme.name())
                };
                return Err(Error::invalid(
                    flag,
                    format!("applies to he-* with --convention pytorch only; {why}"),
                ));
            }
        }
        if from_act && (flags.nonlinearity.is_some() || flags.kaiming_a.is_some()) {
            return Err(Error::invalid(
                "--gain-from-act",
                "takes the nonlinearity from --act; drop --nonlinearity and --kaiming-a, or drop --gain-from-act",
            ));
        }
        if let Some(a) = flags.kaiming_a {
            if !a.is_finite() {
                return Err(Error::invalid(
                    "--kaiming-a",
                    format!("must be a finite number (got {a})"),
                ));
            }
        }
        if !pytorch_he {
            let (default, source) = match (flags.gain, scheme) {
                (Some(g), _) => (g, GainSource::Flag),
                (None, Scheme::Custom | Scheme::Siren | Scheme::TorchDefault) => {
                    (1.0, GainSource::None)
                }
                // JAX's and Flax's he_*: variance_scaling(2.0, ...)
                (None, Scheme::HeNormal | Scheme::HeUniform) => {
                    (std::f64::consts::SQRT_2, GainSource::SchemeDefault)
                }
                (None, _) => (1.0, GainSource::SchemeDefault),
            };
            return Ok((default, source));
        }
        // PyTorch's kaiming: the nonlinearity asked for, and its gain.
        let (name, a, source) = if from_act {
            match gain::torch_nonlinearity_of(act) {
                Some((name, a)) => (name, a, GainSource::Activation { name, a }),
                None => {
                    return match flags.gain {
                        Some(g) => Ok((g, GainSource::FlagForAct(act.name()))),
                        None => Err(Error::invalid(
                            "--gain-from-act",
                            format!(
                                "PyTorch's calculate_gain has no gain for --act {} (it raises ValueError); give the gain with --gain, or drop --gain-from-act for kaiming's default (leaky_relu, a = 0: sqrt 2)",
                                act.name()
                            ),
                        )),
                    };
                }
            }
        } else {
            let given = flags.nonlinearity.is_some();
            let name = match &flags.nonlinearity {
                Some(n) => match gain::parse_nonlinearity(n) {
                    Ok(name) => name,
                    Err(e) => {
                        return match (flags.gain, flags.kaiming_a) {
                            (Some(g), None) => Ok((g, GainSource::FlagForNonlinearity)),
                            _ => Err(e),
                        };
                    }
                },
                None => "leaky_relu",
            };
            if flags.kaiming_a.is_some() && name != "leaky_relu" {
                return Err(Error::invalid(
                    "--kaiming-a",
                    format!("is leaky_relu's slope; --nonlinearity {name} does not read it"),
                ));
            }
            let a = flags.kaiming_a.unwrap_or(0.0);
            (name, a, GainSource::Nonlinearity { name, a, given })
        };
        let torch = calculate_gain(name, a).expect("a name calculate_gain knows");
        match flags.gain {
            Some(_) => Err(Error::invalid(
                "--gain",
                format!(
                    "conflicts with the gain {} that kaiming takes from {}; drop one of the two",
                    torch,
                    source.describe()
                ),
            )),
            None => Ok((torch, source)),
        }
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
            Scheme::XavierNormal => (self.normal(), g2 * 2.0 / (fi + fo)),
            Scheme::XavierUniform => (Dist::Uniform, g2 * 2.0 / (fi + fo)),
            Scheme::HeNormal => (self.normal(), g2 / fan),
            Scheme::HeUniform => (Dist::Uniform, g2 / fan),
            Scheme::LecunNormal => (self.normal(), g2 / fi),
            Scheme::LecunUniform => (Dist::Uniform, g2 / fi),
            Scheme::TruncatedNormal => self.truncated_normal(g2 / fan),
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

    /// The distribution of the *-normal schemes: a plain normal in
    /// PyTorch; in JAX and Flax variance_scaling's "truncated_normal", cut
    /// at 2 std and rescaled so that the variance stays v.
    fn normal(&self) -> Dist {
        match self.convention {
            Convention::Pytorch => Dist::Normal,
            Convention::Jax | Convention::Flax => Dist::TruncatedNormal { bound: TRUNCATION },
        }
    }

    /// `truncated-normal` with s^2 = gain^2/fan, the untruncated variance.
    fn truncated_normal(&self, s2: f64) -> (Dist, f64) {
        let m2 = |bound: f64| truncated_normal_moments(bound).0;
        match self.convention {
            // trunc_normal_(std = s, a = -2, b = 2): the bounds are absolute
            Convention::Pytorch => {
                let bound = 2.0 / s2.sqrt();
                (Dist::TruncatedNormal { bound }, s2 * m2(bound))
            }
            // truncated_normal(stddev = s): +-2 s, no correction
            Convention::Jax => (
                Dist::TruncatedNormal { bound: TRUNCATION },
                s2 * m2(TRUNCATION),
            ),
            // variance_scaling(s^2 fan, fan, "truncated_normal"): variance s^2
            Convention::Flax => (Dist::TruncatedNormal { bound: TRUNCATION }, s2),
        }
    }

    /// The law of b_l: `--sigma-b2` (normal) when given; otherwise
    /// nn.Linear's U(+-1/sqrt(fan_in)) bias for `torch-default` and `siren`
    /// (the reference SIREN keeps it), and no bias for the rest.
    pub fn bias_law(&self, fan_in: usize) -> WeightLaw {
        match (self.sigma_b2, self.scheme) {
            (Some(b), _) => WeightLaw {
                dist: Dist::Normal,
                variance: b,
            },
            (None, Scheme::TorchDefault | Scheme::Siren) => WeightLaw {
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
            None => !matches!(self.scheme, Scheme::TorchDefault | Scheme::Siren),
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
mod tests;
