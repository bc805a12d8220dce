//! Theory against simulation: the exact finite-width law of log q against a
//! Monte Carlo of the CPU reference engine, and the mean-field predictions
//! against the GPU engine through `check`'s own comparison rule.

mod common;

use varprop::analysis::comparisons;
use varprop::analysis::predictions;
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::run_cpu;
use varprop::spec::RunSpec;
use varprop::theory;

/// Many narrow networks on the CPU reference, one input (B = 2 with c0 = 1
/// feeds the same input twice): the mean and the variance across networks
/// of log q_post at every layer match the exact law within their standard
/// errors (the variance's from the sample fourth moment).
#[test]
fn finite_width_law_matches_a_monte_carlo_of_the_reference_engine() {
    for (act, init, widths) in [
        ("relu", "he-normal", "6,8,5,8,8"),
        ("identity", "lecun-normal", "5,7,7,4"),
    ] {
        let mut net = common::net(widths, act, init);
        net.c0 = 1.0;
        let law = theory::layer_table(&net);
        let spec = RunSpec::new(net, 2, 4000, 77);
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        let bound = common::z_bound(2 * law.len());
        for (l, row) in law.iter().enumerate() {
            // networks with a dead layer have log q = -inf: the law conditions on K >= 1
            let x: Vec<f64> = out
                .per_network
                .iter()
                .map(|n| n[l].sample_log_q_post)
                .filter(|v| v.is_finite())
                .collect();
            let s = x.len() as f64;
            let mean = x.iter().sum::<f64>() / s;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (s - 1.0);
            let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / s;
            let (want_mean, want_std) = (row.log_q_post_mean.unwrap(), row.log_q_post_std.unwrap());
            let z_mean = (mean - want_mean) / (var / s).sqrt();
            let z_var = (var - want_std * want_std) / ((m4 - var * var) / s).sqrt();
            assert!(
                z_mean.abs() < bound,
                "{act} layer {l}: mean log q {mean} vs law {want_mean} (z = {z_mean:.2})"
            );
            assert!(
                z_var.abs() < bound,
                "{act} layer {l}: var log q {var} vs law {} (z = {z_var:.2})",
                want_std * want_std
            );
        }
    }
}

/// Wide networks on the GPU: every comparison `check` makes (its rule for
/// what is meaningful at finite width) stays within its bound, for relu
/// (exact recurrences), tanh and erf (mean field), and enough comparisons are
/// made for the test to mean something.
#[test]
fn wide_networks_follow_mean_field_theory() {
    let ctx = common::gpu();
    let cases = [
        ("relu", "he-normal", None, None),
        ("tanh", "custom", Some(1.5), Some(0.05)),
        ("erf", "custom", Some(2.0), Some(0.1)),
    ];
    for (act, init, sigma_w2, sigma_b2) in cases {
        let mut flags = common::stack(128, 10, act, init);
        flags.init.sigma_w2 = sigma_w2;
        flags.init.sigma_b2 = sigma_b2;
        let spec = RunSpec {
            probes: varprop::spec::Probes {
                backward: true,
                ..Default::default()
            },
            ..RunSpec::new(flags.resolve().unwrap(), 8, 32, 5)
        };
        let run = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
        let mut table = varprop::analysis::report::run_table(&spec, &run);
        let preds = predictions::predictions(&spec, &spec.net);
        comparisons::add_theory_columns(&mut table, &spec, &preds, &spec.net);
        let comparisons = comparisons::comparisons(&table, &run, &preds);
        assert!(
            comparisons.len() >= 30,
            "{act}: only {} comparisons",
            comparisons.len()
        );
        let bound = comparisons::z_bound(
            comparisons.len(),
            spec.networks,
            comparisons::FALSE_FAILURE_RATE,
        );
        for c in &comparisons {
            assert!(
                c.z.abs() < bound,
                "{act} layer {} {}: {} ± {} vs theory {} (z = {:.2}, bound {bound:.2})",
                c.layer,
                c.column,
                c.measured,
                c.se,
                c.theory,
                c.z
            );
        }
    }
}

/// The Bonferroni-t bound grows with the number of comparisons and shrinks
/// with the number of networks, and is the normal quantile for many.
#[test]
fn z_bound_is_the_t_quantile() {
    let b = comparisons::z_bound(100, 1_000_000, 1e-4);
    assert!((b - common::z_bound(100)).abs() < 1e-3, "{b}");
    assert!(comparisons::z_bound(1000, 32, 1e-4) > comparisons::z_bound(10, 32, 1e-4));
    assert!(comparisons::z_bound(10, 4, 1e-4) > comparisons::z_bound(10, 32, 1e-4));
}
