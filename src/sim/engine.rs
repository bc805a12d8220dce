//! The `Engine` trait every simulator implements (the dense, gram and block
//! GPU engines and the f64 CPU reference), and the one place that turns an
//! engine's per-network sums into a `RunOutput` with its `EngineInfo`.

use crate::error::Result;
use crate::gpu::blocks::BlocksGpu;
use crate::gpu::dense::DenseGpu;
use crate::gpu::gram::GramGpu;
use crate::gpu::{AdapterSummary, GpuContext};
use crate::sim::cpu;
use crate::sim::output::{EngineInfo, Progress, RunOutput, finish};
use crate::sim::plan::Program;
use crate::sim::stats::NetworkSums;
use crate::spec::RunSpec;

/// A simulator of one spec: networks 0..S in order, on the RNG streams
/// every engine shares.
pub trait Engine {
    /// The engine's name in the output (`engine` in the config block).
    fn name(&self) -> &'static str;
    /// The per-network sums, calling `progress(rows done over all networks)`
    /// as the engine reads back (no device sync of its own).
    fn run(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<NetworkSums>>;
    fn adapter(&self) -> Option<AdapterSummary>;
    /// Bytes of device buffers allocated (0 on the CPU).
    fn device_bytes(&self) -> u64;
    /// Layers per submission, where the engine batches them.
    fn chunk(&self) -> Option<usize> {
        None
    }
    /// The backward pass's checkpoint interval, where it runs one.
    fn checkpoint_every(&self) -> Option<usize>;
    /// The gram engine's least rank of X^T X (after a run).
    fn rank_min(&self) -> Option<usize> {
        None
    }
    /// What the engine adds to the reason it was chosen for.
    fn reason_note(&self) -> Option<String> {
        None
    }
}

/// Runs `engine` and builds the output: the one place `EngineInfo` is made.
pub fn run_engine(
    engine: &mut dyn Engine,
    spec: &RunSpec,
    reason: String,
    progress: Progress,
) -> Result<RunOutput> {
    let total = rows(spec) * spec.networks as u64;
    let sums = engine.run(&mut |done| progress(done, total))?;
    let engine_reason = match engine.reason_note() {
        Some(note) => format!("{reason}; {note}"),
        None => reason,
    };
    let info = EngineInfo {
        engine: engine.name(),
        engine_reason,
        gram_rank_min: engine.rank_min(),
        adapter: engine.adapter(),
        device_bytes_peak: engine.device_bytes(),
        chunk: engine.chunk(),
        checkpoint_every: engine.checkpoint_every(),
    };
    finish(spec, sums.into_iter().map(Ok), info)
}

/// Rows of one network: the input and L layers.
fn rows(spec: &RunSpec) -> u64 {
    (spec.net.depth() + 1) as u64
}

fn backward_interval(spec: &RunSpec, every: usize) -> Option<usize> {
    spec.probes.needs_backward().then_some(every)
}

/// The dense GPU engine: all networks in one pipelined sequence of jobs.
pub struct DenseEngine<'a> {
    pub ctx: &'a GpuContext,
    pub gpu: DenseGpu<'a>,
    pub spec: &'a RunSpec,
    pub chunk: usize,
}

impl Engine for DenseEngine<'_> {
    fn name(&self) -> &'static str {
        "gpu-dense"
    }
    fn run(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<NetworkSums>> {
        let rows = rows(self.spec);
        self.gpu
            .run_networks(0..self.spec.networks, &mut |s, done| {
                progress(s as u64 * rows + done as u64)
            })
    }
    fn adapter(&self) -> Option<AdapterSummary> {
        Some(self.ctx.adapter.clone())
    }
    fn device_bytes(&self) -> u64 {
        self.gpu.device_bytes
    }
    fn chunk(&self) -> Option<usize> {
        Some(self.chunk.clamp(1, rows(self.spec) as usize))
    }
    fn checkpoint_every(&self) -> Option<usize> {
        backward_interval(self.spec, self.gpu.checkpoint_every())
    }
}

/// The gram engine, network by network (each needs host round trips).
pub struct GramEngine<'a> {
    pub gpu: GramGpu<'a>,
    pub spec: &'a RunSpec,
    rank_min: usize,
}

impl<'a> GramEngine<'a> {
    pub fn new(gpu: GramGpu<'a>, spec: &'a RunSpec) -> Self {
        GramEngine {
            gpu,
            spec,
            rank_min: spec.batch,
        }
    }
}

impl Engine for GramEngine<'_> {
    fn name(&self) -> &'static str {
        "gpu-gram"
    }
    fn run(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<NetworkSums>> {
        let rows = rows(self.spec);
        let mut sums = Vec::with_capacity(self.spec.networks);
        for s in 0..self.spec.networks {
            let out = self
                .gpu
                .run_network(s, &mut |done| progress(s as u64 * rows + done as u64))?;
            self.rank_min = self.rank_min.min(out.rank_min);
            sums.push(out.sums);
        }
        Ok(sums)
    }
    fn adapter(&self) -> Option<AdapterSummary> {
        Some(self.gpu.context().adapter.clone())
    }
    fn device_bytes(&self) -> u64 {
        self.gpu.device_bytes
    }
    fn checkpoint_every(&self) -> Option<usize> {
        backward_interval(self.spec, self.gpu.checkpoint_every())
    }
    fn rank_min(&self) -> Option<usize> {
        Some(self.rank_min)
    }
    fn reason_note(&self) -> Option<String> {
        (!self.gpu.sums_exact).then(|| {
            format!(
                "this adapter's shader compiler does not keep the compensated Gram sums \
                 exact (probe error {:.1e} of sum |x y|), so the rank and the backward pass's \
                 pseudo-inverses use the plain f32 bound {:.1e}",
                self.gpu.sums_probe_error,
                self.gpu.sums_error_bound(self.spec.net.widths[0])
            )
        })
    }
}

/// The block engine (architecture files, the mean-preserving bias).
pub struct BlockEngine<'a> {
    pub ctx: &'a GpuContext,
    pub gpu: BlocksGpu<'a>,
    pub spec: &'a RunSpec,
}

impl Engine for BlockEngine<'_> {
    fn name(&self) -> &'static str {
        "gpu-blocks"
    }
    fn run(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<NetworkSums>> {
        let rows = rows(self.spec);
        (0..self.spec.networks)
            .map(|s| {
                let sums = self.gpu.run_network(s);
                progress((s as u64 + 1) * rows);
                sums
            })
            .collect()
    }
    fn adapter(&self) -> Option<AdapterSummary> {
        Some(self.ctx.adapter.clone())
    }
    fn device_bytes(&self) -> u64 {
        self.gpu.device_bytes
    }
    fn checkpoint_every(&self) -> Option<usize> {
        backward_interval(self.spec, self.gpu.checkpoint_every())
    }
}

/// The f64 CPU reference: deliberately naive, for small sizes and tests.
pub struct CpuEngine<'a> {
    pub spec: &'a RunSpec,
}

impl Engine for CpuEngine<'_> {
    fn name(&self) -> &'static str {
        "cpu-reference"
    }
    fn run(&mut self, progress: &mut dyn FnMut(u64)) -> Result<Vec<NetworkSums>> {
        let spec = self.spec;
        let rows = rows(spec);
        let program = spec
            .arch
            .as_ref()
            .map(|a| Program::new(&a.arch, spec.net.q0, spec.net.c0, a.mean_preserving));
        Ok((0..spec.networks)
            .map(|s| {
                let sums = match (&program, &spec.arch) {
                    (Some(program), Some(a)) => {
                        cpu::blocks::run_network(spec, program, s, a.position_row)
                    }
                    _ => cpu::dense::run_network(spec, s),
                };
                progress((s as u64 + 1) * rows);
                sums
            })
            .collect())
    }
    fn adapter(&self) -> Option<AdapterSummary> {
        None
    }
    fn device_bytes(&self) -> u64 {
        0
    }
    fn checkpoint_every(&self) -> Option<usize> {
        None
    }
}
