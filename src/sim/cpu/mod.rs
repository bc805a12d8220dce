//! The f64 CPU reference engines: plain stacks (dense) and architecture
//! files (blocks), on the same RNG streams as the GPU engines.

mod attention;
mod block_ntk;
mod block_steps;
pub mod blocks;
pub mod dense;

use crate::sim::stats::RowSums;

/// What the engines record of rows `d` (and of the vector-Jacobian rows `v`
/// after them, in the backward pass): the squared norms, and the renorm
/// factor each set gets next.
fn norm_sums(d: &[Vec<f64>], v: Option<&[Vec<f64>]>) -> RowSums {
    let mut norms = squared_norms(d);
    let mut renorm = [renorm_of(d), 1.0];
    if let Some(v) = v {
        norms.extend(squared_norms(v));
        renorm[1] = renorm_of(v);
    }
    RowSums { norms, renorm }
}

/// r = 1/sqrt(mean v^2) over `rows` (1 for a dead or overflowed layer), as
/// the GPU's finalize.
fn renorm_of(rows: &[Vec<f64>]) -> f64 {
    let count: usize = rows.iter().map(Vec::len).sum();
    let mean = rows.iter().flatten().map(|v| v * v).sum::<f64>() / count as f64;
    if mean > 0.0 && mean.is_finite() {
        1.0 / mean.sqrt()
    } else {
        1.0
    }
}

fn squared_norms(rows: &[Vec<f64>]) -> Vec<f64> {
    rows.iter().map(|r| r.iter().map(|v| v * v).sum()).collect()
}
