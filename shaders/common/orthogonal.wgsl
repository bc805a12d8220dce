// Haar-random (semi-)orthogonal weights on the GPU: W = gain * Q D, where
// G = QR is the Householder QR of the Gaussian matrix the weight stream
// gives (G is n_out x n_in; its transpose when n_out < n_in, so the
// factored matrix A is tall, m x n) and D = sign(diag R) makes R's diagonal
// positive, which makes Q Haar-distributed (as PyTorch's orthogonal_).
// Cost O(m n^2) per layer, about 3n dispatches (one Householder step each).
// Needs params.wgsl, index.wgsl, philox.wgsl, special.wgsl.
//
// Workspace (column-major): A at 0 (m x n, overwritten by the Householder
// vectors), Q at m n, beta at 2 m n, alpha (R's diagonal) at 2 m n + n.

@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(7) var<storage, read_write> work: array<f32>;

var<workgroup> partial: array<f32, 256>;

fn tall() -> bool {
    return params.n_out >= params.n_in;
}
fn rows_m() -> u32 {
    return max(params.n_in, params.n_out);
}
fn cols_n() -> u32 {
    return min(params.n_in, params.n_out);
}
fn q_at() -> u32 {
    return rows_m() * cols_n();
}
fn beta_at() -> u32 {
    return 2u * rows_m() * cols_n();
}

fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var width = ORTHO_WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] += partial[lid + width];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// A from the weight stream (as normal weights would be drawn), and Q = [I; 0].
// One invocation per entry of A.
@compute @workgroup_size(256)
fn ortho_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = rows_m();
    let n = cols_n();
    let idx = flat_index(gid, nwg, ORTHO_WG);
    if (idx >= m * n) {
        return;
    }
    let col = idx / m;
    let row = idx % m;
    // G[i][j] with i < n_out, j < n_in; A = G (tall) or G^T
    var i = row;
    var j = col;
    if (!tall()) {
        i = col;
        j = row;
    }
    let z = normal4(rng_bits(seed_key(), STREAM_WEIGHT, params.network, params.layer, i, j / 4u));
    work[idx] = z[j % 4u];
    work[q_at() + idx] = select(0.0, 1.0, row == col);
}

// Step k, one workgroup: v = x - alpha e1 in place of A[k:, k], with
// alpha = -sign(x0) ||x||; beta = 2 / v^T v.
@compute @workgroup_size(256)
fn ortho_vector(@builtin(local_invocation_id) lid: vec3<u32>) {
    let m = rows_m();
    let k = params.step;
    let col = k * m;
    var s = 0.0;
    for (var i = k + lid.x; i < m; i += ORTHO_WG) {
        let x = work[col + i];
        s += x * x;
    }
    let norm2 = workgroup_sum(lid.x, s);
    if (lid.x == 0u) {
        let x0 = work[col + k];
        let alpha = -select(1.0, -1.0, x0 < 0.0) * sqrt(norm2);
        let v0 = x0 - alpha;
        let vv = norm2 - x0 * x0 + v0 * v0;
        work[col + k] = v0;
        work[beta_at() + k] = select(0.0, 2.0 / vv, vv > 0.0);
        work[beta_at() + cols_n() + k] = alpha;
    }
}

// Step k, one workgroup per column j > k of A: A[k:, j] -= beta v (v^T A[k:, j]).
@compute @workgroup_size(256)
fn ortho_apply(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m = rows_m();
    let k = params.step;
    let j = k + 1u + wid.x;
    let v = k * m;
    let a = j * m;
    var s = 0.0;
    for (var i = k + lid.x; i < m; i += ORTHO_WG) {
        s += work[v + i] * work[a + i];
    }
    let f = work[beta_at() + k] * workgroup_sum(lid.x, s);
    for (var i = k + lid.x; i < m; i += ORTHO_WG) {
        work[a + i] -= f * work[v + i];
    }
}

// Backward accumulation, step k (from n-1 down to 0), one workgroup per
// column j >= k of Q: Q[k:, j] -= beta v (v^T Q[k:, j]).
@compute @workgroup_size(256)
fn ortho_accumulate(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let m = rows_m();
    let k = params.step;
    let j = k + wid.x;
    let v = k * m;
    let q = q_at() + j * m;
    var s = 0.0;
    for (var i = k + lid.x; i < m; i += ORTHO_WG) {
        s += work[v + i] * work[q + i];
    }
    let f = work[beta_at() + k] * workgroup_sum(lid.x, s);
    for (var i = k + lid.x; i < m; i += ORTHO_WG) {
        work[q + i] -= f * work[v + i];
    }
}

// W = gain * Q D (or its transpose), row-major with zero padding. One
// invocation per entry of W's padded rows.
@compute @workgroup_size(256)
fn ortho_write(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = stride(params.n_in);
    let idx = flat_index(gid, nwg, ORTHO_WG);
    if (idx >= params.n_out * row) {
        return;
    }
    let i = idx / row;
    let j = idx % row;
    if (j >= params.n_in) {
        weights[idx] = 0.0;
        return;
    }
    let m = rows_m();
    // entry (r, c) of Q: W[i][j] = Q[i][j] (tall) or Q[j][i]
    var r = i;
    var c = j;
    if (!tall()) {
        r = j;
        c = i;
    }
    let sign = select(1.0, -1.0, work[beta_at() + cols_n() + c] < 0.0);
    weights[idx] = params.w_scale * sign * work[q_at() + c * m + r];
}
