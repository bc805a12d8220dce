//! The checkpoint interval of the backward pass, one rule for the three GPU
//! engines (dense, gram, blocks): `checkpoint_every` if given, else the
//! widest spacing whose plan fits `max_memory`, at least ceil(sqrt(L)).
//! Errors name those fields (the CLI shows their flags).

use crate::error::{Error, Result};

/// The interval for `depth` layers (or blocks, `unit`): `every` if given
/// (at most `depth`); else the largest k whose plan (`bytes(k)`) fits
/// `max_memory`, at least ceil(sqrt(L)) (the least memory); else
/// ceil(sqrt(L)).
pub(crate) fn interval(
    depth: usize,
    every: Option<usize>,
    max_memory: Option<u64>,
    unit: &str,
    bytes: impl Fn(usize) -> u64,
) -> Result<usize> {
    let sqrt = (depth as f64).sqrt().ceil().max(1.0) as usize;
    if let Some(k) = every {
        if k == 0 {
            return Err(Error::invalid("checkpoint_every", "must be >= 1"));
        }
        return Ok(k.min(depth));
    }
    let Some(budget) = max_memory else {
        return Ok(sqrt);
    };
    widest_spacing_within(budget, sqrt, depth, unit, bytes)
}

/// The checkpoint spacing for a `max_memory` budget: sqrt(L) (`sqrt`)
/// must fit, and since memory grows with the spacing beyond it, the largest
/// spacing up to `depth` that fits. `unit` names what is checkpointed.
pub(crate) fn widest_spacing_within(
    budget: u64,
    sqrt: usize,
    depth: usize,
    unit: &str,
    bytes: impl Fn(usize) -> u64,
) -> Result<usize> {
    if bytes(sqrt) > budget {
        return Err(Error::invalid(
            "max_memory",
            format!(
                "the run needs at least {} bytes (checkpoints every {sqrt} {unit})",
                bytes(sqrt)
            ),
        ));
    }
    let (mut lo, mut hi) = (sqrt, depth.max(sqrt));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if bytes(mid) <= budget {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    Ok(lo)
}
