//! Which GPU engine runs a spec, and why: `choose_engine` (dense or gram,
//! from the spec alone) and `choose_gpu_engine` (the engine built on a
//! context, with the block engine for architecture files and auto's check
//! of the gram engine's rounding on this adapter): the one place the choice
//! is made. `run_gpu` runs the chosen engine.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::engines::{BlockEngine, DenseEngine, GramEngine};
use crate::gpu::tuning::Kernels;
use crate::sim::engine::{Engine, run_engine};
use crate::sim::{Progress, RunOutput};
use crate::spec::{EngineChoice, RunSpec};

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
    if spec.arch.is_some() {
        return choose_for_architecture(spec, why_not);
    }
    match spec.engine {
        EngineChoice::Blocks => Err(crate::Error::invalid(
            "--engine",
            "blocks runs --arch files and --bias mean-preserving; a plain stack runs on dense or gram (leave --engine out, or give auto, dense or gram)",
        )),
        EngineChoice::Dense => Ok((EngineChoice::Dense, "--engine dense".into())),
        EngineChoice::Gram => match why_not {
            None => Ok((EngineChoice::Gram, "--engine gram".into())),
            Some(why) => Err(crate::Error::invalid(
                "--engine",
                format!(
                    "gram cannot run this configuration: {why}. {GRAM_ACCEPTS}; use --engine dense or auto otherwise"
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

/// Why no GPU engine runs a sequence file (the message of the refusal).
pub const NO_ATTENTION: &str = "sequence inputs and attention layers have no GPU kernels yet: they run on the f64 CPU reference engine (leave --engine out, or give auto, or --device cpu)";

/// What the gram engine runs, for the errors that refuse it.
const GRAM_ACCEPTS: &str = "It accepts plain dense stacks and --arch files of dense and layer-norm, rms-norm or batch-norm layers on vector inputs, with normal weights (he-normal, xavier-normal, lecun-normal, custom with --dist normal) or square orthogonal weights (width >= 4 B, 8 B with --jacobian), with --backward, --weight-grads and --jacobian, on --device gpu";

/// An architecture file (or the mean-preserving bias): the block engine,
/// or gram where it is exact (dense and normalisation layers, Gaussian
/// weights) and cheaper (4 B <= n), as for plain stacks.
fn choose_for_architecture(
    spec: &RunSpec,
    why_not: Option<String>,
) -> Result<(EngineChoice, String)> {
    let n_min = *spec.net.widths.iter().min().unwrap();
    let sequence = spec
        .arch
        .as_ref()
        .is_some_and(|a| a.arch.input.is_sequence());
    if sequence && spec.engine != EngineChoice::Auto {
        return Err(crate::Error::invalid("--engine", NO_ATTENTION));
    }
    match (spec.engine, why_not) {
        (EngineChoice::Dense, _) => Err(crate::Error::invalid(
            "--engine",
            "dense runs plain stacks; an --arch file or --bias mean-preserving runs on the block engine or gram (leave --engine out, or give auto, blocks or gram)",
        )),
        (EngineChoice::Blocks, _) => Ok((EngineChoice::Blocks, "--engine blocks".into())),
        (EngineChoice::Gram, None) => Ok((EngineChoice::Gram, "--engine gram".into())),
        (EngineChoice::Gram, Some(why)) => Err(crate::Error::invalid(
            "--engine",
            format!(
                "gram cannot run this configuration: {why}. {GRAM_ACCEPTS}; use --engine blocks or auto otherwise"
            ),
        )),
        (EngineChoice::Auto, Some(why)) => Ok((
            EngineChoice::Blocks,
            format!("auto: the block engine (gram cannot: {why})"),
        )),
        (EngineChoice::Auto, None) if GRAM_BATCH_FACTOR * spec.batch > n_min => Ok((
            EngineChoice::Blocks,
            format!(
                "auto: the block engine, since batch {} is not well below the width {n_min} (gram when {GRAM_BATCH_FACTOR} B <= n)",
                spec.batch
            ),
        )),
        (EngineChoice::Auto, None) => Ok((
            EngineChoice::Gram,
            format!(
                "auto: gram, exact for dense and normalisation layers with these weights and cheaper at batch {} <= width {n_min} / {GRAM_BATCH_FACTOR}",
                spec.batch
            ),
        )),
    }
}

/// The GPU engines: the block engine for architecture files and the
/// mean-preserving bias, else dense or gram as `choose_gpu_engine` says.
pub fn run_gpu(
    ctx: &GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    progress: Progress,
) -> Result<RunOutput> {
    let (mut engine, reason) = choose_gpu_engine(ctx, spec, options)?;
    run_engine(engine.as_mut(), spec, reason, progress)
}

/// The GPU engine for `spec` and why, built: the one place the choice is
/// made. The block engine for architecture files and the mean-preserving
/// bias; else `choose_engine`'s dense or gram; and for auto, dense where the
/// gram engine's inexact sums cannot resolve the last layer's 1 - c
/// (`gram_floor_reached`), unless dense does not fit the adapter or would
/// need more than `DENSE_WORK_LIMIT` multiply-adds.
pub fn choose_gpu_engine<'a>(
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    options: GpuOptions,
) -> Result<(Box<dyn Engine + 'a>, String)> {
    ntk_fits_the_gpu(spec)?;
    if spec
        .arch
        .as_ref()
        .is_some_and(|a| a.arch.input.is_sequence())
    {
        // auto (choose_engine refuses the others): the CPU reference
        choose_engine(spec)?;
        crate::sim::cpu_fits_host_memory(spec)?;
        let reason = "auto: the f64 CPU reference engine (sequence inputs and attention have no GPU kernels yet)".to_string();
        return Ok((Box::new(crate::sim::engine::CpuEngine { spec }), reason));
    }
    let blocks = |reason: String| -> Result<(Box<dyn Engine + 'a>, String)> {
        let every = crate::gpu::blocks::checkpoint_interval(
            spec,
            options.checkpoint_every,
            options.max_memory,
        )?;
        let gpu = crate::gpu::blocks::BlocksGpu::new(ctx, spec, every)?;
        Ok((Box::new(BlockEngine { ctx, gpu, spec }), reason))
    };
    let (choice, reason) = choose_engine(spec)?;
    if choice == EngineChoice::Blocks {
        return blocks(reason);
    }
    if choice == EngineChoice::Dense {
        return Ok((
            Box::new(dense_engine(
                ctx,
                spec,
                options,
                Kernels::auto(ctx, spec.batch),
            )?),
            reason,
        ));
    }
    let every =
        crate::gpu::gram::checkpoint_interval(spec, options.checkpoint_every, options.max_memory)?;
    let gram = crate::gpu::gram::GramGpu::new(ctx, spec, every)?;
    let auto = spec.engine == EngineChoice::Auto;
    if auto && spec.arch.is_some() && !gram.sums_exact {
        // the floor bound below follows the plain stack's c-map, which
        // normalisation layers change: none is derived for them
        let error = gram.sums_probe_error;
        drop(gram);
        return blocks(format!(
            "auto: the block engine, since this adapter's shader compiler does not keep the gram engine's compensated sums exact (probe error {error:.1e}) and no bound on what that does through normalisation layers is derived"
        ));
    }
    let floor = if auto {
        gram_floor_reached(spec, gram.sums_exact, gram.sums_probe_error)
    } else {
        None
    };
    let Some(why) = floor else {
        return Ok((Box::new(GramEngine::new(gram, spec)), reason));
    };
    let work = dense_work(spec);
    if work > DENSE_WORK_LIMIT {
        let reason = format!(
            "{reason}; kept although {why}: the dense engine would need {work:.1e} \
             multiply-adds (above {DENSE_WORK_LIMIT:.0e}); `--engine dense` runs it anyway"
        );
        return Ok((Box::new(GramEngine::new(gram, spec)), reason));
    }
    drop(gram);
    match dense_engine(ctx, spec, options, Kernels::auto(ctx, spec.batch)) {
        Ok(dense) => Ok((Box::new(dense), format!("auto: dense, since {why}"))),
        // the dense engine does not fit this adapter: gram after all
        Err(crate::Error::Invalid { .. }) => {
            let gram = crate::gpu::gram::GramGpu::new(ctx, spec, every)?;
            Ok((Box::new(GramEngine::new(gram, spec)), reason))
        }
        Err(e) => Err(e),
    }
}

/// On the GPU the NTK's backward pass (from the readout's gradient) runs
/// in place of the one of --backward, --jacobian and --weight-grads: the
/// error saying so where a spec asks for both. `--device cpu` runs both.
pub fn ntk_fits_the_gpu(spec: &RunSpec) -> Result<()> {
    if spec.probes.ntk.is_some() && spec.probes.needs_backward() {
        return Err(crate::Error::invalid(
            "--ntk",
            "on the GPU runs apart from --backward, --jacobian and --weight-grads (its backward pass starts from the readout's gradient): run them separately, or give --device cpu",
        ));
    }
    Ok(())
}

/// The dense engine with given shapes of the kernels.
fn dense_engine<'a>(
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    options: GpuOptions,
    kernels: Kernels,
) -> Result<DenseEngine<'a>> {
    let every = crate::gpu::dense::checkpoint_interval(
        spec,
        options.chunk,
        options.checkpoint_every,
        options.max_memory,
    )?;
    let gpu = crate::gpu::dense::DenseGpu::with_kernels(ctx, spec, options.chunk, every, kernels)?;
    Ok(DenseEngine {
        ctx,
        gpu,
        spec,
        chunk: options.chunk,
    })
}

/// Where the gram engine cannot match the dense engine's resolution: its
/// compensated sums are not exact on this adapter (the probe), so each
/// layer's X^T X carries an error of up to eps_probe sum |x_a x_b| an entry,
/// and the spectral norm of that error, B eps_probe q, moves 1 - c of the
/// next row by up to B eps_probe (`gram_bias_bound`). Near c = 1 such a
/// shift is forgotten only slowly (the c-map's slope chi_c -> 1), so the
/// shifts of all layers add up: on lavapipe (eps_probe 1.2e-8) the gram
/// engine's 1 - c at depth 1,000 sat 25-35% below a float64 Monte Carlo of
/// the same law at width 4096 (z = -2.7 to -3.7 in three runs) and 17% below
/// at 16384, though each layer's own error is far below 1 - c there. The
/// dense engine is chosen when that accumulated bound exceeds 1% of the
/// smallest 1 - c the networks are expected to reach: the mean-field value
/// at the last layer times the lower tail of its finite-width spread,
/// exp(-3 sqrt(2.5 sum 1/n_l)) (Var[log(1 - c)] is about half of Var[log q]
/// = 5 sum 1/n_l for relu in a float64 Monte Carlo). The reason, or None.
fn gram_floor_reached(spec: &RunSpec, sums_exact: bool, probe_error: f64) -> Option<String> {
    if sums_exact {
        return None;
    }
    let rows = crate::theory::layer_table(&spec.net);
    let last = rows.last()?;
    let spread: f64 = spec.net.widths[1..].iter().map(|&n| 2.5 / n as f64).sum();
    let low = (1.0 - last.c_pre).max(0.0) * (-3.0 * spread.sqrt()).exp();
    let bias = gram_bias_bound(&spec.net, &rows, spec.batch, probe_error);
    (bias > GRAM_BIAS_SHARE * low).then(|| {
        format!(
            "this adapter's shader compiler does not keep the gram engine's compensated sums exact \
             (probe error {probe_error:.1e} of sum |x y|): their errors could move the last \
             layer's 1 - c by up to {bias:.0e}, and these networks reach about {low:.0e}"
        )
    })
}

/// The dense engine's multiply-adds for the whole run, sum_l n_{l-1} n_l B S.
fn dense_work(spec: &RunSpec) -> f64 {
    let layers: f64 = spec
        .net
        .widths
        .windows(2)
        .map(|w| w[0] as f64 * w[1] as f64)
        .sum();
    layers * spec.batch as f64 * spec.networks as f64
}

/// Above this many multiply-adds `auto` keeps gram even where its sums
/// cannot resolve the last 1 - c, and says so: about 45 minutes of dense
/// products on lavapipe (7.6 GFLOP/s), a fraction of a second on a
/// datacentre GPU (whose probe is expected to pass, so that the question
/// does not arise).
const DENSE_WORK_LIMIT: f64 = 1e13;

/// The share of the smallest expected 1 - c that the gram engine's
/// accumulated rounding may reach before `auto` prefers dense.
const GRAM_BIAS_SHARE: f64 = 0.01;

/// Bound on how far the gram engine's inexact sums can move 1 - c at the last
/// layer L: each step l -> l + 1 (l = 0..L-1) forms row l + 1 from X_l^T X_l,
/// whose error has spectral norm at most B eps_probe q (row sums of B entries
/// each within eps_probe sum |x_a x_b|), which moves 1 - c of row l + 1 by
/// at most B eps_probe; the later steps carry a shift in c through the
/// c-map's slope chi_c(q_pre[k], c_pre[k]), k = l + 1 .. L - 1:
///
/// ```text
/// bound = B eps_probe sum_{l=0}^{L-1} prod_{k=l+1}^{L-1} chi_c(k)
/// ```
///
/// For deep relu chi_c(k) ~ 1 - 3/k, the product is ~ (l/L)^3 and the bound
/// ~ B eps_probe L / 4; below the edge of chaos it stays below B eps_probe /
/// (1 - chi_c*).
fn gram_bias_bound(
    net: &crate::spec::NetworkSpec,
    rows: &[crate::theory::LayerTheory],
    batch: usize,
    probe_error: f64,
) -> f64 {
    let depth = net.depth();
    // carried[k] = prod_{j=k}^{L-1} chi_c(j), filled from the last layer down
    let mut sum = 0.0;
    let mut carried = 1.0;
    for l in (0..depth).rev() {
        sum += carried; // the shift made by step l -> l + 1
        if l >= 1 {
            let sigma_w2 = net.widths[l] as f64 * net.weight_law(l + 1).variance;
            let row = &rows[l];
            let slope = crate::theory::fixed_point::chi_c(
                &net.act,
                sigma_w2,
                row.q_pre,
                row.c_pre.clamp(-1.0, 1.0),
            );
            carried *= slope.abs();
        }
    }
    batch as f64 * probe_error * sum
}

/// `run_gpu` on the dense engine with given shapes of the kernels (tests,
/// benchmark).
pub fn run_gpu_with_kernels(
    ctx: &GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    kernels: Kernels,
    progress: Progress,
) -> Result<RunOutput> {
    let mut engine = dense_engine(ctx, spec, options, kernels)?;
    run_engine(&mut engine, spec, "dense".into(), progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::NetworkSettings;
    use crate::spec::RunSpec;

    fn relu_he(width: usize, depth: usize, sigma_b2: Option<f64>) -> RunSpec {
        let mut flags = NetworkSettings {
            width: Some(width),
            depth: Some(depth),
            q0: Some(1.0),
            c0: Some(0.0),
            ..Default::default()
        };
        flags.init.init = Some("he-normal".into());
        flags.init.sigma_b2 = sigma_b2;
        RunSpec::new(flags.resolve().unwrap(), 16, 8, 0)
    }

    /// lavapipe's probe error (`GramGpu::probe_sums`) while gram_cross's
    /// opaque() was a multiplication by an unseen 1 (an adapter whose
    /// compiler breaks TwoSum; lavapipe's probe passes since the XOR
    /// barrier): at depth 1,000 the gram engine's 1 - c sat 17-35% below a
    /// float64 Monte Carlo at widths 4096 and 16384, where the old rule
    /// (each layer's floor against the last 1 - c) kept gram; the
    /// accumulated bound sends both to dense.
    const LAVAPIPE_PROBE_ERROR: f64 = 1.2e-8;

    #[test]
    fn deep_relu_on_inexact_sums_goes_dense_at_every_width() {
        for width in [256, 4096, 16384, 1 << 20] {
            let spec = relu_he(width, 1000, None);
            // the rule before: dense only where the last 1 - c (times its
            // lower tail) fell below 10 times one layer's floor B eps_probe,
            // which kept gram from width 4096 up
            let rows = crate::theory::layer_table(&spec.net);
            let spread: f64 = spec.net.widths[1..].iter().map(|&n| 2.5 / n as f64).sum();
            let low = (1.0 - rows.last().unwrap().c_pre) * (-3.0 * spread.sqrt()).exp();
            assert_eq!(low < 10.0 * 16.0 * LAVAPIPE_PROBE_ERROR, width == 256);
            assert!(
                gram_floor_reached(&spec, false, LAVAPIPE_PROBE_ERROR).is_some(),
                "width {width}"
            );
            assert!(gram_floor_reached(&spec, true, LAVAPIPE_PROBE_ERROR).is_none());
        }
    }

    #[test]
    fn shallow_relu_keeps_gram() {
        // depth 100: 1 - c = 3.6e-3, bound ~ B eps L / 4 = 4.8e-6
        let spec = relu_he(4096, 100, None);
        assert!(gram_floor_reached(&spec, false, LAVAPIPE_PROBE_ERROR).is_none());
    }

    #[test]
    fn the_bound_grows_as_depth_over_four_for_relu() {
        // chi_c(k) ~ 1 - 3/k near c = 1, so the sum of the carried products
        // is about L/4: an independent check of the loop's indexing
        for depth in [200, 1000] {
            let spec = relu_he(4096, depth, None);
            let rows = crate::theory::layer_table(&spec.net);
            let sum = gram_bias_bound(&spec.net, &rows, 1, 1.0);
            let ratio = sum / (depth as f64 / 4.0);
            assert!((0.9..1.15).contains(&ratio), "depth {depth}: sum {sum}");
        }
        // one layer: only the step 0 -> 1, carried by nothing
        let spec = relu_he(64, 1, None);
        let rows = crate::theory::layer_table(&spec.net);
        assert_eq!(gram_bias_bound(&spec.net, &rows, 16, 1e-8), 16e-8);
    }

    #[test]
    fn ordered_phase_bounds_the_sum() {
        // tanh at sigma_w^2 = 1, sigma_b^2 = 0.1 is ordered: c -> 1 with
        // chi_c(1) = chi_1 < 1, so the shifts stop adding up and the sum
        // stays below 1 / (1 - chi_1) + 1
        let mut flags = NetworkSettings {
            width: Some(512),
            depth: Some(2000),
            act: Some("tanh".into()),
            q0: Some(1.0),
            c0: Some(0.0),
            ..Default::default()
        };
        flags.init.sigma_w2 = Some(1.0);
        flags.init.sigma_b2 = Some(0.1);
        let spec = RunSpec::new(flags.resolve().unwrap(), 16, 8, 0);
        let rows = crate::theory::layer_table(&spec.net);
        let sum = gram_bias_bound(&spec.net, &rows, 1, 1.0);
        let last = rows.last().unwrap();
        let chi = crate::theory::fixed_point::chi1(&spec.net.act, 1.0, last.q_pre);
        assert!(
            chi < 1.0 && sum < 1.0 / (1.0 - chi) + 1.0,
            "sum {sum}, chi_1 {chi}"
        );
        // but 1 - c itself falls as chi_1^l, far below any f32 floor: dense
        assert!(gram_floor_reached(&spec, false, LAVAPIPE_PROBE_ERROR).is_some());
    }
}
