// The storage buffers of the engine's bind group, as scalar arrays (the
// product kernels read some of them as vec4; see product.wgsl).

@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> store: array<f32>;
@group(0) @binding(5) var<storage, read_write> records: array<f32>;
@group(0) @binding(6) var<storage, read_write> scales: array<f32>;

// h for phi': from act or store.
fn aux(i: u32) -> f32 {
    if ((params.flags & FLAG_AUX_STORE) != 0u) {
        return store[params.aux_off + i];
    }
    return act[params.aux_off + i];
}

fn write_out(i: u32, v: f32) {
    if ((params.flags & FLAG_OUT_STORE) != 0u) {
        store[params.out_off + i] = v;
    } else {
        act[params.out_off + i] = v;
    }
}
