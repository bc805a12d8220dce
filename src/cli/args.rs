//! Flags shared by the subcommands that describe a network and a run.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::gpu::GpuOptions;
use varprop::io::output::Format;
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;
use varprop::{Device, Simulator};
use varprop::{Error, Result};

use super::validate;

/// The network flags: the settings record's (config::settings), declared
/// once for clap and for files.
pub type NetArgs = NetworkSettings;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceKind {
    /// the GPU engines when wgpu finds an adapter, else the CPU reference engine (with a notice)
    Auto,
    /// the GPU engines (any wgpu adapter, including the software one); no adapter is an error
    Gpu,
    /// the naive f64 reference engine (small sizes)
    Cpu,
}

/// The engine flags of `run`, shared by every command that runs networks:
/// where they run and how, never what is computed.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Engine
    #[arg(long, value_enum, default_value_t = DeviceKind::Auto)]
    pub device: DeviceKind,
    /// Adapter: an index from `varprop devices` or part of its name (else WGPU_ADAPTER_NAME, else the
    /// best); lets several processes share a multi-GPU machine
    #[arg(long)]
    pub adapter: Option<String>,
    /// Layers per GPU submission (statistics are read back once per chunk; results do not depend
    /// on it)
    #[arg(long, default_value_t = varprop::gpu::dense::DEFAULT_CHUNK)]
    pub chunk: usize,
    /// Checkpoint h every K layers in the backward pass [default: about sqrt(L)]
    #[arg(long = "checkpoint-every")]
    pub checkpoint_every: Option<usize>,
    /// Device memory budget for the backward pass (bytes; K, M, G suffixes): checkpoints are
    /// spaced as widely as it allows
    #[arg(long = "max-memory", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Clone)]
#[command(
    after_long_help = "Columns (CSV and JSON have them all; the table shows some, or --columns). Row l \
is layer l (row 0: the input); NAME_mean and NAME_se are the mean across the S networks and its standard \
error, NAME_theory the prediction and NAME_z = (mean - theory) / se. In the table, \"±\" is always a \
standard error; \"th.\" is the theory of the column before it.
  q_pre, q_post        second moments of h_l = W x_{l-1} + b and of x_l = phi(h_l) over units and batch
  log_q_pre, log_q_post  mean and std (log_*_std; \"sd log q_pre\" in the table) of ln q across networks
  mean_pre, mean_post  means of h and phi(h)
  kurt_pre             E[h^4] / E[h^2]^2 of h (3 for a Gaussian)
  zero_frac            fraction of units with phi'(h) = 0 (relu: 1/2)
  c_pre                correlation of the paired inputs' h (the c-map); log1m_c_pre: ln(1 - c)
  log_q_post_sample    ln q of one input (its exact law at finite width: relu, identity)
  g, log_g             with --backward: mean square gradient ||delta_l||^2 / n_l (delta_L standard normal)
  gw                   with --weight-grads: mean square weight gradient
  jac_m1, log_jac_m1   with --jacobian: ||J u||^2 of the input-output Jacobian along random u
  ntk_layer, ntk_layer_c  with --ntk: layer l's term of the NTK Theta(a, a) and its pair correlation
  spp_mean2, spp_var   with --spp: mean over channels of the squared channel mean and of the unbiased
                       channel variance, over the batch and positions (timm's avg_sq_ch_mean, avg_ch_var)
  spp_branch_var       with --spp, residual rows: the same variance of the branch's output F(x)
  token_cos, stable_rank  on sequences: mean cosine between a sequence's tokens (1: rank collapse) and
                       the stable rank of its T x d token matrix
  attn_entropy         rows with attention: mean entropy of the attention rows (ln T when uniform)
  grad_wq, grad_wk, grad_wv  with --backward, rows with attention: mean square entry of the gradient
                       with respect to the query, key and value weights"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub settings: RunSettings,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format [default: table on a terminal, else csv; or from --out's extension]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (atomically) instead of stdout
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show every K-th layer in the table (default: about 30 rows); not with csv/json, which keep every row
    #[arg(long)]
    pub every: Option<usize>,
    /// The table's columns, comma-separated, named as in the CSV header (q_pre shows q_pre_mean ±
    /// q_pre_se; c_pre_theory, log_q_post_std, ... as they are) [default: q_pre and its theory,
    /// c_pre and its theory, sd log q_pre, kurt_pre]
    #[arg(long)]
    pub columns: Option<String>,
    /// Write the measured second moment per spatial position of one row (averaged over
    /// channels, batch and networks) and the theory's per-position prediction, as CSV
    #[arg(long = "position-map")]
    pub position_map: Option<PathBuf>,
    /// The row of --position-map [default: the last]
    #[arg(long = "position-layer")]
    pub position_layer: Option<usize>,
    /// With --arch: record the Signal Propagation Plot's statistics of every row (spp_mean2,
    /// spp_var, spp_branch_var) beside their theory
    #[arg(long)]
    pub spp: bool,
    /// Plot log q against depth (and g with --backward), measured mean +- 2 SE beside theory, to
    /// FILE.svg or FILE.png
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The q the plot shows: pre (h) or post (phi(h)) [default: post]
    #[arg(long = "plot-quantity", value_enum)]
    pub plot_quantity: Option<varprop::analysis::layer_plot::Quantity>,
}

/// The bar of one run: it counts rows (layers + 1, the input row too) of
/// every network, and says so, since the count is networks x rows.
fn progress_bar(spec: &RunSpec, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let rows = spec.net.depth() as u64 + 1;
    let bar = indicatif::ProgressBar::new(rows * spec.networks as u64);
    let template = format!(
        "{{bar:40}} {{pos}}/{{len}} rows ({} networks x {rows} rows)  {{per_sec}}  eta {{eta}}",
        spec.networks
    );
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template"));
    Some(bar)
}

pub fn simulate(args: &RunArgs, spec: &RunSpec) -> Result<RunOutput> {
    let simulator = args.engine.simulator()?;
    let bar = progress_bar(spec, args.engine.quiet);
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
            (DeviceKind::Auto, None) => Device::Auto,
            (DeviceKind::Gpu, None) => Device::Gpu,
            (DeviceKind::Auto | DeviceKind::Gpu, Some(name)) => Device::Adapter(name),
        }
    }
}

impl EngineArgs {
    /// The library's simulator for these flags; `--device auto` without an
    /// adapter says, once, that the CPU reference engine runs instead.
    pub fn simulator(&self) -> Result<Simulator> {
        let device = self.device.device(self.adapter.clone());
        let simulator = Simulator::with_options(device, self.gpu_options())?;
        if self.device == DeviceKind::Auto && simulator.is_cpu() {
            eprintln!(
                "notice: no GPU adapter found, so the f64 CPU reference engine runs (slow beyond \
                 small sizes); for the GPU engines install a GPU driver, or the software one \
                 (Debian/Ubuntu: apt-get install mesa-vulkan-drivers); --device gpu makes this an error"
            );
        }
        Ok(simulator)
    }

    /// The engine flags alone: a chunk of at least one layer, and no
    /// adapter for the CPU engine.
    pub fn check(&self) -> Result<()> {
        if self.chunk == 0 {
            return Err(Error::invalid("--chunk", "must be >= 1"));
        }
        if self.adapter.is_some() && self.device == DeviceKind::Cpu {
            return Err(Error::invalid(
                "--adapter",
                "picks a GPU adapter; --device cpu runs the CPU reference engine (drop one)",
            ));
        }
        if self.checkpoint_every == Some(0) {
            return Err(Error::invalid("--checkpoint-every", "must be >= 1"));
        }
        Ok(())
    }

    /// The GPU options of the flags (they do not change what is computed).
    pub fn gpu_options(&self) -> GpuOptions {
        GpuOptions {
            chunk: self.chunk,
            checkpoint_every: self.checkpoint_every,
            max_memory: self.max_memory,
        }
    }
}

impl RunArgs {
    /// The run's settings as the record files use (settings.rs).
    pub fn settings(&self) -> RunSettings {
        self.settings.clone()
    }

    /// Checks the flags that are not part of the run's settings: the
    /// engine's, `--every`, and that `--out` and `--plot` can be written
    /// and `--format` agrees with `--out`.
    pub fn check_engine_flags(&self) -> Result<()> {
        self.engine.check()?;
        validate::format_agrees_with_out(
            self.format,
            self.out.as_deref(),
            &[Format::Csv, Format::Json, Format::Table],
        )?;
        if let Some(out) = &self.out {
            validate::writable_destination("--out", out)?;
        }
        if let Some(plot) = &self.plot {
            validate::writable_destination("--plot", plot)?;
        }
        if let Some(map) = &self.position_map {
            validate::writable_destination("--position-map", map)?;
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
    validate::backward_flags_need_backward(args, &spec)?;
    validate::ntk_engine_fits(args, &spec)?;
    validate::fits_host_memory("--depth", "this run", validate::run_host_bytes(&spec))?;
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
    if args.spp {
        let Some(a) = spec.arch.as_mut() else {
            return Err(Error::invalid(
                "--spp",
                "needs an --arch file (its statistics are per channel of each block's output)",
            ));
        };
        a.spp = true;
        // an explicit gram cannot take it: refused now, before any work
        varprop::gpu::choose_engine(&spec)?;
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
