// Elementwise kernels with their moment records. Each workgroup reduces one
// row (or pair of rows) over one slice of units into a record of partial
// sums in a fixed order (per-invocation serial sums, then group_sum4: a
// subgroup reduction or a tree), so results are deterministic; the host
// adds the records in f64.
// Needs params.wgsl, index.wgsl, bindings.wgsl, scale_of.wgsl, special.wgsl, activation.wgsl, one
// of reduce_subgroup.wgsl, reduce_tree.wgsl, then pair_record.wgsl and moments.wgsl.

// Invocations per reducing workgroup (src/gpu/kernels.rs picks it).
override REDUCE_WG: u32 = 256u;
// ELEMENTWISE_WG (the plain elementwise kernels' workgroup), UNITS_PER_SLICE
// and RECORD (the pair record, one per (pair, slice), its layout in
// pair_record.wgsl) are generated from src/gpu/abi.rs.

// Forward: x = phi(h) for the pair (2p, 2p+1) of rows at in_off, written at
// out_off (and h copied to store at ckpt_off when asked), with the pair
// record. Row 0 (FLAG_INPUT): x = h, the input itself.
@compute @workgroup_size(REDUCE_WG)
fn stats(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let slice = wid.x;
    let pair = wid.y;
    let row_a = (2u * pair) * stride(n);
    let row_b = (2u * pair + 1u) * stride(n);
    let is_input = (params.flags & FLAG_INPUT) != 0u;
    let ckpt = params.ckpt_off != NO_OFFSET;
    var sums: PairSums;
    let end = min((slice + 1u) * UNITS_PER_SLICE, n);
    // the row padding of x stays zero (the products read it as vec4)
    if (slice == 0u && lid.x < stride(n) - n) {
        act[params.out_off + row_a + n + lid.x] = 0.0;
        act[params.out_off + row_b + n + lid.x] = 0.0;
    }
    for (var i = slice * UNITS_PER_SLICE + lid.x; i < end; i += REDUCE_WG) {
        let ha = act[params.in_off + row_a + i];
        let hb = act[params.in_off + row_b + i];
        if (ckpt) {
            store[params.ckpt_off + row_a + i] = ha;
            store[params.ckpt_off + row_b + i] = hb;
        }
        var xa = ha;
        var xb = hb;
        if (!is_input) {
            xa = phi(ha);
            xb = phi(hb);
            sums.zeros += zero_derivs(ha, hb);
        }
        act[params.out_off + row_a + i] = xa;
        act[params.out_off + row_b + i] = xb;
        sums = add_pair(sums, ha, hb, xa, xb);
    }
    write_pair_record(lid.x, pair, slice, sums.acc0, sums.acc1, sums.zeros, sums.diff2);
}

// Recomputation: x = phi(h) (identity with FLAG_INPUT) for `rows` rows, h
// at aux_off, x at out_off. One invocation per entry, padding included.
@compute @workgroup_size(256)
fn activate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = stride(params.n_out);
    let idx = flat_index(gid, nwg, ELEMENTWISE_WG);
    if (idx >= params.rows * row) {
        return;
    }
    let h = aux(idx);
    var x = h;
    if ((params.flags & FLAG_INPUT) == 0u) {
        x = phi(h);
    }
    act[params.out_off + idx] = select(0.0, x, idx % row < params.n_out);
}

// out[r] = phi'(h[r mod B]) * s_r * in[r] for `rows` rows at in_off (act),
// h at aux_off, s_r = scales[scale_a] for r < B and scales[scale_b] beyond
// (phi' = 1 with FLAG_NO_DERIV), with a record sum out^2 per (row, slice).
// The tangent step (t_l = phi'(h_l) W t_{l-1}), the backward step
// (delta_{l-1} = phi'(h_{l-1}) W^T delta_l, and the vector-Jacobian rows
// beside it), and plain row norms (in place, phi' = 1) are all this kernel.
@compute @workgroup_size(REDUCE_WG)
fn scale_by_deriv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = params.n_out;
    let slice = wid.x;
    let r = wid.y;
    let batch = params.batch;
    let s = scale_of(select(params.scale_b, params.scale_a, r < batch));
    let row_in = params.in_off + r * stride(n);
    let row_out = params.out_off + r * stride(n);
    let row_h = (r % batch) * stride(n);
    let no_deriv = (params.flags & FLAG_NO_DERIV) != 0u;
    var sum = 0.0;
    let end = min((slice + 1u) * UNITS_PER_SLICE, n);
    for (var i = slice * UNITS_PER_SLICE + lid.x; i < end; i += REDUCE_WG) {
        var d = 1.0;
        if (!no_deriv) {
            d = phi_deriv(aux(row_h + i));
        }
        let v = d * s * act[row_in + i];
        act[row_out + i] = v;
        sum += v * v;
    }
    if (slice == 0u && lid.x < stride(n) - n) {
        act[row_out + n + lid.x] = 0.0;
    }
    write_row_record(lid.x, r, slice, sum);
}

// One workgroup: the renormalisation factor of the rows just recorded
// (moments.wgsl).
@compute @workgroup_size(REDUCE_WG)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
    write_renormalisation(lid.x, params.n_out);
}
