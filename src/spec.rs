//! What to simulate: the network (widths, activation, init, inputs) and the
//! run (batch, networks, seed), resolved from flags and validated, so that
//! every engine and the theory see the same, checked configuration.

use crate::error::{Error, Result};
use crate::model::activation::Activation;
use crate::model::init::{InitSpec, WeightLaw};

/// Default omega for `--init siren` (Sitzmann et al. 2020).
pub use crate::model::activation::SIREN_OMEGA;

/// A network: n_0 inputs and L layers of widths n_1..n_L.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// n_0, n_1, ..., n_L
    pub widths: Vec<usize>,
    pub act: Activation,
    pub init: InitSpec,
    /// Second moment of each input entry.
    pub q0: f64,
    /// Correlation of the inputs of each pair (2k, 2k+1).
    pub c0: f64,
}

impl NetworkSpec {
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }

    /// The law of W_l, l in 1..=L.
    pub fn weight_law(&self, layer: usize) -> WeightLaw {
        let (fan_in, fan_out) = (self.widths[layer - 1], self.widths[layer]);
        self.init.weight_law(&self.act, layer, fan_in, fan_out)
    }

    /// The law of b_l, l in 1..=L.
    pub fn bias_law(&self, layer: usize) -> WeightLaw {
        self.init.bias_law(self.widths[layer - 1])
    }

    /// Positively homogeneous stack without bias: the engines renormalise
    /// every layer and carry the scale as a log in f64.
    pub fn is_homogeneous(&self) -> bool {
        self.act.is_positively_homogeneous() && self.init.has_no_bias()
    }
}

/// What is measured beyond the forward moments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    /// delta_l from a Gaussian delta_L down to the input.
    pub backward: bool,
    /// Tangent vectors forward (||J_l u||^2) and one vector-Jacobian
    /// product back (||J^T J u||^2); runs the backward pass too.
    pub jacobian: bool,
    /// Mean square entry of the weight gradient; runs the backward pass.
    pub weight_grads: bool,
    /// The empirical neural tangent kernel over the batch, counted in this
    /// parametrisation: a backward pass of its own, from the gradient of
    /// the readout f = w^T x_L / sqrt(n_L).
    pub ntk: Option<Parametrisation>,
}

impl Probes {
    /// The backward stage runs for any of the three.
    pub fn needs_backward(&self) -> bool {
        self.backward || self.jacobian || self.weight_grads
    }

    /// A backward stage runs: for the three above, or for the NTK's own
    /// (from the readout's gradient; the GPU engines run one or the other).
    pub fn runs_backward(&self) -> bool {
        self.needs_backward() || self.ntk.is_some()
    }
}

/// A run through an architecture file (or a plain stack with the
/// mean-preserving bias): the block engines run it.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchRun {
    pub arch: crate::model::arch::Architecture,
    pub mean_preserving: bool,
    /// the row whose per-position second moments to keep (--position-map)
    pub position_row: Option<usize>,
    /// record the Signal Propagation Plot's per-channel sums (--spp)
    pub spp: bool,
    /// the correlation between a sequence's tokens (--token-c0)
    pub token_c0: f64,
}

/// Which GPU engine runs a plain stack (`--engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// explicit weight matrices, O(n^2 B) per layer
    #[default]
    Dense,
    /// Gaussian conditioning on B x B Gram matrices, O(n B^2) per layer
    Gram,
    /// gram where it is supported and cheaper, dense otherwise (the block
    /// engine for architecture files gram cannot run)
    Auto,
    /// the block engine: architecture files and the mean-preserving bias
    Blocks,
}

impl EngineChoice {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "dense" => Ok(EngineChoice::Dense),
            "gram" => Ok(EngineChoice::Gram),
            "auto" => Ok(EngineChoice::Auto),
            "blocks" => Ok(EngineChoice::Blocks),
            other => Err(Error::invalid(
                "--engine",
                format!("unknown '{other}'; accepted: dense, gram, blocks, auto"),
            )),
        }
    }
}

/// How the neural tangent kernel counts parameters (`--parametrisation`),
/// as neural-tangents' `Dense(parameterization=...)` does. With W_l of
/// entry variance v_l and b_l of variance sb_l:
/// - `ntk`: the parameters are the unit-variance omega, beta of
///   W_l = sqrt(v_l) omega_l, b_l = sqrt(sb_l) beta_l, so layer l adds
///   (delta_l^a . delta_l^b)(v_l x_{l-1}^a . x_{l-1}^b + sb_l);
/// - `standard`: the parameters are W_l and b_l themselves, so layer l adds
///   (delta_l^a . delta_l^b)(x_{l-1}^a . x_{l-1}^b + 1), the 1 only where
///   the layer has a bias (sb_l > 0: a zero bias is no bias).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parametrisation {
    #[default]
    Ntk,
    Standard,
}

impl Parametrisation {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "ntk" => Ok(Parametrisation::Ntk),
            "standard" => Ok(Parametrisation::Standard),
            other => Err(Error::invalid(
                "--parametrisation",
                format!("unknown '{other}'; accepted: ntk, standard"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Parametrisation::Ntk => "ntk",
            Parametrisation::Standard => "standard",
        }
    }
}

/// A run: the network, and how many inputs and networks to push through it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// With `arch`, a summary of it: the units of each row as `widths`, the
    /// first layer's activation and init.
    pub net: NetworkSpec,
    /// B, even: inputs come in correlated pairs.
    pub batch: usize,
    /// S independent networks.
    pub networks: usize,
    pub seed: u64,
    pub probes: Probes,
    pub arch: Option<ArchRun>,
    /// The engine the GPU runs (`RunSpec::new`: dense; the command line's
    /// default is auto).
    pub engine: EngineChoice,
}

impl RunSpec {
    /// A forward-only run.
    pub fn new(net: NetworkSpec, batch: usize, networks: usize, seed: u64) -> Self {
        RunSpec {
            net,
            batch,
            networks,
            seed,
            probes: Probes::default(),
            arch: None,
            engine: EngineChoice::Dense,
        }
    }
}

impl RunSpec {
    /// Whether the engines renormalise every row (and carry log q exactly):
    /// a homogeneous plain stack, or a homogeneous architecture without the
    /// mean-preserving shift.
    pub fn renormalises(&self) -> bool {
        match &self.arch {
            None => self.net.is_homogeneous(),
            Some(a) => !a.mean_preserving && a.arch.is_homogeneous(),
        }
    }
}

/// The summary NetworkSpec of an architecture (see `RunSpec::net`).
pub fn summary_of(arch: &crate::model::arch::Architecture, q0: f64, c0: f64) -> NetworkSpec {
    let first = arch.blocks[0].layers()[0];
    NetworkSpec {
        widths: (0..=arch.depth()).map(|l| arch.units(l)).collect(),
        act: first.act,
        init: first.init,
        q0,
        c0,
    }
}

pub const DEFAULT_WIDTH: usize = 256;
pub const DEFAULT_DEPTH: usize = 100;

/// Layers of a network at most (its per-layer tables live in host memory).
pub const MAX_DEPTH: usize = 10_000_000;

/// Parses `--widths`: comma-separated widths, `NxK` repeats N K times,
/// e.g. `784,1024x998,10`.
pub fn parse_widths(text: &str) -> Result<Vec<usize>> {
    let flag = "--widths";
    let mut widths = Vec::new();
    for item in text.split(',').map(str::trim) {
        let (w, k) = match item.split_once(['x', 'X', '*']) {
            Some((w, k)) => (w.trim(), k.trim()),
            None => (item, "1"),
        };
        let width: usize = w.parse().map_err(|_| {
            Error::invalid(flag, format!("'{item}' is not a width: expected N or NxK with positive integers, e.g. 784,1024x998,10"))
        })?;
        let repeat: usize = k.parse().map_err(|_| {
            Error::invalid(
                flag,
                format!("'{item}': the repeat count after 'x' must be a positive integer"),
            )
        })?;
        if width == 0 || repeat == 0 {
            return Err(Error::invalid(
                flag,
                format!("'{item}': widths and repeat counts must be >= 1"),
            ));
        }
        if widths.len() + repeat > MAX_DEPTH + 1 {
            return Err(Error::invalid(flag, "more than 10,000,000 layers"));
        }
        widths.extend(std::iter::repeat_n(width, repeat));
    }
    if widths.len() < 2 {
        return Err(Error::invalid(
            flag,
            "needs the input width and at least one layer, e.g. 784,1024x10",
        ));
    }
    Ok(widths)
}

/// Commands whose standard errors come from the spread across networks
/// (`command`: check, compare, phase) need at least two.
pub fn check_networks_for_standard_errors(command: &str, networks: usize) -> Result<()> {
    if networks < 2 {
        return Err(Error::invalid(
            "--networks",
            format!("{command} needs at least 2 networks (standard errors come from them)"),
        ));
    }
    Ok(())
}

/// Checks the run-level numbers.
pub fn check_run(batch: usize, networks: usize) -> Result<()> {
    if batch == 0 || batch % 2 != 0 {
        return Err(Error::invalid(
            "--batch",
            format!(
                "must be a positive even number: inputs come in correlated pairs (got {batch})"
            ),
        ));
    }
    if networks == 0 {
        return Err(Error::invalid("--networks", "must be >= 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::NetworkSettings;

    #[test]
    fn widths_with_repeats() {
        let w = parse_widths("784,1024x998,10").unwrap();
        assert_eq!(w.len(), 1000);
        assert_eq!((w[0], w[1], w[998], w[999]), (784, 1024, 1024, 10));
        for bad in ["", "10", "0,5", "5,0x3", "a,b", "5,3x0", "5,-3"] {
            assert!(parse_widths(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_conflicts() {
        let flags = NetworkSettings {
            q0: Some(1.0),
            c0: Some(0.5),
            ..Default::default()
        };
        let net = flags.resolve().unwrap();
        assert_eq!(net.depth(), DEFAULT_DEPTH);
        assert!(net.is_homogeneous());
        let both = NetworkSettings {
            width: Some(8),
            widths: Some("8,8".into()),
            q0: Some(1.0),
            ..Default::default()
        };
        assert!(both.resolve().is_err());
        let c0 = NetworkSettings {
            c0: Some(1.5),
            q0: Some(1.0),
            ..Default::default()
        };
        assert!(c0.resolve().is_err());
    }
}
