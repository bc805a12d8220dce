// The two products of a layer, register-tiled: each invocation owns a 4 x 4
// block of outputs and reads rows as vec4 (rows are padded to a multiple of
// 4 with zeros). Rows past the edge are clamped for loading and not stored.
// Needs params.wgsl.
//
//   product:   out = s * (W in) + b    (s = scales[scale_a]: the previous
//              layer's renormalisation), `rows` input rows of stride(n_in),
//              output rows of stride(n_out), to act or store
//   product_t: out = W^T in            `rows` input rows of stride(n_out),
//              output rows of stride(n_in), to act

@group(0) @binding(1) var<storage, read_write> weights4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> act4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> store4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> scales: array<f32>;

const PRODUCT_WG: u32 = 64u;

fn put4(out_off4: u32, i4: u32, v: vec4<f32>) {
    if ((params.flags & FLAG_OUT_STORE) != 0u) {
        store4[out_off4 + i4] = v;
    } else {
        act4[out_off4 + i4] = v;
    }
}

@compute @workgroup_size(64)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_out = params.n_out;
    let rows = params.rows;
    let k4 = stride(params.n_in) / 4u;
    let unit_blocks = (n_out + 3u) / 4u;
    let idx = flat_index(gid, nwg, PRODUCT_WG);
    if (idx >= unit_blocks * ((rows + 3u) / 4u)) {
        return;
    }
    // neighbouring invocations take neighbouring units and share the input rows
    let u0 = 4u * (idx % unit_blocks);
    let s0 = 4u * (idx / unit_blocks);
    let w0 = min(u0, n_out - 1u) * k4;
    let w1 = min(u0 + 1u, n_out - 1u) * k4;
    let w2 = min(u0 + 2u, n_out - 1u) * k4;
    let w3 = min(u0 + 3u, n_out - 1u) * k4;
    let in4 = params.in_off / 4u;
    let x0 = in4 + min(s0, rows - 1u) * k4;
    let x1 = in4 + min(s0 + 1u, rows - 1u) * k4;
    let x2 = in4 + min(s0 + 2u, rows - 1u) * k4;
    let x3 = in4 + min(s0 + 3u, rows - 1u) * k4;
    // acc_j[i]: unit u0 + i, row s0 + j
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let wa = weights4[w0 + k];
        let wb = weights4[w1 + k];
        let wc = weights4[w2 + k];
        let wd = weights4[w3 + k];
        let xa = act4[x0 + k];
        let xb = act4[x1 + k];
        let xc = act4[x2 + k];
        let xd = act4[x3 + k];
        acc0 += vec4<f32>(dot(wa, xa), dot(wb, xa), dot(wc, xa), dot(wd, xa));
        acc1 += vec4<f32>(dot(wa, xb), dot(wb, xb), dot(wc, xb), dot(wd, xb));
        acc2 += vec4<f32>(dot(wa, xc), dot(wb, xc), dot(wc, xc), dot(wd, xc));
        acc3 += vec4<f32>(dot(wa, xd), dot(wb, xd), dot(wc, xd), dot(wd, xd));
    }
    var s = 1.0;
    if (params.scale_a != NO_SCALE) {
        s = scales[params.scale_a];
    }
    // units past n_out are the row's padding: zero
    let valid = vec4<f32>(vec4<bool>(u0 < n_out, u0 + 1u < n_out, u0 + 2u < n_out, u0 + 3u < n_out));
    var b = vec4<f32>(0.0);
    if (params.b_scale != 0.0) {
        b = vec4<f32>(bias[min(u0, n_out - 1u)], bias[min(u0 + 1u, n_out - 1u)], bias[min(u0 + 2u, n_out - 1u)], bias[min(u0 + 3u, n_out - 1u)]);
    }
    let out4 = params.out_off / 4u;
    let row4 = stride(n_out) / 4u;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        if (s0 + j < rows) {
            put4(out4, (s0 + j) * row4 + u0 / 4u, valid * (s * acc[j] + b));
        }
    }
}

// out[r][j] = sum_i W[i][j] in[r][i]: each invocation owns 4 input units j
// (one vec4 of a W row) for 4 rows, and walks i four at a time.
@compute @workgroup_size(64)
fn product_t(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_out = params.n_out;
    let rows = params.rows;
    let j4s = stride(params.n_in) / 4u;
    let i4s = stride(n_out) / 4u;
    let idx = flat_index(gid, nwg, PRODUCT_WG);
    if (idx >= j4s * ((rows + 3u) / 4u)) {
        return;
    }
    let j4 = idx % j4s;
    let s0 = 4u * (idx / j4s);
    let in4 = params.in_off / 4u;
    let d0 = in4 + min(s0, rows - 1u) * i4s;
    let d1 = in4 + min(s0 + 1u, rows - 1u) * i4s;
    let d2 = in4 + min(s0 + 2u, rows - 1u) * i4s;
    let d3 = in4 + min(s0 + 3u, rows - 1u) * i4s;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var i4 = 0u; i4 < i4s; i4++) {
        // rows of W past n_out meet zeros in the padding of `in`
        let i = 4u * i4;
        let wa = weights4[min(i, n_out - 1u) * j4s + j4];
        let wb = weights4[min(i + 1u, n_out - 1u) * j4s + j4];
        let wc = weights4[min(i + 2u, n_out - 1u) * j4s + j4];
        let wd = weights4[min(i + 3u, n_out - 1u) * j4s + j4];
        let da = act4[d0 + i4];
        let db = act4[d1 + i4];
        let dc = act4[d2 + i4];
        let dd = act4[d3 + i4];
        acc0 += da.x * wa + da.y * wb + da.z * wc + da.w * wd;
        acc1 += db.x * wa + db.y * wb + db.z * wc + db.w * wd;
        acc2 += dc.x * wa + dc.y * wb + dc.z * wc + dc.w * wd;
        acc3 += dd.x * wa + dd.y * wb + dd.z * wc + dd.w * wd;
    }
    let out4 = params.out_off / 4u;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        if (s0 + j < rows) {
            act4[out4 + (s0 + j) * j4s + j4] = acc[j];
        }
    }
}
