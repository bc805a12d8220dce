//! varprop: a GPU compute-shader simulator of variance dynamics in deep,
//! randomly initialised networks, with the theory beside it.
//!
//! Layout (see ARCHITECTURE.md): `spec` what to simulate, `model` the
//! activations, init laws, RNG and architectures, `sim` the engines' common
//! front (choice, stats) and the CPU reference, `gpu` the context, kernels
//! and GPU engines, `theory` the recurrences, `analysis` predictions and
//! reports, `io` tables, plots and sweeps, `config` the settings.

pub mod analysis;
pub mod bench;
pub mod config;
pub mod error;
pub mod gpu;
pub mod io;
pub mod model;
pub mod sim;
pub mod spec;
pub mod theory;

pub use error::{Error, Result};
pub use model::activation::Activation;
pub use model::init::Scheme as Init;
pub use sim::RunOutput;
pub use sim::simulator::{Device, RunSpecBuilder, Simulator};
pub use spec::RunSpec;
