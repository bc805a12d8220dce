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
//!
//! Normalisation layers (an architecture file's layer-norm, rms-norm and
//! batch-norm between dense layers; `support::GramLayer`) act on the rows
//! the engine holds: h = norm(x), with --jacobian r_t J t in the rows
//! below h (where a dense layer has W t), and backward J^T delta (J is
//! symmetric; shaders/gram/norm.wgsl). They have no coefficients, and the
//! next dense layer conditions on the Gram matrix of their output as on
//! any other.
//!
//! This file owns the engine's types (GramGpu, its pipelines, laws and
//! forward coefficients), building it and the per-network loop; algebra.rs
//! the f64 algebra, layout.rs the memory plan (panels of K rows),
//! support.rs which runs it can do, bindings.rs the binding windows and
//! bind groups, ops.rs the dispatch builders, bounds.rs the error bounds,
//! forward.rs and backward.rs the two passes.

pub mod algebra;
mod backward;
mod bindings;
mod bounds;
mod forward;
mod layout;
mod ops;
mod support;

use bindings::*;
pub use layout::checkpoint_interval;
use layout::*;
pub use support::unsupported;
use support::*;

use crate::error::{Error, Result};
use crate::gpu::abi::{
    COMBINE_TILE, CROSS_WG, ELEMENTWISE_WG, FLAG_AUX_STORE, FLAG_COEF_LOW, FLAG_GRAM_BACK,
    FLAG_IN_STORE, FLAG_INPUT, FLAG_NO_DERIV, FLAG_OUT_STORE, FLAG_READOUT, FLAG_RENORM,
    FLAG_ROW_RECORDS, FLAG_SECOND_STORE, FLAG_SUB_BIAS, FLAG_SYMMETRIC, FLAG_Z_PHILOX, GEN_WG,
    GRAM_WG, NO_OFFSET, NO_SCALE, Params, RECORD, UNITS_PER_SLICE,
};
use crate::gpu::context::GpuContext;
use crate::gpu::dense::{
    check_arena_bindings, dispatch_1d, engine_bind_group_ranges, slices, stride,
};
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::gpu::submit::{Readback, Step, Submitter};
use crate::gpu::tuning::Reduction;
use crate::model::activation::Activation;
use crate::model::init::Dist;
use crate::sim::stats::{LayerSums, NetworkSums, NtkSums, NtkTerms, RowSums};
use crate::spec::RunSpec;
use algebra::Eigen;
use std::cell::RefCell;
use std::collections::HashMap;

/// The side of gram_cross's tile of pairs, a quad (shaders/gram/gram.wgsl).
const CROSS_TILE: usize = 4;
/// The terms one lane of gram_cross sums per slice of units (4 units per
/// group of 4, the groups strided by CROSS_WG).
const CROSS_CHAIN: usize = 4 * (UNITS_PER_SLICE / 4).div_ceil(CROSS_WG);

struct Pipelines {
    gen_input: wgpu::ComputePipeline,
    gen_normal_rows: wgpu::ComputePipeline,
    finalize: wgpu::ComputePipeline,
    normals: wgpu::ComputePipeline,
    bias: wgpu::ComputePipeline,
    combine: wgpu::ComputePipeline,
    cross: wgpu::ComputePipeline,
    /// the kernels that apply an activation, for each activation the
    /// layers use
    by_act: Vec<(Activation, ActPipelines)>,
}

/// The kernels specialised by an activation phi.
struct ActPipelines {
    /// x = phi(h) with the moment records
    stats: wgpu::ComputePipeline,
    activate: wgpu::ComputePipeline,
    scale_by_deriv: wgpu::ComputePipeline,
    /// normalisations of phi(h) (only where a layer normalises)
    norm: Option<NormPipelines>,
}

struct NormPipelines {
    rows: wgpu::ComputePipeline,
    rows_adjoint: wgpu::ComputePipeline,
    units: wgpu::ComputePipeline,
    units_adjoint: wgpu::ComputePipeline,
    /// the NTK's gain gradients d * y
    gain_rows: wgpu::ComputePipeline,
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
    /// what each layer does (index 0: the input)
    layers: Vec<GramLayer>,
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

impl<'a> GramGpu<'a> {
    pub fn new(ctx: &'a GpuContext, spec: &'a RunSpec, every: usize) -> Result<Self> {
        if let Some(why) = unsupported(spec) {
            return Err(Error::invalid("engine", format!("gram: {why}")));
        }
        let layers = gram_layers(spec).map_err(|why| Error::invalid("engine", why))?;
        let net = &spec.net;
        // each row normalisation's invocation sweeps n / 1024 groups of units
        // up to 4 times, under llvmpipe's 65,536 loop iterations
        const MAX_NORM_UNITS: usize = 1 << 24;
        if let Some(l) =
            (1..layers.len()).find(|&l| layers[l].is_norm() && net.widths[l] > MAX_NORM_UNITS)
        {
            return Err(Error::invalid(
                "arch",
                format!(
                    "layer {l} normalises rows of {} units: the gram engine's normalisations take at most {MAX_NORM_UNITS}",
                    net.widths[l]
                ),
            ));
        }
        let mut lay = Layout::new(spec, every.clamp(1, net.depth()));
        check_limits(ctx, spec, &lay)?;
        lay.slots_per_buffer = (ctx.limits.max_buffer_size / 4) as usize / lay.panel;
        let reduction = Reduction::for_adapter(ctx);
        reduction.validate(ctx)?;
        let (bind_layout, pipeline_layout) = ctx.layouts("engine", engine_bind_group_layout);
        let layout = Some(&pipeline_layout);
        let reduce = [("REDUCE_WG", reduction.workgroup as f64)];
        let stats = Module::Stats {
            subgroup_sum: reduction.subgroup,
        };
        let gram = Module::Gram {
            subgroup_sum: reduction.subgroup,
        };
        // the row normalisations sweep rows of up to millions of units: a
        // tree over 256 invocations, whatever the adapter's subgroups
        // (shaders/gram/norm.wgsl says why)
        let norm = Module::GramNorm {
            subgroup_sum: false,
        };
        let reduce_rows = [("REDUCE_WG", 256.0)];
        let act = &layers[0].act;
        let s = |entry, act| ctx.specialised_pipeline(stats, entry, act, layout, &reduce);
        let g = |entry| ctx.specialised_pipeline(gram, entry, act, layout, &reduce);
        let normalises = layers.iter().any(GramLayer::is_norm);
        let mut by_act: Vec<(Activation, ActPipelines)> = Vec::new();
        for layer in &layers {
            if by_act.iter().any(|(a, _)| *a == layer.act) {
                continue;
            }
            let act = &layer.act;
            let n = |entry| ctx.specialised_pipeline(norm, entry, act, layout, &reduce_rows);
            let norm = if normalises {
                Some(NormPipelines {
                    rows: n("gram_norm_rows")?,
                    rows_adjoint: n("gram_norm_rows_adjoint")?,
                    units: n("gram_norm_units")?,
                    units_adjoint: n("gram_norm_units_adjoint")?,
                    gain_rows: n("gram_norm_gain_rows")?,
                })
            } else {
                None
            };
            let pipelines = ActPipelines {
                stats: s("stats", act)?,
                activate: s("activate", act)?,
                scale_by_deriv: s("scale_by_deriv", act)?,
                norm,
            };
            by_act.push((layer.act, pipelines));
        }
        let p = Pipelines {
            gen_input: ctx.pipeline(Module::Generate, "gen_input", act, layout)?,
            gen_normal_rows: ctx.pipeline(Module::Generate, "gen_normal_rows", act, layout)?,
            finalize: s("finalize", act)?,
            normals: g("gram_normals")?,
            bias: g("gram_bias")?,
            combine: g("gram_combine")?,
            cross: g("gram_cross")?,
            by_act,
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
            layers,
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

    /// The kernels of layer l's activation.
    fn act(&self, l: usize) -> &ActPipelines {
        let act = self.layers[l].act;
        &self
            .p
            .by_act
            .iter()
            .find(|(a, _)| *a == act)
            .expect("compiled")
            .1
    }

    /// The GPU context the engine runs on.
    pub fn context(&self) -> &'a GpuContext {
        self.ctx
    }

    pub fn checkpoint_every(&self) -> usize {
        self.lay.every
    }

    /// Runs one network: the forward pass, and the backward pass if asked.
    pub fn run_network(
        &self,
        network: usize,
        on_layer: &mut dyn FnMut(usize),
    ) -> Result<GramNetwork> {
        let forward = self.forward(network, on_layer)?;
        let (backward, grams) = if self.spec.probes.runs_backward() {
            let (b, g) = self.backward(network, &forward)?;
            (Some(b), Some(g))
        } else {
            (None, None)
        };
        // an NTK run's backward rows are the readout's gradient, not
        // --backward's: they go into the NTK's sums alone
        let depth = self.spec.net.depth();
        let (backward, grams, ntk) = match (backward, grams) {
            (Some(b), Some(g)) if self.spec.probes.ntk.is_some() => {
                let top_x = forward.grams[depth].clone();
                let ntk = NtkSums::from_backward(g, top_x, &b, self.spec.net.widths[depth]);
                (None, None, Some(ntk))
            }
            (b, g) => (b, g.filter(|_| self.spec.probes.weight_grads), None),
        };
        // through a file, each layer's term as its kind counts it
        let (ntk, ntk_terms) = match ntk {
            Some(sums) if self.spec.arch.is_some() => {
                let renorms = forward.sums.iter().map(|s| s.renorm);
                let terms = NtkTerms::from_gram_file(self.spec, &sums, &forward.grams[0], renorms);
                (None, Some(terms))
            }
            ntk => (ntk, None),
        };
        Ok(GramNetwork {
            rank_min: forward.rank_min,
            sums: NetworkSums {
                forward: forward.sums,
                tangent: self.spec.probes.jacobian.then_some(forward.tangent),
                backward,
                grams,
                positions: None,
                ntk,
                ntk_terms,
                channels: None,
                tokens: None,
            },
        })
    }
}

/// The side b of a b x b matrix.
fn side(m: &[f64]) -> usize {
    (m.len() as f64).sqrt() as usize
}
