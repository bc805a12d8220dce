//! varprop: a GPU compute-shader simulator of variance dynamics in deep,
//! randomly initialised networks, with the theory beside it.
//!
//! Layout (see ARCHITECTURE.md): `spec` what to simulate, `model` the
//! activations, init laws, RNG and architectures, `sim` the engines' common
//! front (choice, stats) and the CPU reference, `gpu` the context, kernels
//! and GPU engines, `theory` the recurrences, `analysis` predictions and
//! reports, `io` tables, plots and sweeps, `config` the settings.

// The API: the facade below, what a spec is made of, the theory, tables.
pub mod config;
pub mod error;
pub mod io;
pub mod model;
pub mod spec;
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
pub use model::activation::Activation;
pub use model::init::Convention;
pub use model::init::Scheme as Init;
pub use sim::simulator::{Device, RunSpecBuilder, Simulator};
pub use sim::stats::{LayerSample, LayerSummary};
pub use sim::{EngineInfo, GpuOptions, RunOutput};
pub use spec::RunSpec;
