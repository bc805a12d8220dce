//! Gains: PyTorch's `torch.nn.init.calculate_gain` of a nonlinearity name,
//! and where a layer's gain came from, for the outputs.

use crate::error::{Error, Result};
use crate::model::activation::Activation;

/// The nonlinearity names `calculate_gain` knows, as PyTorch spells them.
pub const TORCH_NONLINEARITIES: &[&str] = &[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
];

/// `calculate_gain(name, a)`: 1 for linear, the convolutions and sigmoid,
/// 5/3 for tanh, sqrt 2 for relu, sqrt(2 / (1 + a^2)) for leaky_relu, 3/4
/// for selu; None for a name PyTorch raises ValueError on.
pub fn calculate_gain(name: &str, a: f64) -> Option<f64> {
    match name {
        "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d"
        | "conv_transpose3d" | "sigmoid" => Some(1.0),
        "tanh" => Some(5.0 / 3.0),
        "relu" => Some(std::f64::consts::SQRT_2),
        "leaky_relu" => Some((2.0 / (1.0 + a * a)).sqrt()),
        "selu" => Some(0.75),
        _ => None,
    }
}

/// The name (and leaky_relu's slope) `calculate_gain` would be called with
/// for the run's activation, for `--gain-from-act`; None where it has none.
pub fn torch_nonlinearity_of(act: &Activation) -> Option<(&'static str, f64)> {
    match *act {
        Activation::Identity => Some(("linear", 0.0)),
        Activation::Sigmoid => Some(("sigmoid", 0.0)),
        Activation::Tanh => Some(("tanh", 0.0)),
        Activation::Relu => Some(("relu", 0.0)),
        Activation::LeakyRelu { alpha } => Some(("leaky_relu", alpha)),
        Activation::Selu => Some(("selu", 0.0)),
        _ => None,
    }
}

/// `--nonlinearity NAME`, checked: a name `calculate_gain` knows, spelled
/// with `_` or `-`.
pub fn parse_nonlinearity(name: &str) -> Result<&'static str> {
    let spelled = name.replace('-', "_");
    TORCH_NONLINEARITIES
        .iter()
        .find(|n| **n == spelled)
        .copied()
        .ok_or_else(|| {
            Error::invalid(
                "--nonlinearity",
                format!(
                    "PyTorch's calculate_gain has no gain for '{name}' (it raises ValueError); accepted: {}; or give the gain with --gain",
                    TORCH_NONLINEARITIES.join(", ")
                ),
            )
        })
}

/// Where a scheme's gain came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GainSource {
    /// `--gain`.
    Flag,
    /// `--gain` with `--gain-from-act`, for an activation `calculate_gain`
    /// has no gain for.
    FlagForAct(&'static str),
    /// `--gain` with a `--nonlinearity` `calculate_gain` has no gain for.
    FlagForNonlinearity,
    /// The scheme's own default: 1, or He's sqrt 2 (JAX's scale 2).
    SchemeDefault,
    /// PyTorch kaiming's `nonlinearity` argument: `calculate_gain(name, a)`;
    /// `given` is false for kaiming's default, leaky_relu with a = 0.
    Nonlinearity {
        name: &'static str,
        a: f64,
        given: bool,
    },
    /// `--gain-from-act`: calculate_gain of the run's activation.
    Activation { name: &'static str, a: f64 },
    /// The scheme has no gain (siren, torch-default, custom).
    None,
}

impl GainSource {
    /// One phrase for the outputs, e.g. "calculate_gain('leaky_relu', 0),
    /// kaiming's default nonlinearity".
    pub fn describe(&self) -> String {
        let call = |name: &str, a: f64| {
            if name == "leaky_relu" {
                format!("calculate_gain('leaky_relu', {a})")
            } else {
                format!("calculate_gain('{name}')")
            }
        };
        match *self {
            GainSource::Flag => "--gain".into(),
            GainSource::FlagForAct(name) => {
                format!("--gain (calculate_gain has none for --act {name})")
            }
            GainSource::FlagForNonlinearity => {
                "--gain (calculate_gain has none for the --nonlinearity asked)".into()
            }
            GainSource::SchemeDefault => "the scheme's default".into(),
            GainSource::Nonlinearity { name, a, given } => {
                if given {
                    format!("{} (--nonlinearity)", call(name, a))
                } else {
                    format!("{}, kaiming's default nonlinearity", call(name, a))
                }
            }
            GainSource::Activation { name, a } => {
                format!("{} of --act (--gain-from-act)", call(name, a))
            }
            GainSource::None => "none".into(),
        }
    }
}
