// The block engine's layers (bindings.wgsl): h = W x (+ b) and the adjoint
// W^T d, for dense, convolution and transposed-convolution layers.

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

// The coordinate a tap pairs with along one axis of size `size`: the
// input p + t - r that output p reads (forward), or the output p - t + r
// that input p feeds (adjoint); wrapped (circular) or -1 outside the image
// (zero padding).
fn tap(p: u32, t: u32, size: u32, adjoint: bool) -> i32 {
    let d = i32(t) - i32(params.kernel / 2u);
    let s = select(i32(p) + d, i32(p) - d, adjoint);
    if (params.padding == PAD_CIRCULAR) {
        return (s + i32(size)) % i32(size);
    }
    return select(-1, s, s >= 0 && s < i32(size));
}

// Forward: (W x)[co, y, x] = sum_ci sum_ty sum_tx W[co, ci, ty, tx] x[ci, y + ty - r, x + tx - r];
// adjoint: (W^T d)[ci, y, x] = sum_co sum_ty sum_tx W[co, ci, ty, tx] d[co, y - ty + r, x - tx + r].
// Entry `e` (channel c, position y, x) of the result for the row at `row`.
fn conv(row: u32, e: u32, adjoint: bool) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let c = e / (h * w);
    let y = (e / w) % h;
    let x = e % w;
    let channels = select(params.c_in, params.c_out, adjoint);
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        let sy = tap(y, ty, h, adjoint);
        if (sy < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            let sx = tap(x, tx, w, adjoint);
            if (sx < 0) {
                continue;
            }
            // the position the tap pairs with, then down its channels j
            let at = row + u32(sy) * w + u32(sx);
            for (var j = 0u; j < channels; j++) {
                let weight = w_conv(select(c, j, adjoint), select(j, c, adjoint), ty, tx);
                sum += weight * arena[at + j * h * w];
            }
        }
    }
    return sum;
}

// The tiled stride-1 convolution (conv_tiled, conv_tiled_t): one
// invocation computes CONV_TILE_C channels at CONV_TILE_X positions along x
// of one row, so that each input value loaded serves CONV_TILE_C products
// and each weight CONV_TILE_X (a quarter of a load per multiply-add against
// the plain kernel's two). The sums run over the same terms in the same
// order as conv() (taps, then channels): only the grouping of work into
// invocations differs. Forward: channels c0.. of W x; adjoint (`adjoint`):
// input channels c0.. of W^T d.
struct ConvTile {
    // channels c0 .. c0 + 3 and c0 + 4 .. c0 + 7: one column (4 positions) each
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

fn conv_tile(row: u32, c0: u32, y: u32, x0: u32, adjoint: bool) -> ConvTile {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let channels = select(params.c_in, params.c_out, adjoint);
    let results = select(params.c_out, params.c_in, adjoint);
    var t: ConvTile;
    for (var ty = 0u; ty < k; ty++) {
        let sy = tap(y, ty, h, adjoint);
        if (sy < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            // the input columns of the tile's 4 positions (-1: padding)
            let sx = vec4<i32>(
                tap(x0, tx, w, adjoint),
                tap(x0 + 1u, tx, w, adjoint),
                tap(x0 + 2u, tx, w, adjoint),
                tap(x0 + 3u, tx, w, adjoint),
            );
            let in_tile = vec4<u32>(x0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(w);
            let inside = select(vec4<bool>(false), sx >= vec4<i32>(0), in_tile);
            let col = vec4<u32>(select(vec4<i32>(0), sx, inside));
            let at = row + u32(sy) * w;
            // W[co][ci][ty][tx]: the result channel c strides by c_in k^2
            // forward (c = co) and by k^2 in the adjoint (c = ci)
            let kk = k * k;
            let c_stride = select(params.c_in * kk, kk, adjoint);
            let j_stride = select(kk, params.c_in * kk, adjoint);
            let tap_at = params.w_off + ty * k + tx;
            for (var j = 0u; j < channels; j++) {
                let base = at + j * h * w;
                let v = select(
                    vec4<f32>(0.0),
                    vec4<f32>(arena[base + col.x], arena[base + col.y], arena[base + col.z], arena[base + col.w]),
                    inside,
                );
                let w_at = tap_at + j * j_stride;
                for (var cc = 0u; cc < CONV_TILE_C; cc++) {
                    let c = min(c0 + cc, results - 1u);
                    let weight = weights[w_at + c * c_stride];
                    if (cc < 4u) {
                        t.lo[cc] += weight * v;
                    } else {
                        t.hi[cc - 4u] += weight * v;
                    }
                }
            }
        }
    }
    return t;
}

// Invocation idx of a tiled convolution over `rows` rows: its row, first
// channel, position y and first x, of `results` channels of h x w.
fn conv_tile_of(idx: u32, results: u32, h: u32, w: u32) -> vec4<u32> {
    let xs = (w + CONV_TILE_X - 1u) / CONV_TILE_X;
    let cs = (results + CONV_TILE_C - 1u) / CONV_TILE_C;
    let per_row = cs * h * xs;
    let r = idx / per_row;
    let rest = idx % per_row;
    return vec4<u32>(r, rest / (h * xs) * CONV_TILE_C, (rest / xs) % h, rest % xs * CONV_TILE_X);
}

// Writes the tile's entries that exist (channel < results, x < w), plus
// the bias (`bias`) and `offset`.
fn write_conv_tile(out_row: u32, t: ConvTile, c0: u32, y: u32, x0: u32, results: u32, bias: bool, offset: f32) {
    let h = params.h_out;
    let w = params.w_out;
    for (var cc = 0u; cc < CONV_TILE_C; cc++) {
        let c = c0 + cc;
        if (c >= results) {
            return;
        }
        var v = select(t.hi[cc % 4u], t.lo[cc % 4u], cc < 4u);
        if (bias) {
            v += weights[params.b_off + c];
        }
        for (var i = 0u; i < CONV_TILE_X; i++) {
            if (x0 + i < w) {
                arena[out_row + (c * h + y) * w + x0 + i] = v[i] + offset;
            }
        }
    }
}

// Invocation idx of a tiled stride-1 convolution: W x (+ b with FLAG_BIAS)
// + offset forward, W^T d with `adjoint` (rows of units_out() in,
// units_in() out).
fn conv_tiled_at(idx: u32, adjoint: bool) {
    let h = params.h_in;
    let w = params.w_in;
    let results = select(params.c_out, params.c_in, adjoint);
    let xs = (w + CONV_TILE_X - 1u) / CONV_TILE_X;
    let cs = (results + CONV_TILE_C - 1u) / CONV_TILE_C;
    if (idx >= params.rows * cs * h * xs) {
        return;
    }
    let at = conv_tile_of(idx, results, h, w);
    let row_in = params.in_off + at.x * select(units_in(), units_out(), adjoint);
    let t = conv_tile(row_in, at.y, at.z, at.w, adjoint);
    let bias = !adjoint && (params.flags & FLAG_BIAS) != 0u;
    let offset = select(params.offset, 0.0, adjoint);
    let row_out = params.out_off + at.x * select(units_out(), units_in(), adjoint);
    write_conv_tile(row_out, t, at.y, at.z, at.w, results, bias, offset);
}

@compute @workgroup_size(64)
fn conv_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_tiled_at(flat_index(gid, nwg, BLOCKS_WG), false);
}

@compute @workgroup_size(64)
fn conv_tiled_t(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    conv_tiled_at(flat_index(gid, nwg, BLOCKS_WG), true);
}

// A convolution at stride s > 1: output (y, x) reads input (s y + ty - r,
// s x + tx - r), wrapped (circular: the sides are multiples of s) or cut
// at the border (zero padding).
fn strided_source(o: u32, t: u32, size: u32) -> i32 {
    let p = i32(params.stride * o + t) - i32(params.kernel / 2u);
    if (params.padding == PAD_CIRCULAR) {
        return (p + i32(size)) % i32(size);
    }
    return select(-1, p, p >= 0 && p < i32(size));
}

// (W x)[co, y, x] = sum_ci sum_ty sum_tx W[co, ci, ty, tx] x[ci, s y + ty - r, s x + tx - r]
fn conv_strided_forward(x_row: u32, o: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let ho = params.h_out;
    let wo = params.w_out;
    let co = o / (ho * wo);
    let y = (o / wo) % ho;
    let x = o % wo;
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        let sy = strided_source(y, ty, h);
        if (sy < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            let sx = strided_source(x, tx, w);
            if (sx < 0) {
                continue;
            }
            for (var ci = 0u; ci < params.c_in; ci++) {
                sum += w_conv(co, ci, ty, tx) * arena[x_row + (ci * h + u32(sy)) * w + u32(sx)];
            }
        }
    }
    return sum;
}

// The output coordinate whose tap t reads input coordinate i along an axis
// (i = s o + t - r, wrapped for circular padding), or -1.
fn strided_target(i: u32, t: u32, size: u32, out_size: u32) -> i32 {
    var p = i32(i) - i32(t) + i32(params.kernel / 2u);
    if (params.padding == PAD_CIRCULAR) {
        p = (p + i32(size)) % i32(size);
    }
    let s = i32(params.stride);
    if (p < 0 || p % s != 0 || p / s >= i32(out_size)) {
        return -1;
    }
    return p / s;
}

// (W^T d)[ci, iy, ix] = sum_co sum over taps and outputs with s y + ty - r = iy, s x + tx - r = ix
fn conv_strided_adjoint(d_row: u32, i: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let k = params.kernel;
    let ho = params.h_out;
    let wo = params.w_out;
    let ci = i / (h * w);
    let iy = (i / w) % h;
    let ix = i % w;
    var sum = 0.0;
    for (var ty = 0u; ty < k; ty++) {
        let y = strided_target(iy, ty, h, ho);
        if (y < 0) {
            continue;
        }
        for (var tx = 0u; tx < k; tx++) {
            let x = strided_target(ix, tx, w, wo);
            if (x < 0) {
                continue;
            }
            for (var co = 0u; co < params.c_out; co++) {
                sum += w_conv(co, ci, ty, tx) * arena[d_row + (co * ho + u32(y)) * wo + u32(x)];
            }
        }
    }
    return sum;
}

// Average pooling: the mean of channel c over the kh x kw window at
// (s y, s x) (kh = kernel, kw = kernel_w).
fn pool_forward(x_row: u32, o: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let ho = params.h_out;
    let wo = params.w_out;
    let c = o / (ho * wo);
    let y = (o / wo) % ho;
    let x = o % wo;
    var sum = 0.0;
    for (var ty = 0u; ty < params.kernel; ty++) {
        for (var tx = 0u; tx < params.kernel_w; tx++) {
            sum += arena[x_row + (c * h + params.stride * y + ty) * w + params.stride * x + tx];
        }
    }
    return sum / f32(params.kernel * params.kernel_w);
}

// Its adjoint: input (c, iy, ix) gets d / (kh kw) from every window that
// holds it.
fn pool_adjoint(d_row: u32, i: u32) -> f32 {
    let h = params.h_in;
    let w = params.w_in;
    let ho = params.h_out;
    let wo = params.w_out;
    let s = params.stride;
    let c = i / (h * w);
    let iy = (i / w) % h;
    let ix = i % w;
    var sum = 0.0;
    for (var ty = 0u; ty < params.kernel; ty++) {
        if (ty > iy || (iy - ty) % s != 0u || (iy - ty) / s >= ho) {
            continue;
        }
        for (var tx = 0u; tx < params.kernel_w; tx++) {
            if (tx > ix || (ix - tx) % s != 0u || (ix - tx) / s >= wo) {
                continue;
            }
            sum += arena[d_row + (c * ho + (iy - ty) / s) * wo + (ix - tx) / s];
        }
    }
    return sum / f32(params.kernel * params.kernel_w);
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
        case KIND_CONV: {
            if (params.stride == 1u) {
                h = conv(x_row, o, false);
            } else {
                h = conv_strided_forward(x_row, o);
            }
        }
        case KIND_AVG_POOL: { h = pool_forward(x_row, o); }
        case KIND_SCALE: { h = weights[params.w_off] * arena[x_row + o]; }
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
        case KIND_CONV: {
            if (params.stride == 1u) {
                v = conv(d_row, i, true);
            } else {
                v = conv_strided_adjoint(d_row, i);
            }
        }
        case KIND_AVG_POOL: { v = pool_adjoint(d_row, i); }
        case KIND_SCALE: { v = weights[params.w_off] * arena[d_row + i]; }
        default: { v = conv_transpose_adjoint(d_row, i); }
    }
    arena[params.out_off + idx] = v;
}
