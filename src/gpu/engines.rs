//! The GPU engines as `sim::Engine`s: the dense engine (all networks in one
//! pipelined sequence of jobs), the gram engine (network by network, with
//! host round trips) and the block engine (architecture files). Which one
//! runs a spec is gpu/choice.rs.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::blocks::BlocksGpu;
use crate::gpu::dense::DenseGpu;
use crate::gpu::gram::GramGpu;
use crate::sim::engine::{Engine, backward_interval, rows};
use crate::sim::output::AdapterSummary;
use crate::sim::stats::NetworkSums;
use crate::spec::RunSpec;

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
