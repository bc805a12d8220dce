//! What every engine shares, GPU or CPU: the `Engine` trait (engine.rs),
//! the per-network sums and their statistics (stats), the block program
//! (plan), `RunOutput`, and the f64 CPU reference engines (cpu/, `run_cpu`).
//! Every engine turns a `RunSpec` into per-network sums on the same RNG
//! streams; `stats` does the rest for all of them. The GPU engines and the
//! choice among them are in gpu/ (engines.rs, choice.rs), above this.

pub mod cpu;
pub mod engine;
pub mod host_memory;
pub mod output;
pub mod plan;
pub mod stats;
pub mod work_hook;

use crate::error::Result;
use crate::sim::engine::{CpuEngine, run_engine};
use crate::spec::{EngineChoice, RunSpec};
pub use output::{AdapterSummary, EngineInfo, Progress, RunOutput};

/// The error when the CPU reference engine would hold more than the host
/// has for `spec`.
pub fn cpu_fits_host_memory(spec: &RunSpec) -> Result<()> {
    let width_flag = if spec.net.widths.windows(2).all(|w| w[0] == w[1]) {
        "--width"
    } else {
        "--widths"
    };
    host_memory::fits_host_memory(
        width_flag,
        "the CPU reference engine",
        host_memory::cpu_engine_bytes(spec),
    )
}

/// The f64 CPU reference: deliberately naive, for small sizes and tests.
pub fn run_cpu(spec: &RunSpec, progress: Progress) -> Result<RunOutput> {
    if spec.engine == EngineChoice::Gram {
        return Err(crate::Error::invalid(
            "--engine",
            "gram runs on the GPU only (--device gpu); the CPU reference engine is dense (use --engine dense or auto with --device cpu)",
        ));
    }
    cpu_fits_host_memory(spec)?;
    work_hook::work_starts()?;
    let reason = "--device cpu: the f64 reference engine".to_string();
    run_engine(&mut CpuEngine { spec }, spec, reason, progress)
}
