// The gram engine's kernels (src/gpu/gram/mod.rs): no weight matrix
// exists. A layer is H = Z C^T + b with Z iid standard normal rows from
// Philox and C a K x K matrix (K = B, or 2B with the Jacobian's tangents)
// the host computes from Gram matrices, which these kernels reduce. Rows
// are bound as `act` and `store`, each a window of the engine's row
// buffers, with stride(n) floats per row; K x K coefficient matrices live
// in the `weights` buffer, row-major.
// Needs params.wgsl, index.wgsl, philox.wgsl, special.wgsl and one of
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
// GRAM_WG, CROSS_WG, COMBINE_TILE, UNITS_PER_SLICE and the FLAG_* of the
// gram kernels are generated from src/gpu/abi.rs.

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
    return params.b_scale * standard4(params.b_dist, params.b_trunc, b);
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
// term; with FLAG_COEF_LOW, Q holds the low parts of P and multiplies in1
// too: the forward coefficients carry about 48 bits, algebra::split_f32);
// in1 rows at in_off (act, or store with FLAG_IN_STORE; with
// FLAG_Z_PHILOX the forward Z, drawn here), in2 rows
// at aux_off (act), n_out units each; out at out_off (act, or store with
// FLAG_OUT_STORE). The bias is drawn here (b_scale 0: none). One
// invocation per group of 4 units and COMBINE_TILE output rows, the tile
// of rows being the workgroup's z (dispatched as (groups folded, tiles)):
// per 4 columns it loads (or draws) 4 vec4 of rows for 16 COMBINE_TILE
// multiply-adds (at K <= 16 each row is read once). Every output is summed
// in the same order whatever the tile.

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
    let coef_low = (params.flags & FLAG_COEF_LOW) != 0u;
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
        if (coef_low) {
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
    if (params.coef_b != NO_OFFSET && !coef_low) {
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

// Cross Gram matrix over n_out units: sum over a slice of units of (A[a][i]
// - b_i) B[c][i] for a < rows, c < cols, as three records (its parts s, r,
// e; the host adds them in f64) at ((a cols + c) slice_stride + slice) plus
// 0, 1 or 2 times cols^2 slice_stride. A rows at in_off (act, or store with
// FLAG_IN_STORE), the bias b subtracted with FLAG_SUB_BIAS, B rows at
// aux_off (act, or store with FLAG_SECOND_STORE). Each workgroup reduces one
// quad (4 x 4 pairs) over one slice, 4 units at a time; with FLAG_SYMMETRIC
// quads below the diagonal are skipped (the host mirrors them). Dispatched
// as (blocks, quads of rows, quads of cols).
//
// The sums are compensated, because the small eigenvalues of a deep
// network's Gram matrix (those that carry 1 - c) fall far below f32's
// rounding of the large ones (issue 12). Each product is split exactly: x =
// xh + xl with xh the 12 leading significant bits of x (a mask; xl = x - xh
// is exact), so xh yh is exact (24 bits) and the rest, xh yl + xl yh + xl
// yl, is below 2^-10 |x y| and rounded twice. The exact parts are summed by
// TwoSum into s, the rests by TwoSum into r, both TwoSums' errors into e;
// over the workgroup a tree adds the (s, r, e) with TwoSum at every level.
// algebra::gram_error_bound derives the bound this gives (about 1.5e-10
// sum |x y|, against f32's 1e-6 before). A quad per workgroup keeps each
// invocation's state small (48 floats): with 16 quads lavapipe spilled it
// and the kernel ran 8 times slower. Every record is summed in the same
// order whatever the dispatch.
var<workgroup> cross_s: array<mat4x4<f32>, CROSS_WG>;
var<workgroup> cross_r: array<mat4x4<f32>, CROSS_WG>;
var<workgroup> cross_e: array<mat4x4<f32>, CROSS_WG>;

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

// x with its 12 low significand bits cleared: 12 significant bits left.
fn high12(m: mat4x4<f32>) -> mat4x4<f32> {
    let keep = vec4<u32>(0xfffff000u);
    return mat4x4<f32>(
        bitcast<vec4<f32>>(bitcast<vec4<u32>>(m[0]) & keep),
        bitcast<vec4<f32>>(bitcast<vec4<u32>>(m[1]) & keep),
        bitcast<vec4<f32>>(bitcast<vec4<u32>>(m[2]) & keep),
        bitcast<vec4<f32>>(bitcast<vec4<u32>>(m[3]) & keep),
    );
}

// Knuth's TwoSum: s + e = a + b exactly, with round to nearest and no
// algebra on the way. Shader compilers treat float arithmetic as
// reassociable unless told otherwise (WGSL has no `precise`, and naga's
// SPIR-V carries no NoContraction): on lavapipe (Mesa 22.3, LLVM 15) a plain
// (a + b) - a comes out as b (tests/float_rewrites.rs), so a plain TwoSum
// returns e = 0. So the intermediate values pass through opaque(): their
// bits XORed with 0 taken from params (the bits of gram_cross's
// params.w_scale, which the host sets to 1, XOR those of 1.0). The result
// is an integer the float optimiser knows nothing about, so no rewrite can
// relate it to the values it came from, and it is the value itself. (An
// earlier opaque(), a multiplication by that unseen 1, was not enough: a
// float optimiser can still rewrite around a product (presumably by
// distributing or factoring it), and on lavapipe the sums came out 1.2e-8 of sum |x y| off, 8e-8
// on the engine's probe rows; with the XOR they are within the derived
// bound, 6e-12 on the probe.) tests/gram_precision.rs and the engine's probe
// check the sums against their bound on the adapter.
struct Sum2 {
    s: vec4<f32>,
    e: vec4<f32>,
}

fn opaque(v: vec4<f32>) -> vec4<f32> {
    let zero = bitcast<u32>(params.w_scale) ^ 0x3f800000u;
    return bitcast<vec4<f32>>(bitcast<vec4<u32>>(v) ^ vec4<u32>(zero));
}

fn opaque_m(m: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(opaque(m[0]), opaque(m[1]), opaque(m[2]), opaque(m[3]));
}

fn two_sum(a: vec4<f32>, b_in: vec4<f32>) -> Sum2 {
    // b itself too: else the compiler may expand b's own expression where
    // it is used twice, rounding it differently each time
    let b = opaque(b_in);
    let s = opaque(a + b);
    let bb = opaque(s - a);
    return Sum2(s, (a - opaque(s - bb)) + (b - bb));
}

// One quad of pairs (4 rows a x 4 rows c), its three parts; column m sums
// the pairs with row c0 + m, entry k those with row a0 + k.
struct Quad {
    s: mat4x4<f32>,
    r: mat4x4<f32>,
    e: mat4x4<f32>,
}

struct Column {
    s: vec4<f32>,
    r: vec4<f32>,
    e: vec4<f32>,
}

// The quad plus 4 units' products: x, xh columns are units (entries over
// a), y, yh columns rows c (entries over units). Unrolled: a CPU adapter
// keeps loop-indexed matrices in memory.
fn quad_add(q: Quad, x: mat4x4<f32>, xh_in: mat4x4<f32>, y: mat4x4<f32>, yh_in: mat4x4<f32>) -> Quad {
    // opaque: else the compiler may distribute xh (y - yh) into the
    // inexact xh y - xh yh (xl = x - xh itself is exact: one subtraction)
    let xh = opaque_m(xh_in);
    let yh = opaque_m(yh_in);
    let xl = opaque_m(x - xh);
    let yl = opaque_m(y - yh);
    let c0 = column_add(Column(q.s[0], q.r[0], q.e[0]), xh, xl, yh[0], yl[0]);
    let c1 = column_add(Column(q.s[1], q.r[1], q.e[1]), xh, xl, yh[1], yl[1]);
    let c2 = column_add(Column(q.s[2], q.r[2], q.e[2]), xh, xl, yh[2], yl[2]);
    let c3 = column_add(Column(q.s[3], q.r[3], q.e[3]), xh, xl, yh[3], yl[3]);
    return Quad(
        mat4x4<f32>(c0.s, c1.s, c2.s, c3.s),
        mat4x4<f32>(c0.r, c1.r, c2.r, c3.r),
        mat4x4<f32>(c0.e, c1.e, c2.e, c3.e),
    );
}

fn column_add(acc: Column, xh: mat4x4<f32>, xl: mat4x4<f32>, yh: vec4<f32>, yl: vec4<f32>) -> Column {
    var c = column_term(acc, xh[0], xl[0], yh.x, yl.x);
    c = column_term(c, xh[1], xl[1], yh.y, yl.y);
    c = column_term(c, xh[2], xl[2], yh.z, yl.z);
    return column_term(c, xh[3], xl[3], yh.w, yl.w);
}

fn column_term(acc: Column, xh: vec4<f32>, xl: vec4<f32>, yh: f32, yl: f32) -> Column {
    let exact = two_sum(acc.s, xh * yh);
    let rest = two_sum(acc.r, (xh * yl + xl * yh) + xl * yl);
    return Column(exact.s, rest.s, acc.e + (exact.e + rest.e));
}

// The workgroup's sum of the quads q, by a tree in workgroup memory with
// TwoSum at every level; lane 0 gets it.
fn group_sum_quad(lid: u32, q: Quad) -> Quad {
    cross_s[lid] = q.s;
    cross_r[lid] = q.r;
    cross_e[lid] = q.e;
    workgroupBarrier();
    for (var width = CROSS_WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            let a = Quad(cross_s[lid], cross_r[lid], cross_e[lid]);
            let b = Quad(cross_s[lid + width], cross_r[lid + width], cross_e[lid + width]);
            let c0 = column_join(Column(a.s[0], a.r[0], a.e[0]), Column(b.s[0], b.r[0], b.e[0]));
            let c1 = column_join(Column(a.s[1], a.r[1], a.e[1]), Column(b.s[1], b.r[1], b.e[1]));
            let c2 = column_join(Column(a.s[2], a.r[2], a.e[2]), Column(b.s[2], b.r[2], b.e[2]));
            let c3 = column_join(Column(a.s[3], a.r[3], a.e[3]), Column(b.s[3], b.r[3], b.e[3]));
            cross_s[lid] = mat4x4<f32>(c0.s, c1.s, c2.s, c3.s);
            cross_r[lid] = mat4x4<f32>(c0.r, c1.r, c2.r, c3.r);
            cross_e[lid] = mat4x4<f32>(c0.e, c1.e, c2.e, c3.e);
        }
        workgroupBarrier();
    }
    let total = Quad(cross_s[0], cross_r[0], cross_e[0]);
    workgroupBarrier();
    return total;
}

fn column_join(a: Column, b: Column) -> Column {
    let s = two_sum(a.s, b.s);
    let r = two_sum(a.r, b.r);
    return Column(s.s, r.s, (a.e + b.e) + (s.e + r.e));
}

@compute @workgroup_size(CROSS_WG)
fn gram_cross(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let slice = wid.x;
    // uniform: every invocation of the workgroup returns or none does
    if ((params.flags & FLAG_SYMMETRIC) != 0u && wid.y > wid.z) {
        return;
    }
    let s4 = stride(params.n_out) / 4u;
    let a0 = 4u * wid.y;
    let c0 = 4u * wid.z;
    let ra = cross_rows(params.in_off, a0, params.rows, s4);
    let rc = cross_rows(params.aux_off, c0, params.cols, s4);
    let sub_bias = (params.flags & FLAG_SUB_BIAS) != 0u;
    let first_store = (params.flags & FLAG_IN_STORE) != 0u;
    let second_store = (params.flags & FLAG_SECOND_STORE) != 0u;
    let zero = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var q = Quad(zero, zero, zero);
    let per_slice = UNITS_PER_SLICE / 4u;
    let end = min((slice + 1u) * per_slice, s4);
    for (var g = slice * per_slice + lid.x; g < end; g += CROSS_WG) {
        var bi = vec4<f32>(0.0);
        if (sub_bias) {
            bi = vec4<f32>(bias[4u * g], bias[4u * g + 1u], bias[4u * g + 2u], bias[4u * g + 3u]);
        }
        let x = transpose(cross_load(ra, g, first_store, bi));
        let y = cross_load(rc, g, second_store, vec4<f32>(0.0));
        q = quad_add(q, x, high12(x), y, high12(y));
    }
    let sum = group_sum_quad(lid.x, q);
    if (lid.x == 0u) {
        let part = params.cols * params.cols * params.slice_stride;
        for (var m = 0u; m < 4u; m++) {
            for (var k = 0u; k < 4u; k++) {
                if (a0 + k < params.rows && c0 + m < params.cols) {
                    let rec = params.rec_off + ((a0 + k) * params.cols + c0 + m) * params.slice_stride + slice;
                    records[rec] = sum.s[m][k];
                    records[rec + part] = sum.r[m][k];
                    records[rec + 2u * part] = sum.e[m][k];
                }
            }
        }
    }
}
