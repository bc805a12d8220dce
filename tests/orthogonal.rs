//! Orthogonal weights: generated on the GPU by Householder QR of a Gaussian
//! matrix with the signs fixed so that Q is Haar-distributed.

mod common;

use varprop::gpu::probe;

fn orthogonal_net(widths: &str, gain: Option<f64>) -> varprop::spec::NetworkSpec {
    let mut flags = varprop::config::settings::NetworkSettings {
        c0: Some(0.0),
        ..common::flags(widths, "identity", "orthogonal")
    };
    flags.init.gain = gain;
    flags.resolve().unwrap()
}

/// W^T W = gain^2 I (tall) or W W^T = gain^2 I (wide). Householder QR in f32
/// is backward stable: the loss of orthogonality is O(m n u) in the worst
/// case and O(sqrt(m) u) per entry in practice (Higham, Accuracy and
/// Stability, 19.3); we allow 4 m u per entry, u = 2^-24, times gain^2.
#[test]
fn rows_or_columns_are_orthonormal_times_the_gain() {
    let ctx = common::gpu();
    for (widths, gain) in [
        ("16,16", 1.0),
        ("40,64", 1.0),
        ("64,40", 2.0),
        ("128,128", 0.5),
        ("97,33", 1.0),
    ] {
        let net = orthogonal_net(widths, Some(gain));
        let (n_in, n_out) = (net.widths[0], net.widths[1]);
        let w = probe::weights(&ctx, &net, 3, 0, 1).unwrap();
        let (m, n) = (n_in.max(n_out), n_in.min(n_out));
        let tol = 4.0 * m as f64 * f32::EPSILON as f64 / 2.0 * gain * gain;
        // entries of the n x n product of the short side with itself
        let entry = |a: usize, b: usize| -> f64 {
            if n_out >= n_in {
                (0..n_out)
                    .map(|i| w[i * n_in + a] as f64 * w[i * n_in + b] as f64)
                    .sum()
            } else {
                (0..n_in)
                    .map(|j| w[a * n_in + j] as f64 * w[b * n_in + j] as f64)
                    .sum()
            }
        };
        for a in 0..n {
            for b in 0..n {
                let want = if a == b { gain * gain } else { 0.0 };
                let got = entry(a, b);
                assert!(
                    (got - want).abs() < tol,
                    "{widths} gain {gain}: entry ({a},{b}) = {got}, want {want} (tol {tol:e})"
                );
            }
        }
    }
}

/// Haar: the entries scaled by sqrt(n) have variance 1, and tr(Q) has mean
/// 0 and variance 1 for n >= 2 (Diaconis & Shahshahani 1994; its fourth
/// moment is 3 for n >= 4, which gives the standard error of the variance).
#[test]
fn orthogonal_matrices_look_haar() {
    let ctx = common::gpu();
    let n = 12;
    let samples = 300;
    let net = orthogonal_net(&format!("{n},{n}"), None);
    let mut traces = Vec::new();
    let mut entry_sq = 0.0;
    for s in 0..samples {
        let w = probe::weights(&ctx, &net, 17, s, 1).unwrap();
        traces.push((0..n).map(|i| w[i * n + i] as f64).sum::<f64>());
        entry_sq += w
            .iter()
            .map(|x| (*x as f64).powi(2) * n as f64)
            .sum::<f64>();
    }
    let bound = common::z_bound(2);
    let (mean, se) = varprop::sim::stats::mean_se(traces.iter().copied());
    assert!((mean / se).abs() < bound, "trace mean {mean} ± {se}");
    let var = traces.iter().map(|t| t * t).sum::<f64>() / samples as f64;
    let var_se = (2.0 / samples as f64).sqrt();
    assert!(
        ((var - 1.0) / var_se).abs() < bound,
        "trace variance {var} ± {var_se}"
    );
    // every row has norm exactly 1, so the mean of n w^2 is 1 up to rounding
    let mean_sq = entry_sq / (samples * n * n) as f64;
    assert!((mean_sq - 1.0).abs() < 1e-5, "n E[w^2] = {mean_sq}");
}
