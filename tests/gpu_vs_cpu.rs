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

use varprop::config::settings::NetworkSettings;
use varprop::gpu::GpuContext;
use varprop::gpu::choice::run_gpu_with_kernels;
use varprop::gpu::tuning::{Kernels, ProductKernel, Reduction};
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::run_cpu;
use varprop::spec::{Probes, RunSpec};

fn check(flags: NetworkSettings, batch: usize, chunk: usize) {
    check_probes(flags, batch, chunk, Probes::default(), None);
}

fn check_probes(
    flags: NetworkSettings,
    batch: usize,
    chunk: usize,
    probes: Probes,
    every: Option<usize>,
) {
    let ctx = common::gpu();
    let kernels = Kernels::auto(&ctx, batch);
    check_kernels(&ctx, flags, batch, chunk, probes, every, kernels);
}

fn check_kernels(
    ctx: &GpuContext,
    flags: NetworkSettings,
    batch: usize,
    chunk: usize,
    probes: Probes,
    every: Option<usize>,
    kernels: Kernels,
) {
    let net = flags.resolve().unwrap();
    let spec = RunSpec {
        probes,
        ..RunSpec::new(net, batch, 3, 11)
    };
    let options = GpuOptions {
        chunk,
        checkpoint_every: every,
        ..Default::default()
    };
    let gpu = run_gpu_with_kernels(ctx, &spec, options, kernels, &mut |_, _| {}).unwrap();
    let cpu = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let rtol = 2e-4;
    for (s, (g_net, c_net)) in gpu.per_network.iter().zip(&cpu.per_network).enumerate() {
        for (l, (g, c)) in g_net.iter().zip(c_net).enumerate() {
            let what = format!("{} {kernels:?} network {s} layer {l}", spec.net.act);
            let close = |name: &str, a: f64, b: f64, scale: f64| {
                let both_nan = a.is_nan() && b.is_nan();
                assert!(
                    both_nan || (a - b).abs() <= rtol * scale,
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
            close("log_g", g.log_g, c.log_g, 1.0);
            close("log_gw", g.log_gw, c.log_gw, 1.0);
            close("log_jac_m1", g.log_jac_m1, c.log_jac_m1, 1.0);
            let unit = 1.0 / (batch * spec.net.widths[l]) as f64;
            assert!(
                (g.zero_frac - c.zero_frac).abs() <= 2.0 * unit,
                "{what} zero_frac {} vs {}",
                g.zero_frac,
                c.zero_frac
            );
        }
    }
    for (g, c) in gpu.tops.iter().zip(&cpu.tops) {
        for (name, a, b) in [
            ("log_jac_m1", g.log_jac_m1, c.log_jac_m1),
            ("log_jac_m2", g.log_jac_m2, c.log_jac_m2),
        ] {
            assert!(
                (a.is_nan() && b.is_nan()) || (a - b).abs() <= rtol,
                "{name}: gpu {a} vs cpu {b}"
            );
        }
    }
    if probes.needs_backward() {
        assert!(
            gpu.per_network[0][0].log_g.is_finite(),
            "the backward pass ran"
        );
    }
}

const ALL_PROBES: Probes = Probes {
    backward: true,
    jacobian: true,
    weight_grads: true,
    ntk: None,
};

/// common::flags with inputs of q0 = 1.3, c0 = 0.3.
fn flags(widths: &str, act: &str, init: &str) -> NetworkSettings {
    NetworkSettings {
        q0: Some(1.3),
        c0: Some(0.3),
        ..common::flags(widths, act, init)
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
fn every_activation_forward_backward_and_jacobian() {
    for act in varprop::model::activation::ACTIVATION_NAMES {
        let init = if *act == "sin" {
            "siren"
        } else {
            "lecun-normal"
        };
        check_probes(flags("33,41,29", act, init), 4, 128, ALL_PROBES, None);
    }
}

#[test]
fn every_init_scheme_forward_backward_and_jacobian() {
    for (init, _) in varprop::model::init::SCHEME_NAMES {
        let mut f = flags(
            "24,36,20",
            if *init == "siren" { "sin" } else { "tanh" },
            init,
        );
        if *init == "custom" {
            f.init.sigma_w2 = Some(1.3);
        }
        check_probes(f, 4, 128, ALL_PROBES, None);
    }
}

#[test]
fn custom_leaky_relu_and_c0_extremes() {
    let mut f = flags("32,32,32,32", "leaky-relu", "custom");
    f.init.init = None;
    f.init.sigma_w2 = Some(2.0);
    f.alpha = Some(0.2);
    f.c0 = Some(1.0);
    check(f.clone(), 2, 2);
    f.c0 = Some(-1.0);
    check(f, 4, 2);
}

/// Statistics do not depend on how layers are grouped into submissions.
#[test]
fn chunk_size_does_not_change_a_bit() {
    let ctx = common::gpu();
    let mut f = flags("24,40x9,24", "tanh", "he-normal");
    f.init.sigma_b2 = Some(0.1);
    let spec = RunSpec::new(f.resolve().unwrap(), 4, 2, 5);
    // Debug prints every f64 exactly (and NaN as NaN), so equal text is equal bits
    let run = |chunk| {
        format!(
            "{:?}",
            run_gpu(
                &ctx,
                &spec,
                GpuOptions {
                    chunk,
                    ..Default::default()
                },
                &mut |_, _| {}
            )
            .unwrap()
            .per_network
        )
    };
    let reference = run(128);
    for chunk in [1, 3, 7, 11] {
        assert_eq!(reference, run(chunk), "chunk {chunk}");
    }
}

#[test]
fn backward_relu_non_square_checkpointed() {
    // 5 layers, checkpoints every 2: segments of 2, 2 and 1 layers
    check_probes(
        flags("37,64,96,17,50,24", "relu", "he-normal"),
        6,
        2,
        ALL_PROBES,
        Some(2),
    );
}

#[test]
fn backward_tanh_with_bias_one_segment() {
    let mut f = flags("40,72,72,33", "tanh", "xavier-uniform");
    f.init.sigma_b2 = Some(0.05);
    check_probes(f, 8, 128, ALL_PROBES, Some(3));
}

#[test]
fn backward_square_gelu_and_identity() {
    check_probes(
        flags("48x5", "gelu", "lecun-normal"),
        4,
        3,
        Probes {
            backward: true,
            ..Default::default()
        },
        None,
    );
    check_probes(
        flags("32x7", "identity", "truncated-normal"),
        4,
        3,
        Probes {
            jacobian: true,
            ..Default::default()
        },
        Some(4),
    );
}

/// Recomputing each segment from its checkpoint gives the same h bit for
/// bit, so the checkpoint interval changes nothing: k = 3 (which does not
/// divide L = 10), k = 1, and k = L (no checkpoints: one segment).
#[test]
fn checkpointing_does_not_change_a_bit() {
    let ctx = common::gpu();
    let mut f = flags("20,36x9,28", "tanh", "he-normal");
    f.init.sigma_b2 = Some(0.1);
    let spec = RunSpec {
        probes: ALL_PROBES,
        ..RunSpec::new(f.resolve().unwrap(), 4, 2, 5)
    };
    let run = |every| {
        let options = GpuOptions {
            chunk: 4,
            checkpoint_every: Some(every),
            ..Default::default()
        };
        let out = run_gpu(&ctx, &spec, options, &mut |_, _| {}).unwrap();
        // Debug prints every f64 exactly (and NaN as NaN): equal text is equal bits
        format!("{:?} {:?}", out.per_network, out.tops)
    };
    let reference = run(10);
    for every in [3, 1] {
        assert_eq!(reference, run(every), "checkpoints every {every}");
    }
}

/// Every shape of the kernels (W drawn inside the product or read from the
/// buffer, loads shared across lanes or not, 16 or 64 rows per workgroup;
/// statistics summed by subgroups or by a tree) against the CPU reference,
/// forward and backward with their statistics, on widths and batches that
/// are not multiples of the tiles: widths 1, 3, 17, 63, 65 and 257 (4
/// outputs per invocation, 4 inputs per step), batches 2, 18 and 66 (16
/// and 64 rows per workgroup, even as the pairs need).
#[test]
fn kernels_on_ragged_shapes() {
    let ctx = common::gpu();
    let auto = Kernels::auto(&ctx, 66);
    let share = ctx.subgroup_min_size.clamp(1, 8);
    let mut all = vec![Kernels::portable(), auto];
    for (weights_from_rng, share, wide, reduction) in [
        (true, share, false, auto.reduction),
        (true, share, true, Reduction::tree()),
        (false, share, true, auto.reduction),
        (true, 1, true, auto.reduction),
    ] {
        let product = ProductKernel {
            weights_from_rng,
            share,
            wide,
            workgroup: 16,
        };
        all.push(Kernels { product, reduction });
    }
    let probes = Probes {
        backward: true,
        ..Default::default()
    };
    for kernels in all {
        for batch in [2, 18, 66] {
            let mut f = flags("3,17,1,63,65,257,17", "tanh", "he-normal");
            f.init.sigma_b2 = Some(0.05);
            check_kernels(&ctx, f, batch, 4, probes, Some(2), kernels);
        }
    }
}
