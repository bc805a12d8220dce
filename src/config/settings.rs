//! Run settings as a flat record that files can carry: a `check` regression
//! suite lists cases of them, a sweep lists fixed settings and a grid. The
//! names are the flags of `varprop run` (with `_` or `-`); unknown keys are
//! errors that name the key and its line.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::io::toml::parse_toml;
use crate::model::activation::Activation;
use crate::model::init::InitFlags;
use crate::model::init::InitSpec;
use crate::spec::{self, NetworkSpec, Probes, RunSpec};

/// The keys of a network, declared once for the command line (clap) and
/// for files (serde): `--width` is `width` in a suite, a sweep or a
/// Python call. All optional but q0 and c0, whose command-line defaults
/// clap writes in; what is absent takes the defaults `resolve` applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case")]
pub struct NetworkSettings {
    /// Constant width n of the input and of every layer [default: 256]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Number of layers L with --width [default: 100]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// Widths n_0,n_1,...,n_L; NxK repeats N K times (e.g. 784,1024x998,10)
    #[arg(long, conflicts_with_all = ["width", "depth"], allow_hyphen_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widths: Option<String>,
    #[arg(long, help = ACT_HELP)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    /// Negative slope of leaky-relu
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Frequency of sin (default 1; 30 with --init siren)
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omega: Option<f64>,
    #[command(flatten)]
    #[serde(flatten)]
    pub init: InitFlags,
    /// Second moment of each input entry
    #[arg(long, default_value = "1", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q0: Option<f64>,
    /// Correlation of the two inputs of each pair (2k, 2k+1), in [-1, 1]
    #[arg(long, default_value = "0.5", allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c0: Option<f64>,
    /// An architecture file (TOML: dense, conv, conv-transpose, normalisation, pooling and scale
    /// layers, sequences of them, residual and highway blocks, ResNet stages; see architectures/)
    /// instead of --width/--widths/--act/--init
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Tokens per sequence for an --arch file on sequences (input = { tokens, width }), in place
    /// of the file's
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<usize>,
    /// Correlation between the tokens of one sequence, in [0, 1] (default 0): each token is
    /// sqrt(q0) (sqrt(c) u + sqrt(1 - c) e_t) with u shared by the sequence; tokens at one
    /// position of a pair's two sequences keep the correlation --c0
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_c0: Option<f64>,
    /// normal, or mean-preserving: each layer's post-activation is shifted by minus the analytic
    /// E[phi(sqrt(q_pre) z)], so that the mean stays at zero
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
}

const ACT_HELP: &str = "Activation: identity, relu, leaky-relu (--alpha, default 0.01), tanh, sigmoid, relu6, \
sin (sin(omega z), --omega, default 1), selu, gelu (exact), elu, silu, erf, softplus, abs. Default relu";

/// Every setting of a run, declared once for the command line and for
/// files: a `check` regression suite lists cases of them, a sweep lists
/// fixed settings and a grid. The names are the flags of `varprop run`
/// (with `_` or `-`); unknown keys are errors that name the key and its
/// line (`io::toml`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case")]
pub struct RunSettings {
    /// A label for a case of a suite or a sweep; not a setting of the
    /// simulation.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub net: NetworkSettings,
    /// Inputs per network B (even: inputs come in correlated pairs)
    #[arg(long, default_value = "16")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Independent networks S: means and standard errors are across them [default: 4; 32 for check]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<usize>,
    /// Seed: every random number is a function of (seed, network, layer, stream, index)
    #[arg(long, default_value = "0")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Backward pass: delta_L ~ N(0, I) at the top, delta_l = phi'(h_l) W^T delta_{l+1} down to
    /// the input (columns g_*); memory stays O(sqrt(L) B n) by checkpointing
    #[arg(long, action = clap::ArgAction::SetTrue)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backward: Option<bool>,
    /// Jacobian probes: ||J_l u||^2 per layer (jac_m1_*), and one vector-Jacobian product for the
    /// spread of the squared singular values (summary); runs the backward pass too
    #[arg(long, action = clap::ArgAction::SetTrue)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<bool>,
    /// Mean square entry of each weight gradient, sum_b delta_b x_b^T / B (gw_*); runs the
    /// backward pass too
    #[arg(long = "weight-grads", action = clap::ArgAction::SetTrue)]
    #[serde(skip_serializing_if = "Option::is_none", alias = "weight_grads")]
    pub weight_grads: Option<bool>,
    /// The empirical neural tangent kernel over the batch, with the readout f = w^T x_L / sqrt(n_L)
    /// (w iid N(0, 1), its own stream): per layer its contribution (ntk_layer_*, ntk_layer_c_*),
    /// and the kernel, its pair correlation and condition number, and the NNGP kernel's (JSON
    /// `ntk`, the table's footer), beside the infinite-width theory; a backward pass of its own.
    /// Plain stacks and --arch files; on the GPU
    /// apart from --backward, --jacobian and --weight-grads
    #[arg(long, action = clap::ArgAction::SetTrue)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntk: Option<bool>,
    /// How --ntk counts parameters: ntk (W = sqrt(v) omega and b = sqrt(sb) beta with parameters
    /// omega, beta, as neural-tangents' default) or standard (W and b themselves; a zero bias is no
    /// bias) [default: ntk]
    #[arg(long, value_name = "ntk|standard")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parametrisation: Option<String>,
    /// GPU engine: dense (explicit weights, O(n^2 B) per layer), gram (exact in distribution from
    /// B x B Gram matrices, O(n B^2): normal or square orthogonal weights, plain stacks and --arch
    /// files of dense and layer-norm, rms-norm or batch-norm layers), blocks (--arch files, the
    /// mean-preserving bias), or auto (gram where it is exact and 4 B <= n, else dense for plain
    /// stacks and blocks for --arch) [default: auto]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

pub const DEFAULT_Q0: f64 = 1.0;
pub const DEFAULT_C0: f64 = 0.5;
pub const DEFAULT_BATCH: usize = 16;
pub const DEFAULT_NETWORKS: usize = 4;

impl NetworkSettings {
    /// q0 and c0, with their defaults.
    pub fn q0_c0(&self) -> (f64, f64) {
        (self.q0.unwrap_or(DEFAULT_Q0), self.c0.unwrap_or(DEFAULT_C0))
    }

    /// The validated network: widths, activation, init and inputs.
    pub fn resolve(&self) -> Result<NetworkSpec> {
        let widths = match (&self.widths, self.width, self.depth) {
            (Some(_), Some(_), _) => {
                return Err(Error::invalid(
                    "--widths",
                    "give either --widths or --width/--depth, not both",
                ));
            }
            (Some(_), None, Some(_)) => {
                return Err(Error::invalid(
                    "--depth",
                    "is fixed by --widths (one layer per width after the first)",
                ));
            }
            (Some(text), None, None) => spec::parse_widths(text)?,
            (None, width, depth) => {
                let width = width.unwrap_or(spec::DEFAULT_WIDTH);
                let depth = depth.unwrap_or(spec::DEFAULT_DEPTH);
                if width == 0 {
                    return Err(Error::invalid("--width", "must be >= 1"));
                }
                if depth == 0 || depth > spec::MAX_DEPTH {
                    return Err(Error::invalid(
                        "--depth",
                        format!("must lie in 1..={} (got {depth})", spec::MAX_DEPTH),
                    ));
                }
                vec![width; depth + 1]
            }
        };
        let siren = self.init.init.as_deref() == Some("siren");
        let act_name = self
            .act
            .as_deref()
            .unwrap_or(if siren { "sin" } else { "relu" });
        let omega = self
            .omega
            .or(if siren { Some(spec::SIREN_OMEGA) } else { None });
        let omega = if act_name == "sin" { omega } else { self.omega };
        let act = Activation::parse(act_name, self.alpha, omega)?;
        let init = InitSpec::resolve(&self.init, &act)?;
        let (q0, c0) = self.q0_c0();
        if !(q0.is_finite() && q0 > 0.0) {
            return Err(Error::invalid(
                "--q0",
                format!("must be a finite number > 0 (got {q0})"),
            ));
        }
        if !(c0.is_finite() && (-1.0..=1.0).contains(&c0)) {
            return Err(Error::invalid(
                "--c0",
                format!("must lie in [-1, 1] (got {c0})"),
            ));
        }
        Ok(NetworkSpec {
            widths,
            act,
            init,
            q0,
            c0,
        })
    }
}

impl RunSettings {
    /// `other`'s settings where it has them, ours elsewhere.
    pub fn overlay(&self, other: &RunSettings) -> RunSettings {
        macro_rules! pick {
            ($ours:expr, $theirs:expr; $($f:ident),*) => {
                $(let $f = $theirs.$f.clone().or_else(|| $ours.$f.clone());)*
            };
        }
        pick!(self, other; name, batch, networks, seed, backward, jacobian, weight_grads, ntk, parametrisation, engine);
        let (a, b) = (&self.net, &other.net);
        pick!(a, b; width, depth, widths, act, alpha, omega, q0, c0, arch, tokens, token_c0, bias);
        let (ai, bi) = (&a.init, &b.init);
        pick!(ai, bi; init, convention, sigma_w2, sigma_b2, dist, gain, nonlinearity, kaiming_a, gain_from_act, fan_mode);
        RunSettings {
            name,
            net: NetworkSettings {
                width,
                depth,
                widths,
                act,
                alpha,
                omega,
                init: InitFlags {
                    init,
                    convention,
                    sigma_w2,
                    sigma_b2,
                    dist,
                    gain,
                    nonlinearity,
                    kaiming_a,
                    gain_from_act,
                    fan_mode,
                },
                q0,
                c0,
                arch,
                tokens,
                token_c0,
                bias,
            },
            batch,
            networks,
            seed,
            backward,
            jacobian,
            weight_grads,
            ntk,
            parametrisation,
            engine,
        }
    }

    /// The validated run; `default_networks` is the command's default.
    pub fn resolve(&self, default_networks: usize) -> Result<RunSpec> {
        let net_keys = &self.net;
        let mean_preserving = match net_keys.bias.as_deref() {
            None | Some("normal") => false,
            Some("mean-preserving") => true,
            Some(other) => {
                return Err(Error::invalid(
                    "--bias",
                    format!("unknown '{other}'; accepted: normal, mean-preserving"),
                ));
            }
        };
        let (net, arch) = match &net_keys.arch {
            Some(path) => {
                let plain_flags = [
                    ("--width", net_keys.width.is_some()),
                    ("--depth", net_keys.depth.is_some()),
                    ("--widths", net_keys.widths.is_some()),
                    ("--act", net_keys.act.is_some()),
                    ("--init", net_keys.init.init.is_some()),
                    ("--sigma-w2", net_keys.init.sigma_w2.is_some()),
                    ("--sigma-b2", net_keys.init.sigma_b2.is_some()),
                    ("--gain", net_keys.init.gain.is_some()),
                ];
                if let Some((flag, _)) = plain_flags.iter().find(|(_, given)| *given) {
                    return Err(Error::invalid(
                        *flag,
                        "is set per block in the --arch file; drop one of the two",
                    ));
                }
                let mut arch = crate::model::arch::Architecture::load(std::path::Path::new(path))?;
                let sequence_flags = [
                    ("--tokens", net_keys.tokens.is_some()),
                    ("--token-c0", net_keys.token_c0.is_some()),
                ];
                if !arch.input.is_sequence()
                    && let Some((flag, _)) = sequence_flags.iter().find(|(_, given)| *given)
                {
                    return Err(Error::invalid(
                        *flag,
                        format!(
                            "applies to sequence inputs (input = {{ tokens = T, width = d }}); {path} has no sequence input"
                        ),
                    ));
                }
                if let Some(tokens) = net_keys.tokens {
                    if tokens == 0 {
                        return Err(Error::invalid("--tokens", "must be >= 1"));
                    }
                    arch = arch.with_tokens(tokens);
                }
                let token_c0 = net_keys.token_c0.unwrap_or(0.0);
                if !(0.0..=1.0).contains(&token_c0) {
                    return Err(Error::invalid(
                        "--token-c0",
                        format!("must lie in [0, 1] (got {token_c0})"),
                    ));
                }
                let (q0, c0) = net_keys.q0_c0();
                if !(q0.is_finite() && q0 > 0.0) {
                    return Err(Error::invalid("--q0", "must be a finite number > 0"));
                }
                if !(-1.0..=1.0).contains(&c0) {
                    return Err(Error::invalid("--c0", "must lie in [-1, 1]"));
                }
                let net = spec::summary_of(&arch, q0, c0);
                (
                    net,
                    Some(spec::ArchRun {
                        arch,
                        mean_preserving,
                        position_row: None,
                        spp: false,
                        token_c0,
                    }),
                )
            }
            None => {
                let net = net_keys.resolve()?;
                // the mean-preserving bias runs on the block engine
                for (flag, given) in [
                    ("--tokens", net_keys.tokens.is_some()),
                    ("--token-c0", net_keys.token_c0.is_some()),
                ] {
                    if given {
                        return Err(Error::invalid(
                            flag,
                            "applies to --arch files on sequences (input = { tokens = T, width = d })",
                        ));
                    }
                }
                let arch = mean_preserving.then(|| spec::ArchRun {
                    arch: crate::model::arch::Architecture::plain(&net.widths, net.act, net.init),
                    mean_preserving,
                    position_row: None,
                    spp: false,
                    token_c0: 0.0,
                });
                (net, arch)
            }
        };
        if arch.is_some() && self.weight_grads == Some(true) {
            return Err(Error::invalid(
                "--weight-grads",
                "is not available with --arch or --bias mean-preserving (the plain dense engine has it)",
            ));
        }
        let engine = spec::EngineChoice::parse(self.engine.as_deref().unwrap_or("auto"))?;
        let batch = self.batch.unwrap_or(DEFAULT_BATCH);
        let networks = self.networks.unwrap_or(default_networks);
        spec::check_run(batch, networks)?;
        if networks > crate::model::rng::MAX_NETWORKS {
            return Err(Error::invalid(
                "--networks",
                format!("at most {}", crate::model::rng::MAX_NETWORKS),
            ));
        }
        let ntk = match (self.ntk == Some(true), self.parametrisation.as_deref()) {
            (true, p) => Some(spec::Parametrisation::parse(p.unwrap_or("ntk"))?),
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "--parametrisation",
                    "chooses how --ntk counts parameters; without --ntk it would be ignored",
                ));
            }
            (false, None) => None,
        };
        if ntk.is_some() && arch.as_ref().is_some_and(|a| a.arch.input.is_sequence()) {
            return Err(Error::invalid(
                "--ntk",
                "is not available on sequence inputs yet (attention's parameter gradients are not written); --backward and --jacobian are",
            ));
        }
        let probes = Probes {
            backward: self.backward.unwrap_or(false),
            jacobian: self.jacobian.unwrap_or(false),
            weight_grads: self.weight_grads.unwrap_or(false),
            ntk,
        };
        let spec = RunSpec {
            net,
            batch,
            networks,
            seed: self.seed.unwrap_or(0),
            probes,
            arch,
            engine,
        };
        // an explicit engine that cannot run this spec (gram where it is not
        // exact, dense for an --arch file, blocks for a plain stack) is
        // refused now, before any work, with the reason the choice gives
        crate::gpu::choose_engine(&spec)?;
        Ok(spec)
    }
}

impl RunSettings {
    /// The settings with the defaults `resolve` uses written out (q0, c0,
    /// batch, networks, seed, the probes, and width and depth unless widths
    /// is given), so that a setting left out and the same setting written
    /// at its default describe one configuration (sweeps name results by
    /// them). Settings whose default depends on others (act, init,
    /// sigma_b2, ...) stay as given.
    pub fn with_defaults(&self, default_networks: usize) -> RunSettings {
        // an architecture file sets the shape itself: no width or depth to default
        let shape_from_flags = self.net.widths.is_none() && self.net.arch.is_none();
        let defaults = RunSettings {
            net: NetworkSettings {
                width: shape_from_flags.then_some(spec::DEFAULT_WIDTH),
                depth: shape_from_flags.then_some(spec::DEFAULT_DEPTH),
                q0: Some(DEFAULT_Q0),
                c0: Some(DEFAULT_C0),
                ..Default::default()
            },
            batch: Some(DEFAULT_BATCH),
            networks: Some(default_networks),
            seed: Some(0),
            backward: Some(false),
            jacobian: Some(false),
            weight_grads: Some(false),
            ..Default::default()
        };
        defaults.overlay(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_and_resolve() {
        let fixed: RunSettings = parse_toml(
            "f.toml",
            "act = \"tanh\"\nwidth = 16\ndepth = 3\nsigma-b2 = 0.1",
        )
        .unwrap();
        let point: RunSettings = parse_toml("f.toml", "act = \"erf\"\nsigma_w2 = 1.5").unwrap();
        let run = fixed.overlay(&point).resolve(4).unwrap();
        assert_eq!(run.net.act.name(), "erf");
        assert_eq!(run.net.widths, vec![16; 4]);
        assert_eq!(run.net.init.sigma_w2, 1.5);
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let err = parse_toml::<RunSettings>("cases.toml", "act = \"relu\"\nwidht = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cases.toml") && err.contains("line 2") && err.contains("widht"),
            "{err}"
        );
    }
}
