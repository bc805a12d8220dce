//! The front door: a `Simulator` owns one GPU context (adapter, device and
//! compiled pipelines) or the CPU reference, and runs any `RunSpec` through
//! the engine `choose_engine` picks, reusing the context across runs.
//! `RunSpec::dense(width, depth)` builds a spec with the command line's
//! defaults; `RunOutput::table_with_theory` gives the rows `varprop run`
//! prints. See ARCHITECTURE.md for the flow behind `run`.

use std::sync::OnceLock;

use crate::config::settings::{DEFAULT_NETWORKS, NetworkSettings, RunSettings};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::{self, GpuOptions};
use crate::io::output::Table;
use crate::model::activation::Activation;
use crate::model::init::Scheme;
use crate::sim::{self, RunOutput};
use crate::spec::{EngineChoice, RunSpec};

/// Where a `Simulator` runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// The best GPU adapter wgpu finds (discrete > integrated > virtual >
    /// cpu, the software Vulkan driver included), else the CPU reference.
    #[default]
    Auto,
    /// The best GPU adapter; an error when there is none.
    Gpu,
    /// The adapter with this index (as `varprop devices` counts) or whose
    /// name contains this text.
    Adapter(String),
    /// The f64 CPU reference engine (small sizes: O(n^2 B) per layer in f64).
    Cpu,
}

/// Runs specs on one device, creating its GPU context once, on the first
/// GPU run.
pub struct Simulator {
    /// None: the CPU reference.
    adapter: Option<Option<String>>,
    options: GpuOptions,
    context: OnceLock<GpuContext>,
}

impl Simulator {
    /// A simulator on `device`. `Device::Auto` looks for an adapter now and
    /// falls back to the CPU reference when there is none.
    pub fn new(device: Device) -> Result<Simulator> {
        Simulator::with_options(device, GpuOptions::default())
    }

    /// As `new`, with the GPU options that do not change what is computed
    /// (layers per submission, checkpoint interval, memory budget).
    pub fn with_options(device: Device, options: GpuOptions) -> Result<Simulator> {
        if options.chunk == 0 {
            return Err(Error::invalid("--chunk", "must be >= 1"));
        }
        let context = OnceLock::new();
        let adapter = match device {
            Device::Cpu => None,
            Device::Gpu => Some(None),
            Device::Adapter(name) => Some(Some(name)),
            Device::Auto => match GpuContext::new(None) {
                Ok(ctx) => {
                    let _ = context.set(ctx);
                    Some(None)
                }
                Err(Error::NoAdapter) => None,
                Err(e) => return Err(e),
            },
        };
        Ok(Simulator {
            adapter,
            options,
            context,
        })
    }

    /// Whether the GPU context exists yet (it is made on the first GPU run,
    /// or by `Device::Auto` when looking for an adapter).
    pub fn has_context(&self) -> bool {
        self.context.get().is_some()
    }

    /// Whether runs go to the CPU reference engine.
    pub fn is_cpu(&self) -> bool {
        self.adapter.is_none()
    }

    /// The GPU context, created on first use; None on the CPU.
    pub fn context(&self) -> Result<Option<&GpuContext>> {
        let Some(adapter) = &self.adapter else {
            return Ok(None);
        };
        if let Some(ctx) = self.context.get() {
            return Ok(Some(ctx));
        }
        let ctx = GpuContext::new(adapter.as_deref())?;
        Ok(Some(self.context.get_or_init(|| ctx)))
    }

    /// One run. `progress(done, total)` is called with rows done (layers
    /// times networks) after each chunk the engine reads back anyway: it
    /// adds no device sync.
    pub fn run(&self, spec: &RunSpec, progress: impl FnMut(u64, u64)) -> Result<RunOutput> {
        self.run_with(spec, self.options, progress)
    }

    /// `run` with other GPU options for this run (they do not change what
    /// is computed).
    pub fn run_with(
        &self,
        spec: &RunSpec,
        options: GpuOptions,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RunOutput> {
        match self.context()? {
            Some(ctx) => gpu::run_gpu(ctx, spec, options, &mut progress),
            None => sim::run_cpu(spec, &mut progress),
        }
    }
}

impl RunOutput {
    /// The per-layer table `varprop run` prints (and writes as CSV or
    /// JSON): the measured columns with the theory's beside them.
    pub fn table_with_theory(&self) -> Table {
        crate::analysis::headline::table_with_theory(&self.spec, self).0
    }
}

/// A `RunSpec` under construction, with the command line's defaults for
/// whatever is not set (batch 16, 4 networks, seed 0, q0 1, c0 0.5, relu,
/// he-normal, the auto engine). `build` validates it as the command line
/// does; its errors name the field (`width`, `init`, ...).
#[derive(Clone, Debug, Default)]
pub struct RunSpecBuilder {
    settings: RunSettings,
}

impl RunSpec {
    /// A plain stack of `depth` layers of `width` units (the input has
    /// `width` units too).
    pub fn dense(width: usize, depth: usize) -> RunSpecBuilder {
        RunSpecBuilder {
            settings: RunSettings {
                net: NetworkSettings {
                    width: Some(width),
                    depth: Some(depth),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// A stack of the given widths n_0, n_1, ..., n_L.
    pub fn widths(widths: &[usize]) -> RunSpecBuilder {
        let text: Vec<String> = widths.iter().map(usize::to_string).collect();
        RunSpecBuilder {
            settings: RunSettings {
                net: NetworkSettings {
                    widths: Some(text.join(",")),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// A run of an architecture file (TOML; see architectures/).
    pub fn architecture(path: impl Into<String>) -> RunSpecBuilder {
        RunSpecBuilder {
            settings: RunSettings {
                net: NetworkSettings {
                    arch: Some(path.into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    /// From a settings record (the keys of a sweep or check suite file).
    pub fn from_settings(settings: RunSettings) -> RunSpecBuilder {
        RunSpecBuilder { settings }
    }
}

impl RunSpecBuilder {
    pub fn act(mut self, act: Activation) -> Self {
        self.settings.net.act = Some(act.name().to_string());
        match act {
            Activation::LeakyRelu { alpha } => self.settings.net.alpha = Some(alpha),
            Activation::Sin { omega } => self.settings.net.omega = Some(omega),
            _ => {}
        }
        self
    }
    pub fn init(mut self, init: Scheme) -> Self {
        self.settings.net.init.init = Some(init.name().to_string());
        self
    }
    /// Whose meaning the scheme names take (PyTorch by default).
    pub fn convention(mut self, convention: crate::model::init::Convention) -> Self {
        self.settings.net.init.convention = Some(convention.name().to_string());
        self
    }
    /// he-* under PyTorch: kaiming's `nonlinearity` argument (a name
    /// `calculate_gain` knows; leaky_relu by default).
    pub fn nonlinearity(mut self, name: &str) -> Self {
        self.settings.net.init.nonlinearity = Some(name.to_string());
        self
    }
    /// sigma_w^2: the weight variance times fan_in (implies `Scheme::Custom`
    /// unless another scheme is set, which is then an error).
    pub fn sigma_w2(mut self, v: f64) -> Self {
        self.settings.net.init.sigma_w2 = Some(v);
        self
    }
    pub fn sigma_b2(mut self, v: f64) -> Self {
        self.settings.net.init.sigma_b2 = Some(v);
        self
    }
    pub fn gain(mut self, g: f64) -> Self {
        self.settings.net.init.gain = Some(g);
        self
    }
    pub fn q0(mut self, q0: f64) -> Self {
        self.settings.net.q0 = Some(q0);
        self
    }
    pub fn c0(mut self, c0: f64) -> Self {
        self.settings.net.c0 = Some(c0);
        self
    }
    pub fn batch(mut self, b: usize) -> Self {
        self.settings.batch = Some(b);
        self
    }
    pub fn networks(mut self, s: usize) -> Self {
        self.settings.networks = Some(s);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
        self
    }
    pub fn backward(mut self, on: bool) -> Self {
        self.settings.backward = Some(on);
        self
    }
    pub fn jacobian(mut self, on: bool) -> Self {
        self.settings.jacobian = Some(on);
        self
    }
    pub fn weight_grads(mut self, on: bool) -> Self {
        self.settings.weight_grads = Some(on);
        self
    }
    pub fn engine(mut self, engine: EngineChoice) -> Self {
        self.settings.engine = Some(
            match engine {
                EngineChoice::Dense => "dense",
                EngineChoice::Gram => "gram",
                EngineChoice::Auto => "auto",
                EngineChoice::Blocks => "blocks",
            }
            .into(),
        );
        self
    }

    /// The validated spec; errors name the field.
    pub fn build(self) -> Result<RunSpec> {
        self.settings
            .resolve(DEFAULT_NETWORKS)
            .map_err(Error::with_field_names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_has_the_command_lines_defaults() {
        let spec = RunSpec::dense(64, 10).build().unwrap();
        assert_eq!(spec.net.widths, vec![64; 11]);
        assert_eq!((spec.batch, spec.networks, spec.seed), (16, 4, 0));
        assert_eq!(spec.engine, EngineChoice::Auto);
        assert_eq!((spec.net.q0, spec.net.c0), (1.0, 0.5));
        assert_eq!(spec.net.act, Activation::Relu);
        assert_eq!(spec.net.init.scheme, Scheme::HeNormal);
        assert!(!spec.probes.needs_backward());
    }

    #[test]
    fn typed_settings_carry_their_parameters() {
        let spec = RunSpec::widths(&[8, 16, 4])
            .act(Activation::LeakyRelu { alpha: 0.2 })
            .init(Scheme::XavierUniform)
            .batch(4)
            .networks(2)
            .jacobian(true)
            .engine(EngineChoice::Dense)
            .build()
            .unwrap();
        assert_eq!(spec.net.widths, vec![8, 16, 4]);
        assert_eq!(spec.net.act, Activation::LeakyRelu { alpha: 0.2 });
        assert_eq!(spec.net.init.scheme, Scheme::XavierUniform);
        assert_eq!((spec.batch, spec.networks), (4, 2));
        assert!(spec.probes.jacobian && spec.engine == EngineChoice::Dense);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |b: RunSpecBuilder| match b.build() {
            Err(Error::Invalid { flag, .. }) => flag,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(field(RunSpec::dense(0, 10)), "width");
        assert_eq!(field(RunSpec::dense(8, 10).batch(3)), "batch");
        assert_eq!(
            field(RunSpec::dense(8, 10).init(Scheme::HeNormal).sigma_w2(2.0)),
            "sigma_w2"
        );
    }
}
