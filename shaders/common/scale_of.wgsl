// The factor at `index` in `scales` (1 for NO_SCALE); needs a `scales`
// binding (bindings.wgsl, or the block engine's).

fn scale_of(index: u32) -> f32 {
    if (index == NO_SCALE) {
        return 1.0;
    }
    return scales[index];
}
