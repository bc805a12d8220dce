// The NTK through an architecture file (--ntk; the CPU twin is
// src/sim/cpu/block_ntk.rs): per-row parameter gradients of a layer from
// its input rows x (x_off, saved: row r reads sample r mod B) and the
// gradient d (in_off) with respect to its pre-activation, their sums over
// sets of B rows where a batch-norm couples the inputs, and the B x B Gram
// matrices of rows that Theta's terms are made of (src/gpu/blocks/ntk.rs
// says which).

// Per row, the gradient of a transposed convolution's weights, in the
// weights' layout, to out_off:
//   G[ci, co, ty, tx] = sum_{iy, ix} x[ci, iy, ix] d[co, s iy + ty, s ix + tx]
// One invocation per row and weight (a convolution's: weight_grads_tiled).
@compute @workgroup_size(64)
fn convt_weight_grads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = params.kernel;
    let kk = k * k;
    let len = params.c_in * params.c_out * kk;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * len) {
        return;
    }
    let r = idx / len;
    let e = idx % len;
    let ty = (e % kk) / k;
    let tx = e % k;
    let h = params.h_in;
    let w = params.w_in;
    let wo = params.w_out;
    let s = params.stride;
    // the saved input of the row's sample (sets of B rows share it)
    let x_row = params.x_off + (r % params.batch) * units_in();
    let d_row = params.in_off + r * units_out();
    let ci = e / (params.c_out * kk);
    let co = (e / kk) % params.c_out;
    var sum = 0.0;
    for (var iy = 0u; iy < h; iy++) {
        for (var ix = 0u; ix < w; ix++) {
            sum += arena[x_row + (ci * h + iy) * w + ix] * arena[d_row + (co * params.h_out + s * iy + ty) * wo + s * ix + tx];
        }
    }
    arena[params.out_off + idx] = sum;
}

// Per row and output channel (unit of a vector): the sum over the
// channel's positions of d, or of d y with FLAG_GAIN (y the normalisation's
// output at h_off): the gradients of per-channel biases and gains, to
// out_off (rows of c_out).
@compute @workgroup_size(64)
fn channel_grads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.c_out) {
        return;
    }
    let r = idx / params.c_out;
    let c = idx % params.c_out;
    let positions = params.h_out * params.w_out;
    let at = r * units_out() + c * positions;
    let y_at = (r % params.batch) * units_out() + c * positions;
    let gain = (params.flags & FLAG_GAIN) != 0u;
    var sum = 0.0;
    for (var p = 0u; p < positions; p++) {
        let y = select(1.0, arena[params.h_off + y_at + p], gain);
        sum += arena[params.in_off + at + p] * y;
    }
    arena[params.out_off + idx] = sum;
}

// The Gram matrix of `rows` rows of `units` at in_off: entry (a, b), a <=
// b, summed over one slice of units, to records[rec_off + (a rows + b)
// slice_stride + slice]. Dispatched as (slices, rows, rows).
@compute @workgroup_size(256)
fn row_gram(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let a = wid.y;
    let b = wid.z;
    if (b < a) {
        return;
    }
    let n = params.units;
    let slice = wid.x;
    var sum = 0.0;
    let end = min((slice + 1u) * UNITS_PER_SLICE, n);
    for (var i = slice * UNITS_PER_SLICE + lid.x; i < end; i += REDUCE_WG) {
        sum += arena[params.in_off + a * n + i] * arena[params.in_off + b * n + i];
    }
    write_row_record(lid.x, a * params.rows + b, slice, sum);
}

// Per row, the gradient of a convolution's weights (stride, padding as the
// forward pass), in the weights' layout, to out_off:
//   G[co, ci, ty, tx] = sum_{y, x} d[co, y, x] x[ci, s y + ty - r, s x + tx - r]
// tiled: one invocation forms 8 output channels by 4 input channels at one
// tap of one row, so that each position's 8 d values and 4 x values loaded
// serve 32 products; the 32 sums are two 4 x 4 matrices indexed by
// constants only (a CPU adapter keeps loop-indexed arrays in memory, and
// 128 sums do not fit its registers). Each weight's sum runs over the
// positions in order.
@compute @workgroup_size(64)
fn weight_grads_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = params.kernel;
    let kk = k * k;
    let co_tiles = (params.c_out + 7u) / 8u;
    let ci_tiles = (params.c_in + 3u) / 4u;
    let per_row = co_tiles * ci_tiles * kk;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * per_row) {
        return;
    }
    let r = idx / per_row;
    let t = idx % kk;
    let ci0 = 4u * ((idx / kk) % ci_tiles);
    let co0 = 8u * ((idx / (kk * ci_tiles)) % co_tiles);
    let ty = t / k;
    let tx = t % k;
    let h = params.h_in;
    let w = params.w_in;
    let ho = params.h_out;
    let wo = params.w_out;
    // the saved input of the row's sample (sets of B rows share it)
    let x_row = params.x_off + (r % params.batch) * units_in();
    let d_row = params.in_off + r * units_out();
    // channels past the last read the last one (their sums are not written)
    let ci = min(vec4<u32>(ci0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_in - 1u)) * (h * w);
    let last_co = vec4<u32>(params.c_out - 1u);
    let co = min(vec4<u32>(co0) + vec4<u32>(0u, 1u, 2u, 3u), last_co) * (ho * wo);
    let co_hi = min(vec4<u32>(co0) + vec4<u32>(4u, 5u, 6u, 7u), last_co) * (ho * wo);
    // column j: output channel co0 + j (lo) or co0 + 4 + j (hi), entry i: ci0 + i
    var lo = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var hi = lo;
    let circular = params.padding == PAD_CIRCULAR;
    let wi = i32(w);
    for (var y = 0u; y < ho; y++) {
        let sy = strided_source(y, ty, h);
        if (sy < 0) {
            continue;
        }
        // the source column s x + tx - r, stepped by s: strided_source's
        // value without its division (it stays within one wrap of [0, w))
        var step = i32(tx) - i32(k / 2u);
        for (var x = 0u; x < wo; x++) {
            var sx = step;
            step += i32(params.stride);
            if (circular) {
                sx = select(sx, sx + wi, sx < 0);
                sx = select(sx, sx - wi, sx >= wi);
            } else if (sx < 0 || sx >= wi) {
                continue;
            }
            let at = x_row + u32(sy) * w + u32(sx);
            let xs = vec4<f32>(arena[at + ci.x], arena[at + ci.y], arena[at + ci.z], arena[at + ci.w]);
            let p = d_row + y * wo + x;
            lo[0] += arena[p + co.x] * xs;
            lo[1] += arena[p + co.y] * xs;
            lo[2] += arena[p + co.z] * xs;
            lo[3] += arena[p + co.w] * xs;
            hi[0] += arena[p + co_hi.x] * xs;
            hi[1] += arena[p + co_hi.y] * xs;
            hi[2] += arena[p + co_hi.z] * xs;
            hi[3] += arena[p + co_hi.w] * xs;
        }
    }
    let len = params.c_out * params.c_in * kk;
    for (var j = 0u; j < 8u; j++) {
        let column = select(hi[j % 4u], lo[j % 4u], j < 4u);
        for (var i = 0u; i < 4u; i++) {
            if (co0 + j < params.c_out && ci0 + i < params.c_in) {
                arena[params.out_off + r * len + ((co0 + j) * params.c_in + ci0 + i) * kk + t] = column[i];
            }
        }
    }
}

// weight_grads_tiled for the common 3 x 3, stride-1 convolution: one
// invocation forms 4 output by 4 input channels at the 3 taps of one kernel
// row ty. Along an output row the input columns x - 1, x, x + 1 the three
// taps read slide by one, so each position loads 4 d values and one new
// column of 4 x values for 48 products (weight_grads_tiled: 12 loads for
// 32). The sums are weight_grads_tiled's, in its order: each runs over the
// positions in order, a padded position adding 0.
// Input channels ci of column sx (strided_source's: -1 in the padding) of
// source row sy.
fn x_column(x_row: u32, sy: u32, sx: i32, ci: vec4<u32>) -> vec4<f32> {
    if (sx < 0) {
        return vec4<f32>(0.0);
    }
    let at = x_row + sy * params.w_in + u32(sx);
    return vec4<f32>(arena[at + ci.x], arena[at + ci.y], arena[at + ci.z], arena[at + ci.w]);
}

@compute @workgroup_size(64)
fn weight_grads_3x3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let co_tiles = (params.c_out + 3u) / 4u;
    let ci_tiles = (params.c_in + 3u) / 4u;
    let per_row = co_tiles * ci_tiles * 3u;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * per_row) {
        return;
    }
    let r = idx / per_row;
    let ty = idx % 3u;
    let ci0 = 4u * ((idx / 3u) % ci_tiles);
    let co0 = 4u * ((idx / (3u * ci_tiles)) % co_tiles);
    let h = params.h_in;
    let ho = params.h_out;
    let wo = params.w_out;
    let x_row = params.x_off + (r % params.batch) * units_in();
    let d_row = params.in_off + r * units_out();
    // channels past the last read the last one (their sums are not written)
    let ci = min(vec4<u32>(ci0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_in - 1u)) * (h * params.w_in);
    let co = min(vec4<u32>(co0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.c_out - 1u)) * (ho * wo);
    // t0, t1, t2: taps tx = 0, 1, 2; column j output channel co0 + j, entry i input ci0 + i
    let zero = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var t0 = zero;
    var t1 = zero;
    var t2 = zero;
    for (var y = 0u; y < ho; y++) {
        let sy = strided_source(y, ty, h);
        if (sy < 0) {
            continue;
        }
        let w = params.w_in;
        var left = x_column(x_row, u32(sy), strided_source(0u, 0u, w), ci);
        var mid = x_column(x_row, u32(sy), strided_source(0u, 1u, w), ci);
        for (var x = 0u; x < wo; x++) {
            let right = x_column(x_row, u32(sy), strided_source(x, 2u, w), ci);
            let p = d_row + y * wo + x;
            let d = vec4<f32>(arena[p + co.x], arena[p + co.y], arena[p + co.z], arena[p + co.w]);
            t0[0] += d.x * left;
            t0[1] += d.y * left;
            t0[2] += d.z * left;
            t0[3] += d.w * left;
            t1[0] += d.x * mid;
            t1[1] += d.y * mid;
            t1[2] += d.z * mid;
            t1[3] += d.w * mid;
            t2[0] += d.x * right;
            t2[1] += d.y * right;
            t2[2] += d.z * right;
            t2[3] += d.w * right;
            left = mid;
            mid = right;
        }
    }
    let len = params.c_out * params.c_in * 9u;
    for (var j = 0u; j < 4u; j++) {
        for (var i = 0u; i < 4u; i++) {
            if (co0 + j < params.c_out && ci0 + i < params.c_in) {
                let at = params.out_off + r * len + ((co0 + j) * params.c_in + ci0 + i) * 9u + 3u * ty;
                arena[at] = t0[j][i];
                arena[at + 1u] = t1[j][i];
                arena[at + 2u] = t2[j][i];
            }
        }
    }
}

// Per row, a dense layer's weight gradient G[o, j] = d[o] x[j] (only for a
// standardised layer, whose term needs G itself), to out_off.
@compute @workgroup_size(64)
fn dense_weight_grads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_in = units_in();
    let len = units_out() * n_in;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * len) {
        return;
    }
    let r = idx / len;
    let e = idx % len;
    let d = arena[params.in_off + r * units_out() + e / n_in];
    arena[params.out_off + idx] = d * arena[params.x_off + (r % params.batch) * n_in + e % n_in];
}

// A standardised tensor W = s (V - mean V) per row (s = gain / std V at
// weights[u_off + row]): the gradients G at out_off (rows of `per_row` x
// tensor rows) taken back to the raw draws V in place, through the
// standardisation's Jacobian: s (G - mean G - u mean(u G)), u = W / gain
// (gain = w_scale). One workgroup per sample row and tensor row, dispatched
// as (tensor rows, rows).
@compute @workgroup_size(256)
fn standardise_grads(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.per_row;
    let tensor_rows = params.c_out;
    let g = params.out_off + (wid.y * tensor_rows + wid.x) * n;
    let w = params.w_off + wid.x * n;
    var sum = 0.0;
    var along = 0.0;
    for (var k = lid.x; k < n; k += REDUCE_WG) {
        sum += arena[g + k];
        along += arena[g + k] * weights[w + k] / params.w_scale;
    }
    let totals = group_sum4(lid.x, vec4<f32>(sum, along, 0.0, 0.0));
    let mean = totals.x / f32(n);
    let mean_u = totals.y / f32(n);
    let s = weights[params.u_off + wid.x];
    for (var k = lid.x; k < n; k += REDUCE_WG) {
        arena[g + k] = s * (arena[g + k] - mean - weights[w + k] / params.w_scale * mean_u);
    }
}

// Sets of B rows of `units` at in_off: out row a (at out_off) = the sum of
// set a's B rows, in row order.
@compute @workgroup_size(64)
fn sum_sets(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.units;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.batch * n) {
        return;
    }
    let a = idx / n;
    let e = idx % n;
    var sum = 0.0;
    for (var b = 0u; b < params.batch; b++) {
        sum += arena[params.in_off + (a * params.batch + b) * n + e];
    }
    arena[params.out_off + idx] = sum;
}

// B sets of B rows at out_off: row b of set a is zeroed unless b = a (the
// top of output a's backward pass: df_a/dx_L = w in row a only).
@compute @workgroup_size(64)
fn own_rows_only(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.units;
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * n) {
        return;
    }
    let r = idx / n;
    if (r / params.batch != r % params.batch) {
        arena[params.out_off + idx] = 0.0;
    }
}
