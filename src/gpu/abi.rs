//! The GPU ABI, defined once: the uniform parameter structs (`Params` of the
//! dense and gram engines, `BlockParams` of the block engine) and every
//! constant that both Rust and WGSL use (flags, sentinels, record layout,
//! workgroup sizes). `wgsl_constants`, `wgsl_params` and
//! `wgsl_block_params` write them as WGSL; `gpu::pipelines` prepends that
//! prelude to the modules, so no .wgsl file defines them by hand.

use bytemuck::{Pod, Zeroable};

use crate::model::rng::Stream;

/// A `#[repr(C)]` struct of u32/f32 fields and its WGSL declaration
/// (`WGSL_FIELDS`: name, type, the field's doc comment), from one list.
macro_rules! abi_struct {
    ($(#[doc = $sdoc:literal])* pub struct $name:ident {
        $($(#[doc = $doc:literal])* pub $field:ident: $ty:ident,)*
    }) => {
        $(#[doc = $sdoc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub struct $name {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl $name {
            pub const WGSL_FIELDS: &'static [(&'static str, &'static str, &'static str)] =
                &[$((stringify!($field), stringify!($ty), concat!("" $(, $doc)*)),)*];
        }
    };
}

/// Constants of the ABI with their Rust types, and `CONSTANTS`, their
/// table (name, value as u32, comment) for the WGSL prelude.
macro_rules! abi_constants {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $value:expr;)*) => {
        $($(#[doc = $doc])* pub const $name: $ty = $value;)*

        /// Every constant the WGSL prelude defines: name, value, comment.
        pub const CONSTANTS: &[(&str, u32, &str)] =
            &[$((stringify!($name), $name as u32, concat!("" $(, $doc)*)),)*];
    };
}

abi_struct! {
    /// Per-dispatch parameters of the dense and gram engines, bound at a
    /// dynamic offset. Rows (one per input sample, tangent or backward
    /// vector) live in the `act` and `store` arenas at the offsets given
    /// here, with stride(n) floats per row and zeros in the padding; W is
    /// n_out rows of stride(n_in).
    pub struct Params {
        pub n_in: u32,
        pub n_out: u32,
        /// B: inputs per network
        pub batch: u32,
        pub layer: u32,
        pub network: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub w_dist: u32,
        /// std, or half-width for the uniform (WeightLaw::scale)
        pub w_scale: f32,
        /// 0: no bias
        pub b_scale: f32,
        pub b_dist: u32,
        /// FLAG_*
        pub flags: u32,
        /// input rows (act)
        pub in_off: u32,
        /// output rows (act, or store with FLAG_OUT_STORE)
        pub out_off: u32,
        /// pre-activations h for phi' (act, or store with FLAG_AUX_STORE)
        pub aux_off: u32,
        /// first record (records)
        pub rec_off: u32,
        /// rows of a row-wise kernel
        pub rows: u32,
        /// records reserved per row (or pair) for slices of units
        pub slice_stride: u32,
        /// index into `scales` of the factor for rows < batch (NO_SCALE: 1)
        pub scale_a: u32,
        /// the same for rows >= batch
        pub scale_b: u32,
        /// where finalize writes its factor
        pub scale_out: u32,
        /// stats: also copy h to store here (NO_OFFSET: no)
        pub ckpt_off: u32,
        pub q0: f32,
        pub c0: f32,
        /// orthogonal: the Householder step k
        pub step: u32,
        /// gram engine: columns of a combination or cross Gram
        pub cols: u32,
        /// gram engine: offsets (in `weights`) of coefficient matrices
        pub coef_a: u32,
        pub coef_b: u32,
        /// truncated-normal weights: P(|z| < bound) (Dist::truncation_mass)
        pub w_trunc: f32,
        /// the same for the bias
        pub b_trunc: f32,
        /// gram engine's normalisation layers: eps, and the KIND_* of the norm
        pub norm_eps: f32,
        pub norm_kind: u32,
    }
}

impl Params {
    /// What every step of layer `layer` (0: the input row) of `network`
    /// shares: the shape, the seed, the weight and bias laws (the orthogonal
    /// kernels multiply Q by the gain) and the inputs' q0 and c0; records
    /// `slice_stride` apart. The engines set the rest per dispatch.
    pub fn for_layer(
        spec: &crate::spec::RunSpec,
        network: usize,
        layer: usize,
        slice_stride: usize,
    ) -> Params {
        use crate::model::init::{Dist, WeightLaw};
        let net = &spec.net;
        let none = WeightLaw {
            dist: Dist::Normal,
            variance: 0.0,
        };
        let (n_in, n_out, w, b) = if layer == 0 {
            (0, net.widths[0], none, none)
        } else {
            (
                net.widths[layer - 1],
                net.widths[layer],
                net.weight_law(layer),
                net.bias_law(layer),
            )
        };
        Params {
            n_in: n_in as u32,
            n_out: n_out as u32,
            batch: spec.batch as u32,
            layer: layer as u32,
            network: network as u32,
            seed_lo: spec.seed as u32,
            seed_hi: (spec.seed >> 32) as u32,
            w_dist: w.dist.code(),
            w_scale: if w.dist == Dist::Orthogonal {
                (w.variance * n_in.max(n_out) as f64).sqrt()
            } else {
                w.scale()
            } as f32,
            b_scale: b.scale() as f32,
            b_dist: b.dist.code(),
            w_trunc: w.dist.truncation_mass() as f32,
            b_trunc: b.dist.truncation_mass() as f32,
            flags: 0,
            in_off: 0,
            out_off: 0,
            aux_off: 0,
            rec_off: 0,
            rows: spec.batch as u32,
            slice_stride: slice_stride as u32,
            scale_a: NO_SCALE,
            scale_b: NO_SCALE,
            scale_out: 0,
            ckpt_off: NO_OFFSET,
            q0: net.q0 as f32,
            c0: net.c0 as f32,
            step: 0,
            cols: 0,
            coef_a: NO_OFFSET,
            coef_b: NO_OFFSET,
            norm_eps: 0.0,
            norm_kind: 0,
        }
    }
}

abi_struct! {
    /// Per-dispatch parameters of the block engine (shaders/blocks/).
    pub struct BlockParams {
        /// KIND_*: the layer of linear / linear_t
        pub kind: u32,
        pub c_in: u32,
        pub h_in: u32,
        pub w_in: u32,
        pub c_out: u32,
        pub h_out: u32,
        pub w_out: u32,
        pub kernel: u32,
        pub stride: u32,
        /// PAD_*
        pub padding: u32,
        /// rows to process
        pub rows: u32,
        /// B: saved state is indexed by row mod B
        pub batch: u32,
        /// units per row of the elementwise kernels
        pub units: u32,
        /// draw_weights: entries per row of W
        pub per_row: u32,
        pub in_off: u32,
        pub out_off: u32,
        /// saved pre-activation (h, or the highway's transform h)
        pub h_off: u32,
        /// saved gate pre-activation (highway)
        pub g_off: u32,
        /// saved block input (highway)
        pub x_off: u32,
        /// extra operand rows
        pub u_off: u32,
        /// extra operand rows
        pub v_off: u32,
        /// W in `weights`
        pub w_off: u32,
        /// b in `weights`
        pub b_off: u32,
        /// first record in `records`
        pub rec_off: u32,
        /// records per row (or pair): slices of units
        pub slice_stride: u32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub network: u32,
        /// the Philox `layer` of the draw
        pub layer: u32,
        /// draws: Dist code
        pub dist: u32,
        /// draw_normal: STREAM_DELTA or STREAM_TANGENT
        pub stream: u32,
        /// FLAG_*
        pub flags: u32,
        /// index into `scales` for rows < B (NO_SCALE: 1)
        pub scale_a: u32,
        /// ... for rows >= B
        pub scale_b: u32,
        /// finalize writes here
        pub scale_out: u32,
        /// draws: std or half-width (WeightLaw::scale)
        pub w_scale: f32,
        /// axpy, mul_deriv: the factor
        pub alpha: f32,
        /// activate: subtracted from phi(h) (mean-preserving)
        pub shift: f32,
        /// linear: a constant added (the highway gate bias)
        pub offset: f32,
        pub q0: f32,
        pub c0: f32,
        /// draws of a truncated normal: P(|z| < bound) (Dist::truncation_mass)
        pub trunc: f32,
        /// normalisations: added to the variance
        pub eps: f32,
        /// average pooling: the window's width (`kernel` is its height)
        pub kernel_w: u32,
    }
}

abi_constants! {
    /// row 0: pre = post = the input, phi = identity
    FLAG_INPUT: u32 = 1;
    /// finalize: r = 1/sqrt(mean v^2) (else 1)
    FLAG_RENORM: u32 = 2;
    /// output rows go to `store`
    FLAG_OUT_STORE: u32 = 4;
    /// h for phi' comes from `store`
    FLAG_AUX_STORE: u32 = 8;
    /// phi' = 1 (the gradient with respect to the input; blocks' mul_deriv: a scaled copy)
    FLAG_NO_DERIV: u32 = 16;
    /// finalize: records are per-row sums, not pair records
    FLAG_ROW_RECORDS: u32 = 32;
    /// gram_normals: the backward stream
    FLAG_GRAM_BACK: u32 = 64;
    /// gram_cross: subtract `bias` from the first rows
    FLAG_SUB_BIAS: u32 = 128;
    /// gram_cross: only tiles with a <= c
    FLAG_SYMMETRIC: u32 = 256;
    /// gram_cross, gram_combine: the first rows come from `store`
    FLAG_IN_STORE: u32 = 512;
    /// gram_cross: the second rows come from `store`
    FLAG_SECOND_STORE: u32 = 1024;
    /// gram_combine: the first rows are the forward Z, drawn here
    FLAG_Z_PHILOX: u32 = 2048;
    /// gram_combine: coef_b holds the low parts of coef_a's matrix
    FLAG_COEF_LOW: u32 = 4096;
    /// blocks' linear: + b[channel]
    FLAG_BIAS: u32 = 8192;
    /// blocks' pair_moments: count phi'(pre) = 0
    FLAG_ZEROS: u32 = 16384;
    /// gen_normal_rows: the NTK's readout w (STREAM_READOUT), one row for all
    FLAG_READOUT: u32 = 32768;
    /// blocks' channel_grads: sums of d y (a normalisation's gain), not of d
    FLAG_GAIN: u32 = 65536;
    /// a scale index meaning the factor 1
    NO_SCALE: u32 = u32::MAX;
    /// an offset meaning none
    NO_OFFSET: u32 = u32::MAX;
    /// floats per pair record: 0 sum h_a^2, 1 sum h_b^2, 2 sum h_a h_b, 3 sum x_a^2, 4 sum x_b^2, 5 sum h, 6 sum h^4, 7 sum x, 8 count phi'(h) = 0, 9 sum (h_a - h_b)^2
    RECORD: usize = 10;
    /// units per slice: records are partial sums over slices of this many units of a row
    UNITS_PER_SLICE: usize = 4096;
    /// invocations per workgroup of the generators (generate.wgsl)
    GEN_WG: u32 = 64;
    /// invocations per workgroup of the plain elementwise kernels (stats.wgsl)
    ELEMENTWISE_WG: u32 = 256;
    /// invocations per workgroup of the orthogonal kernels
    ORTHO_WG: usize = 256;
    /// invocations per workgroup of gram_normals, gram_bias, gram_combine
    GRAM_WG: u32 = 64;
    /// output rows per gram_combine invocation
    COMBINE_TILE: usize = 16;
    /// gram_cross's workgroup
    CROSS_WG: usize = 64;
    /// invocations per workgroup of the block engine's plain kernels
    BLOCKS_WG: u32 = 64;
    /// output channels and positions along x of one invocation of the
    /// block engine's tiled stride-1 convolution (conv_tiled, conv_tiled_t)
    CONV_TILE_C: u32 = 8;
    CONV_TILE_X: u32 = 4;
    /// blocks' linear layer kinds
    KIND_DENSE: u32 = 0;
    KIND_CONV: u32 = 1;
    KIND_CONV_TRANSPOSE: u32 = 2;
    /// blocks' normalisations (norm.wgsl)
    KIND_LAYER_NORM: u32 = 3;
    KIND_RMS_NORM: u32 = 4;
    KIND_BATCH_NORM: u32 = 5;
    /// blocks' average pooling (linear.wgsl: a fixed linear map)
    KIND_AVG_POOL: u32 = 6;
    /// blocks' scale layer: y = weights[w_off] x
    KIND_SCALE: u32 = 7;
    /// blocks' padding of convolutions
    PAD_CIRCULAR: u32 = 0;
    PAD_ZERO: u32 = 1;
    /// the Philox streams (src/model/rng.rs)
    STREAM_WEIGHT: u32 = Stream::Weight as u32;
    STREAM_BIAS: u32 = Stream::Bias as u32;
    STREAM_INPUT: u32 = Stream::Input as u32;
    STREAM_DELTA: u32 = Stream::Delta as u32;
    STREAM_TANGENT: u32 = Stream::Tangent as u32;
    STREAM_GRAM: u32 = Stream::Gram as u32;
    STREAM_GRAM_BACK: u32 = Stream::GramBack as u32;
    STREAM_READOUT: u32 = Stream::Readout as u32;
    /// Dist::Orthogonal.code(): the generators leave W to the QR
    DIST_ORTHOGONAL: u32 = 3;
}

fn comment(doc: &str) -> String {
    let doc = doc.trim();
    if doc.is_empty() {
        String::new()
    } else {
        format!(" // {doc}")
    }
}

/// The constants as WGSL `const` declarations.
pub fn wgsl_constants() -> String {
    let mut out = String::from("// Generated from src/gpu/abi.rs.\n");
    for (name, value, doc) in CONSTANTS {
        out += &format!("const {name}: u32 = {value}u;{}\n", comment(doc));
    }
    out
}

fn wgsl_struct(name: &str, fields: &[(&str, &str, &str)]) -> String {
    let mut out = format!("// Generated from src/gpu/abi.rs.\nstruct {name} {{\n");
    for (field, ty, doc) in fields {
        out += &format!("    {field}: {ty},{}\n", comment(doc));
    }
    out + "}\n"
}

/// `struct Params` in WGSL.
pub fn wgsl_params() -> String {
    wgsl_struct("Params", Params::WGSL_FIELDS)
}

/// `struct BlockParams` in WGSL.
pub fn wgsl_block_params() -> String {
    wgsl_struct("BlockParams", BlockParams::WGSL_FIELDS)
}

/// Row stride of W and of every row in the arenas: n padded to a multiple
/// of 4 (shaders/common/params.wgsl `stride`).
/// The KIND_* code of a normalisation (the block and gram engines' kernels).
pub fn norm_kind_code(kind: crate::model::arch::NormKind) -> u32 {
    use crate::model::arch::NormKind;
    match kind {
        NormKind::LayerNorm => KIND_LAYER_NORM,
        NormKind::RmsNorm => KIND_RMS_NORM,
        NormKind::BatchNorm => KIND_BATCH_NORM,
    }
}

pub fn stride(n: usize) -> usize {
    n.next_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_are_their_field_lists() {
        assert_eq!(std::mem::size_of::<Params>(), 4 * Params::WGSL_FIELDS.len());
        assert_eq!(
            std::mem::size_of::<BlockParams>(),
            4 * BlockParams::WGSL_FIELDS.len()
        );
        // a uniform struct's size is a multiple of 16 bytes
        assert_eq!(std::mem::size_of::<Params>() % 16, 0);
        assert_eq!(std::mem::size_of::<BlockParams>() % 16, 0);
        for (_, ty, _) in Params::WGSL_FIELDS.iter().chain(BlockParams::WGSL_FIELDS) {
            assert!(*ty == "u32" || *ty == "f32");
        }
    }

    #[test]
    fn constants_have_one_value_and_flags_distinct_bits() {
        let mut names = std::collections::HashSet::new();
        let mut bits = 0u32;
        for (name, value, _) in CONSTANTS {
            assert!(names.insert(*name), "{name} twice");
            if name.starts_with("FLAG_") {
                assert_eq!(value.count_ones(), 1, "{name}");
                assert_eq!(bits & value, 0, "{name} shares a bit");
                bits |= value;
            }
        }
        assert!(wgsl_constants().contains("const FLAG_RENORM: u32 = 2u;"));
        assert_eq!(DIST_ORTHOGONAL, crate::model::init::Dist::Orthogonal.code());
    }
}
