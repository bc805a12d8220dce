// No subgroups on this adapter: every lane loads its own inputs (SHARE = 1).
// See product.wgsl.

struct Lane {
    @builtin(local_invocation_index) index: u32,
}

fn share(v: vec4<f32>, from_lane: u32) -> vec4<f32> {
    return v;
}
