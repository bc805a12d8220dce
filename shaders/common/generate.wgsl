// Weights, biases, inputs and the random vectors of the backward pass and
// the Jacobian probes, from the Philox streams: generated on the GPU, never
// sent over the bus. Needs params.wgsl, index.wgsl, bindings.wgsl, philox.wgsl,
// special.wgsl.


// One invocation per group of 4 entries of a row of W (n_out x n_in); the
// row's padding gets zeros. The invocations past W's draw b, 4 entries
// each (orthogonal W comes from ortho_write: then all of them draw b).
@compute @workgroup_size(64)
fn gen_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let groups_per_row = (params.n_in + 3u) / 4u;
    let weight_groups = select(groups_per_row * params.n_out, 0u, params.w_dist == DIST_ORTHOGONAL);
    let idx = flat_index(gid, nwg, GEN_WG);
    if (idx >= weight_groups) {
        gen_bias_group(idx - weight_groups);
        return;
    }
    let row = idx / groups_per_row;
    let group = idx % groups_per_row;
    let b = rng_bits(seed_key(), STREAM_WEIGHT, params.network, params.layer, row, group);
    let w = params.w_scale * standard4(params.w_dist, params.w_trunc, b);
    let base = row * stride(params.n_in) + 4u * group;
    for (var e = 0u; e < 4u; e++) {
        weights[base + e] = select(0.0, w[e], 4u * group + e < params.n_in);
    }
}

// Entries 4 group..4 group+3 of b (n_out).
fn gen_bias_group(group: u32) {
    if (group >= (params.n_out + 3u) / 4u || params.b_scale == 0.0) {
        return;
    }
    let b = rng_bits(seed_key(), STREAM_BIAS, params.network, params.layer, 0u, group);
    let v = params.b_scale * standard4(params.b_dist, params.b_trunc, b);
    for (var e = 0u; e < 4u; e++) {
        if (4u * group + e < params.n_out) {
            bias[4u * group + e] = v[e];
        }
    }
}

// Inputs in pairs (2k, 2k+1) with second moment q0 and correlation c0:
// x_a = sqrt(q0) z1, x_b = sqrt(q0) (c0 z1 + sqrt(1 - c0^2) z2), written to
// the rows at out_off. One invocation per pair and group of 4 units.
@compute @workgroup_size(64)
fn gen_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let groups = (n + 3u) / 4u;
    let idx = flat_index(gid, nwg, GEN_WG);
    if (idx >= groups * (params.batch / 2u)) {
        return;
    }
    let pair = idx / groups;
    let group = idx % groups;
    let z1 = normal4(rng_bits(seed_key(), STREAM_INPUT, params.network, 0u, 2u * pair, group));
    let z2 = normal4(rng_bits(seed_key(), STREAM_INPUT, params.network, 0u, 2u * pair + 1u, group));
    let s = sqrt(params.q0);
    let xa = s * z1;
    let xb = s * (params.c0 * z1 + sqrt(max(1.0 - params.c0 * params.c0, 0.0)) * z2);
    let row = stride(n);
    for (var e = 0u; e < 4u; e++) {
        let i = 4u * group + e;
        act[params.out_off + (2u * pair) * row + i] = select(0.0, xa[e], i < n);
        act[params.out_off + (2u * pair + 1u) * row + i] = select(0.0, xb[e], i < n);
    }
}

// `rows` rows of iid standard normals from stream `params.layer`'s
// STREAM_DELTA (delta_L) or STREAM_TANGENT (the probes u; flag
// FLAG_INPUT selects it), at out_off; with FLAG_READOUT every row is the
// NTK's readout w (STREAM_READOUT, row 0). One invocation per row and group of 4.
@compute @workgroup_size(64)
fn gen_normal_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let groups = (n + 3u) / 4u;
    let idx = flat_index(gid, nwg, GEN_WG);
    if (idx >= groups * params.rows) {
        return;
    }
    let row = idx / groups;
    let group = idx % groups;
    let readout = (params.flags & FLAG_READOUT) != 0u;
    var stream = select(STREAM_DELTA, STREAM_TANGENT, (params.flags & FLAG_INPUT) != 0u);
    if (readout) {
        stream = STREAM_READOUT;
    }
    // the readout w is one vector, the same for every row
    let z = normal4(rng_bits(seed_key(), stream, params.network, params.layer, select(row, 0u, readout), group));
    for (var e = 0u; e < 4u; e++) {
        let i = 4u * group + e;
        act[params.out_off + row * stride(n) + i] = select(0.0, z[e], i < n);
    }
}
