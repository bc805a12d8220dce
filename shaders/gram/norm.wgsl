// The gram engine's normalisation layers (src/gpu/gram/): h_l = norm(x_{l-1})
// on the rows the engine holds (B rows of stride(n) floats, one per input),
// without weights. layer-norm and rms-norm normalise each row over its n
// units, batch-norm each unit over the B rows (training mode, the biased
// variance, as PyTorch's first forward pass):
//   y = (x - mean) * inv,  inv = 1 / sqrt(var + eps)   (rms-norm: mean = 0,
//   var = mean x^2),
// and the backward pass's adjoint (J is symmetric):
//   J^T d = inv (d - mean(d) - y mean(y d))   (rms-norm: without mean(d)),
// as the CPU reference's `normalise` and `norm_jacobian`.
// x is read at aux_off (act, or store with FLAG_AUX_STORE) as phi(h) of the
// layer below, or as it is with FLAG_INPUT (the forward pass's x, or the
// input row); y and J^T d are written at out_off (act, or store with
// FLAG_OUT_STORE), padding set to 0; d is read at in_off (act), and J^T d is
// multiplied by scales[scale_a] unless NO_SCALE (the tangents' factor r_t,
// which the rows W t of a dense layer carry in their coefficients). The kind is
// params.norm_kind (KIND_LAYER_NORM, KIND_RMS_NORM, KIND_BATCH_NORM), eps
// params.norm_eps. Every sum runs in a fixed order, the mean first and then
// the squares about it, so that a large mean does not cancel the variance.
// Needs params.wgsl, index.wgsl, bindings.wgsl, scale_of.wgsl, activation.wgsl and
// reduce_tree.wgsl (the row kernels' workgroup is 256 invocations, not a subgroup).

override REDUCE_WG: u32 = 256u;
// The row kernels' workgroup (the tree's REDUCE_WG: src/gpu/gram/mod.rs
// builds this module with the tree over 256 invocations).
const ROW_WG: u32 = 256u;

fn norm_input(i: u32) -> f32 {
    let v = aux(i);
    if ((params.flags & FLAG_INPUT) != 0u) {
        return v;
    }
    return phi(v);
}

fn norm_centres() -> bool {
    return params.norm_kind != KIND_RMS_NORM;
}

// A row is swept by a workgroup of ROW_WG invocations, 4 units an
// iteration: llvmpipe ends an invocation's loops silently after 65,536
// iterations in all (gallivm's loop limit), so a row of n units costs each
// invocation n / (4 ROW_WG) iterations a sweep (up to 4 sweeps: width
// 16.7 million at most, which GramGpu::new checks). An earlier version
// swept with one subgroup (8 invocations on lavapipe): layer-norm rows
// wider than 175,000 units were left partly unnormalised.

// Units 4 g .. 4 g + 3 of the row at `base`, as norm_input gives them.
fn input4(base: u32, g: u32) -> vec4<f32> {
    let i = base + 4u * g;
    return vec4<f32>(norm_input(i), norm_input(i + 1u), norm_input(i + 2u), norm_input(i + 3u));
}

// 1 where unit 4 g + k is one of the row's n, 0 in its padding (phi(0) need
// not be 0).
fn inside4(g: u32, n: u32) -> vec4<f32> {
    let units = vec4<u32>(4u * g) + vec4<u32>(0u, 1u, 2u, 3u);
    return select(vec4<f32>(0.0), vec4<f32>(1.0), units < vec4<u32>(n));
}

fn sum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn write4_out(base: u32, g: u32, v: vec4<f32>) {
    let i = base + 4u * g;
    write_out(i, v.x);
    write_out(i + 1u, v.y);
    write_out(i + 2u, v.z);
    write_out(i + 3u, v.w);
}

// The mean and inv of the row at `base` (n units), the lanes striding its
// groups of 4 by ROW_WG; every lane gets both.
fn row_stats(lid: u32, base: u32, n: u32) -> vec2<f32> {
    let groups = stride(n) / 4u;
    var mean = 0.0;
    if (norm_centres()) {
        var s = vec4<f32>(0.0);
        for (var g = lid; g < groups; g += ROW_WG) {
            s += inside4(g, n) * input4(base, g);
        }
        mean = sum4(group_sum4(lid, s)) / f32(n);
    }
    var s2 = vec4<f32>(0.0);
    for (var g = lid; g < groups; g += ROW_WG) {
        let v = inside4(g, n) * (input4(base, g) - mean);
        s2 += v * v;
    }
    let variance = sum4(group_sum4(lid, s2)) / f32(n);
    return vec2<f32>(mean, 1.0 / sqrt(variance + params.norm_eps));
}

// layer-norm, rms-norm: one workgroup per row (workgroup x).
@compute @workgroup_size(ROW_WG)
fn gram_norm_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let base = wid.x * stride(n);
    let st = row_stats(lid.x, base, n);
    for (var g = lid.x; g < stride(n) / 4u; g += ROW_WG) {
        write4_out(base, g, inside4(g, n) * (input4(base, g) - st.x) * st.y);
    }
}

// Their adjoint: J^T d for the rows d at in_off.
@compute @workgroup_size(ROW_WG)
fn gram_norm_rows_adjoint(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let base = wid.x * stride(n);
    let groups = stride(n) / 4u;
    let st = row_stats(lid.x, base, n);
    var s = vec4<f32>(0.0);
    var sy = vec4<f32>(0.0);
    for (var g = lid.x; g < groups; g += ROW_WG) {
        let y = inside4(g, n) * (input4(base, g) - st.x) * st.y;
        let d = row_in4(base, g);
        s += d;
        sy += y * d;
    }
    let mean_d = select(0.0, sum4(group_sum4(lid.x, s)) / f32(n), norm_centres());
    let mean_yd = sum4(group_sum4(lid.x, sy)) / f32(n);
    let factor = scale_of(params.scale_a);
    for (var g = lid.x; g < groups; g += ROW_WG) {
        let inside = inside4(g, n);
        let y = inside * (input4(base, g) - st.x) * st.y;
        let d = row_in4(base, g);
        write4_out(base, g, inside * factor * st.y * (d - mean_d - y * mean_yd));
    }
}

// Units 4 g .. 4 g + 3 of the row d at in_off + base (its padding is 0).
fn row_in4(base: u32, g: u32) -> vec4<f32> {
    let i = params.in_off + base + 4u * g;
    return vec4<f32>(act[i], act[i + 1u], act[i + 2u], act[i + 3u]);
}

// The mean and inv of unit i over the `rows` rows of stride s.
fn unit_stats(i: u32, s: u32) -> vec2<f32> {
    let rows = params.rows;
    var sum = 0.0;
    for (var r = 0u; r < rows; r++) {
        sum += norm_input(r * s + i);
    }
    let mean = sum / f32(rows);
    var s2 = 0.0;
    for (var r = 0u; r < rows; r++) {
        let v = norm_input(r * s + i) - mean;
        s2 += v * v;
    }
    return vec2<f32>(mean, 1.0 / sqrt(s2 / f32(rows) + params.norm_eps));
}

// batch-norm: one invocation per unit, padding included.
@compute @workgroup_size(256)
fn gram_norm_units(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let s = stride(n);
    let i = flat_index(gid, nwg, ELEMENTWISE_WG);
    if (i >= s) {
        return;
    }
    var st = vec2<f32>(0.0);
    if (i < n) {
        st = unit_stats(i, s);
    }
    for (var r = 0u; r < params.rows; r++) {
        var y = 0.0;
        if (i < n) {
            y = (norm_input(r * s + i) - st.x) * st.y;
        }
        write_out(r * s + i, y);
    }
}

// Its adjoint.
@compute @workgroup_size(256)
fn gram_norm_units_adjoint(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params.n_out;
    let s = stride(n);
    let i = flat_index(gid, nwg, ELEMENTWISE_WG);
    if (i >= s) {
        return;
    }
    let rows = params.rows;
    if (i >= n) {
        for (var r = 0u; r < rows; r++) {
            write_out(r * s + i, 0.0);
        }
        return;
    }
    let st = unit_stats(i, s);
    var sum_d = 0.0;
    var sum_yd = 0.0;
    for (var r = 0u; r < rows; r++) {
        let y = (norm_input(r * s + i) - st.x) * st.y;
        let d = act[params.in_off + r * s + i];
        sum_d += d;
        sum_yd += y * d;
    }
    let mean_d = sum_d / f32(rows);
    let mean_yd = sum_yd / f32(rows);
    let factor = scale_of(params.scale_a);
    for (var r = 0u; r < rows; r++) {
        let y = (norm_input(r * s + i) - st.x) * st.y;
        let d = act[params.in_off + r * s + i];
        write_out(r * s + i, factor * st.y * (d - mean_d - y * mean_yd));
    }
}

// The NTK's gain term: each row's gain gradient d * y, d the rows at in_off
// (act, delta of the layer's output), y the layer's output at aux_off (read
// as it is: pass FLAG_INPUT), into out_off; the gain is 1 at init, so y is
// also the normalised input. One invocation per unit, padding included
// (both rows' padding is 0, so the product's is too).
@compute @workgroup_size(256)
fn gram_norm_gain_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = stride(params.n_out);
    let i = flat_index(gid, nwg, ELEMENTWISE_WG);
    if (i >= s) {
        return;
    }
    for (var r = 0u; r < params.rows; r++) {
        write_out(r * s + i, act[params.in_off + r * s + i] * norm_input(r * s + i));
    }
}
