//! The f64 CPU reference engines: plain stacks (dense) and architecture
//! files (blocks), on the same RNG streams as the GPU engines.

mod block_steps;
pub mod blocks;
pub mod dense;
