//! Decoding what the GPU engines read back: the pair records (shaders/
//! common/pair_record.wgsl) of the dense, gram and block engines, added up
//! in f64 in one fixed order.

use crate::gpu::abi::{RECORD, UNITS_PER_SLICE};
use crate::sim::stats::LayerSums;

/// Adds the pair records of `pairs` pairs of rows of `n` units (`records`
/// from the layer's first record, `bs` records reserved per pair) into
/// `sums`: per pair, its slices of units in order, the five second moments
/// and the sum of (h_a - h_b)^2 into a pair entry, the other sums into
/// `sums` itself.
pub(crate) fn add_pair_records(
    sums: &mut LayerSums,
    records: &[f32],
    pairs: usize,
    n: usize,
    bs: usize,
) {
    for pair in 0..pairs {
        let mut p = [0.0; 6];
        for slice in 0..n.div_ceil(UNITS_PER_SLICE) {
            let r = &records[(pair * bs + slice) * RECORD..][..RECORD];
            for k in 0..5 {
                p[k] += r[k] as f64;
            }
            sums.sum_h += r[5] as f64;
            sums.sum_h4 += r[6] as f64;
            sums.sum_x += r[7] as f64;
            sums.zeros += r[8] as f64;
            p[5] += r[9] as f64;
        }
        sums.pairs.push(p);
    }
}
