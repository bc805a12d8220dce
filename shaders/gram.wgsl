// The gram engine's kernels (src/gpu/gram/mod.rs): no weight matrix
// exists. A layer is H = Z C^T + b with Z iid standard normal rows from
// Philox and C a K x K matrix (K = B, or 2B with the Jacobian's tangents)
// the host computes from Gram matrices, which these kernels reduce. Rows
// are bound as `act` and `store`, each a window of the engine's row
// buffers, with stride(n) floats per row; K x K coefficient matrices live
// in the `weights` buffer, row-major.
// Needs params.wgsl, philox.wgsl, special.wgsl and one of
// reduce_subgroup.wgsl, reduce_tree.wgsl. Its own view of the engine's
// bindings: rows as vec4 (one load per 4 units: on a CPU adapter a storage
// load is a loop over the SIMD lanes, so loads, not arithmetic, bound these
// kernels). Every offset and row stride is a multiple of 4 floats, and row
// padding holds zeros.

@group(0) @binding(1) var<storage, read_write> weights4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> act4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> store4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> records: array<f32>;

override REDUCE_WG: u32 = 256u;
const GRAM_WG: u32 = 64u;
// as stats.wgsl: records are per block of this many units
const GRAM_UNITS_PER_BLOCK: u32 = 4096u;
const FLAG_GRAM_BACK: u32 = 64u;    // gram_normals: the backward stream
const FLAG_SUB_BIAS: u32 = 128u;    // gram_cross: subtract `bias` from the first rows
const FLAG_SYMMETRIC: u32 = 256u;   // gram_cross: only tiles with a <= c
const FLAG_IN_STORE: u32 = 512u;    // gram_cross, gram_combine: the first rows come from `store`
const FLAG_SECOND_STORE: u32 = 1024u; // gram_cross: the second rows come from `store`
const FLAG_Z_PHILOX: u32 = 2048u;   // gram_combine: the first rows are the forward Z, drawn here

// Entry `at` (in vec4s) of act, or of store with `in_store`.
fn load4(at: u32, in_store: bool) -> vec4<f32> {
    if (in_store) {
        return store4[at];
    }
    return act4[at];
}

fn write4(at: u32, v: vec4<f32>) {
    if ((params.flags & FLAG_OUT_STORE) != 0u) {
        store4[at] = v;
    } else {
        act4[at] = v;
    }
}

// Units 4 group..4 group+3 past n are 0 (the row padding).
fn pad4(group: u32, v: vec4<f32>) -> vec4<f32> {
    let i = 4u * group + vec4<u32>(0u, 1u, 2u, 3u);
    return select(vec4<f32>(0.0), v, i < vec4<u32>(params.n_out));
}

// `rows` rows of n_out iid N(0, 1) at out_off (act, or store with
// FLAG_OUT_STORE), from STREAM_GRAM (the forward Z) or STREAM_GRAM_BACK
// (the backward Z', FLAG_GRAM_BACK), counter (network, layer, row, group
// of 4). One invocation per row and group.
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
    write4(params.out_off / 4u + row * (stride(n) / 4u) + group, pad4(group, z));
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

// Rows c..c+3 of the forward Z (zero past cols), units 4 group..4
// group+3, as columns: the numbers gram_normals writes, drawn where they
// are used so that Z never goes through memory.
fn philox_rows4(c: u32, group: u32) -> mat4x4<f32> {
    return mat4x4<f32>(philox_row4(c, group), philox_row4(c + 1u, group), philox_row4(c + 2u, group), philox_row4(c + 3u, group));
}

fn philox_row4(row: u32, group: u32) -> vec4<f32> {
    if (row >= params.cols) {
        return vec4<f32>(0.0);
    }
    return normal4(rng_bits(seed_key(), STREAM_GRAM, params.network, params.layer, row, group));
}

// Coefficients c..c+3 of output row `row` of the matrix at weights[base]
// (rows of stride(cols) floats, zero past cols).
fn coef4(base: u32, row: u32, c: u32) -> vec4<f32> {
    return weights4[(base + min(row, params.rows - 1u) * stride(params.cols) + c) / 4u];
}

// Rows c..c+3 (clamped to cols; their coefficients past cols are 0) of
// the matrix of rows at `off`, units 4 group..4 group+3, as columns.
fn rows4(off: u32, c: u32, group: u32, in_store: bool) -> mat4x4<f32> {
    let s4 = stride(params.n_out) / 4u;
    let last = params.cols - 1u;
    let base = off / 4u + group;
    return mat4x4<f32>(
        load4(base + min(c, last) * s4, in_store),
        load4(base + min(c + 1u, last) * s4, in_store),
        load4(base + min(c + 2u, last) * s4, in_store),
        load4(base + min(c + 3u, last) * s4, in_store),
    );
}

// out[b] = sum_c P[b][c] in1[c] + sum_c Q[b][c] in2[c] + b_l for the
// `rows` output rows b, with c < cols; P (rows x cols, rows of stride(cols)
// floats) at weights[coef_a], Q at weights[coef_b] (NO_OFFSET: no second
// term); in1 rows at in_off (act, or store with FLAG_IN_STORE; with
// FLAG_Z_PHILOX the forward Z, drawn here), in2 rows
// at aux_off (act), n_out units each; out at out_off (act, or store with
// FLAG_OUT_STORE). The bias is drawn here (b_scale 0: none). One
// invocation per group of 4 units and COMBINE_TILE output rows, the tile
// of rows being the workgroup's z (dispatched as (groups folded, tiles)):
// per 4 columns it loads (or draws) 4 vec4 of rows for 16 COMBINE_TILE
// multiply-adds (at K <= 16 each row is read once). Every output is summed
// in the same order whatever the tile.
const COMBINE_TILE: u32 = 16u;
// gram_cross's tile of pairs is CROSS_TILE x CROSS_TILE (quads of 4).
const CROSS_TILE: u32 = 16u;
const CROSS_QUADS: u32 = CROSS_TILE / 4u;

@compute @workgroup_size(64)
fn gram_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let groups = (n + 3u) / 4u;
    let group = flat_index(gid, nwg, GRAM_WG);
    if (group >= groups) {
        return;
    }
    let b0 = COMBINE_TILE * wid.z;
    // the tile's accumulators as plain variables: a CPU adapter keeps an
    // array indexed in a loop in memory, one gather and scatter per use
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    let in1_store = (params.flags & FLAG_IN_STORE) != 0u;
    let in1_philox = (params.flags & FLAG_Z_PHILOX) != 0u;
    for (var c = 0u; c < params.cols; c += 4u) {
        var z: mat4x4<f32>;
        if (in1_philox) {
            z = philox_rows4(c, group);
        } else {
            z = rows4(params.in_off, c, group, in1_store);
        }
        acc0 += z * coef4(params.coef_a, b0 + 0u, c);
        acc1 += z * coef4(params.coef_a, b0 + 1u, c);
        acc2 += z * coef4(params.coef_a, b0 + 2u, c);
        acc3 += z * coef4(params.coef_a, b0 + 3u, c);
        acc4 += z * coef4(params.coef_a, b0 + 4u, c);
        acc5 += z * coef4(params.coef_a, b0 + 5u, c);
        acc6 += z * coef4(params.coef_a, b0 + 6u, c);
        acc7 += z * coef4(params.coef_a, b0 + 7u, c);
        acc8 += z * coef4(params.coef_a, b0 + 8u, c);
        acc9 += z * coef4(params.coef_a, b0 + 9u, c);
        acc10 += z * coef4(params.coef_a, b0 + 10u, c);
        acc11 += z * coef4(params.coef_a, b0 + 11u, c);
        acc12 += z * coef4(params.coef_a, b0 + 12u, c);
        acc13 += z * coef4(params.coef_a, b0 + 13u, c);
        acc14 += z * coef4(params.coef_a, b0 + 14u, c);
        acc15 += z * coef4(params.coef_a, b0 + 15u, c);
    }
    if (params.coef_b != NO_OFFSET) {
        for (var c = 0u; c < params.cols; c += 4u) {
            let z = rows4(params.aux_off, c, group, false);
            acc0 += z * coef4(params.coef_b, b0 + 0u, c);
            acc1 += z * coef4(params.coef_b, b0 + 1u, c);
            acc2 += z * coef4(params.coef_b, b0 + 2u, c);
            acc3 += z * coef4(params.coef_b, b0 + 3u, c);
            acc4 += z * coef4(params.coef_b, b0 + 4u, c);
            acc5 += z * coef4(params.coef_b, b0 + 5u, c);
            acc6 += z * coef4(params.coef_b, b0 + 6u, c);
            acc7 += z * coef4(params.coef_b, b0 + 7u, c);
            acc8 += z * coef4(params.coef_b, b0 + 8u, c);
            acc9 += z * coef4(params.coef_b, b0 + 9u, c);
            acc10 += z * coef4(params.coef_b, b0 + 10u, c);
            acc11 += z * coef4(params.coef_b, b0 + 11u, c);
            acc12 += z * coef4(params.coef_b, b0 + 12u, c);
            acc13 += z * coef4(params.coef_b, b0 + 13u, c);
            acc14 += z * coef4(params.coef_b, b0 + 14u, c);
            acc15 += z * coef4(params.coef_b, b0 + 15u, c);
        }
    }
    let b = bias4(group);
    write_row4(b0 + 0u, group, acc0 + b);
    write_row4(b0 + 1u, group, acc1 + b);
    write_row4(b0 + 2u, group, acc2 + b);
    write_row4(b0 + 3u, group, acc3 + b);
    write_row4(b0 + 4u, group, acc4 + b);
    write_row4(b0 + 5u, group, acc5 + b);
    write_row4(b0 + 6u, group, acc6 + b);
    write_row4(b0 + 7u, group, acc7 + b);
    write_row4(b0 + 8u, group, acc8 + b);
    write_row4(b0 + 9u, group, acc9 + b);
    write_row4(b0 + 10u, group, acc10 + b);
    write_row4(b0 + 11u, group, acc11 + b);
    write_row4(b0 + 12u, group, acc12 + b);
    write_row4(b0 + 13u, group, acc13 + b);
    write_row4(b0 + 14u, group, acc14 + b);
    write_row4(b0 + 15u, group, acc15 + b);
}

// Output row `row` (if < rows), units 4 group..4 group+3.
fn write_row4(row: u32, group: u32, v: vec4<f32>) {
    if (row < params.rows) {
        write4(params.out_off / 4u + row * (stride(params.n_out) / 4u) + group, pad4(group, v));
    }
}

// Cross Gram matrix over n_out units: record ((a cols + c) block_stride +
// block) = sum over the block of (A[a][i] - b_i) B[c][i] for a < rows, c <
// cols; A rows at in_off (act, or store with FLAG_IN_STORE), the bias b
// subtracted with FLAG_SUB_BIAS, B rows at aux_off (act, or store with
// FLAG_SECOND_STORE). Each workgroup reduces a CROSS_TILE x CROSS_TILE tile
// of pairs over one block, 4 units at a time (2 CROSS_TILE vec4 loads for
// 4 CROSS_TILE^2 multiply-adds, the quads unrolled: a CPU adapter keeps an
// array indexed in a loop in memory; the row padding is zero in every row and in
// `bias`), per-invocation serial sums then the workgroup sum:
// deterministic, and each record is summed in the same order whatever the
// tile. With FLAG_SYMMETRIC tiles below the diagonal are skipped (the host
// mirrors them). Dispatched as (blocks, tiles of rows, tiles of cols).
fn cross_rows(off: u32, r0: u32, count: u32, s4: u32) -> vec4<u32> {
    return min(r0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(count - 1u)) * s4 + off / 4u;
}

fn cross_load(r: vec4<u32>, g: u32, in_store: bool, bi: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(
        load4(r.x + g, in_store) - bi,
        load4(r.y + g, in_store) - bi,
        load4(r.z + g, in_store) - bi,
        load4(r.w + g, in_store) - bi,
    );
}

@compute @workgroup_size(REDUCE_WG)
fn gram_cross(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let block = wid.x;
    if ((params.flags & FLAG_SYMMETRIC) != 0u && wid.y > wid.z) {
        return;
    }
    let s4 = stride(params.n_out) / 4u;
    let a0 = CROSS_TILE * wid.y;
    let c0 = CROSS_TILE * wid.z;
    let ra0 = cross_rows(params.in_off, a0 + 0u, params.rows, s4);
    let rc0 = cross_rows(params.aux_off, c0 + 0u, params.cols, s4);
    let ra1 = cross_rows(params.in_off, a0 + 4u, params.rows, s4);
    let rc1 = cross_rows(params.aux_off, c0 + 4u, params.cols, s4);
    let ra2 = cross_rows(params.in_off, a0 + 8u, params.rows, s4);
    let rc2 = cross_rows(params.aux_off, c0 + 8u, params.cols, s4);
    let ra3 = cross_rows(params.in_off, a0 + 12u, params.rows, s4);
    let rc3 = cross_rows(params.aux_off, c0 + 12u, params.cols, s4);
    let sub_bias = (params.flags & FLAG_SUB_BIAS) != 0u;
    let first_store = (params.flags & FLAG_IN_STORE) != 0u;
    let second_store = (params.flags & FLAG_SECOND_STORE) != 0u;
    let zero = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc = array<mat4x4<f32>, 16>(zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero);
    let per_block = GRAM_UNITS_PER_BLOCK / 4u;
    let end = min((block + 1u) * per_block, s4);
    for (var g = block * per_block + lid.x; g < end; g += REDUCE_WG) {
        var bi = vec4<f32>(0.0);
        if (sub_bias) {
            bi = vec4<f32>(bias[4u * g], bias[4u * g + 1u], bias[4u * g + 2u], bias[4u * g + 3u]);
        }
        let x0 = transpose(cross_load(ra0, g, first_store, bi));
        let x1 = transpose(cross_load(ra1, g, first_store, bi));
        let x2 = transpose(cross_load(ra2, g, first_store, bi));
        let x3 = transpose(cross_load(ra3, g, first_store, bi));
        let y0 = cross_load(rc0, g, second_store, vec4<f32>(0.0));
        let y1 = cross_load(rc1, g, second_store, vec4<f32>(0.0));
        let y2 = cross_load(rc2, g, second_store, vec4<f32>(0.0));
        let y3 = cross_load(rc3, g, second_store, vec4<f32>(0.0));
        acc[0] += x0 * y0;
        acc[1] += x0 * y1;
        acc[2] += x0 * y2;
        acc[3] += x0 * y3;
        acc[4] += x1 * y0;
        acc[5] += x1 * y1;
        acc[6] += x1 * y2;
        acc[7] += x1 * y3;
        acc[8] += x2 * y0;
        acc[9] += x2 * y1;
        acc[10] += x2 * y2;
        acc[11] += x2 * y3;
        acc[12] += x3 * y0;
        acc[13] += x3 * y1;
        acc[14] += x3 * y2;
        acc[15] += x3 * y3;
    }
    for (var t = 0u; t < CROSS_QUADS * CROSS_QUADS; t++) {
        let sums = mat4x4<f32>(
            group_sum4(lid.x, acc[t][0]),
            group_sum4(lid.x, acc[t][1]),
            group_sum4(lid.x, acc[t][2]),
            group_sum4(lid.x, acc[t][3]),
        );
        let ra = a0 + 4u * (t / CROSS_QUADS);
        let rc = c0 + 4u * (t % CROSS_QUADS);
        if (lid.x == 0u) {
            for (var m = 0u; m < 4u; m++) {
                for (var k = 0u; k < 4u; k++) {
                    if (ra + k < params.rows && rc + m < params.cols) {
                        let rec = ((ra + k) * params.cols + rc + m) * params.block_stride + block;
                        records[params.rec_off + rec] = sums[m][k];
                    }
                }
            }
        }
    }
}
