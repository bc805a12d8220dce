// The gram engine's kernels (src/gpu/gram.rs): no weight matrix exists.
// A layer is H = Z C^T + b with Z iid standard normal rows from Philox and
// C a B x B matrix the host computes from Gram matrices, which these
// kernels reduce. Rows live in the `act`/`store` arenas with stride(n)
// floats per row, as for the dense engine; B x B coefficient matrices live
// in the `weights` buffer, row-major.
// Needs params.wgsl, bindings.wgsl, philox.wgsl, special.wgsl and one of
// reduce_subgroup.wgsl, reduce_tree.wgsl.

override REDUCE_WG: u32 = 256u;
const GRAM_WG: u32 = 64u;
// as stats.wgsl: records are per block of this many units
const GRAM_UNITS_PER_BLOCK: u32 = 4096u;
const FLAG_GRAM_BACK: u32 = 64u;    // gram_normals: the backward stream
const FLAG_SUB_BIAS: u32 = 128u;    // gram_cross: subtract `bias` from the first rows
const FLAG_SYMMETRIC: u32 = 256u;   // gram_cross: only tiles with a <= c
const FLAG_IN_STORE: u32 = 512u;    // gram_cross, gram_combine: the first rows come from `store`
const FLAG_SECOND_STORE: u32 = 1024u; // gram_cross: the second rows come from `store`

// `rows` rows of n_out iid N(0, 1) at out_off (act, or store with
// FLAG_OUT_STORE), from STREAM_GRAM (the
// forward Z) or STREAM_GRAM_BACK (the backward Z', FLAG_GRAM_BACK), counter
// (network, layer, row, group of 4). One invocation per row and group.
@compute @workgroup_size(64)
fn gram_normals(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let groups = (n + 3u) / 4u;
    let idx = flat_index(gid, nwg, GRAM_WG);
    if (idx >= groups * params.rows) {
        return;
    }
    let row = idx / groups;
    let group = idx % groups;
    let stream = select(STREAM_GRAM, STREAM_GRAM_BACK, (params.flags & FLAG_GRAM_BACK) != 0u);
    let z = normal4(rng_bits(seed_key(), stream, params.network, params.layer, row, group));
    for (var e = 0u; e < 4u; e++) {
        let i = 4u * group + e;
        write_out(row * stride(n) + i, select(0.0, z[e], i < n));
    }
}

// b_l into `bias`, the very numbers gen_weights draws (STREAM_BIAS).
@compute @workgroup_size(64)
fn gram_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = flat_index(gid, nwg, GRAM_WG);
    if (group >= (params.n_out + 3u) / 4u) {
        return;
    }
    let v = bias4(group);
    for (var e = 0u; e < 4u; e++) {
        if (4u * group + e < params.n_out) {
            bias[4u * group + e] = v[e];
        }
    }
}

// Entries 4 group..4 group+3 of b_l (zero without a bias).
fn bias4(group: u32) -> vec4<f32> {
    if (params.b_scale == 0.0) {
        return vec4<f32>(0.0);
    }
    let b = rng_bits(seed_key(), STREAM_BIAS, params.network, params.layer, 0u, group);
    return params.b_scale * standard4(params.b_dist, b);
}

fn coef(base: u32, row: u32, c: u32) -> f32 {
    return weights[base + min(row, params.rows - 1u) * params.cols + c];
}

fn row4(at: u32) -> vec4<f32> {
    return vec4<f32>(act[at], act[at + 1u], act[at + 2u], act[at + 3u]);
}

fn store4(at: u32) -> vec4<f32> {
    return vec4<f32>(store[at], store[at + 1u], store[at + 2u], store[at + 3u]);
}

// out[b] = sum_c P[b][c] in1[c] + sum_c Q[b][c] in2[c] + b_l for the
// `rows` output rows b, with c < cols; P (rows x cols, row-major) at
// weights[coef_a], Q at weights[coef_b] (NO_OFFSET: no second term); in1
// rows at in_off (act, or store with FLAG_IN_STORE), in2 rows at aux_off
// (act), n_out units each; out at
// out_off (act, or store with FLAG_OUT_STORE). The bias is drawn here
// (b_scale 0: none). One invocation per group of 4 units and 4 output rows.
@compute @workgroup_size(64)
fn gram_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let s = stride(n);
    let groups = (n + 3u) / 4u;
    let tiles = (params.rows + 3u) / 4u;
    let idx = flat_index(gid, nwg, GRAM_WG);
    if (idx >= groups * tiles) {
        return;
    }
    let tile = idx / groups;
    let group = idx % groups;
    let b0 = 4u * tile;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let in1_store = (params.flags & FLAG_IN_STORE) != 0u;
    for (var c = 0u; c < params.cols; c++) {
        let at = params.in_off + c * s + 4u * group;
        var z: vec4<f32>;
        if (in1_store) {
            z = store4(at);
        } else {
            z = row4(at);
        }
        acc0 += coef(params.coef_a, b0, c) * z;
        acc1 += coef(params.coef_a, b0 + 1u, c) * z;
        acc2 += coef(params.coef_a, b0 + 2u, c) * z;
        acc3 += coef(params.coef_a, b0 + 3u, c) * z;
    }
    if (params.coef_b != NO_OFFSET) {
        for (var c = 0u; c < params.cols; c++) {
            let z = row4(params.aux_off + c * s + 4u * group);
            acc0 += coef(params.coef_b, b0, c) * z;
            acc1 += coef(params.coef_b, b0 + 1u, c) * z;
            acc2 += coef(params.coef_b, b0 + 2u, c) * z;
            acc3 += coef(params.coef_b, b0 + 3u, c) * z;
        }
    }
    let b = bias4(group);
    let acc = mat4x4<f32>(acc0 + b, acc1 + b, acc2 + b, acc3 + b);
    for (var k = 0u; k < 4u; k++) {
        if (b0 + k < params.rows) {
            for (var e = 0u; e < 4u; e++) {
                let i = 4u * group + e;
                write_out((b0 + k) * s + i, select(0.0, acc[k][e], i < n));
            }
        }
    }
}

fn first_row(at: u32) -> f32 {
    if ((params.flags & FLAG_IN_STORE) != 0u) {
        return store[at];
    }
    return act[at];
}

fn second_row(at: u32) -> f32 {
    if ((params.flags & FLAG_SECOND_STORE) != 0u) {
        return store[at];
    }
    return act[at];
}

// Cross Gram matrix over n_out units: record ((a cols + c) block_stride +
// block) = sum over the block of (A[a][i] - b_i) B[c][i] for a < rows, c <
// cols; A rows at in_off (act, or store with FLAG_IN_STORE), the bias b
// subtracted with FLAG_SUB_BIAS, B rows at aux_off (act, or store with
// FLAG_SECOND_STORE). Each workgroup
// reduces a 4 x 4 tile of pairs over one block (per-invocation serial
// sums, then the workgroup sum: deterministic); with FLAG_SYMMETRIC tiles
// below the diagonal are skipped (the host mirrors them). Dispatched as
// (blocks, tiles of rows, tiles of cols).
@compute @workgroup_size(REDUCE_WG)
fn gram_cross(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let block = wid.x;
    if ((params.flags & FLAG_SYMMETRIC) != 0u && wid.y > wid.z) {
        return;
    }
    let n = params.n_out;
    let s = stride(n);
    let a0 = 4u * wid.y;
    let c0 = 4u * wid.z;
    let a = min(a0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.rows - 1u));
    let c = min(c0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.cols - 1u));
    let sub_bias = (params.flags & FLAG_SUB_BIAS) != 0u;
    var acc = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let end = min((block + 1u) * GRAM_UNITS_PER_BLOCK, n);
    for (var i = block * GRAM_UNITS_PER_BLOCK + lid.x; i < end; i += REDUCE_WG) {
        var bi = 0.0;
        if (sub_bias) {
            bi = bias[i];
        }
        let x = vec4<f32>(
            first_row(params.in_off + a.x * s + i),
            first_row(params.in_off + a.y * s + i),
            first_row(params.in_off + a.z * s + i),
            first_row(params.in_off + a.w * s + i),
        ) - vec4<f32>(bi);
        let y = vec4<f32>(
            second_row(params.aux_off + c.x * s + i),
            second_row(params.aux_off + c.y * s + i),
            second_row(params.aux_off + c.z * s + i),
            second_row(params.aux_off + c.w * s + i),
        );
        // column k of acc: row a_k against the four B rows
        acc += mat4x4<f32>(x.x * y, x.y * y, x.z * y, x.w * y);
    }
    let sums = mat4x4<f32>(
        group_sum4(lid.x, acc[0]),
        group_sum4(lid.x, acc[1]),
        group_sum4(lid.x, acc[2]),
        group_sum4(lid.x, acc[3]),
    );
    if (lid.x == 0u) {
        for (var k = 0u; k < 4u; k++) {
            for (var m = 0u; m < 4u; m++) {
                if (a0 + k < params.rows && c0 + m < params.cols) {
                    let rec = ((a0 + k) * params.cols + c0 + m) * params.block_stride + block;
                    records[params.rec_off + rec] = sums[k][m];
                }
            }
        }
    }
}
