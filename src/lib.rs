//! varprop: a GPU compute-shader simulator of variance dynamics in deep,
//! randomly initialised networks, with the theory beside it.
//!
//! Layout (see DESIGN.md): `spec` what to simulate, `init` and `activation`
//! the model, `rng` the counter-based RNG, `gpu` the context and kernels,
//! `engine` the simulators (GPU dense, CPU reference), `stats` the per-layer
//! moments, `theory` the recurrences, `output` tables, CSV and JSON.

pub mod activation;
pub mod arch;
pub mod bench;
pub mod check;
pub mod error;
pub mod init;
pub mod rng;
pub mod spec;

pub use error::{Error, Result};
pub mod engine;
pub mod gpu;
pub mod output;
pub mod report;
pub mod settings;
pub mod stats;
pub mod theory;

// comparing schemes, sweeps and pictures (issue 7)
pub mod compare;
pub mod curves;
pub mod headline;
pub mod phase;
pub mod plot;
pub mod sweep;
