// Philox4x32-10 (Salmon et al. 2011), twin of src/rng.rs.
// Counter: (index / 4, row, layer, stream << 24 | network); key: the seed.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// STREAM_* are generated from src/model/rng.rs's Stream (src/gpu/abi.rs).

const PI: f32 = 3.14159265358979;

// High 32 bits of a * b from 16-bit limbs: WGSL has no u64. Hacker's
// Delight's mulhu: t and u carry the middle terms without overflow
// (a_hi b_lo + (a_lo b_lo >> 16) < 2^32, a_lo b_hi + (t & 0xffff) < 2^32),
// two partial sums fewer than adding the four 16-bit pieces separately;
// the same bits (tests/gpu_kernels.rs: Random123's known answers).
fn mulhi32(a: u32, b: u32) -> u32 {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let t = a_hi * b_lo + ((a_lo * b_lo) >> 16u);
    let u = a_lo * b_hi + (t & 0xffffu);
    return a_hi * b_hi + (t >> 16u) + (u >> 16u);
}

fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let hi0 = mulhi32(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mulhi32(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

fn rng_bits(key: vec2<u32>, stream: u32, network: u32, layer: u32, row: u32, group: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(group, row, layer, (stream << 24u) | network), key);
}

// Uniform on (0, 1): (top 23 bits + 1/2) * 2^-23, exact in f32.
fn uniform01(x: u32) -> f32 {
    return (f32(x >> 9u) + 0.5) * (1.0 / 8388608.0);
}

// Box-Muller on the pairs (x, y) and (z, w); theta in [-pi, pi).
fn normal4(b: vec4<u32>) -> vec4<f32> {
    let r0 = sqrt(-2.0 * log(uniform01(b.x)));
    let t0 = 2.0 * PI * uniform01(b.y) - PI;
    let r1 = sqrt(-2.0 * log(uniform01(b.z)));
    let t1 = 2.0 * PI * uniform01(b.w) - PI;
    return vec4<f32>(r0 * cos(t0), r0 * sin(t0), r1 * cos(t1), r1 * sin(t1));
}

fn symmetric_uniform4(b: vec4<u32>) -> vec4<f32> {
    return 2.0 * vec4<f32>(uniform01(b.x), uniform01(b.y), uniform01(b.z), uniform01(b.w)) - 1.0;
}

// Standard normal truncated to [-a, a] by the inverse CDF; p = P(|z| < a).
fn truncated_normal4(b: vec4<u32>, p: f32) -> vec4<f32> {
    let u = p * symmetric_uniform4(b);
    let s = 1.41421356237310;
    return vec4<f32>(s * erfinv(u.x), s * erfinv(u.y), s * erfinv(u.z), s * erfinv(u.w));
}

// Dist codes as in src/model/init/dist.rs: 0 normal, 1 uniform on (-1, 1),
// 2 normal truncated to [-a, a] with trunc = P(|z| < a), 3 orthogonal (drawn
// normal, orthogonalised later).
fn standard4(dist: u32, trunc: f32, b: vec4<u32>) -> vec4<f32> {
    if (dist == 1u) {
        return symmetric_uniform4(b);
    }
    if (dist == 2u) {
        return truncated_normal4(b, trunc);
    }
    return normal4(b);
}
