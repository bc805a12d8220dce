// Helpers of every engine's kernels: the seed, the flat invocation number,
// the slices of units of a row. Need a `params` with seed_lo and seed_hi
// (Params or BlockParams) and UNITS_PER_SLICE (the generated prelude).

fn seed_key() -> vec2<u32> {
    return vec2<u32>(params.seed_lo, params.seed_hi);
}

// Invocation number of a 1-D launch folded into 2-D (dispatch x <= 65535).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}

// Slices of UNITS_PER_SLICE units in a row of n (one record each).
fn unit_slices(n: u32) -> u32 {
    return (n + UNITS_PER_SLICE - 1u) / UNITS_PER_SLICE;
}
