//! The backward pass and the Jacobian probes against exact statements about
//! random networks (tolerances from the measured standard errors; see
//! common::z_bound), and the memory the checkpointing promises.

mod common;

use varprop::config::settings::NetworkSettings;
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::RunOutput;
use varprop::spec::{EngineChoice, Probes, RunSpec};

const BACKWARD: Probes = Probes {
    backward: true,
    jacobian: false,
    weight_grads: false,
    ntk: None,
};

const JACOBIAN: Probes = Probes {
    backward: false,
    jacobian: true,
    weight_grads: false,
    ntk: None,
};

/// Runs `flags` on the GPU's `engine` with `probes`: batch 8, seed 21.
fn run_on(
    engine: EngineChoice,
    flags: NetworkSettings,
    networks: usize,
    probes: Probes,
) -> (RunSpec, RunOutput) {
    let spec = RunSpec {
        probes,
        engine,
        ..RunSpec::new(flags.resolve().unwrap(), 8, networks, 21)
    };
    let out = run_gpu(&common::gpu(), &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
    (spec, out)
}

/// ReLU with Gaussian weights and a Gaussian delta_L independent of the
/// network: E[g_l] = (1/2) n_{l+1} v_{l+1} E[g_{l+1}] exactly at any width
/// (the sign of w_i . x is symmetric under w_i -> -w_i, and the zero-mean
/// delta_L kills the cross terms), g_0 = n_1 v_1 g_1 (no phi' at the input),
/// g_L = 1. He fan_in preserves q forward, he fan_out preserves g backward,
/// Xavier splits the difference: on a stack whose widths alternate, each
/// shows its own direction.
#[test]
fn relu_gradient_variance_follows_the_backward_recurrence() {
    let widths = "48,96,48,96,48,96";
    let bound = common::z_bound(3 * 6 * 2);
    for (init, fan) in [
        ("he-normal", Some("fan_in")),
        ("he-normal", Some("fan_out")),
        ("xavier-normal", None),
    ] {
        let mut flags = common::flags(widths, "relu", init);
        flags.init.fan_mode = fan.map(String::from);
        let (spec, out) = run_on(EngineChoice::Dense, flags, 96, BACKWARD);
        let net = &spec.net;
        let depth = net.depth();
        let mut g = vec![1.0; depth + 1];
        for l in (0..depth).rev() {
            let factor = net.widths[l + 1] as f64 * net.weight_law(l + 1).variance;
            g[l] = factor * if l == 0 { 1.0 } else { 0.5 } * g[l + 1];
        }
        for l in 0..=depth {
            let (mean, se) = out.summary[l].g;
            let z = (mean - g[l]) / se;
            assert!(
                z.abs() < bound,
                "{init} {fan:?} layer {l}: g = {mean} ± {se}, want {} (z = {z:.2})",
                g[l]
            );
        }
        // the forward direction for contrast: E q_post = q0 * prod(n_l v_l / 2)
        let mut q = spec.net.q0;
        for l in 1..=depth {
            q *= net.widths[l - 1] as f64 * net.weight_law(l).variance / 2.0;
            let (mean, se) = out.summary[l].q_post;
            let z = (mean - q) / se;
            assert!(
                z.abs() < bound,
                "{init} {fan:?} layer {l}: q_post = {mean} ± {se}, want {q} (z = {z:.2})"
            );
        }
    }
}

/// Exact first and second moments of J^T J for a linear network with
/// Gaussian weights (W_l: n_l x n_{l-1}, variance v_l), by the recursion on
/// T1 = E tr M, T2 = E tr M^2, Q = E (tr M)^2 for M = J^T J:
///   T1' = n v T1,  T2' = n v^2 ((n + 1) T2 + Q),  Q' = (n v)^2 Q + 2 n v^2 T2
/// (Wishart moments: E[X A X] = n v^2 ((n + 1) A + tr(A) I) for X = W^T W).
/// For unit probes u, E||J u||^2 = T1/n_0 and E||J^T J u||^2 = T2/n_0.
fn linear_gaussian_moments(widths: &[usize], variances: &[f64]) -> (f64, f64) {
    let n0 = widths[0] as f64;
    let (mut t1, mut t2, mut q) = (n0, n0, n0 * n0);
    for (l, v) in variances.iter().enumerate() {
        let n = widths[l + 1] as f64;
        let (a, b, c) = (
            n * v * t1,
            n * v * v * ((n + 1.0) * t2 + q),
            (n * v).powi(2) * q + 2.0 * n * v * v * t2,
        );
        (t1, t2, q) = (a, b, c);
    }
    (t1 / n0, t2 / n0)
}

/// Linear Gaussian networks: m1 = E||J u||^2 and m2 = E||J^T J u||^2 match
/// the exact moments above within their standard errors at depths 2, 4 and
/// 8, and the spread m2/m1^2 - 1 grows linearly with depth (L at infinite
/// width, Pennington et al. 2017), here with its finite-width correction.
#[test]
fn linear_gaussian_jacobian_spread_grows_with_depth() {
    linear_gaussian_jacobian_moments(EngineChoice::Dense);
}

/// The same on the gram engine (the tangents are more columns of its X).
#[test]
fn linear_gaussian_jacobian_moments_on_gram() {
    linear_gaussian_jacobian_moments(EngineChoice::Gram);
}

fn linear_gaussian_jacobian_moments(engine: EngineChoice) {
    let bound = common::z_bound(3 * 2);
    let mut spreads = Vec::new();
    for depth in [2, 4, 8] {
        let widths = format!("32x{}", depth + 1);
        let flags = common::flags(&widths, "identity", "lecun-normal");
        let (spec, out) = run_on(engine, flags, 64, JACOBIAN);
        if engine == EngineChoice::Gram {
            assert_eq!(out.info.engine, "gpu-gram");
        }
        let variances: Vec<f64> = (1..=depth)
            .map(|l| spec.net.weight_law(l).variance)
            .collect();
        let (m1, m2) = linear_gaussian_moments(&spec.net.widths, &variances);
        let s = varprop::analysis::report::jacobian_summary(&out);
        for (name, mean, se, want) in [
            ("m1", s.jac_m1_mean, s.jac_m1_se, m1),
            ("m2", s.jac_m2_mean, s.jac_m2_se, m2),
        ] {
            let z = (mean - want) / se;
            assert!(
                z.abs() < bound,
                "depth {depth}: {name} = {mean} ± {se}, exact {want} (z = {z:.2})"
            );
        }
        spreads.push(m2 / (m1 * m1) - 1.0);
    }
    // the exact spread is depth (1 + O(depth / n)): check the theory we test against
    for (spread, depth) in spreads.iter().zip([2.0, 4.0, 8.0]) {
        assert!(
            *spread > depth && *spread < depth * (1.0 + 2.0 * depth / 32.0),
            "spread {spread} at depth {depth}"
        );
    }
}

/// A linear network with orthogonal weights is an isometry: every probe
/// keeps its norm, so m1 = m2 = 1 and the spread is 0, up to f32 rounding.
#[test]
fn linear_orthogonal_jacobian_is_an_isometry() {
    let flags = common::flags("48x9", "identity", "orthogonal");
    let (_, out) = run_on(EngineChoice::Dense, flags, 4, JACOBIAN);
    common::assert_jacobian_isometry("48x9 orthogonal", &out);
}

/// The backward pass at depth 2,000 keeps h at ceil(L/k) checkpoints and k
/// recomputed layers (k = ceil(sqrt L) = 45): the device memory is bounded by
/// that plus buffers that do not depend on depth (and 16 bytes of scales per
/// layer), far below storing every layer.
#[test]
fn backward_memory_follows_the_checkpoint_rule() {
    let (n, batch, depth) = (64usize, 8usize, 2000usize);
    let flags = common::stack(n, depth, "tanh", "he-normal");
    let spec = RunSpec {
        probes: BACKWARD,
        ..RunSpec::new(flags.resolve().unwrap(), batch, 1, 1)
    };
    let ctx = common::gpu();
    let out = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
    let k = out.info.checkpoint_every.unwrap();
    assert_eq!(k, 45);
    let floats = |x: usize| 4 * x as u64;
    let row = n; // already a multiple of 4
    let checkpoints = floats((depth.div_ceil(k) + k) * batch * row);
    let activations = floats(12 * batch * row); // x, h, t, W t, delta (2B rows), W^T delta
    let weights = floats(n * n + n);
    let scales = floats(4 * (depth + 1));
    let records = floats(3 * (128 * (batch / 2 * 10 + batch) + (k + 1) * 2 * batch)); // and the two staging copies
    let params = 2048 * 256;
    let bound = checkpoints + activations + weights + scales + records + params + 4096;
    let peak = out.info.device_bytes_peak;
    assert!(
        peak <= bound,
        "device_bytes_peak {peak} over the bound {bound}"
    );
    let every_layer = floats(depth * batch * row);
    assert!(
        peak < every_layer / 4,
        "device_bytes_peak {peak} vs {every_layer} for storing every layer"
    );
    assert!(out.per_network[0][0].log_g.is_finite());
}

/// A forward run's memory does not grow with depth at all.
#[test]
fn forward_memory_is_flat_in_depth() {
    let ctx = common::gpu();
    let peak = |depth: usize| {
        let flags = common::stack(32, depth, "relu", "he-normal");
        let spec = RunSpec::new(flags.resolve().unwrap(), 4, 1, 0);
        varprop::gpu::dense::DenseGpu::new(&ctx, &spec, varprop::gpu::dense::DEFAULT_CHUNK, 1)
            .unwrap()
            .device_bytes
    };
    assert_eq!(peak(100), peak(10_000));
}
