// h = r * (W x) + b for the whole batch. Register-tiled: each invocation owns
// a 4 x 4 block of outputs (4 units x 4 samples) and reads W and x rows as
// vec4 (rows are padded to a multiple of 4 with zeros), 16 dot products per
// 8 vec4 loads. Rows past the edge are clamped for loading and not stored.
// r is the renormalisation factor of the previous layer (1 unless the stack
// is homogeneous). Needs params.wgsl.

@group(0) @binding(1) var<storage, read_write> weights4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> x_prev4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;
@group(0) @binding(7) var<storage, read_write> scale: array<f32>;

const PRODUCT_WG: u32 = 64u;

@compute @workgroup_size(64)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_out = params.n_out;
    let batch = params.batch;
    let k4 = stride(params.n_in) / 4u;
    let unit_blocks = (n_out + 3u) / 4u;
    let idx = flat_index(gid, nwg, PRODUCT_WG);
    if (idx >= unit_blocks * ((batch + 3u) / 4u)) {
        return;
    }
    // neighbouring invocations take neighbouring units and share the x rows
    let u0 = 4u * (idx % unit_blocks);
    let s0 = 4u * (idx / unit_blocks);
    let w0 = min(u0, n_out - 1u) * k4;
    let w1 = min(u0 + 1u, n_out - 1u) * k4;
    let w2 = min(u0 + 2u, n_out - 1u) * k4;
    let w3 = min(u0 + 3u, n_out - 1u) * k4;
    let x0 = min(s0, batch - 1u) * k4;
    let x1 = min(s0 + 1u, batch - 1u) * k4;
    let x2 = min(s0 + 2u, batch - 1u) * k4;
    let x3 = min(s0 + 3u, batch - 1u) * k4;
    // acc_j[i]: unit u0 + i, sample s0 + j
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let wa = weights4[w0 + k];
        let wb = weights4[w1 + k];
        let wc = weights4[w2 + k];
        let wd = weights4[w3 + k];
        let xa = x_prev4[x0 + k];
        let xb = x_prev4[x1 + k];
        let xc = x_prev4[x2 + k];
        let xd = x_prev4[x3 + k];
        acc0 += vec4<f32>(dot(wa, xa), dot(wb, xa), dot(wc, xa), dot(wd, xa));
        acc1 += vec4<f32>(dot(wa, xb), dot(wb, xb), dot(wc, xb), dot(wd, xb));
        acc2 += vec4<f32>(dot(wa, xc), dot(wb, xc), dot(wc, xc), dot(wd, xc));
        acc3 += vec4<f32>(dot(wa, xd), dot(wb, xd), dot(wc, xd), dot(wd, xd));
    }
    let r = scale[0];
    let row = stride(n_out);
    var b = vec4<f32>(0.0);
    if (params.b_scale != 0.0) {
        b = vec4<f32>(bias[min(u0, n_out - 1u)], bias[min(u0 + 1u, n_out - 1u)], bias[min(u0 + 2u, n_out - 1u)], bias[min(u0 + 3u, n_out - 1u)]);
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        if (s0 + j < batch) {
            let out = r * acc[j] + b;
            for (var i = 0u; i < 4u; i++) {
                if (u0 + i < n_out) {
                    h[(s0 + j) * row + u0 + i] = out[i];
                }
            }
        }
    }
}
