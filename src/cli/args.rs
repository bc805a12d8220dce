//! Flags shared by the subcommands that describe a network and a run.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use varprop::sim::{GpuOptions, RunOutput};
use varprop::{Device, Simulator};
use varprop::io::output::Format;
use varprop::config::settings::RunSettings;
use varprop::spec::RunSpec;
use varprop::{Error, Result};

const INIT_HELP: &str = "Weight initialisation (PyTorch/Flax conventions; v = variance of one entry):
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

const ACT_HELP: &str = "Activation: identity, relu, leaky-relu (--alpha, default 0.01), tanh, sigmoid, relu6, \
sin (sin(omega z), --omega, default 1), selu, gelu (exact), elu, silu, erf, softplus, abs. Default relu";

#[derive(Args, Clone)]
pub struct NetArgs {
    /// Constant width n of the input and of every layer [default: 256]
    #[arg(long)]
    pub width: Option<usize>,
    /// Number of layers L with --width [default: 100]
    #[arg(long)]
    pub depth: Option<usize>,
    /// Widths n_0,n_1,...,n_L; NxK repeats N K times (e.g. 784,1024x998,10)
    #[arg(long, conflicts_with_all = ["width", "depth"])]
    pub widths: Option<String>,
    #[arg(long, help = ACT_HELP)]
    pub act: Option<String>,
    /// Negative slope of leaky-relu
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Frequency of sin (default 1; 30 with --init siren)
    #[arg(long, allow_negative_numbers = true)]
    pub omega: Option<f64>,
    #[arg(long, long_help = INIT_HELP, help = "Weight initialisation (see --help for the list and formulas)")]
    pub init: Option<String>,
    /// Weight variance times fan_in for --init custom (implies it)
    #[arg(long = "sigma-w2", allow_negative_numbers = true)]
    pub sigma_w2: Option<f64>,
    /// Bias variance sigma_b^2 (normal biases) [default: 0]
    #[arg(long = "sigma-b2", allow_negative_numbers = true)]
    pub sigma_b2: Option<f64>,
    /// Distribution for --init custom: normal, uniform, truncated-normal
    #[arg(long)]
    pub dist: Option<String>,
    /// Gain multiplying the scheme's standard deviation
    #[arg(long, allow_negative_numbers = true)]
    pub gain: Option<f64>,
    /// fan_in or fan_out for he-* and truncated-normal
    #[arg(long = "fan-mode")]
    pub fan_mode: Option<String>,
    /// Second moment of each input entry
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub q0: f64,
    /// Correlation of the two inputs of each pair (2k, 2k+1), in [-1, 1]
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub c0: f64,
    /// An architecture file (TOML: dense, conv, conv-transpose, residual and highway blocks;
    /// see architectures/) instead of --width/--widths/--act/--init
    #[arg(long)]
    pub arch: Option<String>,
    /// normal, or mean-preserving: each layer's post-activation is shifted by minus the analytic
    /// E[phi(sqrt(q_pre) z)], so that the mean stays at zero
    #[arg(long)]
    pub bias: Option<String>,
}

impl NetArgs {
    /// The network's settings as the record files use (settings.rs).
    pub fn settings(&self) -> RunSettings {
        RunSettings {
            width: self.width,
            depth: self.depth,
            widths: self.widths.clone(),
            act: self.act.clone(),
            alpha: self.alpha,
            omega: self.omega,
            init: self.init.clone(),
            sigma_w2: self.sigma_w2,
            sigma_b2: self.sigma_b2,
            dist: self.dist.clone(),
            gain: self.gain,
            fan_mode: self.fan_mode.clone(),
            q0: Some(self.q0),
            c0: Some(self.c0),
            arch: self.arch.clone(),
            bias: self.bias.clone(),
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// the GPU engine (any wgpu adapter, including the software one)
    Gpu,
    /// the naive f64 reference engine (small sizes)
    Cpu,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Inputs per network B (even: inputs come in correlated pairs)
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Independent networks S: means and standard errors are across them [default: 4; 32 for check]
    #[arg(long)]
    pub networks: Option<usize>,
    /// Seed: every random number is a function of (seed, network, layer, stream, index)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Engine
    #[arg(long, value_enum, default_value_t = DeviceKind::Gpu)]
    pub device: DeviceKind,
    /// GPU engine: dense (explicit weights, O(n^2 B) per layer), gram (exact in distribution from
    /// B x B Gram matrices, O(n B^2): normal or square orthogonal weights, plain stacks), or auto
    /// (gram where it is exact and 4 B <= n, else dense) [default: auto]
    #[arg(long)]
    pub engine: Option<String>,
    /// Adapter: an index from `varprop devices` or part of its name (else WGPU_ADAPTER_NAME, else the best)
    #[arg(long)]
    pub adapter: Option<String>,
    /// Layers per GPU submission (statistics are read back once per chunk)
    #[arg(long, default_value_t = varprop::gpu::dense::DEFAULT_CHUNK)]
    pub chunk: usize,
    /// Backward pass: delta_L ~ N(0, I) at the top, delta_l = phi'(h_l) W^T delta_{l+1} down to
    /// the input (columns g_*); memory stays O(sqrt(L) B n) by checkpointing
    #[arg(long)]
    pub backward: bool,
    /// Jacobian probes: ||J_l u||^2 per layer (jac_m1_*), and one vector-Jacobian product for the
    /// spread of the squared singular values (summary); runs the backward pass too
    #[arg(long)]
    pub jacobian: bool,
    /// Mean square entry of each weight gradient, sum_b delta_b x_b^T / B (gw_*); runs the
    /// backward pass too
    #[arg(long = "weight-grads")]
    pub weight_grads: bool,
    /// Checkpoint h every K layers in the backward pass [default: about sqrt(L)]
    #[arg(long = "checkpoint-every")]
    pub checkpoint_every: Option<usize>,
    /// Device memory budget for the backward pass (bytes; K, M, G suffixes): checkpoints are
    /// spaced as widely as it allows
    #[arg(long = "max-memory", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// Output format [default: table on a terminal, else csv; or from --out's extension]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (atomically) instead of stdout
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show every K-th layer in the table (default: about 30 rows); csv/json keep every row
    #[arg(long)]
    pub every: Option<usize>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the measured second moment per spatial position of one row (averaged over
    /// channels, batch and networks) and the theory's per-position prediction, as CSV
    #[arg(long = "position-map")]
    pub position_map: Option<PathBuf>,
    /// The row of --position-map [default: the last]
    #[arg(long = "position-layer")]
    pub position_layer: Option<usize>,
    /// Plot log q against depth (and g with --backward), measured mean +- 2 SE beside theory, to
    /// FILE.svg or FILE.png
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The q the plot shows: pre (h) or post (phi(h)) [default: post]
    #[arg(long = "plot-quantity", value_enum)]
    pub plot_quantity: Option<varprop::io::plot::Quantity>,
}

fn progress_bar(total: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} layers  {per_sec}  eta {eta}",
        )
        .expect("valid template"),
    );
    Some(bar)
}

pub fn simulate(args: &RunArgs, spec: &RunSpec) -> Result<RunOutput> {
    let simulator = Simulator::with_options(args.device.device(args.adapter.clone()), args.gpu_options())?;
    let total = (spec.net.depth() as u64 + 1) * spec.networks as u64;
    let bar = progress_bar(total, args.quiet);
    let out = simulator.run(spec, |done: u64, _total: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out
}

impl DeviceKind {
    /// The library's device for `--device` and `--adapter`.
    pub fn device(self, adapter: Option<String>) -> Device {
        match (self, adapter) {
            (DeviceKind::Cpu, _) => Device::Cpu,
            (DeviceKind::Gpu, None) => Device::Gpu,
            (DeviceKind::Gpu, Some(name)) => Device::Adapter(name),
        }
    }
}

impl RunArgs {
    /// The GPU options of the flags (they do not change what is computed).
    pub fn gpu_options(&self) -> GpuOptions {
        GpuOptions {
            chunk: self.chunk,
            checkpoint_every: self.checkpoint_every,
            max_memory: self.max_memory,
        }
    }

    /// The run's settings as the record files use (settings.rs).
    pub fn settings(&self) -> RunSettings {
        RunSettings {
            batch: Some(self.batch),
            networks: self.networks,
            seed: Some(self.seed),
            backward: Some(self.backward),
            jacobian: Some(self.jacobian),
            weight_grads: Some(self.weight_grads),
            engine: self.engine.clone(),
            ..self.net.settings()
        }
    }

    /// Checks the flags that are not part of the run's settings.
    pub fn check_engine_flags(&self) -> Result<()> {
        if self.chunk == 0 {
            return Err(Error::invalid("--chunk", "must be >= 1"));
        }
        if self.every == Some(0) {
            return Err(Error::invalid("--every", "must be >= 1"));
        }
        Ok(())
    }
}

/// The validated run of `varprop run`-like commands.
pub fn run_spec(args: &RunArgs, default_networks: usize) -> Result<RunSpec> {
    args.check_engine_flags()?;
    let mut spec = args.settings().resolve(default_networks)?;
    if args.position_map.is_some() || args.position_layer.is_some() {
        let Some(a) = spec.arch.as_mut() else {
            return Err(Error::invalid(
                "--position-map",
                "needs an --arch file with image layers",
            ));
        };
        let row = args.position_layer.unwrap_or(a.arch.depth());
        if row > a.arch.depth() {
            return Err(Error::invalid(
                "--position-layer",
                format!("must lie in 0..={}", a.arch.depth()),
            ));
        }
        if !matches!(a.arch.shape(row), varprop::model::arch::Shape::Image(..)) {
            return Err(Error::invalid(
                "--position-layer",
                format!("row {row} is a vector; positions need an image row"),
            ));
        }
        a.position_row = Some(row);
    }
    Ok(spec)
}

/// Bytes with an optional K, M, G or T suffix (powers of 1024).
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let shift = match unit.trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "'{text}': expected a number of bytes, e.g. 8G, 512M or 1000000"
            ));
        }
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}': expected a number of bytes, e.g. 8G"))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(format!("'{text}': must be positive"));
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}
