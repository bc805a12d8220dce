//! Run settings as a flat record that files can carry: a `check` regression
//! suite lists cases of them, a sweep lists fixed settings and a grid. The
//! names are the flags of `varprop run` (with `_` or `-`); unknown keys are
//! errors that name the key and its line.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::init::InitFlags;
use crate::spec::{self, NetworkFlags, Probes, RunSpec};
pub use super::toml::parse_toml;

/// Every setting of a run, all optional: what is absent takes the
/// command line's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunSettings {
    /// A label for a case of a suite or a sweep; not a setting of the
    /// simulation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widths: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omega: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_w2")]
    pub sigma_w2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "sigma_b2")]
    pub sigma_b2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "fan_mode")]
    pub fan_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q0: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c0: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backward: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jacobian: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "weight_grads")]
    pub weight_grads: Option<bool>,
    /// An architecture file (instead of width, depth, widths, act, init).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// "normal" or "mean-preserving".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    /// "dense", "gram" or "auto" (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

pub const DEFAULT_Q0: f64 = 1.0;
pub const DEFAULT_C0: f64 = 0.5;
pub const DEFAULT_BATCH: usize = 16;
pub const DEFAULT_NETWORKS: usize = 4;

impl RunSettings {
    /// `other`'s settings where it has them, ours elsewhere.
    pub fn overlay(&self, other: &RunSettings) -> RunSettings {
        macro_rules! pick {
            ($($f:ident),*) => { RunSettings { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            name,
            width,
            depth,
            widths,
            act,
            alpha,
            omega,
            init,
            sigma_w2,
            sigma_b2,
            dist,
            gain,
            fan_mode,
            q0,
            c0,
            batch,
            networks,
            seed,
            backward,
            jacobian,
            weight_grads,
            arch,
            bias,
            engine
        )
    }

    pub fn network_flags(&self) -> NetworkFlags {
        NetworkFlags {
            width: self.width,
            depth: self.depth,
            widths: self.widths.clone(),
            act: self.act.clone(),
            alpha: self.alpha,
            omega: self.omega,
            init: InitFlags {
                init: self.init.clone(),
                sigma_w2: self.sigma_w2,
                sigma_b2: self.sigma_b2,
                dist: self.dist.clone(),
                gain: self.gain,
                fan_mode: self.fan_mode.clone(),
            },
            q0: self.q0.unwrap_or(DEFAULT_Q0),
            c0: self.c0.unwrap_or(DEFAULT_C0),
        }
    }

    /// The validated run; `default_networks` is the command's default.
    pub fn resolve(&self, default_networks: usize) -> Result<RunSpec> {
        let mean_preserving = match self.bias.as_deref() {
            None | Some("normal") => false,
            Some("mean-preserving") => true,
            Some(other) => {
                return Err(Error::invalid(
                    "--bias",
                    format!("unknown '{other}'; accepted: normal, mean-preserving"),
                ));
            }
        };
        let (net, arch) = match &self.arch {
            Some(path) => {
                let plain_flags = [
                    ("--width", self.width.is_some()),
                    ("--depth", self.depth.is_some()),
                    ("--widths", self.widths.is_some()),
                    ("--act", self.act.is_some()),
                    ("--init", self.init.is_some()),
                    ("--sigma-w2", self.sigma_w2.is_some()),
                    ("--sigma-b2", self.sigma_b2.is_some()),
                    ("--gain", self.gain.is_some()),
                ];
                if let Some((flag, _)) = plain_flags.iter().find(|(_, given)| *given) {
                    return Err(Error::invalid(
                        *flag,
                        "is set per block in the --arch file; drop one of the two",
                    ));
                }
                let arch = crate::model::arch::Architecture::load(std::path::Path::new(path))?;
                let flags = self.network_flags();
                if !(flags.q0.is_finite() && flags.q0 > 0.0) {
                    return Err(Error::invalid("--q0", "must be a finite number > 0"));
                }
                if !(-1.0..=1.0).contains(&flags.c0) {
                    return Err(Error::invalid("--c0", "must lie in [-1, 1]"));
                }
                let net = spec::summary_of(&arch, flags.q0, flags.c0);
                (
                    net,
                    Some(spec::ArchRun {
                        arch,
                        mean_preserving,
                        position_row: None,
                    }),
                )
            }
            None => {
                let net = self.network_flags().resolve()?;
                // the mean-preserving bias runs on the block engine
                let arch = mean_preserving.then(|| spec::ArchRun {
                    arch: crate::model::arch::Architecture::plain(&net.widths, net.act, net.init),
                    mean_preserving,
                    position_row: None,
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
        let probes = Probes {
            backward: self.backward.unwrap_or(false),
            jacobian: self.jacobian.unwrap_or(false),
            weight_grads: self.weight_grads.unwrap_or(false),
        };
        Ok(RunSpec {
            net,
            batch,
            networks,
            seed: self.seed.unwrap_or(0),
            probes,
            arch,
            engine,
        })
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
        let shape_from_flags = self.widths.is_none() && self.arch.is_none();
        let defaults = RunSettings {
            width: shape_from_flags.then_some(spec::DEFAULT_WIDTH),
            depth: shape_from_flags.then_some(spec::DEFAULT_DEPTH),
            q0: Some(DEFAULT_Q0),
            c0: Some(DEFAULT_C0),
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
