// The benchmark's baseline: the textbook 16 x 16 shared-memory tiled
// product, h = W x for `rows` rows (each thread one output, tiles of x and
// W staged in workgroup memory). Kept only to give the engine's product
// kernel an in-run reference (src/bench/mod.rs). Rows are stride(n) floats.

struct NaiveParams {
    n_in: u32,
    n_out: u32,
    rows: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> naive: NaiveParams;
@group(0) @binding(1) var<storage, read> naive_w: array<f32>;
@group(0) @binding(2) var<storage, read> naive_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> naive_h: array<f32>;

const TILE: u32 = 16u;

var<workgroup> tile_x: array<array<f32, 16>, 16>;
var<workgroup> tile_w: array<array<f32, 16>, 16>;

fn row_stride(n: u32) -> u32 {
    return (n + 3u) & ~3u;
}

// One thread per output (row r, unit u); dispatched as (n_out/16, rows/16).
@compute @workgroup_size(16, 16)
fn naive_product(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = naive.n_in;
    let s = row_stride(n);
    let u = wid.x * TILE + lid.x;
    let r = wid.y * TILE + lid.y;
    // the rows of W this tile stages: the workgroup's units
    let wu = wid.x * TILE + lid.y;
    var acc = 0.0;
    for (var k0 = 0u; k0 < n; k0 += TILE) {
        let k = k0 + lid.x;
        var xv = 0.0;
        if (r < naive.rows && k < n) {
            xv = naive_x[r * s + k];
        }
        var wv = 0.0;
        if (wu < naive.n_out && k < n) {
            wv = naive_w[wu * s + k];
        }
        tile_x[lid.y][lid.x] = xv;
        tile_w[lid.y][lid.x] = wv;
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk++) {
            acc += tile_x[lid.y][kk] * tile_w[lid.x][kk];
        }
        workgroupBarrier();
    }
    if (u < naive.n_out && r < naive.rows) {
        naive_h[r * row_stride(naive.n_out) + u] = acc;
    }
}
