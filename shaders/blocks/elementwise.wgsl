// The block engine's elementwise kernels (bindings.wgsl): one invocation
// per entry of `rows` rows of `units`: the activation, the residual sum,
// phi' and the row scales, and the highway block's forward, tangent and
// backward maps.

// x = phi(h) - shift (the mean-preserving shift; 0 without it)
@compute @workgroup_size(64)
fn activate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    arena[params.out_off + idx] = phi(arena[params.in_off + idx]) - params.shift;
}

// out = in + alpha v (the residual sum x + alpha F(x))
@compute @workgroup_size(64)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    arena[params.out_off + idx] = arena[params.in_off + idx] + params.alpha * arena[params.v_off + idx];
}

// out = alpha phi'(h) in (phi' = 1 with FLAG_NO_DERIV); in place allowed.
@compute @workgroup_size(64)
fn mul_deriv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    var d = 1.0;
    if ((params.flags & FLAG_NO_DERIV) == 0u) {
        d = phi_deriv(saved(params.h_off, idx));
    }
    arena[params.out_off + idx] = params.alpha * d * arena[params.in_off + idx];
}

// v *= r, r = scales[scale_a] for rows < B, scales[scale_b] beyond; in place at out_off.
@compute @workgroup_size(64)
fn scale_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let r = select(scale_of(params.scale_b), scale_of(params.scale_a), idx / params.units < params.batch);
    arena[params.out_off + idx] *= r;
}

// Highway: y = T phi(hh) + (1 - T) x, T = sigmoid(g); x at in_off, g at
// g_off, hh at h_off (B rows).
@compute @workgroup_size(64)
fn highway_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let t = sigmoid(arena[params.g_off + idx]);
    let x = arena[params.in_off + idx];
    arena[params.out_off + idx] = t * phi(arena[params.h_off + idx]) + (1.0 - t) * x;
}

// A highway block's saved forward state at entry idx: the gate T =
// sigmoid(g) (g at g_off), hh (h_off) and the block input x (x_off).
struct Gate {
    s: f32,
    hh: f32,
    x: f32,
}

fn saved_gate(idx: u32) -> Gate {
    return Gate(sigmoid(saved(params.g_off, idx)), saved(params.h_off, idx), saved(params.x_off, idx));
}

// Its derivative along t (in_off): (1 - T) t + T phi'(hh) (W_H t) + T (1 - T) (W_T t) (phi(hh) - x),
// W_H t at u_off, W_T t at v_off; saved g, hh, x.
@compute @workgroup_size(64)
fn highway_tangent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let g = saved_gate(idx);
    let s = g.s;
    let t = arena[params.in_off + idx];
    arena[params.out_off + idx] = (1.0 - s) * t + s * phi_deriv(g.hh) * arena[params.u_off + idx]
        + s * (1.0 - s) * arena[params.v_off + idx] * (phi(g.hh) - g.x);
}

// The gradient d (in_off) split onto the two pre-activations:
// to_h = T phi'(hh) d (u_off), to_g = T (1 - T) (phi(hh) - x) d (v_off).
@compute @workgroup_size(64)
fn highway_back_split(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let g = saved_gate(idx);
    let s = g.s;
    let d = arena[params.in_off + idx];
    arena[params.u_off + idx] = s * phi_deriv(g.hh) * d;
    arena[params.v_off + idx] = s * (1.0 - s) * (phi(g.hh) - g.x) * d;
}

// The gradient with respect to the block input: (1 - T) d + W_H^T to_h + W_T^T to_g,
// the two products at u_off and v_off.
@compute @workgroup_size(64)
fn highway_back_combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg, BLOCKS_WG);
    if (idx >= params.rows * params.units) {
        return;
    }
    let s = sigmoid(saved(params.g_off, idx));
    arena[params.out_off + idx] = (1.0 - s) * arena[params.in_off + idx] + arena[params.u_off + idx] + arena[params.v_off + idx];
}
