// The block engine's draws (bindings.wgsl): W and b of a weight layer, an
// orthogonal W placed into its layout, the inputs, and rows of normals;
// the Philox streams, counter for counter as src/sim/cpu/blocks.rs.

// W row by row: entry 4 group + e of row r is standard4(bits(seed, weight,
// network, layer, r, group))[e] times w_scale. One invocation per group.
@compute @workgroup_size(64)
fn draw_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let groups = (params.per_row + 3u) / 4u;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= groups * params.rows) {
        return;
    }
    let r = idx / groups;
    let group = idx % groups;
    let z = standard4(params.dist, params.trunc, rng_bits(seed_key(), STREAM_WEIGHT, params.network, params.layer, r, group));
    for (var e = 0u; e < 4u; e++) {
        let j = 4u * group + e;
        if (j < params.per_row) {
            weights[params.w_off + r * params.per_row + j] = params.w_scale * z[e];
        }
    }
}

// b[c] = standard4(bits(seed, bias, network, layer, 0, c / 4))[c mod 4] times
// w_scale, for c < rows (0 everywhere when w_scale is 0).
@compute @workgroup_size(64)
fn draw_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_index(gid, nwg, BLOCKS_WG);
    if (c >= params.rows) {
        return;
    }
    var v = 0.0;
    if (params.w_scale != 0.0) {
        let z = standard4(params.dist, params.trunc, rng_bits(seed_key(), STREAM_BIAS, params.network, params.layer, 0u, c / 4u));
        v = params.w_scale * z[c % 4u];
    }
    weights[params.b_off + c] = v;
}

// W from an orthogonal matrix Q (rows x q_cols, rows padded to a multiple
// of 4), q_cols = per_row / k^2: a dense layer (kernel 1) is W = Q; a
// delta-orthogonal convolution is W[r][c][t] = Q[r][c] at the centre tap
// t, 0 at the others. One invocation per entry of W.
@compute @workgroup_size(64)
fn place_orthogonal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.per_row) {
        return;
    }
    let k = params.kernel;
    let taps = k * k;
    let q_cols = params.per_row / taps;
    let r = idx / params.per_row;
    let c = (idx % params.per_row) / taps;
    let t = idx % taps;
    let centre = (k / 2u) * k + k / 2u;
    var w = 0.0;
    if (t == centre) {
        w = orthogonal[r * ((q_cols + 3u) & ~3u) + c];
    }
    weights[params.w_off + idx] = w;
}

// The inputs in pairs (2k, 2k+1) with second moment q0 and correlation c0,
// `rows` rows of `units`, at out_off. One invocation per (pair, unit).
@compute @workgroup_size(64)
fn draw_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.units;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= n * (params.rows / 2u)) {
        return;
    }
    let pair = idx / n;
    let i = idx % n;
    let z1 = normal4(rng_bits(seed_key(), STREAM_INPUT, params.network, 0u, 2u * pair, i / 4u))[i % 4u];
    let z2 = normal4(rng_bits(seed_key(), STREAM_INPUT, params.network, 0u, 2u * pair + 1u, i / 4u))[i % 4u];
    let s = sqrt(params.q0);
    arena[params.out_off + (2u * pair) * n + i] = s * z1;
    arena[params.out_off + (2u * pair + 1u) * n + i] = s * (params.c0 * z1 + sqrt(max(1.0 - params.c0 * params.c0, 0.0)) * z2);
}

// `rows` rows of iid standard normals from `stream` at `layer`, at out_off;
// with FLAG_READOUT every row is row 0's (the NTK's readout w, one vector
// for the whole batch).
@compute @workgroup_size(64)
fn draw_normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.units;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= n * params.rows) {
        return;
    }
    let r = select(idx / n, 0u, (params.flags & FLAG_READOUT) != 0u);
    let i = idx % n;
    arena[params.out_off + idx] = normal4(rng_bits(seed_key(), params.stream, params.network, params.layer, r, i / 4u))[i % 4u];
}

// Weight standardisation of the drawn W (rows x per_row at w_off): each row
// becomes w_scale (row - mean) / std, std the population one; two passes,
// one workgroup per row (the CPU twin: standardise_rows); the row's factor
// w_scale / std to weights[u_off + row].
@compute @workgroup_size(256)
fn standardise_weights(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let start = params.w_off + wid.x * params.per_row;
    let n = params.per_row;
    var sum = 0.0;
    for (var k = lid.x; k < n; k += REDUCE_WG) {
        sum += weights[start + k];
    }
    let mean = group_sum4(lid.x, vec4<f32>(sum, 0.0, 0.0, 0.0)).x / f32(n);
    var dev2 = 0.0;
    for (var k = lid.x; k < n; k += REDUCE_WG) {
        let d = weights[start + k] - mean;
        dev2 += d * d;
    }
    let variance = group_sum4(lid.x, vec4<f32>(dev2, 0.0, 0.0, 0.0)).x / f32(n);
    let s = params.w_scale / sqrt(variance);
    for (var k = lid.x; k < n; k += REDUCE_WG) {
        weights[start + k] = (weights[start + k] - mean) * s;
    }
    // the row's factor, for the NTK's gradient with respect to the raw draws
    if (lid.x == 0u) {
        weights[params.u_off + wid.x] = s;
    }
}

// A scale layer's factor (w_scale) into its weight slot at w_off.
@compute @workgroup_size(1)
fn set_factor() {
    weights[params.w_off] = params.w_scale;
}
