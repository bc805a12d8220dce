// The NTK through an architecture file (--ntk; the CPU twin is
// src/sim/cpu/block_ntk.rs): per-example parameter gradients of a layer
// from its input rows x (x_off) and the gradient d (in_off) with respect to
// its pre-activation, and the B x B Gram matrices of rows that Theta's
// terms are made of (src/gpu/blocks/ntk.rs says which).

// Per row, the gradient of a convolution's weights (stride, padding as the
// forward pass), in the weights' layout, to out_off:
//   conv:           G[co, ci, ty, tx] = sum_{y, x} d[co, y, x] x[ci, s y + ty - r, s x + tx - r]
//   conv-transpose: G[ci, co, ty, tx] = sum_{iy, ix} x[ci, iy, ix] d[co, s iy + ty, s ix + tx]
// One invocation per row and weight.
@compute @workgroup_size(64)
fn weight_grads(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
    let ho = params.h_out;
    let wo = params.w_out;
    let x_row = params.x_off + r * units_in();
    let d_row = params.in_off + r * units_out();
    var sum = 0.0;
    if (params.kind == KIND_CONV) {
        let co = e / (params.c_in * kk);
        let ci = (e / kk) % params.c_in;
        for (var y = 0u; y < ho; y++) {
            let sy = strided_source(y, ty, h);
            if (sy < 0) {
                continue;
            }
            for (var x = 0u; x < wo; x++) {
                let sx = strided_source(x, tx, w);
                if (sx < 0) {
                    continue;
                }
                sum += arena[d_row + (co * ho + y) * wo + x] * arena[x_row + (ci * h + u32(sy)) * w + u32(sx)];
            }
        }
    } else {
        let s = params.stride;
        let ci = e / (params.c_out * kk);
        let co = (e / kk) % params.c_out;
        for (var iy = 0u; iy < h; iy++) {
            for (var ix = 0u; ix < w; ix++) {
                sum += arena[x_row + (ci * h + iy) * w + ix] * arena[d_row + (co * ho + s * iy + ty) * wo + s * ix + tx];
            }
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
    let gain = (params.flags & FLAG_GAIN) != 0u;
    var sum = 0.0;
    for (var p = 0u; p < positions; p++) {
        let y = select(1.0, arena[params.h_off + at + p], gain);
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
