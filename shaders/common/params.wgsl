// The dense and gram engines' per-dispatch parameters, bound at a dynamic
// offset; `struct Params` and the constants (FLAG_*, NO_SCALE, ...) are
// generated from src/gpu/abi.rs and prepended (src/gpu/pipelines.rs).

@group(0) @binding(0) var<uniform> params: Params;

// Row stride: n rounded up to a multiple of 4, so rows can be read as vec4.
fn stride(n: u32) -> u32 {
    return (n + 3u) & ~3u;
}
