// Per-dispatch parameters, bound at a dynamic offset (src/gpu/dense.rs).
// Rows (one per input sample, tangent or backward vector) live in the `act`
// and `store` arenas at the offsets given here, with stride(n) floats per
// row and zeros in the padding; W is n_out rows of stride(n_in).

struct Params {
    n_in: u32,
    n_out: u32,
    batch: u32,       // B: inputs per network
    layer: u32,
    network: u32,
    seed_lo: u32,
    seed_hi: u32,
    w_dist: u32,
    w_scale: f32,     // std, or half-width for the uniform (WeightLaw::scale)
    b_scale: f32,     // 0: no bias
    b_dist: u32,
    flags: u32,       // FLAG_*
    in_off: u32,      // input rows (act)
    out_off: u32,     // output rows (act, or store with FLAG_OUT_STORE)
    aux_off: u32,     // pre-activations h for phi' (act, or store with FLAG_AUX_STORE)
    rec_off: u32,     // first record (records)
    rows: u32,        // rows of a row-wise kernel
    block_stride: u32,// records reserved per row (or pair) for blocks of units
    scale_a: u32,     // index into `scales` of the factor for rows < batch (NO_SCALE: 1)
    scale_b: u32,     // the same for rows >= batch
    scale_out: u32,   // where finalize writes its factor
    ckpt_off: u32,    // stats: also copy h to store here (NO_OFFSET: no)
    q0: f32,
    c0: f32,
    step: u32,        // orthogonal: the Householder step k
    cols: u32,        // gram engine: columns of a combination or cross Gram
    coef_a: u32,      // gram engine: offsets (in `weights`) of coefficient matrices
    coef_b: u32,
}

const FLAG_INPUT: u32 = 1u;        // row 0: pre = post = the input, phi = identity
const FLAG_RENORM: u32 = 2u;       // finalize: r = 1/sqrt(mean v^2) (else 1)
const FLAG_OUT_STORE: u32 = 4u;    // output rows go to `store`
const FLAG_AUX_STORE: u32 = 8u;    // h for phi' comes from `store`
const FLAG_NO_DERIV: u32 = 16u;    // phi' = 1 (the gradient with respect to the input)
const FLAG_ROW_RECORDS: u32 = 32u; // finalize: records are per-row sums, not pair records
const NO_SCALE: u32 = 0xffffffffu;
const NO_OFFSET: u32 = 0xffffffffu;

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
