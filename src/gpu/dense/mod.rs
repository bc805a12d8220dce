//! The dense engine on the GPU: forward pass, tangent probes and the
//! checkpointed backward pass.
//!
//! Per layer, forward: generate W_l (and b_l) from the Philox streams into a
//! reused buffer, h = r W x + b, x = phi(h) with the moment records, and the
//! renormalisation factor r; with --jacobian the tangents t = phi'(h) W t
//! ride along. Layers are encoded by chunks and their records read back once
//! per chunk. Backward: h is checkpointed every k layers; each segment is
//! recomputed from its checkpoint (same kernels, same weights, so bit for bit
//! the same h) and walked down with delta_{l-1} = phi'(h_{l-1}) W_l^T delta_l,
//! regenerating W_l. All rows live in two arenas (`act`, `store`) at offsets
//! passed per dispatch, so one bind group serves every kernel; every buffer
//! is allocated once per run.

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::tuning::{Kernels, ProductKernel};
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::gpu::submit::{InFlight, Readback, Step, Submitter};
use crate::model::init::WeightLaw;
use crate::spec::RunSpec;
use crate::sim::stats::{LayerSums, NetworkSums, RowSums};

pub use crate::gpu::abi::Params;
pub(crate) use crate::gpu::abi::{
    ELEMENTWISE_WG, FLAG_AUX_STORE, FLAG_INPUT, FLAG_NO_DERIV, FLAG_OUT_STORE, FLAG_RENORM,
    FLAG_ROW_RECORDS, GEN_WG, NO_OFFSET, NO_SCALE, RECORD, UNITS_PER_BLOCK,
};
const MAX_DISPATCH: u32 = 65_535;

/// Default number of layers per submission.
pub const DEFAULT_CHUNK: usize = 128;

/// Row stride of W and of every row in the arenas: n padded to a multiple
/// of 4 (shaders/params.wgsl `stride`).
pub fn stride(n: usize) -> usize {
    n.next_multiple_of(4)
}

pub(crate) fn blocks(n: usize) -> usize {
    n.div_ceil(UNITS_PER_BLOCK)
}

/// Workgroup counts for `invocations` folded into 2-D (shaders use flat_index).
pub(crate) fn dispatch_1d(invocations: usize, wg: u32) -> (u32, u32, u32) {
    let groups = invocations.div_ceil(wg as usize).max(1) as u64;
    if groups <= MAX_DISPATCH as u64 {
        (groups as u32, 1, 1)
    } else {
        let y = groups.div_ceil(MAX_DISPATCH as u64);
        (groups.div_ceil(y) as u32, y as u32, 1)
    }
}

/// How the run uses device memory: offsets (in f32s) of every region.
#[derive(Clone, Debug)]
struct Layout {
    /// stride of the widest layer
    row: usize,
    batch: usize,
    /// forward x (ping-pong), h, tangents (ping-pong), W t, backward rows
    /// (ping-pong, 2B rows with --jacobian), W^T delta
    x: [usize; 2],
    h: usize,
    t: [usize; 2],
    ht: usize,
    d: [usize; 2],
    y: usize,
    act_len: usize,
    /// checkpoints of h every `every` layers, then the segment's recomputed h
    every: usize,
    checkpoints: usize,
    store_len: usize,
    /// backward rows per layer: B, or 2B with the vector-Jacobian rows
    back_rows: usize,
    block_stride: usize,
    records_len: usize,
    depth: usize,
    /// scales: forward r, tangent r, delta r, vector-Jacobian r, each a ring
    /// of this many layers: L + 1 with the backward pass (the recomputation
    /// needs every forward r), else chunk + 1, so that a forward run's memory
    /// does not grow with depth.
    ring: usize,
}

impl Layout {
    fn new(spec: &RunSpec, chunk: usize, every: usize) -> Self {
        let net = &spec.net;
        let batch = spec.batch;
        let row = stride(*net.widths.iter().max().unwrap());
        let rows = |r: usize| r * row;
        let backward = spec.probes.needs_backward();
        let jacobian = spec.probes.jacobian;
        let back_rows = if jacobian { 2 * batch } else { batch };
        let mut at = 0;
        let mut region = |len: usize| {
            let start = at;
            at += len;
            start
        };
        let x = [region(rows(batch)), region(rows(batch))];
        let h = region(rows(batch));
        let tangent_rows = if jacobian { batch } else { 0 };
        let t = [region(rows(tangent_rows)), region(rows(tangent_rows))];
        let ht = region(rows(tangent_rows));
        let d_rows = if backward { back_rows } else { 0 };
        let d = [region(rows(d_rows)), region(rows(d_rows))];
        let y = region(rows(d_rows));
        let act_len = at;
        let depth = net.depth();
        let (every, checkpoints) = if backward {
            (every, depth.div_ceil(every))
        } else {
            (0, 0)
        };
        let store_len = (checkpoints + every) * rows(batch);
        let block_stride = blocks(row);
        let pairs = batch / 2;
        let forward_records = chunk * (pairs * RECORD + tangent_rows) * block_stride;
        let grams = if spec.probes.weight_grads {
            2 * batch * batch
        } else {
            0
        };
        let backward_records = (every + 1) * (back_rows + grams) * block_stride;
        Layout {
            row,
            batch,
            x,
            h,
            t,
            ht,
            d,
            y,
            act_len,
            every,
            checkpoints,
            store_len,
            back_rows,
            block_stride,
            records_len: forward_records.max(backward_records),
            depth,
            ring: if backward { depth + 1 } else { chunk + 1 },
        }
    }

    fn checkpoint(&self, j: usize) -> usize {
        j * self.batch * self.row
    }

    /// The recomputed h of layer a + 1 + i of the current segment.
    fn segment(&self, i: usize) -> usize {
        (self.checkpoints + i) * self.batch * self.row
    }

    fn forward_scale(&self, l: usize) -> u32 {
        (l % self.ring) as u32
    }
    fn tangent_scale(&self, l: usize) -> u32 {
        (self.ring + l % self.ring) as u32
    }
    fn delta_scale(&self, l: usize) -> u32 {
        (2 * self.ring + l % self.ring) as u32
    }
    fn vjp_scale(&self, l: usize) -> u32 {
        (3 * self.ring + l % self.ring) as u32
    }
    fn scales_len(&self) -> usize {
        4 * self.ring
    }

    /// Device bytes for the plan with checkpoints every `every` layers.
    fn bytes(&self) -> u64 {
        4 * (self.act_len + self.store_len + self.records_len + self.scales_len()) as u64
    }
}

/// Chooses the checkpoint interval: `every` if given; else the largest k
/// whose plan fits `max_memory`, at least ceil(sqrt(L)) (the least memory);
/// else ceil(sqrt(L)).
pub fn checkpoint_interval(
    spec: &RunSpec,
    chunk: usize,
    every: Option<usize>,
    max_memory: Option<u64>,
) -> Result<usize> {
    let depth = spec.net.depth();
    let sqrt = (depth as f64).sqrt().ceil().max(1.0) as usize;
    if let Some(k) = every {
        if k == 0 {
            return Err(Error::invalid("--checkpoint-every", "must be >= 1"));
        }
        return Ok(k.min(depth));
    }
    let Some(budget) = max_memory else {
        return Ok(sqrt);
    };
    let weights = |spec: &RunSpec| {
        let w = spec
            .net
            .widths
            .windows(2)
            .map(|w| stride(w[0]) * w[1])
            .max()
            .unwrap();
        4 * (w + spec.net.widths.iter().max().unwrap()) as u64
    };
    let bytes = |k: usize| Layout::new(spec, chunk, k).bytes() + weights(spec);
    widest_spacing_within(budget, sqrt, depth, "layers", bytes)
}

struct Pipelines {
    gen_weights: wgpu::ComputePipeline,
    gen_input: wgpu::ComputePipeline,
    gen_normal_rows: wgpu::ComputePipeline,
    /// W x + b and W^T d, with W from the weights buffer ...
    product: wgpu::ComputePipeline,
    product_t: wgpu::ComputePipeline,
    /// ... and with W drawn inside the kernel (when the kernel does that)
    product_rng: Option<wgpu::ComputePipeline>,
    product_t_rng: Option<wgpu::ComputePipeline>,
    stats: wgpu::ComputePipeline,
    activate: wgpu::ComputePipeline,
    scale_by_deriv: wgpu::ComputePipeline,
    gram: wgpu::ComputePipeline,
    finalize: wgpu::ComputePipeline,
    ortho_init: wgpu::ComputePipeline,
    ortho_vector: wgpu::ComputePipeline,
    ortho_apply: wgpu::ComputePipeline,
    ortho_accumulate: wgpu::ComputePipeline,
    ortho_write: wgpu::ComputePipeline,
}

/// A range of f32s to read back after a submission.
#[derive(Clone, Copy)]
enum Range {
    Records(usize, usize),
    Scale(u32),
}

/// One layer's records as read back, with the renormalisation factor(s)
/// applied after it.
#[derive(Clone, Debug, Default)]
struct Raw {
    records: Vec<f32>,
    scales: [f32; 2],
}

/// A kernel the benchmark times alone (`DenseGpu::time_kernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelProbe {
    /// Layer 1's product W x + b over the batch (the kernel alone: with W
    /// from the buffer, whatever the buffer holds).
    Product,
    /// Layer 1's transposed product W^T d over the backward rows.
    ProductTransposed,
    /// Layer 1's W and b generated into their buffers (orthogonal or iid).
    Weights,
}

/// A piece of a run, submitted as one job: a chunk of forward layers, or
/// the recomputation and backward walk of one checkpoint segment.
#[derive(Clone, Debug)]
enum Job {
    Forward {
        network: usize,
        layers: std::ops::Range<usize>,
    },
    Backward {
        network: usize,
        segment: usize,
    },
}

impl Job {
    fn network(&self) -> usize {
        match self {
            Job::Forward { network, .. } | Job::Backward { network, .. } => *network,
        }
    }
}

/// Backward segment j: layers a+1..=b recomputed from the checkpoint of
/// h_a; in the records, per layer l in a..=b its back rows at slot (l - a),
/// then the two Gram matrices of layer l.
struct SegmentPlan {
    a: usize,
    b: usize,
    depth: usize,
    back_len: usize,
    gram_len: usize,
    with_grams: bool,
}

impl SegmentPlan {
    fn back_rec(&self, l: usize) -> usize {
        let grams = if self.with_grams {
            2 * self.gram_len
        } else {
            0
        };
        (l - self.a) * (self.back_len + grams)
    }

    fn gram_rec(&self, l: usize) -> usize {
        self.back_rec(l) + self.back_len
    }

    /// The layers whose delta the segment produces: a..b, and L at the top.
    fn produced(&self) -> std::ops::Range<usize> {
        if self.b == self.depth {
            self.a..self.b + 1
        } else {
            self.a..self.b
        }
    }
}

/// What a network's jobs have read back so far.
struct NetworkRaw {
    forward: Vec<Raw>,
    tangent: Vec<Raw>,
    backward: Vec<Raw>,
    grams: Vec<(Vec<f32>, Vec<f32>)>,
}

/// The engine for one run: pipelines and buffers, reused for every network.
pub struct DenseGpu<'a> {
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    layout: Layout,
    pipelines: Pipelines,
    bind_group: wgpu::BindGroup,
    submitter: Submitter,
    weights: wgpu::Buffer,
    records: wgpu::Buffer,
    scales: wgpu::Buffer,
    chunk: usize,
    kernel: ProductKernel,
    /// GPU seconds of the last run's passes (None: untimed, or not all timed)
    gpu_seconds: std::cell::Cell<Option<f64>>,
    /// Bytes of every buffer this engine allocated on the device.
    pub device_bytes: u64,
}

impl<'a> DenseGpu<'a> {
    /// `every`: checkpoint interval of the backward pass (see
    /// `checkpoint_interval`); ignored for forward-only runs. The product
    /// kernel is the one measured best for the adapter.
    pub fn new(ctx: &'a GpuContext, spec: &'a RunSpec, chunk: usize, every: usize) -> Result<Self> {
        let kernels = Kernels::auto(ctx, spec.batch);
        Self::with_kernels(ctx, spec, chunk, every, kernels)
    }

    /// `new` with given shapes of the kernels (tests, benchmark).
    pub fn with_kernels(
        ctx: &'a GpuContext,
        spec: &'a RunSpec,
        chunk: usize,
        every: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        Self::build(ctx, spec, chunk, every, kernels, false)
    }

    /// `with_kernels` that also times every pass on the GPU, where the
    /// adapter has timestamp queries (`gpu_seconds`).
    pub fn timed(
        ctx: &'a GpuContext,
        spec: &'a RunSpec,
        chunk: usize,
        every: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        Self::build(ctx, spec, chunk, every, kernels, true)
    }

    fn build(
        ctx: &'a GpuContext,
        spec: &'a RunSpec,
        chunk: usize,
        every: usize,
        kernels: Kernels,
        timed: bool,
    ) -> Result<Self> {
        kernels.product.validate(ctx)?;
        kernels.reduction.validate(ctx)?;
        let kernel = kernels.product;
        let net = &spec.net;
        // buffers are sized for `chunk` layers even when the run is shorter,
        // so that a forward run's memory does not depend on its depth
        let chunk = chunk.max(1);
        let layout = Layout::new(spec, chunk, every.clamp(1, net.depth()));
        let max_weights = net
            .widths
            .windows(2)
            .map(|w| stride(w[0]) * w[1])
            .max()
            .unwrap();
        check_limits(ctx, spec, max_weights, &layout)?;

        let bind_layout = engine_bind_group_layout(&ctx.device);
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("engine"),
                bind_group_layouts: &[Some(&bind_layout)],
                immediate_size: 0,
            });
        let p = |module, entry| ctx.pipeline(module, entry, &net.act, Some(&pipeline_layout));
        let stats = Module::Stats {
            subgroup_sum: kernels.reduction.subgroup,
        };
        let reduce = [("REDUCE_WG", kernels.reduction.workgroup as f64)];
        let s = |entry| {
            let layout = Some(&pipeline_layout);
            ctx.specialised_pipeline(stats, entry, &net.act, layout, &reduce)
        };
        let product = |transposed, from_rng| {
            let constants = kernel.constants(transposed, from_rng);
            let layout = Some(&pipeline_layout);
            ctx.specialised_pipeline(Module::Product, "product", &net.act, layout, &constants)
        };
        let rng = kernel.weights_from_rng;
        let pipelines = Pipelines {
            gen_weights: p(Module::Generate, "gen_weights")?,
            gen_input: p(Module::Generate, "gen_input")?,
            gen_normal_rows: p(Module::Generate, "gen_normal_rows")?,
            product: product(false, false)?,
            product_t: product(true, false)?,
            product_rng: if rng {
                Some(product(false, true)?)
            } else {
                None
            },
            product_t_rng: if rng {
                Some(product(true, true)?)
            } else {
                None
            },
            stats: s("stats")?,
            activate: s("activate")?,
            scale_by_deriv: s("scale_by_deriv")?,
            gram: s("gram")?,
            finalize: s("finalize")?,
            ortho_init: p(Module::Orthogonal, "ortho_init")?,
            ortho_vector: p(Module::Orthogonal, "ortho_vector")?,
            ortho_apply: p(Module::Orthogonal, "ortho_apply")?,
            ortho_accumulate: p(Module::Orthogonal, "ortho_accumulate")?,
            ortho_write: p(Module::Orthogonal, "ortho_write")?,
        };

        let mut device_bytes = 0u64;
        let mut buffer = |label: &str, floats: usize, usage: wgpu::BufferUsages| {
            let size = ((floats * 4) as u64).max(16);
            device_bytes += size;
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let weights = buffer("weights", max_weights, storage);
        let bias = buffer("bias", layout.row, storage);
        let act = buffer("act", layout.act_len, storage);
        let store = buffer("store", layout.store_len, storage);
        let records = buffer("records", layout.records_len, storage);
        let scales = buffer("scales", layout.scales_len(), storage);
        // the orthogonal workspace: A and Q (m x n each), beta and alpha
        let orthogonal =
            (1..=net.depth()).any(|l| net.weight_law(l).dist == crate::model::init::Dist::Orthogonal);
        let work_len = if orthogonal {
            net.widths
                .windows(2)
                .map(|w| 2 * w[0] * w[1] + 2 * w[0].min(w[1]))
                .max()
                .unwrap()
        } else {
            0
        };
        let work = buffer("orthogonal workspace", work_len, storage);
        // a job reads back its records and two factors r per layer
        let readback = layout.records_len + 2 * (chunk.max(layout.every) + 1);
        let submitter = Submitter::new(ctx, readback.next_multiple_of(2), timed);
        device_bytes += submitter.device_bytes;
        let bind_group = engine_bind_group(
            ctx,
            "engine",
            &bind_layout,
            &submitter,
            [&weights, &bias, &act, &store, &records, &scales, &work],
        );
        Ok(DenseGpu {
            ctx,
            spec,
            layout,
            pipelines,
            bind_group,
            submitter,
            weights,
            records,
            scales,
            chunk,
            kernel,
            gpu_seconds: std::cell::Cell::new(None),
            device_bytes,
        })
    }

    /// The checkpoint interval in use.
    pub fn checkpoint_every(&self) -> usize {
        self.layout.every
    }

    /// Parameters every step of layer `layer` shares.
    fn base(&self, network: usize, layer: usize) -> Params {
        let net = &self.spec.net;
        let seed = self.spec.seed;
        let none = WeightLaw {
            dist: crate::model::init::Dist::Normal,
            variance: 0.0,
        };
        let (n_in, n_out, w, b) = if layer == 0 {
            (0, net.widths[0], none, none)
        } else {
            (
                net.widths[layer - 1],
                net.widths[layer],
                net.weight_law(layer),
                net.bias_law(layer),
            )
        };
        Params {
            n_in: n_in as u32,
            n_out: n_out as u32,
            batch: self.spec.batch as u32,
            layer: layer as u32,
            network: network as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            w_dist: w.dist.code(),
            // the orthogonal kernels multiply Q by the gain
            w_scale: if w.dist == crate::model::init::Dist::Orthogonal {
                (w.variance * n_in.max(n_out) as f64).sqrt()
            } else {
                w.scale()
            } as f32,
            b_scale: b.scale() as f32,
            b_dist: b.dist.code(),
            flags: 0,
            in_off: 0,
            out_off: 0,
            aux_off: 0,
            rec_off: 0,
            rows: self.spec.batch as u32,
            block_stride: self.layout.block_stride as u32,
            scale_a: NO_SCALE,
            scale_b: NO_SCALE,
            scale_out: 0,
            ckpt_off: NO_OFFSET,
            q0: net.q0 as f32,
            c0: net.c0 as f32,
            step: 0,
            cols: 0,
            coef_a: NO_OFFSET,
            coef_b: NO_OFFSET,
        }
    }

    /// Whether the product kernel draws this layer's W (and b) itself.
    fn weights_in_product(&self, p: &Params) -> bool {
        self.kernel.weights_from_rng && p.w_dist != crate::model::init::Dist::Orthogonal.code()
    }

    /// W (and b) into their buffers, unless the product draws them itself.
    fn weights_steps<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params, with_bias: bool) {
        if !self.weights_in_product(&p) {
            self.generate_steps(steps, p, with_bias);
        }
    }

    /// W (and b) into their buffers.
    fn generate_steps<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params, with_bias: bool) {
        let (n_in, n_out) = (p.n_in as usize, p.n_out as usize);
        let bias_groups = if with_bias && p.b_scale != 0.0 {
            n_out.div_ceil(4)
        } else {
            0
        };
        if p.w_dist == crate::model::init::Dist::Orthogonal.code() {
            self.orthogonal_steps(steps, p);
            if bias_groups == 0 {
                return;
            }
        }
        // gen_weights draws the bias in the invocations past W's
        let weight_groups = if p.w_dist == crate::model::init::Dist::Orthogonal.code() {
            0
        } else {
            n_out * n_in.div_ceil(4)
        };
        steps.push(Step {
            pipeline: &self.pipelines.gen_weights,
            params: p,
            groups: dispatch_1d(weight_groups + bias_groups, GEN_WG),
        });
    }

    /// The product W in (+ b) or, `transposed`, W^T in, for `p.rows` rows.
    fn product_step<'p>(&'p self, p: Params, transposed: bool) -> Step<'p> {
        let pl = &self.pipelines;
        let pipeline = match (transposed, self.weights_in_product(&p)) {
            (false, false) => &pl.product,
            (true, false) => &pl.product_t,
            (false, true) => pl
                .product_rng
                .as_ref()
                .expect("built with weights_from_rng"),
            (true, true) => pl
                .product_t_rng
                .as_ref()
                .expect("built with weights_from_rng"),
        };
        let outputs = if transposed { p.n_in } else { p.n_out };
        // the kernel reads its reduction length from n_in (shaders/product.wgsl)
        let params = if transposed {
            Params {
                n_in: p.n_out,
                n_out: p.n_in,
                ..p
            }
        } else {
            p
        };
        Step {
            pipeline,
            params,
            groups: self.kernel.groups(outputs as usize, p.rows as usize),
        }
    }

    /// Householder QR of the layer's Gaussian matrix, Q formed by backward
    /// accumulation, then W = gain * Q D: about 3 min(n_in, n_out) dispatches.
    fn orthogonal_steps<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params) {
        let (n_in, n_out) = (p.n_in as usize, p.n_out as usize);
        let (m, n) = (n_in.max(n_out), n_in.min(n_out));
        let pl = &self.pipelines;
        steps.push(Step {
            pipeline: &pl.ortho_init,
            params: p,
            groups: dispatch_1d(m * n, ELEMENTWISE_WG),
        });
        for k in 0..n {
            let pk = Params {
                step: k as u32,
                ..p
            };
            steps.push(Step {
                pipeline: &pl.ortho_vector,
                params: pk,
                groups: (1, 1, 1),
            });
            if k + 1 < n {
                steps.push(Step {
                    pipeline: &pl.ortho_apply,
                    params: pk,
                    groups: ((n - k - 1) as u32, 1, 1),
                });
            }
        }
        for k in (0..n).rev() {
            let pk = Params {
                step: k as u32,
                ..p
            };
            steps.push(Step {
                pipeline: &pl.ortho_accumulate,
                params: pk,
                groups: ((n - k) as u32, 1, 1),
            });
        }
        steps.push(Step {
            pipeline: &pl.ortho_write,
            params: p,
            groups: dispatch_1d(n_out * stride(n_in), ELEMENTWISE_WG),
        });
    }

    fn row_steps<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params) {
        let groups = (blocks(p.n_out as usize) as u32, p.rows, 1);
        steps.push(Step {
            pipeline: &self.pipelines.scale_by_deriv,
            params: p,
            groups,
        });
    }

    fn finalize_step<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params) {
        steps.push(Step {
            pipeline: &self.pipelines.finalize,
            params: p,
            groups: (1, 1, 1),
        });
    }

    fn readbacks(&self, ranges: &[Range]) -> Vec<Readback<'_>> {
        ranges
            .iter()
            .map(|range| match *range {
                Range::Records(offset, len) => Readback {
                    buffer: &self.records,
                    offset,
                    len,
                },
                Range::Scale(index) => Readback {
                    buffer: &self.scales,
                    offset: index as usize,
                    len: 1,
                },
            })
            .collect()
    }

    /// Submits `steps` and waits for the values of `ranges` (one job alone).
    fn submit(&self, steps: &[Step], ranges: &[Range]) -> Result<Vec<f32>> {
        let mut scratch = Vec::new();
        let reads = self.readbacks(ranges);
        let job =
            self.submitter
                .submit(self.ctx, &self.bind_group, steps, &reads, 0, &mut scratch)?;
        self.submitter.read(self.ctx, job, |data, _| data.to_vec())
    }

    /// Runs network `network` and returns its sums. `on_chunk(rows_done)`
    /// is called after each forward readback.
    pub fn run_network(
        &self,
        network: usize,
        on_chunk: &mut dyn FnMut(usize),
    ) -> Result<NetworkSums> {
        let mut sums = self.run_networks(network..network + 1, &mut |_, done| on_chunk(done))?;
        Ok(sums.pop().expect("one network"))
    }

    /// Runs `networks` and returns their sums, calling `on_chunk(network,
    /// rows_done)` after each forward readback. Every chunk of layers and
    /// every backward segment is one job; job k + 1 is submitted before the
    /// host waits for job k, so the GPU never waits for the host (the
    /// records region is reused: queue order puts each job's copies before
    /// the next job's kernels). Nothing is allocated on the device here.
    pub fn run_networks(
        &self,
        networks: std::ops::Range<usize>,
        on_chunk: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<NetworkSums>> {
        let rows = self.spec.net.depth() + 1;
        let mut jobs = Vec::new();
        for network in networks.clone() {
            for first in (0..rows).step_by(self.chunk) {
                let layers = first..(first + self.chunk).min(rows);
                jobs.push(Job::Forward { network, layers });
            }
            if self.spec.probes.needs_backward() {
                for segment in (0..self.layout.checkpoints).rev() {
                    jobs.push(Job::Backward { network, segment });
                }
            }
        }
        let mut raw: Vec<NetworkRaw> = networks
            .clone()
            .map(|_| NetworkRaw {
                forward: Vec::with_capacity(rows),
                tangent: Vec::new(),
                backward: vec![Raw::default(); rows],
                grams: vec![(Vec::new(), Vec::new()); rows - 1],
            })
            .collect();
        let (mut steps, mut ranges, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        let mut gpu_seconds = Some(0.0);
        let mut in_flight: Option<(InFlight, &Job)> = None;
        let mut finish = |flight: InFlight, job: &Job| -> Result<()> {
            let state = &mut raw[job.network() - networks.start];
            let seconds = self.submitter.read(self.ctx, flight, |data, seconds| {
                match job {
                    Job::Forward { layers, .. } => self.take_forward(layers.clone(), data, state),
                    Job::Backward { segment, .. } => self.take_backward(*segment, data, state),
                }
                seconds
            })?;
            gpu_seconds = gpu_seconds.zip(seconds).map(|(a, b)| a + b);
            if let Job::Forward { network, layers } = job {
                on_chunk(*network, layers.end);
            }
            Ok(())
        };
        for (k, job) in jobs.iter().enumerate() {
            steps.clear();
            ranges.clear();
            match job {
                Job::Forward { network, layers } => {
                    self.encode_forward(*network, layers.clone(), &mut steps, &mut ranges)
                }
                Job::Backward { network, segment } => {
                    self.encode_backward(*network, *segment, &mut steps, &mut ranges)
                }
            }
            let reads = self.readbacks(&ranges);
            let flight = self.submitter.submit(
                self.ctx,
                &self.bind_group,
                &steps,
                &reads,
                k % 2,
                &mut scratch,
            )?;
            if let Some((previous, previous_job)) = in_flight.take() {
                finish(previous, previous_job)?;
            }
            in_flight = Some((flight, job));
        }
        if let Some((last, last_job)) = in_flight.take() {
            finish(last, last_job)?;
        }
        self.gpu_seconds
            .set(gpu_seconds.filter(|_| self.submitter.timed()));
        Ok(raw
            .into_iter()
            .map(|r| self.assemble(r.forward, r.tangent, r.backward, r.grams))
            .collect())
    }

    /// GPU seconds the passes of the last `run_networks` took, from
    /// timestamps (engines built with `timed` on adapters that have them).
    pub fn gpu_seconds(&self) -> Option<f64> {
        self.gpu_seconds.get()
    }

    /// Floats of one forward layer's records: pair records, then with
    /// --jacobian the tangent rows' norms.
    fn forward_record_lens(&self) -> (usize, usize) {
        let batch = self.spec.batch;
        let pair_len = batch / 2 * self.layout.block_stride * RECORD;
        let tangent_len = if self.spec.probes.jacobian {
            batch * self.layout.block_stride
        } else {
            0
        };
        (pair_len, tangent_len)
    }

    /// Forward rows `layers`: the steps, and the ranges to read back (per
    /// layer its records, its forward r, its tangent r).
    fn encode_forward<'p>(
        &'p self,
        network: usize,
        layers: std::ops::Range<usize>,
        steps: &mut Vec<Step<'p>>,
        ranges: &mut Vec<Range>,
    ) {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let jacobian = self.spec.probes.jacobian;
        let backward = self.spec.probes.needs_backward();
        let (pair_len, tangent_len) = self.forward_record_lens();
        let renorm = if net.is_homogeneous() { FLAG_RENORM } else { 0 };
        for (slot, l) in layers.clone().enumerate() {
            let base = self.base(network, l);
            let n = net.widths[l];
            let rec = slot * (pair_len + tangent_len);
            let stats_groups = (blocks(n) as u32, (batch / 2) as u32, 1);
            let ckpt_off = if backward && l < lay.depth && l % lay.every == 0 {
                lay.checkpoint(l / lay.every) as u32
            } else {
                NO_OFFSET
            };
            let finalize = Params {
                rec_off: rec as u32,
                scale_out: lay.forward_scale(l),
                flags: renorm,
                ..base
            };
            if l == 0 {
                let p = Params {
                    out_off: lay.h as u32,
                    ..base
                };
                steps.push(Step {
                    pipeline: &self.pipelines.gen_input,
                    params: p,
                    groups: dispatch_1d(batch / 2 * n.div_ceil(4), GEN_WG),
                });
                let p = Params {
                    flags: FLAG_INPUT,
                    in_off: lay.h as u32,
                    out_off: lay.x[0] as u32,
                    rec_off: rec as u32,
                    ckpt_off,
                    ..base
                };
                steps.push(Step {
                    pipeline: &self.pipelines.stats,
                    params: p,
                    groups: stats_groups,
                });
                self.finalize_step(steps, finalize);
                if jacobian {
                    // the probes u: Gaussian rows; their norms are row 0's records
                    let p = Params {
                        flags: FLAG_INPUT,
                        out_off: lay.t[0] as u32,
                        ..base
                    };
                    steps.push(Step {
                        pipeline: &self.pipelines.gen_normal_rows,
                        params: p,
                        groups: dispatch_1d(batch * n.div_ceil(4), GEN_WG),
                    });
                    self.tangent_norm_steps(
                        steps,
                        base,
                        lay.t[0],
                        lay.t[0],
                        FLAG_NO_DERIV,
                        NO_SCALE,
                        rec + pair_len,
                        0,
                    );
                }
                continue;
            }
            self.weights_steps(steps, base, true);
            let p = Params {
                in_off: lay.x[(l - 1) % 2] as u32,
                out_off: lay.h as u32,
                scale_a: lay.forward_scale(l - 1),
                ..base
            };
            steps.push(self.product_step(p, false));
            let p = Params {
                in_off: lay.h as u32,
                out_off: lay.x[l % 2] as u32,
                rec_off: rec as u32,
                ckpt_off,
                ..base
            };
            steps.push(Step {
                pipeline: &self.pipelines.stats,
                params: p,
                groups: stats_groups,
            });
            self.finalize_step(steps, finalize);
            if jacobian {
                // t_l = phi'(h_l) * r_t (W t_{l-1}); the product without bias
                let p = Params {
                    in_off: lay.t[(l - 1) % 2] as u32,
                    out_off: lay.ht as u32,
                    b_scale: 0.0,
                    ..base
                };
                steps.push(self.product_step(p, false));
                let p = Params {
                    aux_off: lay.h as u32,
                    ..base
                };
                self.tangent_norm_steps(
                    steps,
                    p,
                    lay.ht,
                    lay.t[l % 2],
                    0,
                    lay.tangent_scale(l - 1),
                    rec + pair_len,
                    l,
                );
            }
        }
        // per layer: its records, its forward r, its tangent r
        let per_layer = pair_len + tangent_len;
        for (slot, l) in layers.enumerate() {
            ranges.extend([
                Range::Records(slot * per_layer, per_layer),
                Range::Scale(lay.forward_scale(l)),
                Range::Scale(lay.tangent_scale(l)),
            ]);
        }
    }

    /// The raw pair records (and tangent records) of `layers`, as read back.
    fn take_forward(&self, layers: std::ops::Range<usize>, data: &[f32], raw: &mut NetworkRaw) {
        let (pair_len, tangent_len) = self.forward_record_lens();
        let per_layer = pair_len + tangent_len;
        debug_assert_eq!(data.len(), layers.len() * (per_layer + 2));
        for c in data.chunks(per_layer + 2) {
            raw.forward.push(Raw {
                records: c[..pair_len].to_vec(),
                scales: [c[per_layer], 1.0],
            });
            if self.spec.probes.jacobian {
                raw.tangent.push(Raw {
                    records: c[pair_len..per_layer].to_vec(),
                    scales: [c[per_layer + 1], 1.0],
                });
            }
        }
    }

    /// out = phi'(aux) * scales[scale] * in for the B tangent rows, their
    /// norms recorded at `rec`, then the tangent's renormalisation.
    #[allow(clippy::too_many_arguments)]
    fn tangent_norm_steps<'p>(
        &'p self,
        steps: &mut Vec<Step<'p>>,
        base: Params,
        input: usize,
        out: usize,
        flags: u32,
        scale: u32,
        rec: usize,
        l: usize,
    ) {
        let p = Params {
            flags,
            in_off: input as u32,
            out_off: out as u32,
            rec_off: rec as u32,
            scale_a: scale,
            ..base
        };
        self.row_steps(steps, p);
        let p = Params {
            flags: FLAG_ROW_RECORDS | FLAG_RENORM,
            rec_off: rec as u32,
            scale_out: self.layout.tangent_scale(l),
            ..base
        };
        self.finalize_step(steps, p);
    }

    /// Recomputes segment j (layers a+1..=b from the checkpoint of h_a) and
    /// walks the backward pass down through it, producing delta_b..delta_a
    /// (and delta_L at the top).
    fn encode_backward<'p>(
        &'p self,
        network: usize,
        j: usize,
        steps: &mut Vec<Step<'p>>,
        ranges: &mut Vec<Range>,
    ) {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let depth = lay.depth;
        let probes = self.spec.probes;
        let plan = self.segment_plan(j);
        let (a, b) = (plan.a, plan.b);
        let (back_len, gram_len, with_grams) = (plan.back_len, plan.gram_len, plan.with_grams);
        let back_rec = |l: usize| plan.back_rec(l);
        let gram_rec = |l: usize| plan.gram_rec(l);

        // recompute: x_a from the checkpoint, then h_{a+1..=b}
        let base_a = self.base(network, a);
        let flags = FLAG_AUX_STORE | if a == 0 { FLAG_INPUT } else { 0 };
        let p = Params {
            flags,
            aux_off: lay.checkpoint(j) as u32,
            out_off: lay.x[a % 2] as u32,
            ..base_a
        };
        steps.push(Step {
            pipeline: &self.pipelines.activate,
            params: p,
            groups: dispatch_1d(batch * stride(net.widths[a]), ELEMENTWISE_WG),
        });
        for l in a + 1..=b {
            let base = self.base(network, l);
            self.weights_steps(steps, base, true);
            let x_prev = lay.x[(l - 1) % 2] as u32;
            let p = Params {
                flags: FLAG_OUT_STORE,
                in_off: x_prev,
                out_off: lay.segment(l - a - 1) as u32,
                scale_a: lay.forward_scale(l - 1),
                ..base
            };
            steps.push(self.product_step(p, false));
            if with_grams {
                let p = Params {
                    in_off: x_prev,
                    n_out: net.widths[l - 1] as u32,
                    rec_off: gram_rec(l) as u32,
                    ..base
                };
                let groups = (blocks(net.widths[l - 1]) as u32, batch as u32, batch as u32);
                steps.push(Step {
                    pipeline: &self.pipelines.gram,
                    params: p,
                    groups,
                });
            }
            if l < b {
                let p = Params {
                    flags: FLAG_AUX_STORE,
                    aux_off: lay.segment(l - a - 1) as u32,
                    out_off: lay.x[l % 2] as u32,
                    ..base
                };
                steps.push(Step {
                    pipeline: &self.pipelines.activate,
                    params: p,
                    groups: dispatch_1d(batch * stride(net.widths[l]), ELEMENTWISE_WG),
                });
            }
        }

        // h_l of this segment for phi': recomputed, or the checkpoint for h_a
        let h_of = |l: usize| -> (u32, u32) {
            if l == a {
                (lay.checkpoint(j) as u32, FLAG_AUX_STORE)
            } else {
                (lay.segment(l - a - 1) as u32, FLAG_AUX_STORE)
            }
        };
        let back_finalize = |steps: &mut Vec<Step<'p>>, l: usize| {
            let base = self.base(network, l);
            let p = Params {
                flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                rec_off: back_rec(l) as u32,
                rows: batch as u32,
                scale_out: lay.delta_scale(l),
                ..base
            };
            self.finalize_step(steps, p);
            if probes.jacobian {
                let rec = back_rec(l) + batch * lay.block_stride;
                let p = Params {
                    flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                    rec_off: rec as u32,
                    rows: batch as u32,
                    scale_out: lay.vjp_scale(l),
                    ..base
                };
                self.finalize_step(steps, p);
            }
        };
        if b == depth {
            // delta_L: Gaussian rows; with --jacobian, phi'(h_L) t_L beside them
            let base = self.base(network, depth);
            let d = lay.d[depth % 2];
            let p = Params {
                out_off: d as u32,
                ..base
            };
            steps.push(Step {
                pipeline: &self.pipelines.gen_normal_rows,
                params: p,
                groups: dispatch_1d(batch * net.widths[depth].div_ceil(4), GEN_WG),
            });
            let p = Params {
                flags: FLAG_NO_DERIV,
                in_off: d as u32,
                out_off: d as u32,
                rec_off: back_rec(depth) as u32,
                ..base
            };
            self.row_steps(steps, p);
            if probes.jacobian {
                let (h, flag) = h_of(depth);
                let rows_b = (batch * stride(net.widths[depth])) as u32;
                let p = Params {
                    flags: flag,
                    in_off: lay.t[depth % 2] as u32,
                    out_off: d as u32 + rows_b,
                    aux_off: h,
                    rec_off: (back_rec(depth) + batch * lay.block_stride) as u32,
                    ..base
                };
                self.row_steps(steps, p);
            }
            back_finalize(steps, depth);
        }
        for l in (a + 1..=b).rev() {
            let base = self.base(network, l);
            let rows = lay.back_rows as u32;
            self.weights_steps(steps, base, false);
            let p = Params {
                in_off: lay.d[l % 2] as u32,
                out_off: lay.y as u32,
                rows,
                ..base
            };
            steps.push(self.product_step(p, true));
            if with_grams {
                let p = Params {
                    in_off: lay.d[l % 2] as u32,
                    rec_off: (gram_rec(l) + gram_len) as u32,
                    ..base
                };
                let groups = (blocks(net.widths[l]) as u32, batch as u32, batch as u32);
                steps.push(Step {
                    pipeline: &self.pipelines.gram,
                    params: p,
                    groups,
                });
            }
            // delta_{l-1} = phi'(h_{l-1}) * r (W^T delta_l); at l - 1 = 0 the
            // gradient with respect to the input (no phi')
            let below = self.base(network, l - 1);
            let (h, flag) = if l - 1 == 0 {
                (0, FLAG_NO_DERIV)
            } else {
                h_of(l - 1)
            };
            let p = Params {
                flags: flag,
                in_off: lay.y as u32,
                out_off: lay.d[(l - 1) % 2] as u32,
                aux_off: h,
                rec_off: back_rec(l - 1) as u32,
                rows,
                scale_a: lay.delta_scale(l),
                scale_b: lay.vjp_scale(l),
                ..below
            };
            self.row_steps(steps, p);
            back_finalize(steps, l - 1);
        }
        // per produced layer: its records and its two r; then the Gram matrices
        for l in plan.produced() {
            ranges.extend([
                Range::Records(back_rec(l), back_len),
                Range::Scale(lay.delta_scale(l)),
                Range::Scale(lay.vjp_scale(l)),
            ]);
        }
        if with_grams {
            ranges.extend((a + 1..=b).map(|l| Range::Records(gram_rec(l), 2 * gram_len)));
        }
    }

    /// Where segment j's records go, and which layers it produces.
    fn segment_plan(&self, j: usize) -> SegmentPlan {
        let lay = &self.layout;
        let batch = self.spec.batch;
        let a = j * lay.every;
        SegmentPlan {
            a,
            b: (a + lay.every).min(lay.depth),
            depth: lay.depth,
            back_len: lay.back_rows * lay.block_stride,
            gram_len: batch * batch * lay.block_stride,
            with_grams: self.spec.probes.weight_grads,
        }
    }

    /// Segment j's backward records and Gram matrices, as read back.
    fn take_backward(&self, j: usize, data: &[f32], raw: &mut NetworkRaw) {
        let plan = self.segment_plan(j);
        let (back_len, gram_len) = (plan.back_len, plan.gram_len);
        let produced = plan.produced();
        let (back_data, gram_data) = data.split_at(produced.len() * (back_len + 2));
        for (c, l) in back_data.chunks(back_len + 2).zip(produced) {
            raw.backward[l] = Raw {
                records: c[..back_len].to_vec(),
                scales: [c[back_len], c[back_len + 1]],
            };
        }
        if plan.with_grams {
            for (i, l) in (plan.a + 1..=plan.b).enumerate() {
                let chunk = &gram_data[i * 2 * gram_len..(i + 1) * 2 * gram_len];
                raw.grams[l - 1] = (chunk[..gram_len].to_vec(), chunk[gram_len..].to_vec());
            }
        }
    }

    /// Sums the raw records of a network in f64.
    fn assemble(
        &self,
        forward_raw: Vec<Raw>,
        tangent_raw: Vec<Raw>,
        backward_raw: Vec<Raw>,
        grams: Vec<(Vec<f32>, Vec<f32>)>,
    ) -> NetworkSums {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let pairs = batch / 2;
        let bs = lay.block_stride;
        let row_norms = |raw: &[f32], rows: usize, n: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| (0..blocks(n)).map(|k| raw[r * bs + k] as f64).sum())
                .collect()
        };
        let forward = forward_raw
            .iter()
            .enumerate()
            .map(|(l, raw)| {
                let n = net.widths[l];
                let mut sums = LayerSums {
                    width: n,
                    batch,
                    pairs: Vec::with_capacity(pairs),
                    renorm: raw.scales[0] as f64,
                    ..Default::default()
                };
                for pair in 0..pairs {
                    let mut p = [0.0; 6];
                    for block in 0..blocks(n) {
                        let r = &raw.records[(pair * bs + block) * RECORD..][..RECORD];
                        for k in 0..5 {
                            p[k] += r[k] as f64;
                        }
                        sums.sum_h += r[5] as f64;
                        sums.sum_h4 += r[6] as f64;
                        sums.sum_x += r[7] as f64;
                        sums.zeros += r[8] as f64;
                        p[5] += r[9] as f64;
                    }
                    sums.pairs.push(p);
                }
                sums
            })
            .collect();
        let tangent = self.spec.probes.jacobian.then(|| {
            tangent_raw
                .iter()
                .enumerate()
                .map(|(l, raw)| RowSums {
                    norms: row_norms(&raw.records, batch, net.widths[l]),
                    renorm: [raw.scales[0] as f64, 1.0],
                })
                .collect()
        });
        let backward = self.spec.probes.needs_backward().then(|| {
            backward_raw
                .iter()
                .enumerate()
                .map(|(l, raw)| RowSums {
                    norms: row_norms(&raw.records, lay.back_rows, net.widths[l]),
                    renorm: raw.scales.map(|r| r as f64),
                })
                .collect()
        });
        let grams = self.spec.probes.weight_grads.then(|| {
            grams
                .iter()
                .enumerate()
                .map(|(i, (gx, gd))| {
                    let l = i + 1;
                    (
                        row_norms(gx, batch * batch, net.widths[l - 1]),
                        row_norms(gd, batch * batch, net.widths[l]),
                    )
                })
                .collect()
        });
        NetworkSums {
            positions: None,
            forward,
            tangent,
            backward,
            grams,
        }
    }

    /// Runs `kernel` of layer 1 of network 0 `times` times in one job (on
    /// whatever the rows hold) and waits: the wall seconds of the job and,
    /// on a timed engine with timestamps, its GPU seconds. For the
    /// benchmark.
    pub fn time_kernel(&self, kernel: KernelProbe, times: usize) -> Result<(f64, Option<f64>)> {
        let lay = &self.layout;
        let base = self.base(0, 1);
        let mut steps = Vec::new();
        for _ in 0..times {
            match kernel {
                KernelProbe::Product => {
                    let p = Params {
                        in_off: lay.x[0] as u32,
                        out_off: lay.h as u32,
                        scale_a: lay.forward_scale(0),
                        ..base
                    };
                    steps.push(self.product_step(p, false));
                }
                KernelProbe::ProductTransposed => {
                    if !self.spec.probes.needs_backward() {
                        return Err(Error::Gpu("the transposed product needs --backward".into()));
                    }
                    let p = Params {
                        in_off: lay.d[1] as u32,
                        out_off: lay.y as u32,
                        rows: lay.back_rows as u32,
                        ..base
                    };
                    steps.push(self.product_step(p, true));
                }
                KernelProbe::Weights => self.generate_steps(&mut steps, base, true),
            }
        }
        let mut scratch = Vec::new();
        let start = std::time::Instant::now();
        let job =
            self.submitter
                .submit(self.ctx, &self.bind_group, &steps, &[], 0, &mut scratch)?;
        let gpu = self.submitter.read(self.ctx, job, |_, seconds| seconds)?;
        Ok((start.elapsed().as_secs_f64(), gpu))
    }

    /// Generates W_l of network `network` alone and reads it back (tests).
    pub fn generate_weights(&self, network: usize, layer: usize) -> Result<Vec<f32>> {
        let p = self.base(network, layer);
        let mut steps = Vec::new();
        self.generate_steps(&mut steps, p, false);
        self.submit(&steps, &[])?;
        let row = stride(p.n_in as usize);
        let bytes = (row * p.n_out as usize * 4) as u64;
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("weights readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.weights, 0, &staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let padded = read_staging(self.ctx, &staging, bytes)?;
        Ok(padded
            .chunks(row)
            .flat_map(|r| &r[..p.n_in as usize])
            .copied()
            .collect())
    }
}

/// Sizes beyond the adapter's limits are bad input, caught before any work.
fn check_limits(
    ctx: &GpuContext,
    spec: &RunSpec,
    max_weights: usize,
    layout: &Layout,
) -> Result<()> {
    let limit = ctx.max_binding_bytes();
    let flag = if spec.net.widths.windows(2).all(|w| w[0] == w[1]) {
        "--width"
    } else {
        "--widths"
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let weight_bytes = max_weights as u64 * 4;
    if weight_bytes > limit {
        return Err(Error::invalid(
            flag,
            format!(
                "a weight matrix of {max_weights} entries needs {:.2} GiB, over the {:.2} GiB this adapter ({}) can bind; accepted: n_in * n_out <= {}",
                gib(weight_bytes),
                gib(limit),
                ctx.adapter.name,
                limit / 4
            ),
        ));
    }
    check_arena_bindings(
        ctx,
        spec,
        "the",
        layout.row,
        [
            ("activation rows", layout.act_len),
            ("checkpoints", layout.store_len),
            ("records", layout.records_len),
        ],
    )?;
    let max_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if spec.batch / 2 > max_dispatch || 2 * spec.batch > max_dispatch {
        return Err(Error::invalid(
            "--batch",
            format!("at most {} (one dispatch)", max_dispatch / 2),
        ));
    }
    Ok(())
}

/// Maps `bytes` of a staging buffer, copies them out as f32 and unmaps.
pub fn read_staging(ctx: &GpuContext, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    let slice = staging.slice(0..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| Error::Gpu("the readback was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e:?}")))?;
        bytemuck::cast_slice::<u8, f32>(&view).to_vec()
    };
    staging.unmap();
    Ok(out)
}

/// Each arena (`(what, f32 count)`) must fit one binding of this adapter
/// and be indexable by u32; else an error naming --batch (`whose`: "the" or
/// "the gram engine's").
pub(crate) fn check_arena_bindings(
    ctx: &GpuContext,
    spec: &RunSpec,
    whose: &str,
    row: usize,
    arenas: [(&str, usize); 3],
) -> Result<()> {
    let limit = ctx.max_binding_bytes();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    for (what, floats) in arenas {
        let bytes = floats as u64 * 4;
        if bytes > limit || floats > u32::MAX as usize {
            return Err(Error::invalid(
                "--batch",
                format!(
                    "{whose} {what} of batch {} at width {row} need {:.2} GiB, over the {:.2} GiB this adapter can bind; use a smaller batch or width{}",
                    spec.batch,
                    gib(bytes),
                    gib(limit),
                    if what == "checkpoints" {
                        " (or --checkpoint-every)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The checkpoint spacing for a `--max-memory` budget: sqrt(L) (`sqrt`)
/// must fit, and since memory grows with the spacing beyond it, the largest
/// spacing up to `depth` that fits. `unit` names what is checkpointed.
pub(crate) fn widest_spacing_within(
    budget: u64,
    sqrt: usize,
    depth: usize,
    unit: &str,
    bytes: impl Fn(usize) -> u64,
) -> Result<usize> {
    if bytes(sqrt) > budget {
        return Err(Error::invalid(
            "--max-memory",
            format!(
                "the run needs at least {} bytes (checkpoints every {sqrt} {unit})",
                bytes(sqrt)
            ),
        ));
    }
    let (mut lo, mut hi) = (sqrt, depth.max(sqrt));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if bytes(mid) <= budget {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    Ok(lo)
}

/// The bind group of `engine_bind_group_layout`: the parameters' dynamic
/// window in `submitter`, then bindings 1..=7 whole.
pub(crate) fn engine_bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    submitter: &Submitter,
    buffers: [&wgpu::Buffer; 7],
) -> wgpu::BindGroup {
    let whole = buffers.map(|b| b.as_entire_buffer_binding());
    engine_bind_group_ranges(ctx, label, layout, submitter, whole)
}

/// `engine_bind_group` with a range of each buffer (bindings 1 to 7).
pub(crate) fn engine_bind_group_ranges(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    submitter: &Submitter,
    buffers: [wgpu::BufferBinding; 7],
) -> wgpu::BindGroup {
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: submitter.params(),
            offset: 0,
            size: wgpu::BufferSize::new(submitter.params_binding_size()),
        }),
    }];
    entries.extend(
        buffers
            .into_iter()
            .zip(1..)
            .map(|(buf, binding)| wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(buf),
            }),
    );
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}
