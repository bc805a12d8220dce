//! The simulator against exact statements about random networks, with
//! tolerances from the measured standard errors (common::z_bound: a correct
//! simulator fails each test with probability below 1e-4).

mod common;

use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;

/// Runs `spec` on the GPU, `chunk` layers a submission.
fn run_chunked(spec: &RunSpec, chunk: usize) -> RunOutput {
    let options = GpuOptions {
        chunk,
        ..Default::default()
    };
    run_gpu(&common::gpu(), spec, options, &mut |_, _| {}).unwrap()
}

/// Every layer's (mean, SE) of `name` equals `want` within the z bound
/// over all the layers.
fn assert_mean_at_every_layer(name: &str, means: &[(f64, f64)], want: f64) {
    let bound = common::z_bound(means.len());
    for (l, (mean, se)) in means.iter().enumerate() {
        let z = (mean - want) / se;
        assert!(
            z.abs() < bound,
            "layer {l}: E {name} = {mean} ± {se}, want {want} (z = {z:.2})"
        );
    }
}

/// Linear network with v = 1/fan_in: E[q_pre[l]] = q0 at every layer and
/// every finite width (E ||W x||^2 = n_out v ||x||^2).
#[test]
fn linear_lecun_keeps_the_mean_of_q() {
    let net = common::net("48,64x8", "identity", "lecun-normal");
    let spec = common::run_spec(net, 8, 128, 3);
    let run = run_chunked(&spec, 128);
    let means: Vec<_> = run.summary.iter().map(|s| s.q_pre).collect();
    assert_mean_at_every_layer("q_pre", &means, spec.net.q0);
}

/// ReLU with He (fan_in): E[q_post[l]] = q0 at every layer (the sign of h is
/// symmetric given x, so E relu(h)^2 = E h^2 / 2 = n v E q_post[l-1] / 2).
#[test]
fn relu_he_keeps_the_mean_of_q_post() {
    let net = common::net("64x11", "relu", "he-normal");
    let spec = common::run_spec(net, 8, 128, 5);
    let run = run_chunked(&spec, 128);
    let means: Vec<_> = run.summary.iter().map(|s| s.q_post).collect();
    assert_mean_at_every_layer("q_post", &means, spec.net.q0);
}

/// digamma at k/2 for integer k >= 1, exactly: psi(m) = -gamma + sum_{j<m} 1/j,
/// psi(m + 1/2) = -gamma - 2 ln 2 + sum_{j<=m} 2/(2j - 1).
fn digamma_half_integer(k: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    if k % 2 == 0 {
        -EULER_GAMMA + (1..k / 2).map(|j| 1.0 / j as f64).sum::<f64>()
    } else {
        -EULER_GAMMA - 2.0 * std::f64::consts::LN_2
            + (1..=k / 2).map(|j| 2.0 / (2 * j - 1) as f64).sum::<f64>()
    }
}

/// Xavier on ReLU halves q every layer at infinite width. At width n the
/// exact law is ||x_l||^2 = v chi^2_K ||x_{l-1}||^2 with K ~ Binomial(n, 1/2),
/// so the per-layer slope of log q is E[ln v + ln 2 + psi(K/2)], which is
/// ln(1/2) minus a finite-width drift (about 2.5/n). Over 10,000 layers
/// with the log-scale carry, the measured slope must match it within its
/// standard error, measured from blocks of 1,000 layers (the increments are
/// martingale differences, so the block slopes are uncorrelated).
#[test]
fn xavier_relu_halves_q_for_ten_thousand_layers() {
    let n = 32;
    let depth = 10_000;
    let net = common::net(&format!("{n}x{}", depth + 1), "relu", "xavier-normal");
    let v = net.weight_law(1).variance;
    let spec = common::run_spec(net, 2, 2, 9);
    let run = run_chunked(&spec, 512);

    // exact expected slope, K = 0 (probability 2^-32) left out
    let mut slope_theory = 0.0;
    let mut mass = 0.0;
    let mut pk = 0.5f64.powi(n as i32);
    for k in 0..=n {
        if k > 0 {
            slope_theory += pk * (v.ln() + std::f64::consts::LN_2 + digamma_half_integer(k));
            mass += pk;
        }
        pk *= (n - k) as f64 / (k + 1) as f64;
    }
    slope_theory /= mass;
    assert!(
        (slope_theory - 0.5f64.ln()).abs() < 5.0 / n as f64,
        "the law's slope tends to ln 1/2"
    );

    let block = 1000;
    let mut per_input = Vec::new();
    let mut batch_level = Vec::new();
    for net in &run.per_network {
        assert!(
            net[depth].log_q_post.is_finite(),
            "log q must stay finite at depth {depth}"
        );
        for b in 0..depth / block {
            let (a, z) = (b * block, (b + 1) * block);
            per_input.push((net[z].sample_log_q_post - net[a].sample_log_q_post) / block as f64);
            if b > 0 {
                batch_level.push((net[z].log_q_post - net[a].log_q_post) / block as f64);
            }
        }
    }
    let bound = common::z_bound(2);
    for (name, slopes) in [("per-input", per_input), ("batch-level", batch_level)] {
        let (mean, se) = varprop::sim::stats::mean_se(slopes.iter().copied());
        let z = (mean - slope_theory) / se;
        assert!(
            z.abs() < bound,
            "{name} slope {mean} ± {se} vs exact {slope_theory} (ln 1/2 = {}), z = {z:.2}",
            0.5f64.ln()
        );
    }
}
