//! The `Engine` trait every simulator implements (the dense, gram and block
//! GPU engines in gpu/engines.rs, and here the f64 CPU reference), and the
//! one place that turns an engine's per-network sums into a `RunOutput`
//! with its `EngineInfo`.

use crate::error::Result;
use crate::sim::cpu;
use crate::sim::output::{AdapterSummary, EngineInfo, Progress, RunOutput, finish};
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
pub(crate) fn rows(spec: &RunSpec) -> u64 {
    (spec.net.depth() + 1) as u64
}

/// The interval an engine reports: only where it runs a backward pass.
pub(crate) fn backward_interval(spec: &RunSpec, every: usize) -> Option<usize> {
    spec.probes.runs_backward().then_some(every)
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
