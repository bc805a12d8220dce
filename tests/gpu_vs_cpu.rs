//! The GPU engine against the f64 CPU reference on the same seeds: every
//! per-network, per-layer statistic, several shapes including non-square
//! widths, biases and every weight distribution.
//!
//! Tolerance: the GPU works in f32. Each draw carries a relative error of a
//! few 1e-7 (Box-Muller, erfinv in f32), each product of length n <= 96 adds
//! about sqrt(n) * 6e-8 ~ 1e-6, and the moments are sums of B n <= 1000
//! terms (another ~1e-6). Over at most 6 layers in non-chaotic settings the
//! errors add rather than grow, so relative differences stay near 1e-5;
//! we allow 2e-4, which a wrong stream, law, activation or reduction misses
//! by orders of magnitude. Means (which can cancel to 0) are compared on the
//! scale sqrt(q), and the zero fraction may differ by a unit whose h is
//! within rounding of 0.

mod common;

use varprop::engine::{run_cpu, run_gpu};
use varprop::init::InitFlags;
use varprop::spec::{NetworkFlags, RunSpec};

fn check(flags: NetworkFlags, batch: usize, chunk: usize) {
    let net = flags.resolve().unwrap();
    let spec = RunSpec {
        net,
        batch,
        networks: 3,
        seed: 11,
    };
    let ctx = common::gpu();
    let gpu = run_gpu(&ctx, &spec, chunk, &mut |_, _| {}).unwrap();
    let cpu = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let rtol = 2e-4;
    for (s, (g_net, c_net)) in gpu.per_network.iter().zip(&cpu.per_network).enumerate() {
        for (l, (g, c)) in g_net.iter().zip(c_net).enumerate() {
            let what = format!("{} network {s} layer {l}", spec.net.act);
            let close = |name: &str, a: f64, b: f64, scale: f64| {
                assert!(
                    (a - b).abs() <= rtol * scale,
                    "{what} {name}: gpu {a} vs cpu {b}"
                );
            };
            // logs: an absolute difference of rtol is a relative one in q
            close("log_q_pre", g.log_q_pre, c.log_q_pre, 1.0);
            close("log_q_post", g.log_q_post, c.log_q_post, 1.0);
            close(
                "sample_log_q_post",
                g.sample_log_q_post,
                c.sample_log_q_post,
                1.0,
            );
            close("mean_pre", g.mean_pre, c.mean_pre, c.log_q_pre.exp().sqrt());
            close(
                "mean_post",
                g.mean_post,
                c.mean_post,
                c.log_q_post.exp().sqrt(),
            );
            close("kurt_pre", g.kurt_pre, c.kurt_pre, c.kurt_pre);
            close("c_pre", g.c_pre, c.c_pre, 1.0);
            let unit = 1.0 / (batch * spec.net.widths[l]) as f64;
            assert!(
                (g.zero_frac - c.zero_frac).abs() <= 2.0 * unit,
                "{what} zero_frac {} vs {}",
                g.zero_frac,
                c.zero_frac
            );
        }
    }
}

fn flags(widths: &str, act: &str, init: &str) -> NetworkFlags {
    NetworkFlags {
        widths: Some(widths.into()),
        act: Some(act.into()),
        init: InitFlags {
            init: Some(init.into()),
            ..Default::default()
        },
        q0: 1.3,
        c0: 0.3,
        ..Default::default()
    }
}

#[test]
fn relu_non_square_he() {
    check(flags("37,64,96,17,50", "relu", "he-normal"), 6, 2);
}

#[test]
fn tanh_with_bias_xavier_uniform() {
    let mut f = flags("40,72,72,33", "tanh", "xavier-uniform");
    f.init.sigma_b2 = Some(0.05);
    check(f, 8, 128);
}

#[test]
fn identity_truncated_normal_renormalised() {
    check(
        flags("64,48,80,64,64,30", "identity", "truncated-normal"),
        4,
        3,
    );
}

#[test]
fn torch_default_gelu_with_its_uniform_bias() {
    check(flags("50,50,50,50", "gelu", "torch-default"), 10, 1);
}

#[test]
fn every_activation_one_layer() {
    for act in varprop::activation::ACTIVATION_NAMES {
        let init = if *act == "sin" {
            "siren"
        } else {
            "lecun-normal"
        };
        check(flags("33,41,29", act, init), 4, 128);
    }
}

#[test]
fn custom_leaky_relu_and_c0_extremes() {
    let mut f = flags("32,32,32,32", "leaky-relu", "custom");
    f.init.init = None;
    f.init.sigma_w2 = Some(2.0);
    f.alpha = Some(0.2);
    f.c0 = 1.0;
    check(f.clone(), 2, 2);
    f.c0 = -1.0;
    check(f, 4, 2);
}

/// Statistics do not depend on how layers are grouped into submissions.
#[test]
fn chunk_size_does_not_change_a_bit() {
    let ctx = common::gpu();
    let mut f = flags("24,40x9,24", "tanh", "he-normal");
    f.init.sigma_b2 = Some(0.1);
    let spec = RunSpec {
        net: f.resolve().unwrap(),
        batch: 4,
        networks: 2,
        seed: 5,
    };
    let reference = run_gpu(&ctx, &spec, 128, &mut |_, _| {})
        .unwrap()
        .per_network;
    for chunk in [1, 3, 7, 11] {
        let other = run_gpu(&ctx, &spec, chunk, &mut |_, _| {})
            .unwrap()
            .per_network;
        assert_eq!(reference, other, "chunk {chunk}");
    }
}
