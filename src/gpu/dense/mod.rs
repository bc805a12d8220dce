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
//!
//! This file owns the engine's types (DenseGpu, its pipelines, jobs and raw
//! records) and the run loop (run_networks); layout.rs the memory plan and
//! checkpointing, setup.rs building and limits, steps.rs the dispatch
//! builders, forward.rs and backward.rs the two passes, decode.rs the
//! readback and the decode into sums, bench.rs the benchmark's hooks.

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::gpu::submit::{InFlight, Readback, Step, Submitter};
use crate::gpu::tuning::{Kernels, ProductKernel};
use crate::sim::stats::{LayerSums, NetworkSums, NtkSums, RowSums};
use crate::spec::RunSpec;

pub use crate::gpu::abi::Params;
pub(crate) use crate::gpu::abi::{
    ELEMENTWISE_WG, FLAG_AUX_STORE, FLAG_INPUT, FLAG_NO_DERIV, FLAG_OUT_STORE, FLAG_READOUT,
    FLAG_RENORM, FLAG_ROW_RECORDS, GEN_WG, NO_OFFSET, NO_SCALE, RECORD, UNITS_PER_SLICE,
};

mod backward;
mod bench;
mod decode;
mod forward;
mod layout;
mod setup;
mod steps;

pub use crate::gpu::submit::read_staging;
pub use layout::checkpoint_interval;
use layout::{Layout, SegmentPlan};
pub(crate) use setup::{check_arena_bindings, engine_bind_group_ranges};

/// Default number of layers per submission.
pub const DEFAULT_CHUNK: usize = 128;

pub use crate::gpu::abi::stride;

pub(crate) fn slices(n: usize) -> usize {
    n.div_ceil(UNITS_PER_SLICE)
}

pub(crate) use crate::gpu::submit::dispatch_1d;

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
    /// the B x B Gram matrix of rows: the product kernel with GRAM
    gram: wgpu::ComputePipeline,
    finalize: wgpu::ComputePipeline,
    /// the QR of orthogonal layers
    householder: crate::gpu::orthogonal::HouseholderKernels,
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

/// What a network's jobs have read back so far.
struct NetworkRaw {
    forward: Vec<Raw>,
    tangent: Vec<Raw>,
    backward: Vec<Raw>,
    grams: Vec<(Vec<f32>, Vec<f32>)>,
    /// X_L^T X_L (--ntk: the readout's term)
    top_gram: Vec<f32>,
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

    /// The checkpoint interval in use.
    pub fn checkpoint_every(&self) -> usize {
        self.layout.every
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
            if self.spec.probes.runs_backward() {
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
                top_gram: Vec::new(),
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
            .map(|r| self.assemble(r.forward, r.tangent, r.backward, r.grams, r.top_gram))
            .collect())
    }

    /// GPU seconds the passes of the last `run_networks` took, from
    /// timestamps (engines built with `timed` on adapters that have them).
    pub fn gpu_seconds(&self) -> Option<f64> {
        self.gpu_seconds.get()
    }
}
