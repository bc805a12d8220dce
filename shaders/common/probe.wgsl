// Small kernels that expose the shared WGSL (Philox, activations) to tests.
// Needs philox.wgsl, special.wgsl, activation.wgsl.

@group(0) @binding(0) var<storage, read> probe_in: array<u32>;
@group(0) @binding(1) var<storage, read_write> probe_out: array<u32>;

// in: (ctr.x, ctr.y, ctr.z, ctr.w, key.x, key.y) per case; out: 4 words.
@compute @workgroup_size(64)
fn probe_philox(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (6u * i + 5u >= arrayLength(&probe_in)) {
        return;
    }
    let ctr = vec4<u32>(probe_in[6u * i], probe_in[6u * i + 1u], probe_in[6u * i + 2u], probe_in[6u * i + 3u]);
    let key = vec2<u32>(probe_in[6u * i + 4u], probe_in[6u * i + 5u]);
    let c = philox4x32_10(ctr, key);
    probe_out[4u * i] = c.x;
    probe_out[4u * i + 1u] = c.y;
    probe_out[4u * i + 2u] = c.z;
    probe_out[4u * i + 3u] = c.w;
}

// in: z as f32 bits; out: (phi(z), phi'(z)) as f32 bits.
@compute @workgroup_size(64)
fn probe_activation(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&probe_in)) {
        return;
    }
    let z = bitcast<f32>(probe_in[i]);
    probe_out[2u * i] = bitcast<u32>(phi(z));
    probe_out[2u * i + 1u] = bitcast<u32>(phi_deriv(z));
}

// in: the key (2 words), then per case (dist, trunc as f32 bits, ctr.x,
// ctr.y, ctr.z, ctr.w);
// out: standard4 of the case as f32 bits.
@compute @workgroup_size(64)
fn probe_draws(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let cases = (arrayLength(&probe_in) - 2u) / 6u;
    if (i >= cases) {
        return;
    }
    let key = vec2<u32>(probe_in[0], probe_in[1]);
    let base = 2u + 6u * i;
    let ctr = vec4<u32>(probe_in[base + 2u], probe_in[base + 3u], probe_in[base + 4u], probe_in[base + 5u]);
    let v = standard4(probe_in[base], bitcast<f32>(probe_in[base + 1u]), philox4x32_10(ctr, key));
    for (var e = 0u; e < 4u; e++) {
        probe_out[4u * i + e] = bitcast<u32>(v[e]);
    }
}
