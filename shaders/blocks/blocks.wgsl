// The block engine's kernels (src/gpu/blocks.rs): architecture files with
// dense, convolution and transposed-convolution layers, residual and highway
// blocks, and the mean-preserving shift. Plain kernels, one invocation per
// output value, each a direct transcription of its sum; the CPU twin is
// src/engine/cpu_blocks.rs.
// Needs index.wgsl, scale_of.wgsl, philox.wgsl, special.wgsl, activation.wgsl,
// reduce_tree.wgsl, pair_record.wgsl.
//
// Rows (one per sample, tangent or backward vector) live in `arena`, each
// `units` floats long, channel-major ([c][y][x]) for images, at offsets
// given per dispatch. Saved forward state (h, the gate, the block input) has
// B rows; kernels over 2B rows (the backward rows with the vector-Jacobian
// rows) read it at row r mod B.

// `struct BlockParams` and the constants (KIND_*, PAD_*, FLAG_*, NO_SCALE,
// BLOCKS_WG, UNITS_PER_BLOCK, RECORD) are generated from src/gpu/abi.rs
// and prepended (src/gpu/pipelines.rs).
const REDUCE_WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: BlockParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> arena: array<f32>;
@group(0) @binding(3) var<storage, read_write> records: array<f32>;
@group(0) @binding(4) var<storage, read_write> scales: array<f32>;
// gain * Q D of an orthogonal layer, rows of stride 4 (src/gpu/orthogonal.rs)
@group(0) @binding(5) var<storage, read_write> orthogonal: array<f32>;

fn units_in() -> u32 {
    return params.c_in * params.h_in * params.w_in;
}

fn units_out() -> u32 {
    return params.c_out * params.h_out * params.w_out;
}

// ---------------------------------------------------------------------------
// Draws: the Philox streams, counter for counter as src/engine/cpu_blocks.rs

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
    let z = standard4(params.dist, rng_bits(seed_key(), STREAM_WEIGHT, params.network, params.layer, r, group));
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
        let z = standard4(params.dist, rng_bits(seed_key(), STREAM_BIAS, params.network, params.layer, 0u, c / 4u));
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

// `rows` rows of iid standard normals from `stream` at `layer`, at out_off.
@compute @workgroup_size(64)
fn draw_normal(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.units;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= n * params.rows) {
        return;
    }
    let r = idx / n;
    let i = idx % n;
    arena[params.out_off + idx] = normal4(rng_bits(seed_key(), params.stream, params.network, params.layer, r, i / 4u))[i % 4u];
}

// ---------------------------------------------------------------------------
// The layers: h = W x (+ b), and the adjoint W^T d

// Conv weight W[co][ci][ty][tx] (PyTorch's layout).
fn w_conv(co: u32, ci: u32, ty: u32, tx: u32) -> f32 {
    let k = params.kernel;
    return weights[params.w_off + ((co * params.c_in + ci) * k + ty) * k + tx];
}

// Transposed-conv weight W[ci][co][ty][tx] (PyTorch's layout).
fn w_convt(ci: u32, co: u32, ty: u32, tx: u32) -> f32 {
    let k = params.kernel;
    return weights[params.w_off + ((ci * params.c_out + co) * k + ty) * k + tx];
}

// The input coordinate a tap reads along one axis of size `size`: p + t - r,
// wrapped (circular) or -1 outside the image (zero padding).
fn tap_source(p: u32, t: u32, size: u32) -> i32 {
    let s = i32(p) + i32(t) - i32(params.kernel / 2u);
    if (params.padding == PAD_CIRCULAR) {
        return (s + i32(size)) % i32(size);
    }
    return select(-1, s, s >= 0 && s < i32(size));
}

// The output coordinate whose tap t reads input coordinate p: the inverse
// of tap_source, p - t + r (wrapped, or -1 outside).
fn tap_target(p: u32, t: u32, size: u32) -> i32 {
    let s = i32(p) - i32(t) + i32(params.kernel / 2u);
    if (params.padding == PAD_CIRCULAR) {
        return (s + i32(size)) % i32(size);
    }
    return select(-1, s, s >= 0 && s < i32(size));
}

// (W x)[co, y, x] = sum_ci sum_ty sum_tx W[co, ci, ty, tx] x[ci, y + ty - r, x + tx - r]
fn conv_forward(x_row: u32, o: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let co = o / (h * w);
    let y = (o / w) % h;
    let x = o % w;
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        let sy = tap_source(y, ty, h);
        if (sy < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            let sx = tap_source(x, tx, w);
            if (sx < 0) {
                continue;
            }
            // the tap's input position, then down the channels
            let at = x_row + u32(sy) * w + u32(sx);
            for (var ci = 0u; ci < params.c_in; ci++) {
                sum += w_conv(co, ci, ty, tx) * arena[at + ci * h * w];
            }
        }
    }
    return sum;
}

// (W^T d)[ci, y, x] = sum_co sum_ty sum_tx W[co, ci, ty, tx] d[co, y - ty + r, x - tx + r]
fn conv_adjoint(d_row: u32, i: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let ci = i / (h * w);
    let y = (i / w) % h;
    let x = i % w;
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        let oy = tap_target(y, ty, h);
        if (oy < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            let ox = tap_target(x, tx, w);
            if (ox < 0) {
                continue;
            }
            // the output position this tap feeds, then down the channels
            let at = d_row + u32(oy) * w + u32(ox);
            for (var co = 0u; co < params.c_out; co++) {
                sum += w_conv(co, ci, ty, tx) * arena[at + co * h * w];
            }
        }
    }
    return sum;
}

// (W x)[co, oy, ox] = sum_ci sum over taps with oy = s iy + ty, ox = s ix + tx
// of W[ci, co, ty, tx] x[ci, iy, ix]: each input position spreads a k x k
// patch at stride s, gathered here from the output's side.
fn conv_transpose_forward(x_row: u32, o: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let s = params.stride;
    let ho = params.h_out;
    let wo = params.w_out;
    let co = o / (ho * wo);
    let oy = (o / wo) % ho;
    let ox = o % wo;
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        if (ty > oy || (oy - ty) % s != 0u || (oy - ty) / s >= h) {
            continue;
        }
        let iy = (oy - ty) / s;
        for (var tx = 0u; tx < k; tx++) {
            if (tx > ox || (ox - tx) % s != 0u || (ox - tx) / s >= w) {
                continue;
            }
            let ix = (ox - tx) / s;
            for (var ci = 0u; ci < params.c_in; ci++) {
                sum += w_convt(ci, co, ty, tx) * arena[x_row + (ci * h + iy) * w + ix];
            }
        }
    }
    return sum;
}

// (W^T d)[ci, iy, ix] = sum_co sum_ty sum_tx W[ci, co, ty, tx] d[co, s iy + ty, s ix + tx]
fn conv_transpose_adjoint(d_row: u32, i: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let s = params.stride;
    let ho = params.h_out;
    let wo = params.w_out;
    let ci = i / (h * w);
    let iy = (i / w) % h;
    let ix = i % w;
    var sum = 0.0;
    for (var co = 0u; co < params.c_out; co++) {
        for (var ty = 0u; ty < k; ty++) {
            for (var tx = 0u; tx < k; tx++) {
                sum += w_convt(ci, co, ty, tx) * arena[d_row + (co * ho + s * iy + ty) * wo + s * ix + tx];
            }
        }
    }
    return sum;
}

// (W x)[o] = sum_j W[o, j] x[j]
fn dense_forward(x_row: u32, o: u32) -> f32 {
    let n = units_in();
    var sum = 0.0;
    for (var j = 0u; j < n; j++) {
        sum += weights[params.w_off + o * n + j] * arena[x_row + j];
    }
    return sum;
}

// (W^T d)[j] = sum_o W[o, j] d[o]
fn dense_adjoint(d_row: u32, j: u32) -> f32 {
    let n = units_in();
    var sum = 0.0;
    for (var o = 0u; o < units_out(); o++) {
        sum += weights[params.w_off + o * n + j] * arena[d_row + o];
    }
    return sum;
}

// out = W in (+ b[channel] with FLAG_BIAS) + offset, for `rows` rows.
@compute @workgroup_size(64)
fn linear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = units_out();
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * n) {
        return;
    }
    let r = idx / n;
    let o = idx % n;
    let x_row = params.in_off + r * units_in();
    var h = 0.0;
    switch params.kind {
        case KIND_DENSE: { h = dense_forward(x_row, o); }
        case KIND_CONV: { h = conv_forward(x_row, o); }
        default: { h = conv_transpose_forward(x_row, o); }
    }
    if ((params.flags & FLAG_BIAS) != 0u) {
        h += weights[params.b_off + o / (params.h_out * params.w_out)];
    }
    arena[params.out_off + idx] = h + params.offset;
}

// out = W^T in, for `rows` rows (rows of units_out() in, units_in() out).
@compute @workgroup_size(64)
fn linear_t(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = units_in();
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * n) {
        return;
    }
    let r = idx / n;
    let i = idx % n;
    let d_row = params.in_off + r * units_out();
    var v = 0.0;
    switch params.kind {
        case KIND_DENSE: { v = dense_adjoint(d_row, i); }
        case KIND_CONV: { v = conv_adjoint(d_row, i); }
        default: { v = conv_transpose_adjoint(d_row, i); }
    }
    arena[params.out_off + idx] = v;
}

// ---------------------------------------------------------------------------
// Elementwise: one invocation per entry of `rows` rows of `units`

// x = phi(h) - shift (the mean-preserving shift; 0 without it)
@compute @workgroup_size(64)
fn activate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    arena[params.out_off + idx] = phi(arena[params.in_off + idx]) - params.shift;
}

// out = in + alpha v (the residual sum x + alpha F(x))
@compute @workgroup_size(64)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    arena[params.out_off + idx] = arena[params.in_off + idx] + params.alpha * arena[params.v_off + idx];
}

// The saved row of entry idx: row r reads saved sample r mod B.
fn saved(off: u32, idx: u32) -> f32 {
    let n = params.units;
    return arena[off + ((idx / n) % params.batch) * n + idx % n];
}

// out = alpha phi'(h) in (phi' = 1 with FLAG_NO_DERIV); in place allowed.
@compute @workgroup_size(64)
fn mul_deriv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    var d = 1.0;
    if ((params.flags & FLAG_NO_DERIV) == 0u) {
        d = phi_deriv(saved(params.h_off, idx));
    }
    arena[params.out_off + idx] = params.alpha * d * arena[params.in_off + idx];
}

// v *= r, r = scales[scale_a] for rows < B, scales[scale_b] beyond; in place at out_off.
@compute @workgroup_size(64)
fn scale_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let r = select(scale_of(params.scale_b), scale_of(params.scale_a), idx / params.units < params.batch);
    arena[params.out_off + idx] *= r;
}

// Highway: y = T phi(hh) + (1 - T) x, T = sigmoid(g); x at in_off, g at
// g_off, hh at h_off (B rows).
@compute @workgroup_size(64)
fn highway_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let t = sigmoid(arena[params.g_off + idx]);
    let x = arena[params.in_off + idx];
    arena[params.out_off + idx] = t * phi(arena[params.h_off + idx]) + (1.0 - t) * x;
}

// Its derivative along t (in_off): (1 - T) t + T phi'(hh) (W_H t) + T (1 - T) (W_T t) (phi(hh) - x),
// W_H t at u_off, W_T t at v_off; saved g, hh, x.
@compute @workgroup_size(64)
fn highway_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let s = sigmoid(saved(params.g_off, idx));
    let hh = saved(params.h_off, idx);
    let x = saved(params.x_off, idx);
    let t = arena[params.in_off + idx];
    arena[params.out_off + idx] = (1.0 - s) * t + s * phi_deriv(hh) * arena[params.u_off + idx]
        + s * (1.0 - s) * arena[params.v_off + idx] * (phi(hh) - x);
}

// The gradient d (in_off) split onto the two pre-activations:
// to_h = T phi'(hh) d (u_off), to_g = T (1 - T) (phi(hh) - x) d (v_off).
@compute @workgroup_size(64)
fn highway_back_split(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let s = sigmoid(saved(params.g_off, idx));
    let hh = saved(params.h_off, idx);
    let x = saved(params.x_off, idx);
    let d = arena[params.in_off + idx];
    arena[params.u_off + idx] = s * phi_deriv(hh) * d;
    arena[params.v_off + idx] = s * (1.0 - s) * (phi(hh) - x) * d;
}

// The gradient with respect to the block input: (1 - T) d + W_H^T to_h + W_T^T to_g,
// the two products at u_off and v_off.
@compute @workgroup_size(64)
fn highway_back_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let s = sigmoid(saved(params.g_off, idx));
    arena[params.out_off + idx] = (1.0 - s) * arena[params.in_off + idx] + arena[params.u_off + idx] + arena[params.v_off + idx];
}

// ---------------------------------------------------------------------------
// Moments: fixed-order partial sums, added on the host in f64

// The pair record of rows (2p, 2p+1) over one block of units: pre at in_off,
// post at u_off (the same rows for residual and highway blocks), phi'(pre)
// = 0 counted with FLAG_ZEROS. Dispatched as (blocks, pairs).
@compute @workgroup_size(256)
fn pair_moments(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.units;
    let block = wid.x;
    let pair = wid.y;
    let row_a = (2u * pair) * n;
    let row_b = (2u * pair + 1u) * n;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var zeros = 0.0;
    var diff2 = 0.0;
    let count_zeros = (params.flags & FLAG_ZEROS) != 0u;
    let end = min((block + 1u) * UNITS_PER_BLOCK, n);
    for (var i = block * UNITS_PER_BLOCK + lid.x; i < end; i += REDUCE_WG) {
        let ha = arena[params.in_off + row_a + i];
        let hb = arena[params.in_off + row_b + i];
        let xa = arena[params.u_off + row_a + i];
        let xb = arena[params.u_off + row_b + i];
        if (count_zeros) {
            zeros += select(0.0, 1.0, phi_deriv(ha) == 0.0) + select(0.0, 1.0, phi_deriv(hb) == 0.0);
        }
        let ha2 = ha * ha;
        let hb2 = hb * hb;
        acc0 += vec4<f32>(ha2, hb2, ha * hb, xa * xa);
        acc1 += vec4<f32>(xb * xb, ha + hb, ha2 * ha2 + hb2 * hb2, xa + xb);
        diff2 += (ha - hb) * (ha - hb);
    }
    write_pair_record(lid.x, pair, block, acc0, acc1, zeros, diff2);
}

// Sum of squares of each row (in_off) over one block of units. Dispatched
// as (blocks, rows).
@compute @workgroup_size(256)
fn row_norms(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.units;
    let block = wid.x;
    let r = wid.y;
    var sum = 0.0;
    let end = min((block + 1u) * UNITS_PER_BLOCK, n);
    for (var i = block * UNITS_PER_BLOCK + lid.x; i < end; i += REDUCE_WG) {
        let v = arena[params.in_off + r * n + i];
        sum += v * v;
    }
    let total = group_sum4(lid.x, vec4<f32>(sum, 0.0, 0.0, 0.0)).x;
    if (lid.x == 0u) {
        records[params.rec_off + r * params.block_stride + block] = total;
    }
}

// One workgroup: r = 1/sqrt(mean v^2) of the rows just recorded (post x of
// the pair records, or the row records with FLAG_ROW_RECORDS), or 1 without
// FLAG_RENORM or when the mean is 0 or not finite; to scales[scale_out].
@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
    let blocks = unit_blocks(params.units);
    let by_row = (params.flags & FLAG_ROW_RECORDS) != 0u;
    let units = select(params.rows / 2u, params.rows, by_row);
    var sum = 0.0;
    for (var j = lid.x; j < units * blocks; j += REDUCE_WG) {
        let u = j / blocks;
        let block = j % blocks;
        if (by_row) {
            sum += records[params.rec_off + u * params.block_stride + block];
        } else {
            let base = params.rec_off + (u * params.block_stride + block) * RECORD;
            sum += records[base + 3u] + records[base + 4u];
        }
    }
    let total = group_sum4(lid.x, vec4<f32>(sum, 0.0, 0.0, 0.0)).x;
    if (lid.x == 0u) {
        let mean_sq = total / (f32(params.rows) * f32(params.units));
        var r = 1.0;
        if ((params.flags & FLAG_RENORM) != 0u && mean_sq > 0.0 && mean_sq < 3.0e38) {
            r = inverseSqrt(mean_sq);
        }
        scales[params.scale_out] = r;
    }
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
