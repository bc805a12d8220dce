// Sums over a workgroup that is one subgroup (REDUCE_WG is the adapter's
// fixed subgroup size, src/gpu/kernels.rs): the subgroup's own reduction,
// the same order every time for a given pipeline; no workgroup memory, no
// barrier. Every lane gets the sum.

fn group_sum4(lid: u32, v: vec4<f32>) -> vec4<f32> {
    return subgroupAdd(v);
}
