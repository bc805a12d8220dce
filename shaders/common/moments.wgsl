// The moment sums every engine's statistics kernels share, beside the pair
// record (pair_record.wgsl): a pair's running sums over its units, one
// row's record, and the renormalisation factor of the rows just recorded.
// Used by the dense statistics (stats.wgsl) and the block engine
// (blocks/moments.wgsl); needs `params` (batch, rows, flags, rec_off,
// slice_stride, scale_out), `records`, `scales`, RECORD, REDUCE_WG,
// unit_slices and group_sum4 from the module it joins.

// A pair's sums in the pair record's order (write_pair_record): (h_a^2,
// h_b^2, h_a h_b, x_a^2), (x_b^2, h_a + h_b, h_a^4 + h_b^4, x_a + x_b), the
// zero count and the sum of (h_a - h_b)^2.
struct PairSums {
    acc0: vec4<f32>,
    acc1: vec4<f32>,
    zeros: f32,
    diff2: f32,
}

// `s` with the unit whose pre-activations are (ha, hb) and post (xa, xb).
fn add_pair(s: PairSums, ha: f32, hb: f32, xa: f32, xb: f32) -> PairSums {
    var t = s;
    let ha2 = ha * ha;
    let hb2 = hb * hb;
    t.acc0 += vec4<f32>(ha2, hb2, ha * hb, xa * xa);
    t.acc1 += vec4<f32>(xb * xb, ha + hb, ha2 * ha2 + hb2 * hb2, xa + xb);
    t.diff2 += (ha - hb) * (ha - hb);
    return t;
}

// 1 for each of ha, hb where phi' is 0 (relu's zero fraction).
fn zero_derivs(ha: f32, hb: f32) -> f32 {
    return select(0.0, 1.0, phi_deriv(ha) == 0.0) + select(0.0, 1.0, phi_deriv(hb) == 0.0);
}

// The workgroup's `sum` (one per invocation) as record `row` of the
// slice of units `slice`.
fn write_row_record(lid: u32, row: u32, slice: u32, sum: f32) {
    let total = group_sum4(lid, vec4<f32>(sum, 0.0, 0.0, 0.0)).x;
    if (lid == 0u) {
        records[params.rec_off + row * params.slice_stride + slice] = total;
    }
}

// One workgroup: the renormalisation factor r = 1/sqrt(mean v^2) of the
// rows of `units` just recorded (x from the batch's pair records, or the
// per-row sums of `rows` rows with FLAG_ROW_RECORDS), or 1 without
// FLAG_RENORM; written to scales[scale_out] for the next step and for the
// host, which carries log r in f64.
fn write_renormalisation(lid: u32, units: u32) {
    let slices = unit_slices(units);
    let by_row = (params.flags & FLAG_ROW_RECORDS) != 0u;
    let records_read = select(params.batch / 2u, params.rows, by_row);
    var sum = 0.0;
    for (var j = lid; j < records_read * slices; j += REDUCE_WG) {
        let u = j / slices;
        let slice = j % slices;
        if (by_row) {
            sum += records[params.rec_off + u * params.slice_stride + slice];
        } else {
            let base = params.rec_off + (u * params.slice_stride + slice) * RECORD;
            sum += records[base + 3u] + records[base + 4u];
        }
    }
    let total = group_sum4(lid, vec4<f32>(sum, 0.0, 0.0, 0.0)).x;
    if (lid == 0u) {
        let count = f32(select(params.batch, params.rows, by_row)) * f32(units);
        let mean_sq = total / count;
        var r = 1.0;
        // a dead layer (0) or an overflow (inf, NaN) keeps r = 1; the host reports it
        if ((params.flags & FLAG_RENORM) != 0u && mean_sq > 0.0 && mean_sq < 3.0e38) {
            r = inverseSqrt(mean_sq);
        }
        scales[params.scale_out] = r;
    }
}
