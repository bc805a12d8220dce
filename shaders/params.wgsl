// Per-layer parameters, bound at a dynamic offset (src/gpu/dense.rs).
// Activations are sample-major with rows padded to a multiple of 4 (zeros in
// the padding): x[b * stride(n) + i]; W is n_out rows of stride(n_in).

struct Params {
    n_in: u32,
    n_out: u32,
    batch: u32,
    layer: u32,
    network: u32,
    seed_lo: u32,
    seed_hi: u32,
    w_dist: u32,
    w_scale: f32,    // std, or half-width for the uniform (WeightLaw::scale)
    b_scale: f32,    // 0: no bias
    b_dist: u32,
    slot: u32,       // this layer's place in the chunk's statistics
    flags: u32,      // FLAG_*
    block_stride: u32, // statistics records per pair reserved in a slot
    q0: f32,
    c0: f32,
}

const FLAG_INPUT: u32 = 1u;     // row 0: pre = post = the input, phi = identity
const FLAG_RENORM: u32 = 2u;    // homogeneous stack: renormalise, carry the scale

@group(0) @binding(0) var<uniform> params: Params;

// Row stride: n rounded up to a multiple of 4, so rows can be read as vec4.
fn stride(n: u32) -> u32 {
    return (n + 3u) & ~3u;
}

fn seed_key() -> vec2<u32> {
    return vec2<u32>(params.seed_lo, params.seed_hi);
}

// Invocation number of a 1-D launch folded into 2-D (dispatch x <= 65535).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}
