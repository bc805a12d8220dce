// Sums over the workgroup (REDUCE_WG invocations, a power of two) by a tree
// in workgroup memory, in a fixed order. Every lane gets the sum.

var<workgroup> partial4: array<vec4<f32>, 256>;

fn group_sum4(lid: u32, v: vec4<f32>) -> vec4<f32> {
    partial4[lid] = v;
    workgroupBarrier();
    for (var width = REDUCE_WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial4[lid] += partial4[lid + width];
        }
        workgroupBarrier();
    }
    let total = partial4[0];
    workgroupBarrier();
    return total;
}
