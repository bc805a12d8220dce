// The block engine's normalisations (bindings.wgsl): layer-norm, rms-norm
// and batch-norm forward, and their Jacobian J a = inv (a - mean(a) - y
// mean(a y)) per group (rms-norm without mean(a)), which is symmetric, so
// the tangents and the backward rows both apply it. The CPU twin is
// `normalise` and `norm_jacobian` in src/sim/cpu/block_steps.rs.
//
// A group is what the statistics run over: for layer-norm and rms-norm one
// row (an input, all its units); for batch-norm one channel of one set of B
// rows (its positions over the batch). Rows beyond B (the vector-Jacobian
// rows) form the second set. The group statistics are sums in a fixed order
// (lanes stride the members, then the tree of reduce_tree.wgsl), one
// workgroup per group.

fn is_batch_norm() -> bool {
    return params.kind == KIND_BATCH_NORM;
}

fn positions() -> u32 {
    return params.h_out * params.w_out;
}

// Members of one group.
fn norm_members() -> u32 {
    if (is_batch_norm()) {
        return params.batch * positions();
    }
    return params.units;
}

// The row entry of member k of group g.
fn norm_member(g: u32, k: u32) -> u32 {
    let n = params.units;
    if (is_batch_norm()) {
        let row_set = g / params.c_out;
        let channel = g % params.c_out;
        let row = row_set * params.batch + k / positions();
        return row * n + channel * positions() + k % positions();
    }
    return g * n + k;
}

// The group of row entry idx.
fn norm_group(idx: u32) -> u32 {
    let n = params.units;
    if (is_batch_norm()) {
        let row_set = (idx / n) / params.batch;
        return row_set * params.c_out + (idx % n) / positions();
    }
    return idx / n;
}

// The forward group of row entry idx of a set of rows over saved state
// (row r reads saved sample r mod B).
fn saved_group(idx: u32) -> u32 {
    let n = params.units;
    if (is_batch_norm()) {
        return (idx % n) / positions();
    }
    return (idx / n) % params.batch;
}

// Per group of the B rows at in_off: the mean (0 for rms-norm) and
// 1/sqrt(var + eps) (rms-norm: of mean x^2 + eps), two passes, to
// arena[out_off + 2 g], arena[out_off + 2 g + 1]. Dispatched as (groups, 1, 1).
@compute @workgroup_size(256)
fn norm_stats(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.x;
    let m = norm_members();
    var mean = 0.0;
    if (params.kind != KIND_RMS_NORM) {
        var sum = 0.0;
        for (var k = lid.x; k < m; k += REDUCE_WG) {
            sum += arena[params.in_off + norm_member(g, k)];
        }
        mean = group_sum4(lid.x, vec4<f32>(sum, 0.0, 0.0, 0.0)).x / f32(m);
    }
    var dev2 = 0.0;
    for (var k = lid.x; k < m; k += REDUCE_WG) {
        let d = arena[params.in_off + norm_member(g, k)] - mean;
        dev2 += d * d;
    }
    let variance = group_sum4(lid.x, vec4<f32>(dev2, 0.0, 0.0, 0.0)).x / f32(m);
    if (lid.x == 0u) {
        arena[params.out_off + 2u * g] = mean;
        arena[params.out_off + 2u * g + 1u] = 1.0 / sqrt(variance + params.eps);
    }
}

// y = (x - mean) inv over the B rows: x at in_off, the statistics at
// u_off, y to out_off.
@compute @workgroup_size(64)
fn norm_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let g = norm_group(idx);
    let mean = arena[params.u_off + 2u * g];
    let inv = arena[params.u_off + 2u * g + 1u];
    arena[params.out_off + idx] = (arena[params.in_off + idx] - mean) * inv;
}

// Per group of the rows a at in_off: mean(a) and mean(a y), y the saved
// output at h_off, to arena[v_off + 2 g], arena[v_off + 2 g + 1].
// Dispatched as (groups, 1, 1).
@compute @workgroup_size(256)
fn norm_jacobian_sums(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.x;
    let m = norm_members();
    var sum_a = 0.0;
    var sum_ay = 0.0;
    for (var k = lid.x; k < m; k += REDUCE_WG) {
        let idx = norm_member(g, k);
        let a = arena[params.in_off + idx];
        sum_a += a;
        sum_ay += a * saved(params.h_off, idx);
    }
    let total = group_sum4(lid.x, vec4<f32>(sum_a, sum_ay, 0.0, 0.0));
    if (lid.x == 0u) {
        arena[params.v_off + 2u * g] = total.x / f32(m);
        arena[params.v_off + 2u * g + 1u] = total.y / f32(m);
    }
}

// J a = inv (a - mean(a) - y mean(a y)): a at in_off, y saved at h_off,
// its statistics at u_off, the group sums at v_off; to out_off.
@compute @workgroup_size(64)
fn norm_jacobian(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let g = norm_group(idx);
    let inv = arena[params.u_off + 2u * saved_group(idx) + 1u];
    var mean_a = arena[params.v_off + 2u * g];
    if (params.kind == KIND_RMS_NORM) {
        mean_a = 0.0;
    }
    let mean_ay = arena[params.v_off + 2u * g + 1u];
    let y = saved(params.h_off, idx);
    arena[params.out_off + idx] = inv * (arena[params.in_off + idx] - mean_a - y * mean_ay);
}
