// The benchmark's arithmetic ceiling: independent chains of fused
// multiply-adds, no memory traffic but one store per invocation (so the
// work is not optimised away). 12 independent chains per invocation (three
// vec4) keep the FMA units busy through their latency.

struct FmaParams {
    iterations: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> fma_params: FmaParams;
@group(0) @binding(1) var<storage, read_write> fma_out: array<f32>;

// 2 * 12 * 4 * iterations flops per invocation (FMA_PER_ITERATION in src/bench/mod.rs).
@compute @workgroup_size(64)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = vec4<f32>(0.999);
    let c = vec4<f32>(f32(gid.x) * 1e-9);
    var a0 = c;
    var a1 = c + 1.0;
    var a2 = c + 2.0;
    for (var i = 0u; i < fma_params.iterations; i++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
    }
    let s = a0 + a1 + a2;
    fma_out[gid.x % 256u] = s.x + s.y + s.z + s.w;
}
