//! The shared WGSL against its Rust twins: Philox (Random123's known answers,
//! and bit-identical streams), the draws, and every activation.

mod common;

use varprop::gpu::probe;
use varprop::model::activation::{ACTIVATION_NAMES, Activation};
use varprop::model::init::Dist;
use varprop::model::rng::{self, Stream};

#[test]
fn philox_known_answers_on_the_gpu() {
    let ctx = common::gpu();
    let kat = varprop::model::rng::RANDOM123_KAT;
    let cases: Vec<_> = kat.iter().map(|(c, k, _)| (*c, *k)).collect();
    let got = probe::philox(&ctx, &cases).unwrap();
    for ((_, _, want), got) in kat.iter().zip(got) {
        assert_eq!(got, *want);
    }
}

#[test]
fn gpu_and_cpu_streams_are_bit_identical() {
    let ctx = common::gpu();
    let seed = 0x0123_4567_89ab_cdefu64;
    let mut cases = Vec::new();
    for stream in [
        Stream::Weight,
        Stream::Bias,
        Stream::Input,
        Stream::Delta,
        Stream::Tangent,
    ] {
        for network in [0u32, 1, 77, (1 << 24) - 1] {
            for (layer, row, group) in [
                (0u32, 0u32, 0u32),
                (1, 2, 3),
                (9999, 4095, 1023),
                (u32::MAX, u32::MAX, u32::MAX),
            ] {
                cases.push((
                    rng::counter(stream, network, layer, row, group),
                    rng::key(seed),
                ));
            }
        }
    }
    let got = probe::philox(&ctx, &cases).unwrap();
    for ((ctr, key), got) in cases.iter().zip(got) {
        assert_eq!(got, rng::philox4x32_10(*ctr, *key), "counter {ctr:?}");
    }
}

#[test]
fn draws_match_the_rust_twin() {
    // Same uniforms (exact in f32); the transforms run in f32 on the GPU and
    // in f64 here. Box-Muller: sqrt(-2 ln u) <= 5.8 and its f32 error is a few
    // ulps of it, so 2e-6 absolute; erfinv (truncated normal) likewise.
    let ctx = common::gpu();
    let key = rng::key(42);
    let counters: Vec<[u32; 4]> = (0..4096u32)
        .map(|i| rng::counter(Stream::Weight, 3, 5, i / 64, i % 64))
        .collect();
    // truncated normals: JAX's and Flax's bound 2, a narrow one, and one as
    // wide as PyTorch's trunc_normal_ at fan_in 256 (+-2 absolute = 32 std)
    for dist in [
        Dist::Normal,
        Dist::Uniform,
        Dist::TruncatedNormal { bound: 2.0 },
        Dist::TruncatedNormal { bound: 0.5 },
        Dist::TruncatedNormal { bound: 32.0 },
    ] {
        let got = probe::draws(&ctx, dist, key, &counters).unwrap();
        for (c, g) in counters.iter().zip(got) {
            let want = rng::standard4(dist, rng::philox4x32_10(*c, key));
            for e in 0..4 {
                assert!(
                    (g[e] as f64 - want[e]).abs() < 2e-6,
                    "{dist:?} {c:?}: {} vs {}",
                    g[e],
                    want[e]
                );
            }
        }
    }
}

#[test]
fn activations_match_the_f64_twin() {
    let ctx = common::gpu();
    let mut grid: Vec<f32> = vec![
        0.0,
        -0.0,
        6.0,
        -6.0,
        5.999_999_5,
        6.000_001,
        1e-7,
        -1e-7,
        1e-30,
        -1e-30,
    ];
    for &a in &[
        1e-4f32, 1e-3, 0.01, 0.1, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0,
        30.0, 50.0, 100.0,
    ] {
        grid.push(a);
        grid.push(-a);
    }
    for i in -400..=400 {
        grid.push(i as f32 * 0.025);
    }
    for name in ACTIVATION_NAMES {
        let params: &[Option<f64>] = match *name {
            "leaky-relu" => &[None, Some(0.2)],
            "sin" => &[None, Some(30.0)],
            _ => &[None],
        };
        for p in params {
            let act = match *name {
                "leaky-relu" => Activation::parse(name, *p, None),
                "sin" => Activation::parse(name, None, *p),
                _ => Activation::parse(name, None, None),
            }
            .unwrap();
            let got = probe::activation(&ctx, &act, &grid).unwrap();
            for (&z, (v, d)) in grid.iter().zip(got) {
                let z64 = z as f64;
                // f32 evaluation: a few ulps of the result, plus the error of
                // reducing the argument (|z| times the slope, times eps: sin
                // at large omega z), plus 2e-7 absolute for the f32 erf/erfc
                // approximations (their absolute error is below 1.2e-7).
                let tol = |want: f64, slope: f64| {
                    1e-6 * want.abs()
                        + 4e-7 * (act.param().abs().max(1.0) * z64).abs() * slope.abs()
                        + 2e-7
                };
                let (want_v, want_d) = (act.value(z64), act.deriv(z64));
                let second = (act.deriv(z64 + 1e-4) - act.deriv(z64 - 1e-4)) / 2e-4;
                assert!(
                    (v as f64 - want_v).abs() <= tol(want_v, want_d),
                    "{act} value at {z}: gpu {v} vs {want_v}"
                );
                assert!(
                    (d as f64 - want_d).abs() <= tol(want_d, second),
                    "{act} derivative at {z}: gpu {d} vs {want_d}"
                );
            }
        }
    }
}
