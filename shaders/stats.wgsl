// x = phi(h), and the per-layer moments: each workgroup reduces one pair of
// samples over one block of units into a record of partial sums, in a fixed
// order (per-invocation serial sums, then a tree), so results are
// deterministic. The host adds the records in f64.
// Needs params.wgsl, bindings.wgsl, special.wgsl, activation.wgsl.

const STATS_WG: u32 = 256u;
const UNITS_PER_BLOCK: u32 = 4096u;
// Record layout, one per (slot, pair, block); src/gpu/dense.rs reads it.
const RECORD: u32 = 10u;
// 0: sum h_a^2   1: sum h_b^2   2: sum h_a h_b   3: sum x_a^2   4: sum x_b^2
// 5: sum h       6: sum h^4     7: sum x         8: count phi'(h) = 0   9: unused

var<workgroup> red: array<array<f32, 10>, 256>;

fn record_base(slot: u32, pair: u32, block: u32) -> u32 {
    return ((slot * (params.batch / 2u) + pair) * params.block_stride + block) * RECORD;
}

fn unit_blocks() -> u32 {
    return (params.n_out + UNITS_PER_BLOCK - 1u) / UNITS_PER_BLOCK;
}

@compute @workgroup_size(256)
fn stats(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let block = wid.x;
    let pair = wid.y;
    let row_a = (2u * pair) * stride(n);
    let row_b = (2u * pair + 1u) * stride(n);
    let is_input = (params.flags & FLAG_INPUT) != 0u;
    var acc: array<f32, 10>;
    for (var k = 0u; k < RECORD; k++) {
        acc[k] = 0.0;
    }
    let end = min((block + 1u) * UNITS_PER_BLOCK, n);
    // the row padding of x stays zero (the product reads it as vec4)
    if (block == 0u && lid.x < stride(n) - n) {
        x_next[row_a + n + lid.x] = 0.0;
        x_next[row_b + n + lid.x] = 0.0;
    }
    for (var i = block * UNITS_PER_BLOCK + lid.x; i < end; i += STATS_WG) {
        let ha = h[row_a + i];
        let hb = h[row_b + i];
        var xa = ha;
        var xb = hb;
        if (!is_input) {
            xa = phi(ha);
            xb = phi(hb);
            acc[8] += select(0.0, 1.0, phi_deriv(ha) == 0.0) + select(0.0, 1.0, phi_deriv(hb) == 0.0);
        }
        x_next[row_a + i] = xa;
        x_next[row_b + i] = xb;
        acc[0] += ha * ha;
        acc[1] += hb * hb;
        acc[2] += ha * hb;
        acc[3] += xa * xa;
        acc[4] += xb * xb;
        acc[5] += ha + hb;
        let ha2 = ha * ha;
        let hb2 = hb * hb;
        acc[6] += ha2 * ha2 + hb2 * hb2;
        acc[7] += xa + xb;
    }
    for (var k = 0u; k < RECORD; k++) {
        red[lid.x][k] = acc[k];
    }
    workgroupBarrier();
    for (var stride = STATS_WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            for (var k = 0u; k < RECORD; k++) {
                red[lid.x][k] += red[lid.x + stride][k];
            }
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        let base = record_base(params.slot, pair, block);
        for (var k = 0u; k < RECORD; k++) {
            partials[base + k] = red[0][k];
        }
    }
}

// One workgroup: the renormalisation factor r = 1 / sqrt(mean x^2) of this
// layer (1 unless FLAG_RENORM), stored for the next product and, after the
// records, for the host, which carries log r in f64.
var<workgroup> red_q: array<f32, 256>;

@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
    let blocks = unit_blocks();
    var sum = 0.0;
    for (var j = lid.x; j < (params.batch / 2u) * blocks; j += STATS_WG) {
        let base = record_base(params.slot, j / blocks, j % blocks);
        sum += partials[base + 3u] + partials[base + 4u];
    }
    red_q[lid.x] = sum;
    workgroupBarrier();
    for (var stride = STATS_WG / 2u; stride > 0u; stride /= 2u) {
        if (lid.x < stride) {
            red_q[lid.x] += red_q[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        let mean_sq = red_q[0] / (f32(params.batch) * f32(params.n_out));
        var r = 1.0;
        let renorm = (params.flags & FLAG_RENORM) != 0u;
        // a dead layer (0) or an overflow (inf, NaN) keeps r = 1; the host reports it
        if (renorm && mean_sq > 0.0 && mean_sq < 3.0e38) {
            r = inverseSqrt(mean_sq);
        }
        scale[0] = r;
        scale[1u + params.slot] = r;
    }
}
