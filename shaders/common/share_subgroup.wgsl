// Input sharing across the lanes of a subgroup (the adapter has subgroups):
// lane l of a subgroup loads the inputs of step kb + l, the others read them
// with a shuffle. See product.wgsl.

struct Lane {
    @builtin(subgroup_invocation_id) index: u32,
}

fn share(v: vec4<f32>, from_lane: u32) -> vec4<f32> {
    if (SHARE == 1u) {
        return v;
    }
    return subgroupShuffle(v, from_lane);
}
