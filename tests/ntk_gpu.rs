//! The GPU engines' NTK (--ntk, issue 17): the gram engine against the
//! infinite-width theory at width 65,536 (depths 1 to 100) and against the
//! CPU reference in distribution (the two draw different networks from the
//! same law); the dense engine against the CPU reference on the same draws.

mod common;

use varprop::analysis::comparisons::z_bound;
use varprop::analysis::ntk::ntk_report;
use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::model::init::InitFlags;
use varprop::sim::run_cpu;
use varprop::spec::RunSpec;

fn spec(
    width: usize,
    depth: usize,
    act: &str,
    init: InitFlags,
    batch: usize,
    networks: usize,
    seed: u64,
) -> RunSpec {
    RunSettings {
        net: NetworkSettings {
            width: Some(width),
            depth: Some(depth),
            act: Some(act.into()),
            init,
            q0: Some(1.0),
            c0: Some(0.3),
            ..Default::default()
        },
        batch: Some(batch),
        networks: Some(networks),
        seed: Some(seed),
        ntk: Some(true),
        ..Default::default()
    }
    .resolve(networks)
    .unwrap()
}

use common::custom_init as custom;

fn he() -> InitFlags {
    InitFlags {
        init: Some("he-normal".into()),
        ..Default::default()
    }
}

#[test]
fn wide_gram_networks_follow_the_infinite_width_kernel() {
    let ctx = common::gpu();
    let cases = [
        ("relu", he()),
        ("erf", custom(1.6, 0.1)),
        ("tanh", custom(1.5, 0.05)),
    ];
    let depths = [1, 10, 100];
    let networks = 8;
    // 18 comparisons, each a Student t with 7 degrees of freedom: a
    // correct engine fails the test with probability below 1e-3; the
    // finite-width bias, O(L / n) <= 0.2%, is well under the SE
    let bound = z_bound(2 * cases.len() * depths.len(), networks, 1e-3);
    for (act, init) in cases {
        for depth in depths {
            let spec = spec(65536, depth, act, init.clone(), 4, networks, 5);
            let run = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
            assert_eq!(run.info.engine, "gpu-gram");
            let report = ntk_report(&spec, &run).unwrap();
            for (name, m) in [("ntk_diag", report.ntk_diag), ("ntk_c", report.ntk_c)] {
                let z = m.z.unwrap();
                assert!(
                    z.abs() < bound,
                    "{act} depth {depth} {name}: {m:?} (bound {bound:.2})"
                );
            }
        }
    }
}

#[test]
fn gram_matches_the_cpu_reference_in_distribution() {
    let ctx = common::gpu();
    // width 64, depth 4, 48 networks each: the two means of the kernel's
    // diagonal and pair correlation, and of one layer's contribution, agree
    // within 4.5 joint standard errors (6 comparisons, normal tails: a
    // false failure below 5e-5)
    for (act, init) in [("relu", he()), ("tanh", custom(1.5, 0.05))] {
        let gram_spec = spec(64, 4, act, init.clone(), 4, 48, 1);
        let cpu_spec = spec(64, 4, act, init, 4, 48, 2);
        let gram = run_gpu(&ctx, &gram_spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
        let cpu = run_cpu(&cpu_spec, &mut |_, _| {}).unwrap();
        assert_eq!(gram.info.engine, "gpu-gram");
        let (g, c) = (
            ntk_report(&gram_spec, &gram).unwrap(),
            ntk_report(&cpu_spec, &cpu).unwrap(),
        );
        let close = |name: &str, a: (f64, f64), b: (f64, f64)| {
            let z = (a.0 - b.0) / (a.1 * a.1 + b.1 * b.1).sqrt();
            assert!(z.abs() < 4.5, "{act} {name}: gram {a:?} against cpu {b:?}");
        };
        let pair = |m: varprop::analysis::ntk::Measured| (m.mean.unwrap(), m.se.unwrap());
        close("ntk_diag", pair(g.ntk_diag), pair(c.ntk_diag));
        close("ntk_c", pair(g.ntk_c), pair(c.ntk_c));
        let layer = |run: &varprop::sim::RunOutput| {
            let v: Vec<f64> = run.ntk.iter().map(|n| n.layer_diag[1]).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
            (m, (var / v.len() as f64).sqrt())
        };
        close("ntk_layer[2]", layer(&gram), layer(&cpu));
    }
}

#[test]
fn dense_gpu_matches_the_cpu_reference_on_the_same_draws() {
    let ctx = common::gpu();
    // the same networks: every kernel entry within f32 rounding carried
    // through the layers, with a renormalised deep relu stack, biases,
    // both parametrisations and a checkpoint interval that cuts the
    // backward pass into segments
    let cases = [
        ("relu", he(), 40, "ntk", Some(7)),
        ("tanh", custom(1.5, 0.1), 12, "standard", None),
        ("erf", custom(2.0, 0.2), 9, "ntk", Some(2)),
    ];
    for (act, init, depth, param, every) in cases {
        let mut spec = spec(48, depth, act, init, 6, 3, 4);
        spec.probes.ntk = Some(varprop::spec::Parametrisation::parse(param).unwrap());
        spec.engine = varprop::spec::EngineChoice::Dense;
        let options = GpuOptions {
            checkpoint_every: every,
            ..GpuOptions::default()
        };
        assert_dense_matches_cpu(&ctx, &spec, options, &format!("{act} {param}"));
    }
}

/// The dense engine's NTK against the CPU reference's on the same draws:
/// every kernel entry and every layer's diagonal within 1e-4 (relative).
fn assert_dense_matches_cpu(
    ctx: &varprop::gpu::GpuContext,
    spec: &RunSpec,
    options: GpuOptions,
    name: &str,
) {
    let gpu = run_gpu(ctx, spec, options, &mut |_, _| {}).unwrap();
    assert_eq!(gpu.info.engine, "gpu-dense");
    let cpu = run_cpu(spec, &mut |_, _| {}).unwrap();
    assert_eq!(gpu.ntk.len(), cpu.ntk.len());
    for (g, c) in gpu.ntk.iter().zip(&cpu.ntk) {
        let scale = c.kernel.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (a, b) in g.kernel.iter().zip(&c.kernel) {
            assert!(
                (a - b).abs() < 1e-4 * scale,
                "{name}: {:?} against {:?}",
                g.kernel,
                c.kernel
            );
        }
        for (a, b) in g.layer_diag.iter().zip(&c.layer_diag) {
            assert!(
                (a - b).abs() < 1e-4 * b.abs().max(1e-30),
                "{name}: layer {a} against {b}"
            );
        }
    }
}

#[test]
fn dense_gram_passes_cover_slices_and_wide_batches() {
    let ctx = common::gpu();
    // the Gram matrices are the product kernel with the rows as W, one
    // slice of 4,096 units per workgroup layer: widths of 1 and 3 slices
    // (and a narrow top), and a batch of 36 rows, which takes the wide
    // kernel (64 rows a workgroup) with rows past the batch
    let cases = [("3000,8200,9", 4, 1), ("40,33,40", 36, 2)];
    for (widths, batch, networks) in cases {
        let spec = RunSettings {
            net: common::flags(widths, "tanh", "xavier-normal"),
            batch: Some(batch),
            networks: Some(networks),
            seed: Some(11),
            ntk: Some(true),
            engine: Some("dense".into()),
            ..Default::default()
        }
        .resolve(networks)
        .unwrap();
        assert_dense_matches_cpu(&ctx, &spec, GpuOptions::default(), widths);
    }
}
