//! The gram engine: exact in distribution for Gaussian and Haar-orthogonal
//! weights, without a weight matrix. O(n B^2) work and O(n B) memory per
//! layer instead of the dense engine's O(n^2 B) and O(n^2).
//!
//! With X = r x_{l-1} (n_{l-1} x B, the batch as columns, r the
//! renormalisation) and W iid N(0, v) independent of X, the rows of W X are
//! iid N(0, v X^T X): H = Z C^T + b with Z iid standard normal (its own
//! Philox stream) and C C^T = v X^T X. For W = g Q, Q Haar, H = g F M with
//! M^T M = X^T X and F a uniform orthonormal frame. The backward pass
//! conditions W on everything the forward pass revealed (W X = H - b) and
//! samples W^T Delta from that law (algebra.rs). Per layer the GPU reduces
//! the B x B Gram matrices, the host turns them into coefficients in f64
//! (one round trip per layer), and the GPU forms the combinations; moments
//! and renormalisation are the dense engine's kernels (stats.wgsl), so
//! every column means the same. The forward coefficients are kept on the
//! host, so a checkpoint segment is recomputed bit for bit (same Philox Z,
//! same coefficients, same kernels) and the backward pass uses the dense
//! engine's checkpointing: device memory O(sqrt(L) n B).
//!
//! --jacobian: the tangents are B more columns of X, X~ = [r x, r_t t] =
//! r X E with E = diag(1, .., 1, r_t / r, ..) folded into the host's f64
//! matrices (E G E for the Gram matrix): the combination runs over K = 2B
//! columns, rows 0..B of W X~ are h (plus b) and rows B..2B are W t (no
//! bias; r_t is in the coefficients), and t_l = phi'(h_l) W t as the dense
//! engine (its norms and renormalisation, stats.wgsl). The backward pass
//! conditions on all of W X~ = H~ - b~ and carries Delta~ = [delta, vjp]
//! (K rows, each half with its own renormalisation) through the same
//! algebra at size K; checkpoints hold W t beside h, so t is recomputed.

pub mod algebra;

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::abi::{
    COMBINE_TILE, CROSS_WG, ELEMENTWISE_WG, FLAG_AUX_STORE, FLAG_COEF_LOW, FLAG_GRAM_BACK,
    FLAG_IN_STORE, FLAG_INPUT, FLAG_NO_DERIV, FLAG_OUT_STORE, FLAG_RENORM, FLAG_ROW_RECORDS,
    FLAG_SECOND_STORE, FLAG_SUB_BIAS, FLAG_SYMMETRIC, FLAG_Z_PHILOX, GEN_WG, GRAM_WG, NO_OFFSET,
    NO_SCALE, Params, RECORD, UNITS_PER_BLOCK,
};
use crate::gpu::dense::{
    blocks, check_arena_bindings, dispatch_1d, engine_bind_group_ranges, stride,
    widest_spacing_within,
};
use crate::gpu::tuning::Reduction;
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::gpu::submit::{Readback, Step, Submitter};
use crate::model::init::Dist;
use crate::spec::RunSpec;
use crate::sim::stats::{LayerSums, NetworkSums, RowSums};
use algebra::Eigen;
use std::cell::RefCell;
use std::collections::HashMap;

/// The side of gram_cross's tile of pairs, a quad (shaders/gram.wgsl).
const CROSS_TILE: usize = 4;
/// The terms one lane of gram_cross sums per block of units (4 units per
/// group of 4, the groups strided by CROSS_WG).
const CROSS_CHAIN: usize = 4 * (UNITS_PER_BLOCK / 4).div_ceil(CROSS_WG);

/// A row block: K rows (the columns of X~: B, or 2B with --jacobian, the
/// tangents' rows after the inputs') of stride(n) floats of the widest
/// layer. `buffer`: which of the engine's row buffers holds it (ROWS, or a
/// checkpoint store buffer), `at`: where (in f32s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Block {
    buffer: usize,
    at: usize,
}

/// Row blocks start at multiples of this many floats (256 bytes, the
/// largest storage-binding offset alignment an adapter may ask).
const BLOCK_ALIGN: usize = 64;
/// The engine's buffers of rows: SPARE (bound where a kernel reads no
/// rows), ROWS (h, x, Z, the backward rows), then the checkpoint store.
const SPARE: usize = 0;
const ROWS: usize = 1;
const FIRST_STORE: usize = 2;

/// Where everything lives. Rows are in blocks so that widths of a million
/// fit adapters that bind at most 128 MiB at once (software adapters):
/// each dispatch binds only windows of at most two adjacent blocks (see
/// `GramGpu::place`), the rows in the order h, x, Z, d_0, y, d_1 so that
/// every kernel finds its operands so. The forward pass needs x_{l-1} only
/// for its Gram matrix, so one x block serves every layer; Gaussian layers
/// draw Z inside the combination, so Z has a block only for orthogonal
/// layers and the backward Z'.
#[derive(Clone, Debug)]
struct Layout {
    row: usize,
    batch: usize,
    /// columns of X~: B, or 2B with --jacobian
    cols: usize,
    /// floats per row block
    block: usize,
    h: Block,
    x: Block,
    z: Block,
    d: [Block; 2],
    /// W^T delta before phi'
    y: Block,
    rows_len: usize,
    every: usize,
    checkpoints: usize,
    /// checkpoint store blocks per buffer
    slots_per_buffer: usize,
    /// records per row (or pair) for the blocks of the widest layer
    bs: usize,
    /// records: forward pair records, backward row records (K rows), the
    /// tangent rows' records (--jacobian), then six K x K Gram matrices (x,
    /// z, delta, (h - b)^T delta, x^T z', z'^T z'), each as the three parts
    /// of gram_cross's compensated sums, one after the other
    stats: usize,
    back: usize,
    tangent: usize,
    grams: [usize; 6],
    gram_len: usize,
    records_len: usize,
    depth: usize,
}

const GX: usize = 0;
const GZ: usize = 1;
const GD: usize = 2;
const GM: usize = 3;
const GXZ: usize = 4;
const GZZ: usize = 5;

impl Layout {
    fn new(spec: &RunSpec, every: usize) -> Self {
        let batch = spec.batch;
        let cols = if spec.probes.jacobian {
            2 * batch
        } else {
            batch
        };
        let row = stride(*spec.net.widths.iter().max().unwrap());
        let block = (row * cols).next_multiple_of(BLOCK_ALIGN);
        let backward = spec.probes.needs_backward();
        let needs_z = backward || has_orthogonal_layers(spec);
        let mut at = 0;
        let mut region = |wanted: bool| {
            let start = Block { buffer: ROWS, at };
            if wanted {
                at += block;
            }
            start
        };
        let h = region(true);
        let x = region(true);
        let z = region(needs_z);
        let d0 = region(backward);
        let y = region(backward);
        let d1 = region(backward);
        let rows_len = at;
        let depth = spec.net.depth();
        let (every, checkpoints) = if backward {
            (every, depth.div_ceil(every))
        } else {
            (1, 0)
        };
        let bs = blocks(row);
        let stats = 0;
        let back = batch / 2 * bs * RECORD;
        let tangent = back + cols * bs;
        let gram_len = 3 * cols * cols * bs;
        let first_gram = tangent + (cols - batch) * bs;
        let grams = std::array::from_fn(|k| first_gram + k * gram_len);
        Layout {
            row,
            batch,
            cols,
            block,
            h,
            x,
            z,
            d: [d0, d1],
            y,
            rows_len,
            every,
            checkpoints,
            slots_per_buffer: usize::MAX,
            bs,
            stats,
            back,
            tangent,
            grams,
            gram_len,
            records_len: first_gram + 6 * gram_len,
            depth,
        }
    }

    /// Store blocks: the checkpoints, then the segment being recomputed.
    fn store_slots(&self) -> usize {
        if self.checkpoints == 0 {
            0
        } else {
            self.checkpoints + self.every
        }
    }

    fn slot(&self, s: usize) -> Block {
        Block {
            buffer: FIRST_STORE + s / self.slots_per_buffer,
            at: (s % self.slots_per_buffer) * self.block,
        }
    }

    fn checkpoint(&self, j: usize) -> Block {
        self.slot(j)
    }

    fn segment(&self, i: usize) -> Block {
        self.slot(self.checkpoints + i)
    }

    /// Floats of each checkpoint store buffer.
    fn store_buffers(&self) -> Vec<usize> {
        let slots = self.store_slots();
        (0..slots.div_ceil(self.slots_per_buffer))
            .map(|k| (slots - k * self.slots_per_buffer).min(self.slots_per_buffer) * self.block)
            .collect()
    }

    fn delta_scale(&self, l: usize) -> u32 {
        (self.depth + 1 + l) as u32
    }

    /// --jacobian: the tangent's r, and the vector-Jacobian rows' r
    fn tangent_scale(&self, l: usize) -> u32 {
        (2 * (self.depth + 1) + l) as u32
    }

    fn vjp_scale(&self, l: usize) -> u32 {
        (3 * (self.depth + 1) + l) as u32
    }

    fn scales_len(&self) -> usize {
        self.cols / self.batch * 2 * (self.depth + 1)
    }

    fn bytes(&self) -> u64 {
        let coefs = (self.every + 2) * coef_slot(self.cols);
        4 * (self.rows_len
            + self.store_slots() * self.block
            + self.records_len
            + self.scales_len()
            + coefs
            + self.row) as u64
    }
}

fn has_orthogonal_layers(spec: &RunSpec) -> bool {
    (1..=spec.net.depth()).any(|l| spec.net.weight_law(l).dist == Dist::Orthogonal)
}

/// A window of one of the row buffers, bound as `act` or `store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct View {
    buffer: usize,
    start: usize,
    len: usize,
}

/// One row operand of a dispatch: its block, whether the kernel can find it
/// in `act`, and the flag that makes it read or write it in `store` (None:
/// act only).
#[derive(Clone, Copy)]
struct Operand {
    block: Block,
    act: bool,
    store: Option<u32>,
}

impl Operand {
    fn act(block: Block) -> Self {
        Operand {
            block,
            act: true,
            store: None,
        }
    }
    fn store(block: Block) -> Self {
        Operand {
            block,
            act: false,
            store: Some(0),
        }
    }
    fn either(block: Block, flag: u32) -> Self {
        Operand {
            block,
            act: true,
            store: Some(flag),
        }
    }
}

/// Where a dispatch finds its operands: the two windows, the flags that
/// send operands to `store`, and each operand's offset in its window.
struct Placed {
    act: View,
    store: View,
    flags: u32,
    at: Vec<u32>,
}

/// Floats of one coefficient slot: two matrices of K rows of stride(K) (K:
/// the columns), the forward coefficients' high and low parts
/// (algebra::split_f32; the backward pass uses the first only).
fn coef_slot(cols: usize) -> usize {
    2 * cols * stride(cols)
}

/// The checkpoint interval: `every` if given, else the largest that fits
/// `max_memory` (at least ceil(sqrt(L))), else ceil(sqrt(L)).
pub fn checkpoint_interval(
    spec: &RunSpec,
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
    let bytes = |k: usize| Layout::new(spec, k).bytes();
    widest_spacing_within(budget, sqrt, depth, "layers", bytes)
}

struct Pipelines {
    gen_input: wgpu::ComputePipeline,
    gen_normal_rows: wgpu::ComputePipeline,
    stats: wgpu::ComputePipeline,
    activate: wgpu::ComputePipeline,
    scale_by_deriv: wgpu::ComputePipeline,
    finalize: wgpu::ComputePipeline,
    normals: wgpu::ComputePipeline,
    bias: wgpu::ComputePipeline,
    combine: wgpu::ComputePipeline,
    cross: wgpu::ComputePipeline,
}

/// How layer l's W is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Law {
    /// iid N(0, v)
    Gaussian { v: f64 },
    /// gain times a Haar orthogonal matrix (square)
    Orthogonal { gain: f64 },
}

/// What the forward pass leaves on the host for the backward pass.
struct Forward {
    sums: Vec<LayerSums>,
    /// r_l, the factor applied to x_l (1 unless renormalised)
    r: Vec<f32>,
    /// --jacobian: the tangents' norms and r_t (one per layer; else empty)
    tangent: Vec<RowSums>,
    /// G_l = x_l^T x_l (stored scale), l < L; with --jacobian E G E over
    /// x~_l = [x_l, t_l] (E: `column_scales`)
    grams: Vec<Vec<f64>>,
    /// the coefficients of layer l's combination (index l; empty at 0)
    coefs: Vec<Vec<f32>>,
    rank_min: usize,
}

/// One network's results: its sums and the least rank of X^T X met.
pub struct GramNetwork {
    pub sums: NetworkSums,
    pub rank_min: usize,
}

/// The engine for one run: pipelines and buffers, reused for every network.
pub struct GramGpu<'a> {
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    lay: Layout,
    p: Pipelines,
    bind_layout: wgpu::BindGroupLayout,
    /// SPARE, ROWS, then the checkpoint store
    row_buffers: Vec<wgpu::Buffer>,
    bias: wgpu::Buffer,
    work: wgpu::Buffer,
    /// one per pair of windows met so far
    bind_groups: RefCell<HashMap<(View, View), wgpu::BindGroup>>,
    /// floats one binding may span
    max_binding: usize,
    submitter: Submitter,
    coefs: wgpu::Buffer,
    records: wgpu::Buffer,
    scales: wgpu::Buffer,
    /// Bytes of every buffer this engine allocated on the device.
    pub device_bytes: u64,
    /// Whether this adapter's compiled gram_cross kept its compensated sums
    /// within their derived bound on the probe rows (`probe_sums`).
    pub sums_exact: bool,
    /// The probe's largest relative error (of sum |x y|).
    pub sums_probe_error: f64,
}

/// Dispatches, each with the windows it binds.
#[derive(Default)]
struct Job<'p> {
    steps: Vec<Step<'p>>,
    views: Vec<(View, View)>,
}

/// Why the gram engine cannot run `spec` (None: it can).
pub fn unsupported(spec: &RunSpec) -> Option<String> {
    if spec.arch.is_some() {
        return Some(
            "architecture files and the mean-preserving bias (--arch, --bias mean-preserving) run on the block engine".into(),
        );
    }
    let net = &spec.net;
    for l in 1..=net.depth() {
        let law = net.weight_law(l);
        match law.dist {
            Dist::Normal => {}
            Dist::Orthogonal => {
                let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
                if n_in != n_out {
                    return Some(format!(
                        "orthogonal layer {l} is {n_out} x {n_in}: only square orthogonal layers are supported"
                    ));
                }
                let k = if spec.probes.jacobian { 2 } else { 1 } * spec.batch;
                if n_in < 4 * k {
                    return Some(format!(
                        "orthogonal layers need width >= 4 B, 8 B with --jacobian (width {n_in}, batch {}): below 4 K (K = B columns, 2 B with the tangents) the backward frame of span(X)^perp comes from a nearly singular Wishart matrix and the f32 Gram matrices lose the isometry",
                        spec.batch
                    ));
                }
            }
            Dist::Uniform | Dist::TruncatedNormal => {
                return Some(format!(
                    "layer {l}'s weights are {} (init {}), not Gaussian: W X has no closed-form law",
                    match law.dist {
                        Dist::Uniform => "uniform",
                        _ => "truncated-normal",
                    },
                    net.init.scheme.name()
                ));
            }
        }
    }
    None
}

impl<'a> GramGpu<'a> {
    pub fn new(ctx: &'a GpuContext, spec: &'a RunSpec, every: usize) -> Result<Self> {
        if let Some(why) = unsupported(spec) {
            return Err(Error::invalid("--engine", format!("gram: {why}")));
        }
        let net = &spec.net;
        let mut lay = Layout::new(spec, every.clamp(1, net.depth()));
        check_limits(ctx, spec, &lay)?;
        lay.slots_per_buffer = (ctx.limits.max_buffer_size / 4) as usize / lay.block;
        let reduction = Reduction::for_adapter(ctx);
        reduction.validate(ctx)?;
        let bind_layout = engine_bind_group_layout(&ctx.device);
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("gram engine"),
                bind_group_layouts: &[Some(&bind_layout)],
                immediate_size: 0,
            });
        let layout = Some(&pipeline_layout);
        let reduce = [("REDUCE_WG", reduction.workgroup as f64)];
        let stats = Module::Stats {
            subgroup_sum: reduction.subgroup,
        };
        let gram = Module::Gram {
            subgroup_sum: reduction.subgroup,
        };
        let s = |entry| ctx.specialised_pipeline(stats, entry, &net.act, layout, &reduce);
        let g = |entry| ctx.specialised_pipeline(gram, entry, &net.act, layout, &reduce);
        let p = Pipelines {
            gen_input: ctx.pipeline(Module::Generate, "gen_input", &net.act, layout)?,
            gen_normal_rows: ctx.pipeline(Module::Generate, "gen_normal_rows", &net.act, layout)?,
            stats: s("stats")?,
            activate: s("activate")?,
            scale_by_deriv: s("scale_by_deriv")?,
            finalize: s("finalize")?,
            normals: g("gram_normals")?,
            bias: g("gram_bias")?,
            combine: g("gram_combine")?,
            cross: g("gram_cross")?,
        };
        let mut device_bytes = 0u64;
        let mut buffer = |label: &str, floats: usize| {
            let size = ((floats * 4) as u64).max(16);
            device_bytes += size;
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let coefs = buffer("coefficients", (lay.every + 2) * coef_slot(lay.cols));
        let bias = buffer("bias", lay.row);
        let mut row_buffers = vec![buffer("spare rows", 0), buffer("rows", lay.rows_len)];
        for (k, floats) in lay.store_buffers().into_iter().enumerate() {
            row_buffers.push(buffer(&format!("checkpoints {k}"), floats));
        }
        let records = buffer("records", lay.records_len);
        let scales = buffer("scales", lay.scales_len());
        let work = buffer("unused", 0);
        let submitter = Submitter::new(ctx, lay.records_len + 2, false);
        device_bytes += submitter.device_bytes;
        let mut engine = GramGpu {
            ctx,
            spec,
            max_binding: (ctx.max_binding_bytes() / 4) as usize,
            lay,
            p,
            bind_layout,
            row_buffers,
            bias,
            work,
            bind_groups: RefCell::new(HashMap::new()),
            submitter,
            coefs,
            records,
            scales,
            device_bytes,
            sums_exact: true,
            sums_probe_error: 0.0,
        };
        let (error, exact) = engine.probe_sums()?;
        engine.sums_probe_error = error;
        engine.sums_exact = exact;
        Ok(engine)
    }

    /// The GPU context the engine runs on.
    pub fn context(&self) -> &'a GpuContext {
        self.ctx
    }

    pub fn checkpoint_every(&self) -> usize {
        self.lay.every
    }

    fn law(&self, l: usize) -> Law {
        let net = &self.spec.net;
        let w = net.weight_law(l);
        match w.dist {
            Dist::Orthogonal => Law::Orthogonal {
                gain: (w.variance * net.widths[l].max(net.widths[l - 1]) as f64).sqrt(),
            },
            _ => Law::Gaussian { v: w.variance },
        }
    }

    /// Parameters every step of layer `layer` shares (n_out: its width).
    fn base(&self, network: usize, layer: usize) -> Params {
        let net = &self.spec.net;
        let seed = self.spec.seed;
        let (b_scale, b_dist) = if layer == 0 {
            (0.0, 0)
        } else {
            let b = net.bias_law(layer);
            (b.scale() as f32, b.dist.code())
        };
        Params {
            n_in: if layer == 0 { 0 } else { net.widths[layer - 1] } as u32,
            n_out: net.widths[layer] as u32,
            batch: self.spec.batch as u32,
            layer: layer as u32,
            network: network as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            w_dist: 0,
            w_scale: 0.0,
            b_scale,
            b_dist,
            flags: 0,
            in_off: 0,
            out_off: 0,
            aux_off: 0,
            rec_off: 0,
            rows: self.spec.batch as u32,
            block_stride: self.lay.bs as u32,
            scale_a: NO_SCALE,
            scale_b: NO_SCALE,
            scale_out: 0,
            ckpt_off: NO_OFFSET,
            q0: net.q0 as f32,
            c0: net.c0 as f32,
            step: 0,
            cols: self.spec.batch as u32,
            coef_a: 0,
            coef_b: NO_OFFSET,
        }
    }

    /// Windows for `ops`: each operand in `act` or (where the kernel can
    /// take it there) in `store`, each window within one buffer and at
    /// most one binding wide. The first arrangement that fits, in a fixed
    /// order; `check_limits` guarantees one does (two adjacent blocks fit
    /// a binding, and the block order serves every kernel).
    fn place(&self, ops: &[Operand]) -> Placed {
        let spare = View {
            buffer: SPARE,
            start: 0,
            len: 4,
        };
        for mask in 0..1u32 << ops.len() {
            let in_store = |i: usize| mask >> i & 1 == 1;
            let allowed = ops.iter().enumerate().all(|(i, op)| {
                if in_store(i) {
                    op.store.is_some()
                } else {
                    op.act
                }
            });
            if !allowed {
                continue;
            }
            let window = |store: bool| -> Option<View> {
                let mut blocks = (0..ops.len())
                    .filter(|&i| in_store(i) == store)
                    .map(|i| ops[i].block);
                let Some(first) = blocks.next() else {
                    return Some(spare);
                };
                let (mut lo, mut hi) = (first.at, first.at);
                for b in blocks {
                    if b.buffer != first.buffer {
                        return None;
                    }
                    lo = lo.min(b.at);
                    hi = hi.max(b.at);
                }
                let len = hi + self.lay.block - lo;
                (len <= self.max_binding).then_some(View {
                    buffer: first.buffer,
                    start: lo,
                    len,
                })
            };
            let (Some(act), Some(store)) = (window(false), window(true)) else {
                continue;
            };
            let mut flags = 0;
            let mut at = Vec::with_capacity(ops.len());
            for (i, op) in ops.iter().enumerate() {
                let view = if in_store(i) {
                    flags |= op.store.unwrap_or(0);
                    store
                } else {
                    act
                };
                at.push((op.block.at - view.start) as u32);
            }
            return Placed {
                act,
                store,
                flags,
                at,
            };
        }
        panic!(
            "gram engine: no binding windows for {:?} (check_limits lets this through)",
            ops.iter().map(|o| o.block).collect::<Vec<_>>()
        );
    }

    fn push<'p>(
        &'p self,
        job: &mut Job<'p>,
        pipeline: &'p wgpu::ComputePipeline,
        params: Params,
        groups: (u32, u32, u32),
        placed: &Placed,
    ) {
        job.steps.push(Step {
            pipeline,
            params,
            groups,
        });
        job.views.push((placed.act, placed.store));
    }

    /// A dispatch that reads and writes no rows (or only rows placed by hand).
    fn push_plain<'p>(
        &'p self,
        job: &mut Job<'p>,
        pipeline: &'p wgpu::ComputePipeline,
        params: Params,
        groups: (u32, u32, u32),
    ) {
        let placed = self.place(&[]);
        self.push(job, pipeline, params, groups, &placed);
    }

    /// The bind group for a pair of windows (made once, then reused).
    fn bind_group(&self, views: (View, View)) -> wgpu::BindGroup {
        let mut cache = self.bind_groups.borrow_mut();
        cache
            .entry(views)
            .or_insert_with(|| {
                let range = |v: View| wgpu::BufferBinding {
                    buffer: &self.row_buffers[v.buffer],
                    offset: 4 * v.start as u64,
                    size: wgpu::BufferSize::new(4 * v.len as u64),
                };
                engine_bind_group_ranges(
                    self.ctx,
                    "gram engine",
                    &self.bind_layout,
                    &self.submitter,
                    [
                        self.coefs.as_entire_buffer_binding(),
                        self.bias.as_entire_buffer_binding(),
                        range(views.0),
                        range(views.1),
                        self.records.as_entire_buffer_binding(),
                        self.scales.as_entire_buffer_binding(),
                        self.work.as_entire_buffer_binding(),
                    ],
                )
            })
            .clone()
    }

    /// K standard normal rows of `n` units at Z's block (the forward Z of
    /// layer `layer`, or with `back` the backward Z').
    fn normals<'p>(&'p self, job: &mut Job<'p>, base: Params, n: usize, back: bool) {
        let placed = self.place(&[Operand::either(self.lay.z, FLAG_OUT_STORE)]);
        let p = Params {
            n_out: n as u32,
            out_off: placed.at[0],
            flags: placed.flags | if back { FLAG_GRAM_BACK } else { 0 },
            rows: self.lay.cols as u32,
            ..base
        };
        let groups = dispatch_1d(n.div_ceil(4) * self.lay.cols, GRAM_WG);
        self.push(job, &self.p.normals, p, groups, &placed);
    }

    /// out = sum of coefficient rows times in1 (and in2) + bias, base.rows
    /// rows of n over the K columns, written `out.1` floats into block
    /// `out.0`; in1 None: the forward Z, drawn in the kernel. Coefficients:
    /// slot offsets.
    fn combine<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        in1: (Option<Block>, u32),
        in2: Option<(Block, u32)>,
        out: (Block, usize),
    ) {
        let mut ops = vec![Operand::either(out.0, FLAG_OUT_STORE)];
        if let Some(b) = in1.0 {
            ops.push(Operand::either(b, FLAG_IN_STORE));
        }
        if let Some((b, _)) = in2 {
            ops.push(Operand::act(b));
        }
        let placed = self.place(&ops);
        let mut at = placed.at[1..].iter();
        let in_off = if in1.0.is_some() {
            *at.next().unwrap()
        } else {
            0
        };
        let aux_off = if in2.is_some() {
            *at.next().unwrap()
        } else {
            0
        };
        let p = Params {
            n_out: n as u32,
            in_off,
            coef_a: in1.1,
            aux_off,
            // without a second input: the forward pass, whose coefficients'
            // low parts follow their high parts
            coef_b: in2.map_or(
                in1.1 + (self.lay.cols * stride(self.lay.cols)) as u32,
                |i| i.1,
            ),
            out_off: placed.at[0] + out.1 as u32,
            flags: placed.flags
                | if in1.0.is_none() { FLAG_Z_PHILOX } else { 0 }
                | if in2.is_none() { FLAG_COEF_LOW } else { 0 },
            cols: self.lay.cols as u32,
            ..base
        };
        let (x, y, _) = dispatch_1d(n.div_ceil(4), GRAM_WG);
        let tiles = (base.rows as usize).div_ceil(COMBINE_TILE) as u32;
        self.push(job, &self.p.combine, p, (x, y, tiles), &placed);
    }

    /// Records at grams[which] of (first - bias)^T second over n units
    /// (K rows each).
    #[allow(clippy::too_many_arguments)]
    fn cross<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        first: Block,
        second: Block,
        which: usize,
        flags: u32,
    ) {
        let all = 0..self.lay.cols;
        self.cross_rows(job, base, n, (first, all), second, which, flags);
    }

    /// `cross` for rows `first.1` of the first operand only (their records).
    #[allow(clippy::too_many_arguments)]
    fn cross_rows<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        first: (Block, std::ops::Range<usize>),
        second: Block,
        which: usize,
        flags: u32,
    ) {
        let (first, rows) = first;
        let cols = self.lay.cols;
        let placed = self.place(&[
            Operand::either(first, FLAG_IN_STORE),
            Operand::either(second, FLAG_SECOND_STORE),
        ]);
        let p = Params {
            n_out: n as u32,
            in_off: placed.at[0] + (rows.start * stride(n)) as u32,
            aux_off: placed.at[1],
            rec_off: (self.lay.grams[which] + rows.start * cols * self.lay.bs) as u32,
            flags: flags | placed.flags,
            rows: rows.len() as u32,
            cols: cols as u32,
            // 1, unknown to the compiler: gram_cross's opaque() (TwoSum)
            w_scale: 1.0,
            ..base
        };
        let tiles = |k: usize| k.div_ceil(CROSS_TILE) as u32;
        let groups = (blocks(n) as u32, tiles(rows.len()), tiles(cols));
        self.push(job, &self.p.cross, p, groups, &placed);
    }

    fn gram_read(&self, which: usize) -> Readback<'_> {
        Readback {
            buffer: &self.records,
            offset: self.lay.grams[which],
            len: self.lay.gram_len,
        }
    }

    /// The B x B matrix of grams[which] as read back (at `data`), its three
    /// parts summed over the blocks of n units in f64; `symmetric`: mirror
    /// the upper triangle.
    fn gram_matrix(&self, data: &[f32], n: usize, symmetric: bool) -> Vec<f64> {
        let b = self.lay.cols;
        let bs = self.lay.bs;
        let low = b * b * bs;
        let mut m = vec![0.0; b * b];
        for a in 0..b {
            for c in 0..b {
                let (i, j) = if symmetric && a > c { (c, a) } else { (a, c) };
                let at = (i * b + j) * bs;
                m[a * b + c] = (0..3)
                    .flat_map(|part| &data[part * low + at..][..blocks(n)])
                    .map(|&v| v as f64)
                    .sum();
            }
        }
        m
    }

    /// The bound on the spectral norm of the error of the symmetric Gram
    /// matrix `g` (or E G E) summed by gram_cross over n units.
    fn gram_noise(&self, g: &[f64], n: usize) -> f64 {
        algebra::gram_noise(g, side(g), self.sums_error_bound(n))
    }

    /// gram_cross's derived bound over n units (`algebra::gram_error_bound`).
    fn derived_error_bound(n: usize) -> f64 {
        algebra::gram_error_bound(blocks(n), CROSS_CHAIN, CROSS_WG.ilog2() as usize)
    }

    /// The relative error bound of the Gram sums over n units on this
    /// adapter: the derived one (`algebra::gram_error_bound`) where the
    /// probe found the compensated sums intact, else the bound of plain f32
    /// sums of chain + levels terms (gamma_m = m u / (1 - m u)): shader
    /// compilers may reassociate float arithmetic (WGSL has no `precise`)
    /// and so lose TwoSum's errors.
    pub fn sums_error_bound(&self, n: usize) -> f64 {
        if self.sums_exact {
            Self::derived_error_bound(n)
        } else {
            let m = (CROSS_CHAIN + CROSS_WG.ilog2() as usize) as f64 * 2f64.powi(-24);
            m / (1.0 - m) + Self::derived_error_bound(n)
        }
    }

    /// Runs gram_cross on rows built to defeat plain f32 sums (K rows of up
    /// to 4096 units, nearly parallel, some entries 300 times the others)
    /// and compares with their exact Gram matrix (products of f32 are exact
    /// in f64): (the largest relative error, whether it is within the
    /// derived bound).
    fn probe_sums(&self) -> Result<(f64, bool)> {
        let n = self.spec.net.widths[0].min(4096);
        let k = self.lay.cols;
        let noise = |i: usize, j: usize| {
            let b = crate::model::rng::bits(0x5eed, crate::model::rng::Stream::Gram, j as u32, 0, i as u32, 0);
            crate::model::rng::normal4(b)[0]
        };
        let mut rows = Vec::with_capacity(k * n);
        for j in 0..k {
            let tilt = 2f64.powi(-10 - (j % 8) as i32);
            rows.extend((0..n).map(|i| {
                let big = if i % 97 == 0 { 300.0 } else { 1.0 };
                (big * (1.0 + 0.5 * noise(i, 0)) + tilt * noise(i, j + 1)) as f32
            }));
        }
        let (g, eps) = self.gram_of_rows_over(&rows, n)?;
        let row = |a: usize| &rows[a * n..(a + 1) * n];
        let mut worst: f64 = 0.0;
        for a in 0..k {
            for c in a..k {
                let (exact, abs) = row(a)
                    .iter()
                    .zip(row(c))
                    .map(|(&p, &q)| p as f64 * q as f64)
                    .fold((0.0, 0.0), |(s, t), v| (s + v, t + v.abs()));
                if abs > 0.0 {
                    worst = worst.max((g[a * k + c] - exact).abs() / abs);
                }
            }
        }
        // the f64 reference's own rounding: n 2^-53
        Ok((worst, worst <= eps + n as f64 * 2f64.powi(-53)))
    }

    /// The eigen-decomposition of a Gram matrix summed over n units, its
    /// eigenvalues within the error bound counted as 0.
    fn gram_eigen(&self, g: &[f64], n: usize) -> Eigen {
        algebra::eigen_symmetric(g, side(g), self.gram_noise(g, n))
    }

    fn submit_read(&self, job: &Job, reads: &[Readback]) -> Result<Vec<f32>> {
        let groups: Vec<wgpu::BindGroup> = job.views.iter().map(|&v| self.bind_group(v)).collect();
        let mut scratch = Vec::new();
        let flight = self.submitter.submit_bound(
            self.ctx,
            &|i| &groups[i],
            &job.steps,
            reads,
            0,
            &mut scratch,
        )?;
        self.submitter
            .read(self.ctx, flight, |data, _| data.to_vec())
    }

    /// The K x K coefficients (or the two matrices of split ones) into slot
    /// `slot`, rows padded to stride(K) with zeros (the kernels read them as
    /// vec4).
    fn upload(&self, slot: usize, coefs: &[f32]) {
        let b = self.lay.cols;
        let ld = stride(b);
        let mut padded = vec![0.0f32; coefs.len() / b * ld];
        for (row, chunk) in coefs.chunks(b).enumerate() {
            padded[row * ld..row * ld + b].copy_from_slice(chunk);
        }
        let at = (slot * coef_slot(b) * 4) as u64;
        self.ctx
            .queue
            .write_buffer(&self.coefs, at, bytemuck::cast_slice(&padded));
    }

    /// The offset (in f32s) of coefficient slot `slot`.
    fn slot(&self, slot: usize) -> u32 {
        (slot * coef_slot(self.lay.cols)) as u32
    }

    /// --jacobian: the coefficients of the rows W t in slot `slot` (rows B..2B).
    fn tangent_slot(&self, slot: usize) -> u32 {
        self.slot(slot) + (self.spec.batch * stride(self.lay.cols)) as u32
    }

    /// The scales e of the stored columns of X~ = r X E, E = diag(e): 1 for
    /// x, r_t / r for the tangents (--jacobian; else all 1).
    fn column_scales(&self, r: f32, r_t: Option<f32>) -> Vec<f64> {
        let b = self.spec.batch;
        let rho = r_t.map_or(1.0, |rt| rt as f64 / r as f64);
        (0..self.lay.cols)
            .map(|c| if c < b { 1.0 } else { rho })
            .collect()
    }

    /// The offset of the tangent rows (rows B..2B) of a block at width n.
    fn below(&self, n: usize) -> usize {
        self.spec.batch * stride(n)
    }

    /// --jacobian: the stored tangent t_l (B rows at the start of block
    /// `out`, or at its tangent rows with `tangent_half`) again from the
    /// checkpointed h~_l in block `h`: t_l = phi'(h_l) (W t)_l, or at l = 0
    /// the probes u themselves (their stream).
    fn tangent_rows<'p>(
        &'p self,
        job: &mut Job<'p>,
        network: usize,
        l: usize,
        h: Block,
        out: (Block, usize),
    ) {
        let base = self.base(network, l);
        let n = self.spec.net.widths[l];
        let batch = self.spec.batch;
        if l == 0 {
            let placed = self.place(&[Operand::act(out.0)]);
            let p = Params {
                flags: FLAG_INPUT,
                out_off: placed.at[0] + out.1 as u32,
                ..base
            };
            let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
            self.push(job, &self.p.gen_normal_rows, p, groups, &placed);
            return;
        }
        let placed = self.place(&[Operand::either(h, FLAG_AUX_STORE), Operand::act(out.0)]);
        let p = Params {
            flags: placed.flags | FLAG_INPUT,
            aux_off: placed.at[0] + self.below(n) as u32,
            out_off: placed.at[1] + out.1 as u32,
            ..base
        };
        let groups = dispatch_1d(batch * stride(n), ELEMENTWISE_WG);
        self.push(job, &self.p.activate, p, groups, &placed);
        let p = Params {
            flags: placed.flags,
            in_off: placed.at[1] + out.1 as u32,
            out_off: placed.at[1] + out.1 as u32,
            aux_off: placed.at[0],
            rec_off: self.lay.tangent as u32,
            ..base
        };
        let groups = (blocks(n) as u32, batch as u32, 1);
        self.push(job, &self.p.scale_by_deriv, p, groups, &placed);
    }

    /// The Gram matrix the engine's compensated sums give of K given rows
    /// of the input width (row-major, K rows of n), in f64, with the bound
    /// on each entry's relative error the engine uses on this adapter
    /// (`sums_error_bound`): the kernel on its own, for tests.
    pub fn gram_of_rows(&self, rows: &[f32]) -> Result<(Vec<f64>, f64)> {
        let n = self.spec.net.widths[0];
        let (g, _) = self.gram_of_rows_over(rows, n)?;
        Ok((g, self.sums_error_bound(n)))
    }

    /// The Gram matrix of rows of n <= the input width units, with the
    /// derived bound (`algebra::gram_error_bound`).
    fn gram_of_rows_over(&self, rows: &[f32], n: usize) -> Result<(Vec<f64>, f64)> {
        let k = self.lay.cols;
        assert_eq!(rows.len(), k * n, "K rows of the input width");
        let mut padded = vec![0.0f32; k * stride(n)];
        for (r, row) in rows.chunks(n).enumerate() {
            padded[r * stride(n)..r * stride(n) + n].copy_from_slice(row);
        }
        let x = self.lay.x;
        self.ctx.queue.write_buffer(
            &self.row_buffers[x.buffer],
            (x.at * 4) as u64,
            bytemuck::cast_slice(&padded),
        );
        let mut job = Job::default();
        self.cross(&mut job, self.base(0, 0), n, x, x, GX, FLAG_SYMMETRIC);
        let data = self.submit_read(&job, &[self.gram_read(GX)])?;
        Ok((
            self.gram_matrix(&data, n, true),
            Self::derived_error_bound(n),
        ))
    }

    /// Runs one network: the forward pass, and the backward pass if asked.
    pub fn run_network(
        &self,
        network: usize,
        on_layer: &mut dyn FnMut(usize),
    ) -> Result<GramNetwork> {
        let forward = self.forward(network, on_layer)?;
        let (backward, grams) = if self.spec.probes.needs_backward() {
            let (b, g) = self.backward(network, &forward)?;
            (Some(b), self.spec.probes.weight_grads.then_some(g))
        } else {
            (None, None)
        };
        Ok(GramNetwork {
            rank_min: forward.rank_min,
            sums: NetworkSums {
                forward: forward.sums,
                tangent: self.spec.probes.jacobian.then_some(forward.tangent),
                backward,
                grams,
                positions: None,
            },
        })
    }

    /// Layer l's coefficients from x_{l-1}'s Gram matrix (and Z's).
    fn forward_coefficients(&self, l: usize, g: &Eigen, r: f64, gz: &[f64]) -> Result<Vec<f32>> {
        match self.law(l) {
            Law::Gaussian { v } => Ok(algebra::gaussian_forward(g, r, v).0),
            Law::Orthogonal { gain } => {
                algebra::orthogonal_forward(g, r, gain, gz).ok_or_else(|| {
                    Error::Gpu(format!(
                        "layer {l}: the Gram matrix of Z is not positive definite"
                    ))
                })
            }
        }
    }

    fn forward(&self, network: usize, on_layer: &mut dyn FnMut(usize)) -> Result<Forward> {
        let lay = &self.lay;
        let net = &self.spec.net;
        let depth = lay.depth;
        let batch = self.spec.batch;
        let backward = self.spec.probes.needs_backward();
        let renorm = if net.is_homogeneous() { FLAG_RENORM } else { 0 };
        let pair_len = batch / 2 * lay.bs * RECORD;
        let jacobian = self.spec.probes.jacobian;
        let tangent_len = if jacobian { batch * lay.bs } else { 0 };
        let mut out = Forward {
            sums: Vec::with_capacity(depth + 1),
            r: Vec::with_capacity(depth + 1),
            tangent: Vec::new(),
            grams: Vec::with_capacity(depth),
            coefs: vec![Vec::new()],
            rank_min: batch,
        };
        for l in 0..=depth {
            let base = self.base(network, l);
            let n = net.widths[l];
            let mut job = Job::default();
            // x = phi(h) with the moment records (and h checkpointed)
            let checkpoint = (backward && l < depth && l % lay.every == 0)
                .then(|| lay.checkpoint(l / lay.every));
            let mut ops = vec![Operand::act(lay.h), Operand::act(lay.x)];
            ops.extend(checkpoint.map(Operand::store));
            let placed = self.place(&ops);
            let stats = Params {
                in_off: placed.at[0],
                out_off: placed.at[1],
                rec_off: lay.stats as u32,
                ckpt_off: placed.at.get(2).copied().unwrap_or(NO_OFFSET),
                flags: if l == 0 { FLAG_INPUT } else { 0 },
                ..base
            };
            if l == 0 {
                let p = Params {
                    out_off: placed.at[0],
                    ..base
                };
                let groups = dispatch_1d(batch / 2 * n.div_ceil(4), GEN_WG);
                self.push(&mut job, &self.p.gen_input, p, groups, &placed);
            } else {
                self.upload(0, &out.coefs[l]);
                // Gaussian layers draw Z inside the combination
                let z = match self.law(l) {
                    Law::Gaussian { .. } => None,
                    Law::Orthogonal { .. } => Some(lay.z),
                };
                self.combine(&mut job, base, n, (z, self.slot(0)), None, (lay.h, 0));
                if jacobian {
                    // W t: rows B..2B of the combination, without the bias
                    // (into the checkpoint too, for the backward pass)
                    let plain = Params {
                        b_scale: 0.0,
                        ..base
                    };
                    let wt = (z, self.tangent_slot(0));
                    let below = self.below(n);
                    self.combine(&mut job, plain, n, wt, None, (lay.h, below));
                    if let Some(c) = checkpoint {
                        self.combine(&mut job, plain, n, wt, None, (c, below));
                    }
                }
            }
            let groups = (blocks(n) as u32, (batch / 2) as u32, 1);
            self.push(&mut job, &self.p.stats, stats, groups, &placed);
            let p = Params {
                rec_off: lay.stats as u32,
                scale_out: l as u32,
                flags: renorm,
                ..base
            };
            self.push_plain(&mut job, &self.p.finalize, p, (1, 1, 1));
            let mut reads = vec![
                Readback {
                    buffer: &self.records,
                    offset: lay.stats,
                    len: pair_len,
                },
                Readback {
                    buffer: &self.scales,
                    offset: l,
                    len: 1,
                },
            ];
            if jacobian {
                // t_l = phi'(h_l) (W t)_l (r_t is in the coefficients), or
                // the probes u at l = 0; its norms and its r_t
                let below = self.below(n) as u32;
                let p = if l == 0 {
                    let p = Params {
                        flags: FLAG_INPUT,
                        out_off: placed.at[1] + below,
                        ..base
                    };
                    let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
                    self.push(&mut job, &self.p.gen_normal_rows, p, groups, &placed);
                    Params {
                        flags: FLAG_NO_DERIV,
                        in_off: placed.at[1] + below,
                        ..base
                    }
                } else {
                    Params {
                        in_off: placed.at[0] + below,
                        aux_off: placed.at[0],
                        ..base
                    }
                };
                let p = Params {
                    out_off: placed.at[1] + below,
                    rec_off: lay.tangent as u32,
                    ..p
                };
                let groups = (blocks(n) as u32, batch as u32, 1);
                self.push(&mut job, &self.p.scale_by_deriv, p, groups, &placed);
                let p = Params {
                    flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                    rec_off: lay.tangent as u32,
                    scale_out: lay.tangent_scale(l),
                    ..base
                };
                self.push_plain(&mut job, &self.p.finalize, p, (1, 1, 1));
                reads.push(Readback {
                    buffer: &self.records,
                    offset: lay.tangent,
                    len: tangent_len,
                });
                reads.push(Readback {
                    buffer: &self.scales,
                    offset: lay.tangent_scale(l) as usize,
                    len: 1,
                });
            }
            let orthogonal_next = l < depth && matches!(self.law(l + 1), Law::Orthogonal { .. });
            if l < depth {
                self.cross(&mut job, base, n, lay.x, lay.x, GX, FLAG_SYMMETRIC);
                reads.push(self.gram_read(GX));
                if orthogonal_next {
                    let next = self.base(network, l + 1);
                    let n_next = net.widths[l + 1];
                    self.normals(&mut job, next, n_next, false);
                    self.cross(&mut job, next, n_next, lay.z, lay.z, GZ, FLAG_SYMMETRIC);
                    reads.push(self.gram_read(GZ));
                }
            }
            let data = self.submit_read(&job, &reads)?;
            let r = data[pair_len];
            let mut sums = self.layer_sums(&data[..pair_len], n);
            sums.renorm = r as f64;
            out.sums.push(sums);
            out.r.push(r);
            let mut at = pair_len + 1;
            let mut r_t = None;
            if jacobian {
                let t = self.row_sums(&data[at..at + tangent_len + 1], n, batch);
                r_t = Some(t.renorm[0] as f32);
                out.tangent.push(t);
                at += tangent_len + 1;
            }
            if l < depth {
                let g_data = &data[at..];
                let g = self.gram_matrix(g_data, n, true);
                let gz = if orthogonal_next {
                    self.gram_matrix(&g_data[lay.gram_len..], net.widths[l + 1], true)
                } else {
                    Vec::new()
                };
                // X~ = r X E: the tangents' r_t relative to r
                let g = if jacobian {
                    algebra::scale_symmetric(&g, &self.column_scales(r, r_t))
                } else {
                    g
                };
                // the forward keeps every direction the sums give (as the
                // dense engine's f32 product does): a cut there is what
                // collapsed deep correlations (issue 12); the rank reported
                // counts the eigenvalues above the sums' error bound
                let mut eigen = algebra::eigen_symmetric(&g, lay.cols, 0.0);
                if let Some(eps) = legacy_cutoff() {
                    let top = eigen.values[0];
                    eigen = eigen.cut_below(lay.cols as f64 * eps * top);
                }
                let rank = if jacobian {
                    // the inputs' rank, as without --jacobian
                    let x = algebra::leading_block(&g, lay.cols, batch);
                    self.gram_eigen(&x, n).rank
                } else {
                    eigen.count_above(self.gram_noise(&g, n))
                };
                out.rank_min = out.rank_min.min(rank);
                out.coefs
                    .push(self.forward_coefficients(l + 1, &eigen, r as f64, &gz)?);
                out.grams.push(g);
            }
            on_layer(l + 1);
        }
        Ok(out)
    }

    /// A layer's moments from its pair records, as the dense engine sums them.
    fn layer_sums(&self, records: &[f32], n: usize) -> LayerSums {
        let batch = self.spec.batch;
        let bs = self.lay.bs;
        let mut sums = LayerSums {
            width: n,
            batch,
            pairs: Vec::with_capacity(batch / 2),
            renorm: 1.0,
            ..Default::default()
        };
        for pair in 0..batch / 2 {
            let mut p = [0.0; 6];
            for block in 0..blocks(n) {
                let r = &records[(pair * bs + block) * RECORD..][..RECORD];
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
    }

    /// Squared norms of `b` rows (records), and their factor (factors: one
    /// for the first B rows and, if read, one for the rest).
    fn row_sums(&self, data: &[f32], n: usize, b: usize) -> RowSums {
        let bs = self.lay.bs;
        RowSums {
            norms: (0..b)
                .map(|r| {
                    data[r * bs..r * bs + blocks(n)]
                        .iter()
                        .map(|&v| v as f64)
                        .sum()
                })
                .collect(),
            renorm: [
                data[b * bs] as f64,
                data.get(b * bs + 1).map_or(1.0, |&r| r as f64),
            ],
        }
    }

    /// delta_l's r and, with --jacobian, the vjp rows' r, from the row
    /// records at `back`.
    fn back_finalize<'p>(&'p self, job: &mut Job<'p>, base: Params, l: usize) {
        let lay = &self.lay;
        let p = Params {
            flags: FLAG_ROW_RECORDS | FLAG_RENORM,
            rec_off: lay.back as u32,
            scale_out: lay.delta_scale(l),
            ..base
        };
        self.push_plain(job, &self.p.finalize, p, (1, 1, 1));
        if self.spec.probes.jacobian {
            let p = Params {
                rec_off: (lay.back + self.spec.batch * lay.bs) as u32,
                scale_out: lay.vjp_scale(l),
                ..p
            };
            self.push_plain(job, &self.p.finalize, p, (1, 1, 1));
        }
    }

    #[allow(clippy::type_complexity)]
    fn backward(
        &self,
        network: usize,
        fwd: &Forward,
    ) -> Result<(Vec<RowSums>, Vec<(Vec<f64>, Vec<f64>)>)> {
        let lay = &self.lay;
        let net = &self.spec.net;
        let depth = lay.depth;
        let batch = self.spec.batch;
        let (cols, jacobian) = (lay.cols, self.spec.probes.jacobian);
        let back_len = cols * lay.bs;
        // the rows' records, delta's r, and with --jacobian the vjp rows' r
        let back_read_len = back_len + 1 + usize::from(jacobian);
        let mut back = vec![RowSums::default(); depth + 1];
        let mut grams = vec![(Vec::new(), Vec::new()); depth];
        let (slot_a, slot_b) = (lay.every, lay.every + 1);
        let back_reads = |l: usize| {
            let mut reads = vec![
                Readback {
                    buffer: &self.records,
                    offset: lay.back,
                    len: back_len,
                },
                Readback {
                    buffer: &self.scales,
                    offset: lay.delta_scale(l) as usize,
                    len: 1,
                },
            ];
            if jacobian {
                reads.push(Readback {
                    buffer: &self.scales,
                    offset: lay.vjp_scale(l) as usize,
                    len: 1,
                });
            }
            reads
        };
        for j in (0..lay.checkpoints).rev() {
            let a = j * lay.every;
            let b = (a + lay.every).min(depth);
            // where h_l of this segment is (l in a..=b), in `store`
            let h_at = |l: usize| {
                if l == a {
                    lay.checkpoint(j)
                } else {
                    lay.segment(l - a - 1)
                }
            };
            let mut job = Job::default();
            let mut reads = Vec::new();
            let mut pending: Option<usize> = None;
            // recompute h_{a+1..=b}: the same Z and coefficients (x is not
            // needed: the combination reads Z)
            for l in a + 1..=b {
                let base = self.base(network, l);
                let slot = l - a - 1;
                self.upload(slot, &fwd.coefs[l]);
                let z = match self.law(l) {
                    Law::Gaussian { .. } => None,
                    Law::Orthogonal { .. } => {
                        self.normals(&mut job, base, net.widths[l], false);
                        Some(lay.z)
                    }
                };
                let coef = self.slot(slot);
                let n = net.widths[l];
                self.combine(&mut job, base, n, (z, coef), None, (h_at(l), 0));
                if jacobian {
                    let plain = Params {
                        b_scale: 0.0,
                        ..base
                    };
                    let wt = (z, self.tangent_slot(slot));
                    self.combine(&mut job, plain, n, wt, None, (h_at(l), self.below(n)));
                }
            }
            if b == depth {
                // delta_L: Gaussian rows (the dense engine's stream), their norms
                let base = self.base(network, depth);
                let placed = self.place(&[Operand::act(lay.d[depth % 2])]);
                let p = Params {
                    out_off: placed.at[0],
                    ..base
                };
                let n = net.widths[depth];
                let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
                self.push(&mut job, &self.p.gen_normal_rows, p, groups, &placed);
                let p = Params {
                    flags: FLAG_NO_DERIV,
                    in_off: placed.at[0],
                    out_off: placed.at[0],
                    rec_off: lay.back as u32,
                    ..base
                };
                let groups = (blocks(n) as u32, batch as u32, 1);
                self.push(&mut job, &self.p.scale_by_deriv, p, groups, &placed);
                if jacobian {
                    // the vector-Jacobian rows start as phi'(h_L) t_L (t_L
                    // recomputed into y, free until the first layer below)
                    self.tangent_rows(&mut job, network, depth, h_at(depth), (lay.y, 0));
                    let placed = self.place(&[
                        Operand::act(lay.y),
                        Operand::act(lay.d[depth % 2]),
                        Operand::either(h_at(depth), FLAG_AUX_STORE),
                    ]);
                    let p = Params {
                        flags: placed.flags,
                        in_off: placed.at[0],
                        out_off: placed.at[1] + self.below(n) as u32,
                        aux_off: placed.at[2],
                        rec_off: (lay.back + batch * lay.bs) as u32,
                        ..base
                    };
                    self.push(&mut job, &self.p.scale_by_deriv, p, groups, &placed);
                }
                self.back_finalize(&mut job, base, depth);
                reads.extend(back_reads(depth));
                pending = Some(depth);
            }
            for l in (a + 1..=b).rev() {
                let base = self.base(network, l);
                let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
                let d = lay.d[l % 2];
                // x_{l-1} from h_{l-1}; b_l; Z'; the Gram matrices
                let below = self.base(network, l - 1);
                let placed = self.place(&[
                    Operand::either(h_at(l - 1), FLAG_AUX_STORE),
                    Operand::act(lay.x),
                ]);
                let p = Params {
                    flags: placed.flags | if l - 1 == 0 { FLAG_INPUT } else { 0 },
                    aux_off: placed.at[0],
                    out_off: placed.at[1],
                    ..below
                };
                let groups = dispatch_1d(batch * stride(n_in), ELEMENTWISE_WG);
                self.push(&mut job, &self.p.activate, p, groups, &placed);
                if jacobian {
                    let t = (lay.x, self.below(n_in));
                    self.tangent_rows(&mut job, network, l - 1, h_at(l - 1), t);
                }
                let with_bias = base.b_scale != 0.0;
                if with_bias {
                    let groups = dispatch_1d(n_out.div_ceil(4), GRAM_WG);
                    self.push_plain(&mut job, &self.p.bias, base, groups);
                }
                self.normals(&mut job, base, n_in, true);
                self.cross(&mut job, base, n_out, d, d, GD, FLAG_SYMMETRIC);
                let sub = if with_bias { FLAG_SUB_BIAS } else { 0 };
                let h = h_at(l);
                self.cross_rows(&mut job, base, n_out, (h, 0..batch), d, GM, sub);
                if jacobian {
                    // W t has no bias
                    self.cross_rows(&mut job, base, n_out, (h, batch..cols), d, GM, 0);
                }
                self.cross(&mut job, base, n_in, lay.x, lay.z, GXZ, 0);
                let orthogonal = matches!(self.law(l), Law::Orthogonal { .. });
                if orthogonal {
                    self.cross(&mut job, base, n_in, lay.z, lay.z, GZZ, FLAG_SYMMETRIC);
                }
                let first = reads.len();
                for k in [GD, GM, GXZ] {
                    reads.push(self.gram_read(k));
                }
                if orthogonal {
                    reads.push(self.gram_read(GZZ));
                }
                let data = self.submit_read(&job, &reads)?;
                let mut at = 0;
                if let Some(p) = pending.take() {
                    back[p] = self.row_sums(&data[..back_read_len], net.widths[p], cols);
                    at = back_read_len;
                }
                debug_assert_eq!(first > 0, at > 0);
                let gl = lay.gram_len;
                let dm = self.gram_matrix(&data[at..], n_out, true);
                let m = self.gram_matrix(&data[at + gl..], n_out, false);
                let xz = self.gram_matrix(&data[at + 2 * gl..], n_in, false);
                let g = self.gram_eigen(&fwd.grams[l - 1], n_in);
                let r = fwd.r[l - 1] as f64;
                // X~ = r X E: the conditioning is on W X~ = H~ - b~ (with
                // --jacobian the tangents are columns too), XZ becomes E XZ
                let r_t = jacobian.then(|| fwd.tangent[l - 1].renorm[0] as f32);
                let e = self.column_scales(fwd.r[l - 1], r_t);
                let xz = if jacobian {
                    algebra::scale_rows(&xz, &e)
                } else {
                    xz
                };
                let beta = match self.law(l) {
                    Law::Gaussian { v } => {
                        algebra::gaussian_backward_beta(&self.gram_eigen(&dm, n_out), v)
                    }
                    Law::Orthogonal { gain } => {
                        let zz = self.gram_matrix(&data[at + 3 * gl..], n_in, true);
                        let d_noise = self.gram_noise(&dm, n_out);
                        algebra::orthogonal_backward_beta(&g, r, gain, &m, &dm, d_noise, &xz, &zz)
                            .ok_or_else(|| {
                            Error::Gpu(format!(
                                "layer {l}: Z'^T (I - P_X) Z' is not positive definite"
                            ))
                        })?
                    }
                };
                let (ca, cb) = algebra::backward_coefficients(&g, r, &e, &m, &xz, &beta);
                self.upload(slot_a, &ca);
                self.upload(slot_b, &cb);
                if self.spec.probes.weight_grads {
                    // the B x B blocks of x and delta (the tangents' scale is 1 there)
                    let lead = |a: &[f64]| algebra::leading_block(a, cols, batch);
                    grams[l - 1] = (lead(&fwd.grams[l - 1]), lead(&dm));
                }
                // W^T delta_l = X a + Z' beta; delta_{l-1} = phi'(h_{l-1}) r_delta (W^T delta_l)
                job = Job::default();
                reads.clear();
                // (all K rows: with --jacobian the vjp rows, with their r)
                let plain = Params {
                    b_scale: 0.0,
                    rows: cols as u32,
                    ..base
                };
                self.combine(
                    &mut job,
                    plain,
                    n_in,
                    (Some(lay.x), self.slot(slot_a)),
                    Some((lay.z, self.slot(slot_b))),
                    (lay.y, 0),
                );
                let mut ops = vec![Operand::act(lay.y), Operand::act(lay.d[(l - 1) % 2])];
                if l - 1 > 0 {
                    ops.push(Operand::either(h_at(l - 1), FLAG_AUX_STORE));
                }
                let placed = self.place(&ops);
                let p = Params {
                    flags: if l - 1 == 0 {
                        FLAG_NO_DERIV
                    } else {
                        placed.flags
                    },
                    in_off: placed.at[0],
                    out_off: placed.at[1],
                    aux_off: placed.at.get(2).copied().unwrap_or(0),
                    rec_off: lay.back as u32,
                    scale_a: lay.delta_scale(l),
                    scale_b: if jacobian { lay.vjp_scale(l) } else { NO_SCALE },
                    ..below
                };
                let groups = (blocks(n_in) as u32, cols as u32, 1);
                self.push(&mut job, &self.p.scale_by_deriv, p, groups, &placed);
                self.back_finalize(&mut job, below, l - 1);
                reads.extend(back_reads(l - 1));
                pending = Some(l - 1);
            }
            let data = self.submit_read(&job, &reads)?;
            let p = pending.expect("a segment produces delta_a");
            back[p] = self.row_sums(&data[..back_read_len], net.widths[p], cols);
        }
        Ok((back, grams))
    }
}

/// The side b of a b x b matrix.
fn side(m: &[f64]) -> usize {
    (m.len() as f64).sqrt() as usize
}

/// Test-only: VARPROP_TEST_GRAM_CUTOFF=eps cuts the forward pass's
/// eigenvalues below K eps lambda_max, as the engine did (with eps = eps_f32)
/// before issue 12, so that a test can show `check` catching the collapse
/// of deep correlations this causes.
fn legacy_cutoff() -> Option<f64> {
    static CUTOFF: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *CUTOFF.get_or_init(|| {
        std::env::var("VARPROP_TEST_GRAM_CUTOFF")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// Sizes beyond the adapter's limits are bad input, caught before any work.
fn check_limits(ctx: &GpuContext, spec: &RunSpec, lay: &Layout) -> Result<()> {
    check_arena_bindings(
        ctx,
        spec,
        "the gram engine's",
        lay.row,
        [
            ("two blocks of rows (bound together)", 2 * lay.block),
            ("records", lay.records_len),
            ("coefficients", (lay.every + 2) * coef_slot(lay.cols)),
        ],
    )?;
    let rows_bytes = 4 * lay.rows_len as u64;
    if rows_bytes > ctx.limits.max_buffer_size {
        return Err(Error::invalid(
            "--batch",
            format!(
                "the gram engine's rows of batch {} at width {} need one buffer of {:.2} GiB, over this adapter's {:.2} GiB; use a smaller batch or width",
                spec.batch,
                lay.row,
                rows_bytes as f64 / (1u64 << 30) as f64,
                ctx.limits.max_buffer_size as f64 / (1u64 << 30) as f64
            ),
        ));
    }
    let max_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if spec.batch > max_dispatch {
        return Err(Error::invalid(
            "--batch",
            format!("at most {max_dispatch} (one dispatch)"),
        ));
    }
    Ok(())
}
