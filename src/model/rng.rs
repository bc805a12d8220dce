//! The counter-based RNG, Rust twin of `shaders/common/philox.wgsl`.
//!
//! Philox4x32-10 (Salmon et al. 2011). Every random number is a pure function
//! of (seed, network, layer, stream, row, index): the key is the seed, the
//! counter is
//!
//! ```text
//! c0 = index / 4       (one call gives 4 numbers: entries 4k..4k+3)
//! c1 = row             (weight row i, input sample b, 0 for biases)
//! c2 = layer
//! c3 = stream << 24 | network
//! ```
//!
//! so weights, biases and inputs come from separate streams and a result
//! never depends on how the work is split.

/// Streams: which kind of number a draw is for. Same values in philox.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Stream {
    Weight = 0,
    Bias = 1,
    Input = 2,
    /// delta_L of the backward pass
    Delta = 3,
    /// Jacobian tangent vectors
    Tangent = 4,
    /// The gram engine's forward normals Z (H = Z C^T + b)
    Gram = 5,
    /// The gram engine's backward normals Z' (the unseen part of W^T delta)
    GramBack = 6,
    /// The NTK's readout weights w of f = w^T x_L / sqrt(n_L): one vector
    /// a network (layer L, row 0), shared by the whole batch
    Readout = 7,
}

/// Networks are numbered in the low 24 bits of c3.
pub const MAX_NETWORKS: usize = 1 << 24;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds, as Random123's `philox4x32_10`.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

pub fn counter(stream: Stream, network: u32, layer: u32, row: u32, group: u32) -> [u32; 4] {
    [group, row, layer, (stream as u32) << 24 | network]
}

/// The four raw words for entries 4*group..4*group+3 of a row.
pub fn bits(seed: u64, stream: Stream, network: u32, layer: u32, row: u32, group: u32) -> [u32; 4] {
    philox4x32_10(counter(stream, network, layer, row, group), key(seed))
}

/// Entry `i` of a row of standard normals: lane i % 4 of group i / 4.
pub fn normal_entry(
    seed: u64,
    stream: Stream,
    network: usize,
    layer: usize,
    row: usize,
    i: usize,
) -> f64 {
    let b = bits(
        seed,
        stream,
        network as u32,
        layer as u32,
        row as u32,
        (i / 4) as u32,
    );
    normal4(b)[i % 4]
}

/// `rows` rows of `n` standard normals of one stream's layer.
pub fn normal_rows(
    seed: u64,
    stream: Stream,
    network: usize,
    layer: usize,
    rows: usize,
    n: usize,
) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|r| {
            (0..n)
                .map(|i| normal_entry(seed, stream, network, layer, r, i))
                .collect()
        })
        .collect()
}

/// Uniform on (0, 1), never 0 or 1: (top 23 bits + 1/2) * 2^-23, exact in f32.
pub fn uniform01(x: u32) -> f64 {
    ((x >> 9) as f64 + 0.5) * (1.0 / 8_388_608.0)
}

/// Four standard normals by Box-Muller on the pairs (0,1) and (2,3):
/// r = sqrt(-2 ln u_a), theta = 2 pi u_b - pi, z = (r cos theta, r sin theta).
/// |z| stays below sqrt(-2 ln 2^-24) = 5.77 (the tail beyond has mass 8e-9).
pub fn normal4(b: [u32; 4]) -> [f64; 4] {
    let pair = |ua: u32, ub: u32| {
        let r = (-2.0 * uniform01(ua).ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * uniform01(ub) - std::f64::consts::PI;
        (r * theta.cos(), r * theta.sin())
    };
    let (z0, z1) = pair(b[0], b[1]);
    let (z2, z3) = pair(b[2], b[3]);
    [z0, z1, z2, z3]
}

/// Four uniforms on (-1, 1).
pub fn symmetric_uniform4(b: [u32; 4]) -> [f64; 4] {
    b.map(|x| 2.0 * uniform01(x) - 1.0)
}

/// Four standard normals truncated to [-a, a], by the inverse CDF:
/// z = sqrt(2) erfinv(P (2u - 1)), with `mass` P = P(|z| < a) = erf(a / sqrt 2).
pub fn truncated_normal4(b: [u32; 4], mass: f64) -> [f64; 4] {
    symmetric_uniform4(b).map(|x| std::f64::consts::SQRT_2 * erfinv_giles(mass * x))
}

/// Giles' single-precision erfinv ("Approximating the erfinv function", GPU
/// Computing Gems 2011), relative error below 4e-7; the same polynomial as
/// the WGSL twin, here evaluated in f64.
pub fn erfinv_giles(x: f64) -> f64 {
    let mut w = -((1.0 - x) * (1.0 + x)).ln();
    let p = if w < 5.0 {
        w -= 2.5;
        let mut p = 2.810_226_36e-08;
        for c in [
            3.432_739_39e-07,
            -3.523_387_7e-06,
            -4.391_506_54e-06,
            0.000_218_580_87,
            -0.001_253_725_03,
            -0.004_177_681_64,
            0.246_640_727,
            1.501_409_41,
        ] {
            p = c + p * w;
        }
        p
    } else {
        w = w.sqrt() - 3.0;
        let mut p = -0.000_200_214_257;
        for c in [
            0.000_100_950_558,
            0.001_349_343_22,
            -0.003_673_428_44,
            0.005_739_507_73,
            -0.007_622_461_3,
            0.009_438_870_47,
            1.001_674_06,
            2.832_976_82,
        ] {
            p = c + p * w;
        }
        p
    };
    p * x
}

/// Standard draws of a distribution (variance 1 before scaling for the
/// normal; the uniform and truncated normal are on their unscaled supports,
/// (-1, 1) and [-bound, bound], and `WeightLaw::scale` fixes the variance).
pub fn standard4(dist: crate::model::init::Dist, b: [u32; 4]) -> [f64; 4] {
    use crate::model::init::Dist;
    match dist {
        Dist::Normal | Dist::Orthogonal => normal4(b),
        Dist::Uniform => symmetric_uniform4(b),
        Dist::TruncatedNormal { .. } => truncated_normal4(b, dist.truncation_mass()),
    }
}

/// Random123's tests/kat_vectors, the three philox4x32 10 lines: (counter,
/// key, output), for the known-answer tests of the CPU and the GPU twin.
pub const RANDOM123_KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff; 4],
        [0xffffffff; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random123_known_answers() {
        for (ctr, key, want) in RANDOM123_KAT {
            assert_eq!(philox4x32_10(ctr, key), want);
        }
    }

    #[test]
    fn erfinv_inverts_erf() {
        for i in -99..=99 {
            let x = i as f64 / 100.0;
            let y = erfinv_giles(x);
            assert!((libm::erf(y) - x).abs() < 1e-6 * x.abs().max(1e-3), "{x}");
        }
    }

    #[test]
    fn uniform_is_open_and_symmetric() {
        assert!(uniform01(0) > 0.0 && uniform01(u32::MAX) < 1.0);
        assert_eq!(uniform01(0) + uniform01(u32::MAX), 1.0);
        // exact in f32
        assert_eq!(uniform01(0x1234_5678) as f32 as f64, uniform01(0x1234_5678));
    }
}
