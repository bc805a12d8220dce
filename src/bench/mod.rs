//! `varprop bench` and `cargo bench`: how fast the engine runs and how close
//! to the adapter's limits. Kernels alone are timed on the GPU by timestamp
//! queries where the adapter has them (else by the wall clock around a
//! submission and its wait); end-to-end runs by the wall clock, with the
//! GPU's busy time from the same timestamps (`host_idle_fraction`). Every
//! figure is the median of a few trials; the in-run baselines are a pure
//! FMA kernel (the arithmetic ceiling) and a textbook 16 x 16
//! shared-memory product (shaders/bench/fma_peak.wgsl, naive_product.wgsl).

use std::time::Instant;

use serde::Serialize;

use crate::config::settings::NetworkSettings;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::dense::{DenseGpu, KernelProbe};
use crate::gpu::tuning::Kernels;
use crate::model::init::InitFlags;
use crate::spec::{Probes, RunSpec};

mod baselines;
mod table;

use baselines::{fma_peak, naive_product};
pub use table::to_table;

/// What to run: `quick` is a smoke test at small sizes (CI).
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchOptions {
    pub quick: bool,
}

/// Sizes of one benchmark run.
struct Plan {
    /// (B, n) of the product kernel alone; the first is the reference size
    products: Vec<(usize, usize)>,
    /// (B, n, depth) of the end-to-end runs
    end_to_end: (usize, usize, usize),
    /// n of the n x n Gaussian matrix for the RNG
    rng_width: usize,
    orthogonal_widths: Vec<usize>,
    /// (B, n, gram depth, dense depth) of the gram-against-dense forward
    gram: (usize, usize, usize, usize),
    /// the block engine's ResNet: (file name, its text, batch, networks)
    resnet: (&'static str, &'static str, usize, usize),
    /// the block engine's 3x3 convolution: (channels, image side, batch, layers)
    conv: (usize, usize, usize, usize),
    trials: usize,
}

/// The quick plan's ResNet: two stages of two BN-ReLU blocks on 8x8 images.
const SMALL_RESNET: &str = "input = { channels = 3, size = 8 }\n\
[[block]]\ntype = \"conv\"\nchannels = 16\nkernel = 3\nact = \"identity\"\n\
[[block]]\ntype = \"stage\"\nblocks = 2\nchannels = 16\nbottleneck = false\n\
[[block]]\ntype = \"stage\"\nblocks = 2\nchannels = 32\nstride = 2\nbottleneck = false\n";

impl Plan {
    fn new(options: BenchOptions) -> Self {
        if options.quick {
            Plan {
                products: vec![(32, 128)],
                end_to_end: (32, 128, 20),
                rng_width: 256,
                orthogonal_widths: vec![16, 32],
                gram: (8, 128, 20, 5),
                resnet: ("small resnet (quick)", SMALL_RESNET, 2, 1),
                conv: (8, 8, 2, 2),
                trials: 3,
            }
        } else {
            Plan {
                products: vec![(256, 1024), (1024, 4096)],
                end_to_end: (256, 1024, 200),
                rng_width: 2048,
                orthogonal_widths: vec![32, 64, 128],
                gram: (32, 4096, 1000, 10),
                resnet: (
                    "architectures/resnets/resnet_v2_600_quarter.toml",
                    include_str!("../../architectures/resnets/resnet_v2_600_quarter.toml"),
                    8,
                    4,
                ),
                conv: (64, 32, 16, 2),
                trials: 3,
            }
        }
    }
}

/// A product size not measured, and why.
const SKIP_AFTER_SECONDS: f64 = 60.0;

#[derive(Clone, Debug, Serialize)]
pub struct ProductPoint {
    pub batch: usize,
    pub width: usize,
    pub gflops: Option<f64>,
    pub vs_peak: Option<f64>,
    /// Why it was not measured.
    pub skipped: Option<String>,
}

/// The product at the reference size with W drawn inside the kernel and
/// with W read from the buffer (plus generating it once per layer).
#[derive(Clone, Debug, Serialize)]
pub struct WeightSources {
    pub in_kernel_gflops: f64,
    pub from_buffer_gflops: f64,
    /// ... counting the generation of W into the buffer once per layer
    pub from_buffer_with_generation_gflops: f64,
    pub chosen: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct EndToEnd {
    pub batch: usize,
    pub width: usize,
    pub depth: usize,
    pub seconds: f64,
    pub layers_per_s: f64,
    pub gflops: f64,
    /// GPU busy seconds from timestamps
    pub gpu_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrthogonalPoint {
    pub width: usize,
    pub seconds_per_layer: f64,
}

/// The gram engine against the dense engine, forward, one network.
#[derive(Clone, Debug, Serialize)]
pub struct GramVsDense {
    pub batch: usize,
    pub width: usize,
    pub gram_depth: usize,
    /// dense is timed over fewer layers (its cost per layer does not
    /// depend on the depth) and reported per layer
    pub dense_depth: usize,
    pub gram_seconds: f64,
    pub dense_seconds: f64,
}

/// What --ntk costs beside --backward (issue 17's target: at most 1.5x),
/// one network, wall clock, after the warm-ups above compiled the pipelines.
#[derive(Clone, Debug, Serialize)]
pub struct NtkOverhead {
    pub dense_batch: usize,
    pub dense_width: usize,
    pub dense_depth: usize,
    pub dense_backward_seconds: f64,
    pub dense_ntk_seconds: f64,
    pub gram_batch: usize,
    pub gram_width: usize,
    pub gram_depth: usize,
    pub gram_backward_seconds: f64,
    pub gram_ntk_seconds: f64,
    pub dense_ntk_vs_backward: f64,
    pub gram_ntk_vs_backward: f64,
    /// the block engine: the convolution network of `ConvRun` (its
    /// channels, size, batch and layers), one network, median of 3
    pub blocks_backward_seconds: f64,
    pub blocks_ntk_seconds: f64,
    pub blocks_ntk_vs_backward: f64,
}

/// The block engine's stride-1 3x3 convolution layer, forward, with the
/// plain kernel (one invocation per output value, the in-run baseline)
/// and the tiled one (CONV_TILE_C channels x CONV_TILE_X positions per
/// invocation), seconds per layer (the layer's draws, moments and records
/// included: a network of `layers` such layers, median of the trials).
#[derive(Clone, Debug, Serialize)]
pub struct ConvRun {
    pub channels: usize,
    pub size: usize,
    pub batch: usize,
    pub plain_seconds_per_layer: f64,
    pub tiled_seconds_per_layer: f64,
    /// plain over tiled (target >= 4)
    pub tiled_vs_plain: f64,
    /// 2 B C^2 k^2 H W per layer over the tiled seconds
    pub tiled_gflops: f64,
}

/// The block engine on a ResNet with the SPP statistics (issue 16's
/// target: the quarter-width ResNet-V2-600, batch 8, 4 networks, under 10
/// minutes on lavapipe), wall clock.
#[derive(Clone, Debug, Serialize)]
pub struct ResnetRun {
    pub file: String,
    pub batch: usize,
    pub networks: usize,
    pub blocks: usize,
    pub seconds: f64,
    /// blocks of one network per second
    pub blocks_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    /// "timestamp" (GPU timestamp queries) or "wall" (host clock)
    pub timing: &'static str,
    pub quick: bool,
    pub kernels: Kernels,
    pub fma_peak_gflops: f64,
    /// the naive product at the reference size
    pub naive_gflops: f64,
    /// the engine's product kernel alone at the reference size
    pub product_gflops: f64,
    pub product_vs_naive: f64,
    pub product_vs_peak: f64,
    pub product: Vec<ProductPoint>,
    pub weight_sources: WeightSources,
    pub forward: EndToEnd,
    pub forward_layers_per_s: f64,
    pub forward_gflops: f64,
    /// forward seconds per layer (statistics, host loop included) over the
    /// seconds of the product kernel alone, timed around the forward run
    pub forward_vs_product: f64,
    pub backward: EndToEnd,
    /// forward + recomputation + transposed product: 3 x 2 B n^2 per layer
    pub backward_gflops: f64,
    pub backward_layers_per_s: f64,
    /// 1 - GPU busy time / wall time of the forward run
    pub host_idle_fraction: Option<f64>,
    pub host_idle_note: Option<String>,
    /// Gaussian draws per second from the Philox kernel, in units of 10^9
    pub rng_gnormals_per_s: f64,
    pub orthogonal: Vec<OrthogonalPoint>,
    pub gram: GramVsDense,
    pub gram_layers_per_s: f64,
    pub dense_layers_per_s: f64,
    /// gram layers per second over dense layers per second (wall clock)
    pub gram_vs_dense: f64,
    /// a gram layer's seconds over those of drawing its n B Gaussians at
    /// `rng_gnormals_per_s` (issue 19's target: <= 1.5)
    pub gram_vs_rng_limit: f64,
    pub ntk: NtkOverhead,
    pub resnet: ResnetRun,
    pub conv: ConvRun,
    pub notes: Vec<String>,
}

/// Runs the benchmark on `ctx`; `log` gets a line per step (for stderr).
pub fn run(
    ctx: &GpuContext,
    options: BenchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<BenchReport> {
    let plan = Plan::new(options);
    let timestamps = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    let mut notes = vec![format!(
        "medians of {} trials; kernels timed by {}; figures move with other load on the machine",
        plan.trials,
        if timestamps {
            "GPU timestamps"
        } else {
            "the wall clock (no timestamp queries)"
        }
    )];
    let (b0, n0) = plan.products[0];
    let kernels = Kernels::auto(ctx, b0);

    log("fma peak");
    let fma_peak_gflops = fma_peak(ctx, plan.trials)?;
    log("naive product");
    let naive_gflops = naive_product(ctx, b0, n0, plan.trials)?;

    let mut product = Vec::new();
    let mut reference = None;
    for &(batch, width) in &plan.products {
        log(&format!("product B={batch} n={width}"));
        let flops = product_flops(batch, width);
        if let Some(gflops) = reference {
            let estimate = plan.trials as f64 * flops / (gflops * 1e9);
            if estimate > SKIP_AFTER_SECONDS {
                product.push(skipped(batch, width, format!(
                    "would take about {estimate:.0} s on this adapter (over {SKIP_AFTER_SECONDS:.0} s)"
                )));
                continue;
            }
        }
        let spec = spec(batch, width, 1, Probes::default(), "he-normal");
        let engine = match DenseGpu::timed(ctx, &spec, 1, 1, Kernels::auto(ctx, batch)) {
            Ok(e) => e,
            Err(Error::Invalid { message, .. }) => {
                product.push(skipped(batch, width, format!("does not fit: {message}")));
                continue;
            }
            Err(e) => return Err(e),
        };
        let seconds = time_kernel(&engine, KernelProbe::Product, plan.trials)?;
        let gflops = flops / seconds / 1e9;
        reference.get_or_insert(gflops);
        product.push(ProductPoint {
            batch,
            width,
            gflops: Some(gflops),
            vs_peak: Some(gflops / fma_peak_gflops),
            skipped: None,
        });
    }
    for p in &product {
        if let Some(why) = &p.skipped {
            notes.push(format!(
                "product at B={} n={} not measured: {why}",
                p.batch, p.width
            ));
        }
    }
    let product_gflops = reference.expect("the reference size is always measured");

    log("weight sources");
    let weight_sources = weight_sources(ctx, b0, n0, plan.trials, kernels)?;

    let (batch, width, depth) = plan.end_to_end;
    log(&format!("forward B={batch} n={width} L={depth}"));
    let (forward, product_seconds) = end_to_end(ctx, batch, width, depth, Probes::default(), 1)?;
    let forward_vs_product = forward.seconds / depth as f64 / product_seconds;
    let (host_idle_fraction, host_idle_note) = match forward.gpu_seconds {
        Some(busy) => (Some((1.0 - busy / forward.seconds).max(0.0)), None),
        None => (
            None,
            Some(if timestamps {
                "a job had more passes than the timestamp queries cover".to_string()
            } else {
                "the adapter has no timestamp queries, so the GPU's busy time is unknown"
                    .to_string()
            }),
        ),
    };

    log(&format!("backward B={batch} n={width} L={depth}"));
    let probes = Probes {
        backward: true,
        ..Default::default()
    };
    let (backward, _) = end_to_end(ctx, batch, width, depth, probes, 3)?;
    log(&format!("ntk B={batch} n={width} L={depth}"));
    let ntk_probes = Probes {
        ntk: Some(crate::spec::Parametrisation::Ntk),
        ..Default::default()
    };
    let (dense_ntk, _) = end_to_end(ctx, batch, width, depth, ntk_probes, 3)?;

    log("rng");
    let rng_gnormals_per_s = rng_gnormals_per_s(ctx, plan.rng_width, plan.trials)?;

    let mut orthogonal = Vec::new();
    for &width in &plan.orthogonal_widths {
        log(&format!("orthogonal n={width}"));
        let spec = spec(2, width, 1, Probes::default(), "orthogonal");
        let engine = DenseGpu::timed(ctx, &spec, 1, 1, Kernels::auto(ctx, 2))?;
        let seconds = time_kernel(&engine, KernelProbe::Weights, plan.trials)?;
        orthogonal.push(OrthogonalPoint {
            width,
            seconds_per_layer: seconds,
        });
    }

    let (gb, gn, gl, dl) = plan.gram;
    log(&format!(
        "gram vs dense B={gb} n={gn} (gram L={gl}, dense L={dl})"
    ));
    let gram = gram_vs_dense(ctx, gb, gn, gl, dl)?;
    log(&format!("gram ntk vs backward B={gb} n={gn} L={gl}"));
    let gram_time = |probes: Probes| -> Result<f64> {
        use crate::gpu::gram::GramGpu;
        let run = RunSpec {
            engine: crate::spec::EngineChoice::Gram,
            ..spec(gb, gn, gl, probes, "he-normal")
        };
        let every = crate::gpu::gram::checkpoint_interval(&run, None, None)?;
        let engine = GramGpu::new(ctx, &run, every)?;
        let start = Instant::now();
        engine.run_network(0, &mut |_| {})?;
        Ok(start.elapsed().as_secs_f64())
    };
    let gram_backward_seconds = gram_time(probes)?;
    let gram_ntk_seconds = gram_time(ntk_probes)?;
    log(&format!("blocks ntk vs backward {:?}", plan.conv));
    let blocks_backward_seconds = blocks_time(ctx, plan.conv, probes)?;
    let blocks_ntk_seconds = blocks_time(ctx, plan.conv, ntk_probes)?;
    let ntk = NtkOverhead {
        dense_batch: batch,
        dense_width: width,
        dense_depth: depth,
        dense_backward_seconds: backward.seconds,
        dense_ntk_seconds: dense_ntk.seconds,
        gram_batch: gb,
        gram_width: gn,
        gram_depth: gl,
        gram_backward_seconds,
        gram_ntk_seconds,
        dense_ntk_vs_backward: dense_ntk.seconds / backward.seconds,
        gram_ntk_vs_backward: gram_ntk_seconds / gram_backward_seconds,
        blocks_backward_seconds,
        blocks_ntk_seconds,
        blocks_ntk_vs_backward: blocks_ntk_seconds / blocks_backward_seconds,
    };
    let (file, text, resnet_batch, resnet_networks) = plan.resnet;
    log(&format!(
        "{file}: batch {resnet_batch}, {resnet_networks} networks, --spp"
    ));
    let resnet = resnet_run(ctx, file, text, resnet_batch, resnet_networks)?;
    let (channels, size, conv_batch, conv_layers) = plan.conv;
    log(&format!(
        "3x3 convolution, {channels} channels, {size}x{size}, batch {conv_batch}: plain and tiled kernels"
    ));
    let conv = conv_run(ctx, (channels, size, conv_batch, conv_layers), plan.trials)?;
    let gram_layers_per_s = gl as f64 / gram.gram_seconds;
    let dense_layers_per_s = dl as f64 / gram.dense_seconds;
    notes.push(format!(
        "gram vs dense: forward of one network at B={gb}, n={gn} by the wall clock; gram over {gl} layers, dense over {dl} (its time per layer does not depend on depth), both per layer"
    ));

    Ok(BenchReport {
        adapter: ctx.adapter.name.clone(),
        backend: ctx.adapter.backend.clone(),
        device_type: ctx.adapter.device_type.clone(),
        timing: if timestamps { "timestamp" } else { "wall" },
        quick: options.quick,
        kernels,
        fma_peak_gflops,
        naive_gflops,
        product_gflops,
        product_vs_naive: product_gflops / naive_gflops,
        product_vs_peak: product_gflops / fma_peak_gflops,
        product,
        weight_sources,
        forward_layers_per_s: forward.layers_per_s,
        forward_gflops: forward.gflops,
        forward_vs_product,
        forward,
        backward_gflops: backward.gflops,
        backward_layers_per_s: backward.layers_per_s,
        backward,
        host_idle_fraction,
        host_idle_note,
        rng_gnormals_per_s,
        orthogonal,
        gram,
        gram_layers_per_s,
        dense_layers_per_s,
        gram_vs_dense: gram_layers_per_s / dense_layers_per_s,
        gram_vs_rng_limit: (1.0 / gram_layers_per_s)
            / ((gb * gn) as f64 / (rng_gnormals_per_s * 1e9)),
        ntk,
        resnet,
        conv,
        notes,
    })
}

/// A forward run of `arch` on the block engine, with the SPP statistics
/// if `spp`.
fn block_spec(
    arch: crate::model::arch::Architecture,
    batch: usize,
    networks: usize,
    spp: bool,
) -> RunSpec {
    let mut run = spec(batch, 8, 1, Probes::default(), "he-normal");
    run.engine = crate::spec::EngineChoice::Blocks;
    run.networks = networks;
    run.net = crate::spec::summary_of(&arch, run.net.q0, run.net.c0);
    run.arch = Some(crate::spec::ArchRun {
        arch,
        mean_preserving: false,
        position_row: None,
        spp,
        token_c0: 0.0,
    });
    run
}

/// The text of `layers` 3x3 convolutions of `channels` on `size` x `size`
/// images (circular padding, relu, He).
fn conv_network(channels: usize, size: usize, layers: usize) -> String {
    format!(
        "input = {{ channels = {channels}, size = {size} }}\n[[block]]\ntype = \"conv\"\nchannels = {channels}\nkernel = 3\nact = \"relu\"\ninit = \"he-normal\"\nrepeat = {layers}\n"
    )
}

/// Wall seconds of one network of the convolution network on the block
/// engine with `probes`, after a warm-up run; median of 3.
fn blocks_time(
    ctx: &GpuContext,
    (channels, size, batch, layers): (usize, usize, usize, usize),
    probes: Probes,
) -> Result<f64> {
    use crate::gpu::blocks::BlocksGpu;
    let text = conv_network(channels, size, layers);
    let arch = crate::model::arch::Architecture::parse("bench convolution", &text)?;
    let mut run = block_spec(arch, batch, 1, false);
    run.probes = probes;
    let every = crate::gpu::blocks::checkpoint_interval(&run, None, None)?;
    let gpu = BlocksGpu::new(ctx, &run, every)?;
    gpu.run_network(0)?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        gpu.run_network(0)?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// `ConvRun`: the same network (one of `layers` 3x3 convolutions with
/// circular padding, relu, He) on the block engine with each kernel, after
/// a warm-up run that compiles the pipelines.
fn conv_run(
    ctx: &GpuContext,
    (channels, size, batch, layers): (usize, usize, usize, usize),
    trials: usize,
) -> Result<ConvRun> {
    use crate::gpu::blocks::{BlocksGpu, ConvKernel};
    let text = conv_network(channels, size, layers);
    let arch = crate::model::arch::Architecture::parse("bench convolution", &text)?;
    let run = block_spec(arch, batch, 1, false);
    let seconds_per_layer = |kernel: ConvKernel| -> Result<f64> {
        let mut gpu = BlocksGpu::new(ctx, &run, 1)?;
        gpu.conv_kernel = kernel;
        gpu.run_network(0)?;
        let mut times = Vec::new();
        for _ in 0..trials {
            let start = Instant::now();
            gpu.run_network(0)?;
            times.push(start.elapsed().as_secs_f64() / layers as f64);
        }
        Ok(median(times))
    };
    let plain = seconds_per_layer(ConvKernel::Plain)?;
    let tiled = seconds_per_layer(ConvKernel::Tiled)?;
    let flops = 2.0 * (batch * channels * channels * 9 * size * size) as f64;
    Ok(ConvRun {
        channels,
        size,
        batch,
        plain_seconds_per_layer: plain,
        tiled_seconds_per_layer: tiled,
        tiled_vs_plain: plain / tiled,
        tiled_gflops: flops / tiled / 1e9,
    })
}

/// A forward run with the SPP statistics of the architecture `text` on
/// the block engine, all its networks, by the wall clock.
fn resnet_run(
    ctx: &GpuContext,
    file: &str,
    text: &str,
    batch: usize,
    networks: usize,
) -> Result<ResnetRun> {
    let arch = crate::model::arch::Architecture::parse(file, text)?;
    let blocks = arch.depth();
    let run = block_spec(arch, batch, networks, true);
    let start = Instant::now();
    crate::gpu::run_gpu(ctx, &run, crate::gpu::GpuOptions::default(), &mut |_, _| {})?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(ResnetRun {
        file: file.to_string(),
        batch,
        networks,
        blocks,
        seconds,
        blocks_per_s: (blocks * networks) as f64 / seconds,
    })
}

/// Wall seconds of a forward pass of one network on the gram engine
/// (`gram_depth` layers) and on the dense engine (`dense_depth` layers),
/// each after a two-layer warm-up that compiles its pipelines.
fn gram_vs_dense(
    ctx: &GpuContext,
    batch: usize,
    width: usize,
    gram_depth: usize,
    dense_depth: usize,
) -> Result<GramVsDense> {
    use crate::gpu::gram::GramGpu;
    let gram_spec = |depth| RunSpec {
        engine: crate::spec::EngineChoice::Gram,
        ..spec(batch, width, depth, Probes::default(), "he-normal")
    };
    let warm = gram_spec(2);
    GramGpu::new(ctx, &warm, 1)?.run_network(0, &mut |_| {})?;
    let run = gram_spec(gram_depth);
    let engine = GramGpu::new(ctx, &run, 1)?;
    let start = Instant::now();
    engine.run_network(0, &mut |_| {})?;
    let gram_seconds = start.elapsed().as_secs_f64();

    let kernels = Kernels::auto(ctx, batch);
    let chunk = crate::gpu::dense::DEFAULT_CHUNK;
    let warm = spec(batch, width, 2, Probes::default(), "he-normal");
    DenseGpu::with_kernels(ctx, &warm, chunk, 1, kernels)?.run_networks(0..1, &mut |_, _| {})?;
    let run = spec(batch, width, dense_depth, Probes::default(), "he-normal");
    let engine = DenseGpu::with_kernels(ctx, &run, chunk, 1, kernels)?;
    let start = Instant::now();
    engine.run_networks(0..1, &mut |_, _| {})?;
    let dense_seconds = start.elapsed().as_secs_f64();
    Ok(GramVsDense {
        batch,
        width,
        gram_depth,
        dense_depth,
        gram_seconds,
        dense_seconds,
    })
}

pub(crate) fn product_flops(batch: usize, width: usize) -> f64 {
    2.0 * batch as f64 * width as f64 * width as f64
}

fn skipped(batch: usize, width: usize, why: String) -> ProductPoint {
    ProductPoint {
        batch,
        width,
        gflops: None,
        vs_peak: None,
        skipped: Some(why),
    }
}

fn spec(batch: usize, width: usize, depth: usize, probes: Probes, init: &str) -> RunSpec {
    let net = NetworkSettings {
        width: Some(width),
        depth: Some(depth),
        act: Some("relu".into()),
        init: InitFlags {
            init: Some(init.into()),
            ..Default::default()
        },
        q0: Some(1.0),
        c0: Some(0.5),
        ..Default::default()
    }
    .resolve()
    .expect("the benchmark's networks are valid");
    RunSpec {
        probes,
        ..RunSpec::new(net, batch, 1, 0)
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of one `kernel` dispatch: GPU time where timed, else wall
/// time over a job of `per_job` dispatches (which spreads the submission).
fn time_kernel(engine: &DenseGpu, kernel: KernelProbe, trials: usize) -> Result<f64> {
    engine.time_kernel(kernel, 1)?; // warm-up
    let per_job = 2;
    let mut times = Vec::new();
    for _ in 0..trials {
        let (wall, gpu) = engine.time_kernel(kernel, per_job)?;
        times.push(gpu.unwrap_or(wall) / per_job as f64);
    }
    Ok(median(times))
}

/// A run of one network at (B, n, depth) by the wall clock, on a timed
/// engine; `work` products of 2 B n^2 per layer. Also the seconds of one
/// product dispatch, timed on the same engine just before and just after
/// the run (the median of four), so that the ratio of the two is not
/// skewed by load that comes and goes on the machine.
fn end_to_end(
    ctx: &GpuContext,
    batch: usize,
    width: usize,
    depth: usize,
    probes: Probes,
    work: usize,
) -> Result<(EndToEnd, f64)> {
    let spec = spec(batch, width, depth, probes, "he-normal");
    let every = crate::gpu::dense::checkpoint_interval(&spec, 128, None, None)?;
    let kernels = Kernels::auto(ctx, batch);
    let engine = DenseGpu::timed(ctx, &spec, crate::gpu::dense::DEFAULT_CHUNK, every, kernels)?;
    // warm-up: the first submissions compile the pipelines' machine code
    let warm = self::spec(batch, width, 2, probes, "he-normal");
    DenseGpu::with_kernels(ctx, &warm, 1, 1, kernels)?.run_networks(0..1, &mut |_, _| {})?;
    let mut product = Vec::new();
    let mut time_product = || -> Result<()> {
        for _ in 0..2 {
            let (wall, gpu) = engine.time_kernel(KernelProbe::Product, 1)?;
            product.push(gpu.unwrap_or(wall));
        }
        Ok(())
    };
    time_product()?;
    let start = Instant::now();
    engine.run_networks(0..1, &mut |_, _| {})?;
    let seconds = start.elapsed().as_secs_f64();
    time_product()?;
    let run = EndToEnd {
        batch,
        width,
        depth,
        seconds,
        layers_per_s: depth as f64 / seconds,
        gflops: work as f64 * product_flops(batch, width) * depth as f64 / seconds / 1e9,
        gpu_seconds: engine.gpu_seconds(),
    };
    Ok((run, median(product)))
}

fn weight_sources(
    ctx: &GpuContext,
    batch: usize,
    width: usize,
    trials: usize,
    kernels: Kernels,
) -> Result<WeightSources> {
    let spec = spec(batch, width, 1, Probes::default(), "he-normal");
    let with = |in_kernel: bool| {
        let mut k = kernels;
        k.product.weights_from_rng = in_kernel;
        DenseGpu::timed(ctx, &spec, 1, 1, k)
    };
    let flops = product_flops(batch, width);
    let in_kernel = time_kernel(&with(true)?, KernelProbe::Product, trials)?;
    let buffer_engine = with(false)?;
    let from_buffer = time_kernel(&buffer_engine, KernelProbe::Product, trials)?;
    let generation = time_kernel(&buffer_engine, KernelProbe::Weights, trials)?;
    Ok(WeightSources {
        in_kernel_gflops: flops / in_kernel / 1e9,
        from_buffer_gflops: flops / from_buffer / 1e9,
        from_buffer_with_generation_gflops: flops / (from_buffer + generation) / 1e9,
        chosen: if kernels.product.weights_from_rng {
            "in_kernel"
        } else {
            "from_buffer"
        },
    })
}

fn rng_gnormals_per_s(ctx: &GpuContext, width: usize, trials: usize) -> Result<f64> {
    let spec = spec(2, width, 1, Probes::default(), "he-normal");
    let engine = DenseGpu::timed(ctx, &spec, 1, 1, Kernels::auto(ctx, 2))?;
    let seconds = time_kernel(&engine, KernelProbe::Weights, trials)?;
    Ok((width * width) as f64 / seconds / 1e9)
}
