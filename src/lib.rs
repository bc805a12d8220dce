//! varprop: a GPU compute-shader simulator of variance dynamics in deep,
//! randomly initialised networks, with the theory beside it.
//!
//! Layout (see ARCHITECTURE.md), each module using only those before it:
//! `io` files (TOML in, tables and figures out), `linalg` symmetric B x B
//! algebra, `model` the activations,
//! init laws, RNG and architectures, `spec` what to simulate, `theory` the
//! recurrences, `sim` what the engines share (the `Engine` trait, stats)
//! and the CPU reference, `gpu` the context, kernels, GPU engines and the
//! choice among them, `config` the settings, `analysis` predictions,
//! reports and figures, `simulator` the front door, `sweep` grids of runs.

// The API: the facade below, what a spec is made of, the theory, tables.
pub mod config;
pub mod error;
pub mod io;
pub mod linalg;
pub mod model;
mod simulator;
pub mod spec;
pub mod sweep;
pub mod theory;

// Not the API: the engines, kernels, reports and benchmarks, public only
// for the binary, the benches and the tests; they change without notice.
#[doc(hidden)]
pub mod analysis;
#[doc(hidden)]
pub mod bench;
#[doc(hidden)]
pub mod gpu;
#[doc(hidden)]
pub mod sim;

pub use error::{Error, Result};
pub use gpu::GpuOptions;
pub use model::activation::Activation;
pub use model::init::Convention;
pub use model::init::Scheme as Init;
pub use sim::stats::{LayerSample, LayerSummary};
pub use sim::{EngineInfo, RunOutput};
pub use simulator::{Device, RunSpecBuilder, Simulator};
pub use spec::RunSpec;
