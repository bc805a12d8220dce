//! The GPU side: context, WGSL sources and pipelines, the dense engine's
//! kernels, and small probes that expose the shared WGSL to tests.

pub mod blocks;
pub mod context;
pub mod dense;
pub mod gram;
pub mod kernels;
pub mod orthogonal;
pub mod probe;
pub mod shaders;
pub mod submit;

pub use context::{AdapterSummary, GpuContext, list_adapters};
