//! The simulators: the dense GPU engine and the naive f64 CPU reference.
//! Both turn a `RunSpec` into per-network sums on the same RNG streams;
//! `stats` does the rest for both.

pub mod cpu;
pub mod cpu_blocks;

use crate::error::Result;
use crate::gpu::kernels::Kernels;
use crate::gpu::{AdapterSummary, GpuContext};
use crate::spec::{EngineChoice, RunSpec};
use crate::stats::{
    LayerSample, LayerSummary, NetworkSums, NetworkTop, network_results, summarise,
};

/// Which engine ran, on what, with how much device memory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineInfo {
    pub engine: &'static str,
    /// Why this engine ran (`--engine auto` says what it weighed).
    pub engine_reason: String,
    /// Gram engine: the least rank of X^T X over layers and networks (B
    /// when no layer lost rank).
    pub gram_rank_min: Option<usize>,
    pub adapter: Option<AdapterSummary>,
    /// Bytes of device buffers the engine allocated (0 on the CPU).
    pub device_bytes_peak: u64,
    /// Layers per submission (GPU).
    pub chunk: Option<usize>,
    /// Checkpoint interval of the backward pass (GPU, with the backward pass).
    pub checkpoint_every: Option<usize>,
}

pub struct RunOutput {
    /// per_network[s][l], rows l = 0..=L
    pub per_network: Vec<Vec<LayerSample>>,
    /// Jacobian moments per network (NaN without --jacobian)
    pub tops: Vec<NetworkTop>,
    pub summary: Vec<LayerSummary>,
    /// per network, the position row's per-position second moments (pre,
    /// post) with --position-map
    pub positions: Vec<(Vec<f64>, Vec<f64>)>,
    pub info: EngineInfo,
    /// Messages for stderr (non-finite layers).
    pub warnings: Vec<String>,
}

/// Options of the GPU engine that do not change what is computed.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// Layers per submission.
    pub chunk: usize,
    /// Checkpoint interval of the backward pass (default about sqrt(L)).
    pub checkpoint_every: Option<usize>,
    /// Device memory budget in bytes for choosing the interval.
    pub max_memory: Option<u64>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            chunk: crate::gpu::dense::DEFAULT_CHUNK,
            checkpoint_every: None,
            max_memory: None,
        }
    }
}

/// Progress: called with (rows done, rows in all) after each chunk; never
/// adds a device sync of its own.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

fn finish(
    per_network_sums: impl Iterator<Item = Result<NetworkSums>>,
    info: EngineInfo,
) -> Result<RunOutput> {
    let mut per_network = Vec::new();
    let mut tops = Vec::new();
    let mut warnings = Vec::new();
    let mut positions = Vec::new();
    for (s, sums) in per_network_sums.enumerate() {
        let sums = sums?;
        positions.extend(crate::stats::network_positions(&sums));
        let (samples, top, first_bad) = network_results(&sums);
        if let Some(l) = first_bad {
            warnings.push(format!(
                "network {s}: values became non-finite at layer {l} (overflow in f32); its rows from layer {l} on are NaN"
            ));
        }
        per_network.push(samples);
        tops.push(top);
    }
    let summary = summarise(&per_network);
    Ok(RunOutput {
        per_network,
        tops,
        summary,
        positions,
        info,
        warnings,
    })
}

/// Auto picks the gram engine when 4 B <= n for every width n: its
/// O(n B^2) per layer (with a host round trip) then beats the dense
/// O(n^2 B) by a wide margin.
pub const GRAM_BATCH_FACTOR: usize = 4;

/// The engine the GPU runs for `spec`, and why: `--engine dense|gram`, or
/// for auto gram where it is exact (plain stacks, normal or square
/// orthogonal weights; --jacobian too, the tangents being B more columns)
/// and cheaper (4 B <= n), dense
/// otherwise. An explicit gram that cannot run is an error naming why.
pub fn choose_engine(spec: &RunSpec) -> Result<(EngineChoice, String)> {
    let why_not = crate::gpu::gram::unsupported(spec);
    match spec.engine {
        EngineChoice::Dense => Ok((EngineChoice::Dense, "--engine dense".into())),
        EngineChoice::Gram => match why_not {
            None => Ok((EngineChoice::Gram, "--engine gram".into())),
            Some(why) => Err(crate::Error::invalid(
                "--engine",
                format!(
                    "gram cannot run this configuration: {why}. It accepts plain dense stacks (no --arch, no --bias mean-preserving) with normal weights (he-normal, xavier-normal, lecun-normal, custom with --dist normal) or square orthogonal weights (width >= 4 B, 8 B with --jacobian), with --backward, --weight-grads and --jacobian, on --device gpu; use --engine dense or auto otherwise"
                ),
            )),
        },
        EngineChoice::Auto => {
            let n_min = *spec.net.widths.iter().min().unwrap();
            Ok(match why_not {
                Some(why) => (
                    EngineChoice::Dense,
                    format!("auto: dense, since gram is not exact here ({why})"),
                ),
                None if GRAM_BATCH_FACTOR * spec.batch > n_min => (
                    EngineChoice::Dense,
                    format!(
                        "auto: dense, since batch {} is not well below the width {n_min} (gram when {GRAM_BATCH_FACTOR} B <= n)",
                        spec.batch
                    ),
                ),
                None => (
                    EngineChoice::Gram,
                    format!(
                        "auto: gram, exact for these weights and cheaper at batch {} <= width {n_min} / {GRAM_BATCH_FACTOR} (O(n B^2) per layer against O(n^2 B))",
                        spec.batch
                    ),
                ),
            })
        }
    }
}

/// The GPU engines: the block engine for architecture files and the
/// mean-preserving bias, else dense or gram as `choose_engine` says.
pub fn run_gpu(
    ctx: &GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    progress: Progress,
) -> Result<RunOutput> {
    if spec.arch.is_some() {
        if spec.engine == EngineChoice::Gram {
            choose_engine(spec)?; // the error that names why gram cannot
        }
        return run_gpu_blocks(ctx, spec, options, progress);
    }
    let (engine, reason) = choose_engine(spec)?;
    if engine == EngineChoice::Gram {
        let every = crate::gpu::gram::checkpoint_interval(
            spec,
            options.checkpoint_every,
            options.max_memory,
        )?;
        let gram = crate::gpu::gram::GramGpu::new(ctx, spec, every)?;
        if spec.engine == EngineChoice::Auto
            && let Some(why) = gram_floor_reached(spec, &gram)
        {
            drop(gram);
            let kernels = Kernels::auto(ctx, spec.batch);
            match run_gpu_with_kernels(ctx, spec, options, kernels, progress) {
                Ok(mut out) => {
                    out.info.engine_reason = format!("auto: dense, since {why}");
                    return Ok(out);
                }
                // the dense engine does not fit this adapter: gram after all
                Err(crate::Error::Invalid { .. }) => {}
                Err(e) => return Err(e),
            }
            let gram = crate::gpu::gram::GramGpu::new(ctx, spec, every)?;
            return run_gram(&gram, spec, reason, progress);
        }
        return run_gram(&gram, spec, reason, progress);
    }
    let kernels = Kernels::auto(ctx, spec.batch);
    let mut out = run_gpu_with_kernels(ctx, spec, options, kernels, progress)?;
    out.info.engine_reason = reason;
    Ok(out)
}

/// Where the gram engine cannot match the dense engine's resolution: its
/// compensated sums are not exact on this adapter (the probe), so the small
/// eigenvalues of X^T X carry noise of about eps_probe lambda_max, and 1 - c
/// a floor of about eps_probe B (2e-7 measured on lavapipe at width 256, B =
/// 16, where the probe of other rows gives 1.2e-8), and the
/// networks are expected to reach it: the mean-field 1 - c at the last
/// layer, times the lower tail of its finite-width spread,
/// exp(-3 sqrt(2.5 sum 1/n_l)) (Var[log(1 - c)] is about half of Var[log q]
/// = 5 sum 1/n_l for relu in a float64 Monte Carlo), below 10 times that
/// floor. The reason, or None.
fn gram_floor_reached(spec: &RunSpec, gram: &crate::gpu::gram::GramGpu) -> Option<String> {
    if gram.sums_exact {
        return None;
    }
    let rows = crate::theory::layer_table(&spec.net);
    let last = rows.last()?;
    let spread: f64 = spec.net.widths[1..].iter().map(|&n| 2.5 / n as f64).sum();
    let low = (1.0 - last.c_pre).max(0.0) * (-3.0 * spread.sqrt()).exp();
    let floor = gram.sums_probe_error * spec.batch as f64;
    (low < 10.0 * floor).then(|| {
        format!(
            "this adapter's shader compiler does not keep the gram engine's compensated sums exact \
             (probe error {:.1e} of sum |x y|): 1 - c would floor near {floor:.0e}, and these \
             networks reach about {low:.0e}",
            gram.sums_probe_error
        )
    })
}

/// Runs the gram engine (`crate::gpu::gram`), network by network.
pub fn run_gram(
    engine: &crate::gpu::gram::GramGpu,
    spec: &RunSpec,
    reason: String,
    progress: Progress,
) -> Result<RunOutput> {
    let ctx = engine.context();
    let rows = (spec.net.depth() + 1) as u64;
    let total = rows * spec.networks as u64;
    let mut sums = Vec::with_capacity(spec.networks);
    let mut rank_min = spec.batch;
    for s in 0..spec.networks {
        let out = engine.run_network(s, &mut |done| {
            progress(s as u64 * rows + done as u64, total)
        })?;
        rank_min = rank_min.min(out.rank_min);
        sums.push(out.sums);
    }
    let reason = if engine.sums_exact {
        reason
    } else {
        format!(
            "{reason}; this adapter's shader compiler does not keep the compensated Gram sums \
             exact (probe error {:.1e} of sum |x y|), so the rank and the backward pass's \
             pseudo-inverses use the plain f32 bound {:.1e}",
            engine.sums_probe_error,
            engine.sums_error_bound(spec.net.widths[0])
        )
    };
    let info = EngineInfo {
        engine: "gpu-gram",
        engine_reason: reason,
        gram_rank_min: Some(rank_min),
        adapter: Some(ctx.adapter.clone()),
        device_bytes_peak: engine.device_bytes,
        chunk: None,
        checkpoint_every: spec
            .probes
            .needs_backward()
            .then(|| engine.checkpoint_every()),
    };
    finish(sums.into_iter().map(Ok), info)
}

/// Architecture files and the mean-preserving bias on the GPU: the block
/// engine, network by network.
fn run_gpu_blocks(
    ctx: &GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    progress: Progress,
) -> Result<RunOutput> {
    let every = crate::gpu::blocks::checkpoint_interval(
        spec,
        options.checkpoint_every,
        options.max_memory,
    )?;
    let engine = crate::gpu::blocks::BlocksGpu::new(ctx, spec, every)?;
    let rows = (spec.net.depth() + 1) as u64;
    let total = rows * spec.networks as u64;
    let sums = (0..spec.networks).map(|s| {
        let sums = engine.run_network(s);
        progress((s as u64 + 1) * rows, total);
        sums
    });
    let info = EngineInfo {
        engine: "gpu-blocks",
        engine_reason: "architecture file or mean-preserving bias: the block engine".into(),
        gram_rank_min: None,
        adapter: Some(ctx.adapter.clone()),
        device_bytes_peak: engine.device_bytes,
        chunk: None,
        checkpoint_every: spec
            .probes
            .needs_backward()
            .then(|| engine.checkpoint_every()),
    };
    finish(sums, info)
}

/// `run_gpu` with given shapes of the kernels (tests, benchmark).
pub fn run_gpu_with_kernels(
    ctx: &GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    kernels: Kernels,
    progress: Progress,
) -> Result<RunOutput> {
    let every = crate::gpu::dense::checkpoint_interval(
        spec,
        options.chunk,
        options.checkpoint_every,
        options.max_memory,
    )?;
    let engine =
        crate::gpu::dense::DenseGpu::with_kernels(ctx, spec, options.chunk, every, kernels)?;
    let rows = (spec.net.depth() + 1) as u64;
    let total = rows * spec.networks as u64;
    // all networks in one pipelined sequence of jobs (no idle GPU between them)
    let sums = engine.run_networks(0..spec.networks, &mut |s, done| {
        progress(s as u64 * rows + done as u64, total)
    })?;
    let info = EngineInfo {
        engine: "gpu-dense",
        engine_reason: "dense".into(),
        gram_rank_min: None,
        adapter: Some(ctx.adapter.clone()),
        device_bytes_peak: engine.device_bytes,
        chunk: Some(options.chunk.clamp(1, rows as usize)),
        checkpoint_every: spec
            .probes
            .needs_backward()
            .then(|| engine.checkpoint_every()),
    };
    finish(sums.into_iter().map(Ok), info)
}

/// The f64 CPU reference: deliberately naive, for small sizes and tests.
pub fn run_cpu(spec: &RunSpec, progress: Progress) -> Result<RunOutput> {
    if spec.engine == EngineChoice::Gram {
        return Err(crate::Error::invalid(
            "--engine",
            "gram runs on the GPU only (--device gpu); the CPU reference engine is dense (use --engine dense or auto with --device cpu)",
        ));
    }
    let rows = (spec.net.depth() + 1) as u64;
    let total = rows * spec.networks as u64;
    let program = spec
        .arch
        .as_ref()
        .map(|a| cpu_blocks::Program::new(&a.arch, spec.net.q0, spec.net.c0, a.mean_preserving));
    let sums = (0..spec.networks).map(|s| {
        let sums = match (&program, &spec.arch) {
            (Some(program), Some(a)) => cpu_blocks::run_network(spec, program, s, a.position_row),
            _ => cpu::run_network(spec, s),
        };
        progress((s as u64 + 1) * rows, total);
        Ok(sums)
    });
    let info = EngineInfo {
        engine: "cpu-reference",
        engine_reason: "--device cpu: the f64 reference engine".into(),
        gram_rank_min: None,
        adapter: None,
        device_bytes_peak: 0,
        chunk: None,
        checkpoint_every: None,
    };
    finish(sums, info)
}
