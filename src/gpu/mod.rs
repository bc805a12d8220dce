//! The GPU side: the context, the WGSL sources and pipelines, the launch
//! tuning, the submitter, and the three GPU engines (dense/, gram/,
//! blocks/) with the orthogonal weights they share; probes expose the shared
//! WGSL to tests. See ARCHITECTURE.md.

pub mod abi;
pub mod blocks;
pub mod buffers;
pub mod checkpoint;
pub mod choice;
pub mod context;
pub mod dense;
pub mod engines;
pub mod gram;
pub mod orthogonal;
pub mod pipelines;
pub mod probe;
pub mod readback;
pub mod submit;
pub mod tuning;

pub use crate::sim::AdapterSummary;
pub use choice::{GpuOptions, choose_engine, choose_gpu_engine, run_gpu};
pub use context::{GpuContext, list_adapters};
