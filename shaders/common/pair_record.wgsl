// One pair's record of moments over a slice of units, in the layout
// stats::RowSums reads: the workgroup's sums of (h_a^2, h_b^2, h_a h_b,
// x_a^2) in acc0, (x_b^2, h_a + h_b, h_a^4 + h_b^4, x_a + x_b) in acc1, the
// zero count and the sum of (h_a - h_b)^2 (1 - c from it keeps its relative
// precision as c -> 1, where 1 - q_ab / sqrt(q_aa q_bb) loses it). Shared by the dense statistics (stats.wgsl) and
// the block engine (blocks.wgsl); needs `params` (rec_off, slice_stride),
// `records`, RECORD and group_sum4 from the module it joins.
fn write_pair_record(lid: u32, pair: u32, slice: u32, acc0: vec4<f32>, acc1: vec4<f32>, zeros: f32, diff2: f32) {
    let sum0 = group_sum4(lid, acc0);
    let sum1 = group_sum4(lid, acc1);
    let sum2 = group_sum4(lid, vec4<f32>(zeros, diff2, 0.0, 0.0));
    if (lid == 0u) {
        let base = params.rec_off + (pair * params.slice_stride + slice) * RECORD;
        for (var k = 0u; k < 4u; k++) {
            records[base + k] = sum0[k];
            records[base + 4u + k] = sum1[k];
        }
        records[base + 8u] = sum2.x;
        records[base + 9u] = sum2.y;
    }
}
