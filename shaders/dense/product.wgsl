// The two products of a layer, register-tiled. Needs params.wgsl,
// philox.wgsl, special.wgsl and one of share_subgroup.wgsl, share_none.wgsl.
//
//   forward (TRANSPOSED false): out = s * (W in) + b, `rows` input rows of
//       stride(n_in), output rows of stride(n_out) to act (or store with
//       FLAG_OUT_STORE); s = scales[scale_a], the previous layer's
//       renormalisation
//   TRANSPOSED: out = W^T in, input rows of stride(n_out), output rows of
//       stride(n_in) to act; the host passes n_in and n_out swapped
//   GRAM: the Gram matrix of the `rows` input rows (n_in units each, n_out
//       = rows): W is those rows themselves, the reduction runs over slice
//       wid.z of UNITS_PER_SLICE units only, and entry (a, b) goes to
//       records[rec_off + (a rows + b) slice_stride + slice], as the host's
//       f64 sum over slices expects (for the weight gradient and the NTK;
//       the tiled product does these B^2 n products far faster than a
//       kernel of their own)
//
// Each invocation owns 4 outputs (one vec4 of an output row) for 16 rows
// (64 with WIDE) and walks the reduction 4 at a time: per step it takes a
// 4 x 4 block of W (4 rows of W, one vec4 each) and multiplies it by a vec4
// of each of its rows' inputs, 4 rows at a time as a mat4x4 (one expression
// per 4 x 4 x 4 block, which Naga does not need to unroll).
//
// The rows belong to the workgroup, so all its invocations read the same
// inputs. With SHARE > 1, lane l of each subgroup loads the inputs of step
// kb + l and the others read them with a shuffle: on a CPU adapter a load
// is a loop over the lanes, a shuffle nearly free. W comes from the weights
// buffer, or with FROM_RNG straight from the Philox stream (the very numbers
// gen_weights would write), which on a CPU adapter is cheaper than loading
// them. The host picks these constants (src/gpu/kernels.rs).
//
// No runtime bounds checks (the host guarantees the shapes): every load is
// clamped into the rows the host allocated and every store is guarded.

override TRANSPOSED: bool = false;
override FROM_RNG: bool = false;
override WIDE: bool = false;
override GRAM: bool = false;
override SHARE: u32 = 1u;
override PRODUCT_WG: u32 = 64u;

@group(0) @binding(1) var<storage, read_write> weights4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> act4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> store4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> records: array<f32>;
@group(0) @binding(6) var<storage, read_write> scales: array<f32>;

// W is `w_rows` rows of `w_cols` entries (n_out x n_in of the layer). The
// host swaps n_in and n_out in the parameters of the transposed product, so
// that the kernel's reduction length is always params.n_in and its output
// length params.n_out (deriving the loop bound from an override-dependent
// select made lavapipe's compiled loop 15-50x slower).
fn w_rows() -> u32 {
    return select(params.n_out, params.n_in, TRANSPOSED);
}

fn w_cols() -> u32 {
    return select(params.n_in, params.n_out, TRANSPOSED);
}

// Entries 4c..4c+3 of row i of W; zero past its columns, as gen_weights
// writes them.
fn w_row4(i: u32, c: u32) -> vec4<f32> {
    if (GRAM) {
        return act4[params.in_off / 4u + min(i, w_rows() - 1u) * (stride(w_cols()) / 4u) + c];
    }
    if (FROM_RNG) {
        let b = rng_bits(seed_key(), STREAM_WEIGHT, params.network, params.layer, i, c);
        let w = params.w_scale * standard4(params.w_dist, params.w_trunc, b);
        let j = 4u * c + vec4<u32>(0u, 1u, 2u, 3u);
        return select(vec4<f32>(0.0), w, j < vec4<u32>(w_cols()));
    }
    return weights4[min(i, w_rows() - 1u) * (stride(w_cols()) / 4u) + c];
}

// The 4 x 4 block of W for output group o and reduction step k, as the
// matrix that maps 4 inputs to 4 outputs.
fn w_block(o: u32, k: u32) -> mat4x4<f32> {
    if (TRANSPOSED) {
        // outputs are W's columns 4o..4o+3, inputs its rows 4k..4k+3
        let i = 4u * k;
        return mat4x4<f32>(w_row4(i, o), w_row4(i + 1u, o), w_row4(i + 2u, o), w_row4(i + 3u, o));
    }
    let last = params.n_out - 1u;
    let u = min(4u * o, last);
    let m = mat4x4<f32>(w_row4(u, k), w_row4(min(u + 1u, last), k), w_row4(min(u + 2u, last), k),
        w_row4(min(u + 3u, last), k));
    return transpose(m);
}

// Inputs of 16 rows (4 groups of 4, one row per column), or their products.
struct Rows16 {
    a: mat4x4<f32>,
    b: mat4x4<f32>,
    c: mat4x4<f32>,
    d: mat4x4<f32>,
}

fn in4(row: u32, k: u32, k4: u32, live: bool) -> vec4<f32> {
    let at = params.in_off / 4u + min(row, params.rows - 1u) * k4 + min(k, k4 - 1u);
    return select(vec4<f32>(0.0), act4[at], live);
}

fn in_rows4(first: u32, k: u32, k4: u32, live: bool) -> mat4x4<f32> {
    return mat4x4<f32>(in4(first, k, k4, live), in4(first + 1u, k, k4, live),
        in4(first + 2u, k, k4, live), in4(first + 3u, k, k4, live));
}

fn in_rows16(first: u32, k: u32, k4: u32, live: bool) -> Rows16 {
    return Rows16(in_rows4(first, k, k4, live), in_rows4(first + 4u, k, k4, live),
        in_rows4(first + 8u, k, k4, live), in_rows4(first + 12u, k, k4, live));
}

fn shared4(m: mat4x4<f32>, from_lane: u32) -> mat4x4<f32> {
    return mat4x4<f32>(share(m[0], from_lane), share(m[1], from_lane), share(m[2], from_lane),
        share(m[3], from_lane));
}

// acc += w * (the inputs lane `from_lane` loaded)
fn accumulate16(acc: Rows16, w: mat4x4<f32>, x: Rows16, from_lane: u32) -> Rows16 {
    return Rows16(acc.a + w * shared4(x.a, from_lane), acc.b + w * shared4(x.b, from_lane),
        acc.c + w * shared4(x.c, from_lane), acc.d + w * shared4(x.d, from_lane));
}

fn put4(at: u32, v: vec4<f32>) {
    if ((params.flags & FLAG_OUT_STORE) != 0u) {
        store4[at] = v;
    } else {
        act4[at] = v;
    }
}

// Rows first..first+15 of output group o.
fn write16(acc: Rows16, first: u32, o: u32, s: f32, b: vec4<f32>, valid: vec4<bool>, row4: u32) {
    let m = array<mat4x4<f32>, 4>(acc.a, acc.b, acc.c, acc.d);
    for (var g = 0u; g < 4u; g++) {
        for (var i = 0u; i < 4u; i++) {
            let r = first + 4u * g + i;
            if (r < params.rows) {
                put4(params.out_off / 4u + r * row4 + o, select(vec4<f32>(0.0), s * m[g][i] + b, valid));
            }
        }
    }
}

// GRAM: entries (r, 4o..4o+3) of the Gram matrix for rows r = first..first+15.
fn record16(acc: Rows16, first: u32, o: u32, slice: u32) {
    let m = array<mat4x4<f32>, 4>(acc.a, acc.b, acc.c, acc.d);
    for (var g = 0u; g < 4u; g++) {
        for (var i = 0u; i < 4u; i++) {
            let r = first + 4u * g + i;
            for (var k = 0u; k < 4u; k++) {
                let b = 4u * o + k;
                if (r < params.rows && b < params.rows) {
                    records[params.rec_off + (r * params.rows + b) * params.slice_stride + slice] = m[g][i][k];
                }
            }
        }
    }
}

@compute @workgroup_size(PRODUCT_WG)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, lane: Lane) {
    // reduction length and outputs per row (swapped by the host when TRANSPOSED)
    let n_k = params.n_in;
    let n_o = params.n_out;
    let k4 = stride(n_k) / 4u;
    // the reduction's steps: all of them, or one slice's (GRAM)
    let slice_steps = UNITS_PER_SLICE / 4u;
    let k_begin = select(0u, wid.z * slice_steps, GRAM);
    let k_end = select(k4, min(k4, k_begin + slice_steps), GRAM);
    let o = gid.x;
    let first = select(16u, 64u, WIDE) * wid.y;
    var acc0 = Rows16();
    var acc1 = Rows16();
    var acc2 = Rows16();
    var acc3 = Rows16();
    // no early return: every lane of a subgroup takes part in the shuffles
    let my_step = lane.index % SHARE;
    for (var kb = k_begin; kb < k_end; kb += SHARE) {
        let live = kb + my_step < k_end;
        let x0 = in_rows16(first, kb + my_step, k4, live);
        var x1 = Rows16();
        var x2 = Rows16();
        var x3 = Rows16();
        if (WIDE) {
            x1 = in_rows16(first + 16u, kb + my_step, k4, live);
            x2 = in_rows16(first + 32u, kb + my_step, k4, live);
            x3 = in_rows16(first + 48u, kb + my_step, k4, live);
        }
        for (var l = 0u; l < SHARE; l++) {
            let w = w_block(o, min(kb + l, k_end - 1u));
            acc0 = accumulate16(acc0, w, x0, l);
            if (WIDE) {
                acc1 = accumulate16(acc1, w, x1, l);
                acc2 = accumulate16(acc2, w, x2, l);
                acc3 = accumulate16(acc3, w, x3, l);
            }
        }
    }
    if (4u * o >= n_o) {
        return;
    }
    if (GRAM) {
        record16(acc0, first, o, wid.z);
        if (WIDE) {
            record16(acc1, first + 16u, o, wid.z);
            record16(acc2, first + 32u, o, wid.z);
            record16(acc3, first + 48u, o, wid.z);
        }
        return;
    }
    var s = 1.0;
    var b = vec4<f32>(0.0);
    if (!TRANSPOSED) {
        if (params.scale_a != NO_SCALE) {
            s = scales[params.scale_a];
        }
        if (params.b_scale != 0.0) {
            b = bias4(o);
        }
    }
    // outputs past n_o are the row's padding: zero
    let valid = 4u * o + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n_o);
    let row4 = stride(n_o) / 4u;
    write16(acc0, first, o, s, b, valid, row4);
    if (WIDE) {
        write16(acc1, first + 16u, o, s, b, valid, row4);
        write16(acc2, first + 32u, o, s, b, valid, row4);
        write16(acc3, first + 48u, o, s, b, valid, row4);
    }
}

// b_{4o..4o+3}: from the bias stream (as gen_bias draws it) or the buffer.
fn bias4(o: u32) -> vec4<f32> {
    if (FROM_RNG) {
        let bits = rng_bits(seed_key(), STREAM_BIAS, params.network, params.layer, 0u, o);
        return params.b_scale * standard4(params.b_dist, params.b_trunc, bits);
    }
    let last = params.n_out - 1u;
    let u = 4u * o;
    return vec4<f32>(bias[min(u, last)], bias[min(u + 1u, last)], bias[min(u + 2u, last)], bias[min(u + 3u, last)]);
}
