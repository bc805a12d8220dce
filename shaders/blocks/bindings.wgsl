// The block engine's bindings and row helpers (src/gpu/blocks/): the
// kernels of architecture files (dense, convolution and transposed-
// convolution layers, residual and highway blocks, the mean-preserving
// shift), split by kind of pass: draws (draw.wgsl), the layers
// (linear.wgsl), elementwise maps (elementwise.wgsl) and moments
// (moments.wgsl). Plain kernels, one invocation per output value, each a
// direct transcription of its sum; the CPU twin is src/sim/cpu/blocks.rs.
// Needs index.wgsl, scale_of.wgsl, philox.wgsl, special.wgsl,
// activation.wgsl, reduce_tree.wgsl, pair_record.wgsl, moments.wgsl.
//
// Rows (one per sample, tangent or backward vector) live in `arena`, each
// `units` floats long, channel-major ([c][y][x]) for images, at offsets
// given per dispatch. Saved forward state (h, the gate, the block input) has
// B rows; kernels over 2B rows (the backward rows with the vector-Jacobian
// rows) read it at row r mod B.

// `struct BlockParams` and the constants (KIND_*, PAD_*, FLAG_*, NO_SCALE,
// BLOCKS_WG, UNITS_PER_SLICE, RECORD) are generated from src/gpu/abi.rs
// and prepended (src/gpu/pipelines.rs).
const REDUCE_WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: BlockParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> arena: array<f32>;
@group(0) @binding(3) var<storage, read_write> records: array<f32>;
@group(0) @binding(4) var<storage, read_write> scales: array<f32>;
// gain * Q D of an orthogonal layer, rows of stride 4 (src/gpu/orthogonal.rs)
@group(0) @binding(5) var<storage, read_write> orthogonal: array<f32>;

fn units_in() -> u32 {
    return params.c_in * params.h_in * params.w_in;
}

fn units_out() -> u32 {
    return params.c_out * params.h_out * params.w_out;
}

// The saved row of entry idx: row r reads saved sample r mod B.
fn saved(off: u32, idx: u32) -> f32 {
    let n = params.units;
    return arena[off + ((idx / n) % params.batch) * n + idx % n];
}
