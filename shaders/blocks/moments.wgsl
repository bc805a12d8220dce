// The block engine's moments (bindings.wgsl): fixed-order partial sums,
// added on the host in f64: the pair records of a row, the norms of rows,
// the renormalisation factor, and the per-position sums.

// The pair record of rows (2p, 2p+1) over one slice of units: pre at in_off,
// post at u_off (the same rows for residual and highway blocks), phi'(pre)
// = 0 counted with FLAG_ZEROS. Dispatched as (blocks, pairs).
@compute @workgroup_size(256)
fn pair_moments(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.units;
    let slice = wid.x;
    let pair = wid.y;
    let row_a = (2u * pair) * n;
    let row_b = (2u * pair + 1u) * n;
    var sums: PairSums;
    let count_zeros = (params.flags & FLAG_ZEROS) != 0u;
    let end = min((slice + 1u) * UNITS_PER_SLICE, n);
    for (var i = slice * UNITS_PER_SLICE + lid.x; i < end; i += REDUCE_WG) {
        let ha = arena[params.in_off + row_a + i];
        let hb = arena[params.in_off + row_b + i];
        let xa = arena[params.u_off + row_a + i];
        let xb = arena[params.u_off + row_b + i];
        if (count_zeros) {
            sums.zeros += zero_derivs(ha, hb);
        }
        sums = add_pair(sums, ha, hb, xa, xb);
    }
    write_pair_record(lid.x, pair, slice, sums.acc0, sums.acc1, sums.zeros, sums.diff2);
}

// Sum of squares of each row (in_off) over one slice of units. Dispatched
// as (blocks, rows).
@compute @workgroup_size(256)
fn row_norms(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.units;
    let slice = wid.x;
    let r = wid.y;
    var sum = 0.0;
    let end = min((slice + 1u) * UNITS_PER_SLICE, n);
    for (var i = slice * UNITS_PER_SLICE + lid.x; i < end; i += REDUCE_WG) {
        let v = arena[params.in_off + r * n + i];
        sum += v * v;
    }
    write_row_record(lid.x, r, slice, sum);
}

// One workgroup: the renormalisation factor of the rows just recorded
// (common/moments.wgsl; `rows` is the batch).
@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
    write_renormalisation(lid.x, params.units);
}

// Per spatial position p of an image row (c_out channels of h_out x w_out):
// sum over the batch and the channels of pre^2 (in_off) and post^2 (u_off),
// to records[rec_off + p] and records[rec_off + h w + p]. Serial sums: one
// invocation per position.
@compute @workgroup_size(64)
fn position_moments(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let positions = params.h_out * params.w_out;
    let p = flat_index(gid, nwg, BLOCKS_WG);
    if (p >= positions) {
        return;
    }
    let n = params.units;
    var pre = 0.0;
    var post = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        for (var c = 0u; c < params.c_out; c++) {
            let i = r * n + c * positions + p;
            let a = arena[params.in_off + i];
            let b = arena[params.u_off + i];
            pre += a * a;
            post += b * b;
        }
    }
    records[params.rec_off + p] = pre;
    records[params.rec_off + positions + p] = post;
}

// The Signal Propagation Plot's per-channel sums of the B rows at in_off
// (c_out channels of h_out x w_out): one workgroup per channel, sum x over
// the batch and positions, then sum (x - mean)^2, to records[rec_off + 2 c]
// and records[rec_off + 2 c + 1]. Dispatched as (channels, 1, 1).
@compute @workgroup_size(256)
fn channel_moments(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let positions = params.h_out * params.w_out;
    let m = params.batch * positions;
    let n = params.units;
    var sum = 0.0;
    for (var k = lid.x; k < m; k += REDUCE_WG) {
        sum += arena[params.in_off + (k / positions) * n + c * positions + k % positions];
    }
    let total = group_sum4(lid.x, vec4<f32>(sum, 0.0, 0.0, 0.0)).x;
    let mean = total / f32(m);
    var dev2 = 0.0;
    for (var k = lid.x; k < m; k += REDUCE_WG) {
        let d = arena[params.in_off + (k / positions) * n + c * positions + k % positions] - mean;
        dev2 += d * d;
    }
    let total_dev2 = group_sum4(lid.x, vec4<f32>(dev2, 0.0, 0.0, 0.0)).x;
    if (lid.x == 0u) {
        records[params.rec_off + 2u * c] = total;
        records[params.rec_off + 2u * c + 1u] = total_dev2;
    }
}
