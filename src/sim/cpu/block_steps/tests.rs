//! The normalisations' Jacobian against central finite differences of
//! their forward map over the whole batch (batch-norm couples the rows), and
//! its use as the adjoint against the transpose of the same differences.

use super::*;
use rand::{RngExt, SeedableRng};

/// d y / d x by central differences: column (r, i) is the change of every
/// output entry when x[r][i] moves.
fn finite_difference_jacobian(kind: NormKind, eps: f64, shape: Shape, x: &[Row]) -> Vec<Vec<f64>> {
    let n = shape.units();
    let h = 1e-6;
    let mut columns = Vec::new();
    for r in 0..x.len() {
        for i in 0..n {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[r][i] += h;
            minus[r][i] -= h;
            let (yp, _) = normalise(kind, eps, shape, &plus);
            let (ym, _) = normalise(kind, eps, shape, &minus);
            columns.push(
                yp.iter()
                    .flatten()
                    .zip(ym.iter().flatten())
                    .map(|(a, b)| (a - b) / (2.0 * h))
                    .collect(),
            );
        }
    }
    columns
}

#[test]
fn norm_jacobian_is_the_derivative_and_its_own_adjoint() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut draw = |rows: usize, n: usize, offset: f64| -> Vec<Row> {
        (0..rows)
            .map(|_| {
                (0..n)
                    .map(|_| offset + rng.random_range(-1.5..1.5))
                    .collect()
            })
            .collect()
    };
    for kind in [NormKind::LayerNorm, NormKind::RmsNorm, NormKind::BatchNorm] {
        for shape in [Shape::Vector(5), Shape::Image(2, 2, 3)] {
            for eps in [0.0, 1e-2] {
                let n = shape.units();
                let x = draw(4, n, 0.3);
                let (y, inv) = normalise(kind, eps, shape, &x);
                let columns = finite_difference_jacobian(kind, eps, shape, &x);
                let (a, d) = (draw(4, n, 0.0), draw(4, n, 0.0));
                let flat = |v: &[Row]| v.iter().flatten().copied().collect::<Vec<f64>>();
                let (a_flat, d_flat) = (flat(&a), flat(&d));
                // J a = sum over columns of a_j column_j; J^T d = (column_j . d)_j
                let mut ja = vec![0.0; a_flat.len()];
                for (col, aj) in columns.iter().zip(&a_flat) {
                    for (o, c) in ja.iter_mut().zip(col) {
                        *o += aj * c;
                    }
                }
                let jt_d: Vec<f64> = columns
                    .iter()
                    .map(|col| col.iter().zip(&d_flat).map(|(c, v)| c * v).sum())
                    .collect();
                let tangent = flat(&norm_jacobian(kind, shape, &y, &inv, &a));
                let adjoint = flat(&norm_jacobian(kind, shape, &y, &inv, &d));
                for (what, got, want) in [("J a", &tangent, &ja), ("J^T d", &adjoint, &jt_d)] {
                    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                    for (g, w) in got.iter().zip(want.iter()) {
                        assert!(
                            (g - w).abs() <= 1e-6 * scale,
                            "{kind:?} {shape:?} eps {eps} {what}: {g} vs finite differences {w}"
                        );
                    }
                }
            }
        }
    }
}

/// Scaled weight standardisation: every output's fan-in weights have mean 0
/// and mean square gamma^2 / N exactly (N the fan-in), dense and conv alike;
/// the default gamma undoes the ReLU that made the layer's input.
#[test]
fn standardised_rows_have_mean_zero_and_the_stated_variance() {
    let text = r#"
input = { channels = 3, size = 5 }
block = [
  { type = "conv", channels = 4, kernel = 3, act = "relu" },
  { type = "conv", channels = 4, kernel = 3, act = "identity", weight-standardisation = "scaled" },
  { type = "dense", width = 6, act = "relu", init = "xavier-uniform", weight-standardisation = "scaled", gamma = 1.3 },
]
"#;
    let arch = crate::model::arch::Architecture::parse("ws.toml", text).unwrap();
    let spec = crate::spec::RunSpec::dense(8, 1).build().unwrap();
    let relu_gamma = (2.0 / (1.0 - 1.0 / std::f64::consts::PI)).sqrt();
    for (number, (layer, gamma)) in arch
        .blocks
        .iter()
        .flat_map(|b| b.layers())
        .zip([0.0, relu_gamma, 1.3])
        .enumerate()
        .skip(1)
    {
        let wt = draw_weights(&spec, 0, number + 1, layer);
        let n = layer.fans().0;
        for row in wt.w.chunks(n) {
            let mean = row.iter().sum::<f64>() / n as f64;
            let mean_square = row.iter().map(|v| v * v).sum::<f64>() / n as f64;
            assert!(mean.abs() < 1e-15, "{mean}");
            let want = gamma * gamma / n as f64;
            assert!(
                (mean_square - want).abs() < 1e-14 * want,
                "{mean_square} vs {want}"
            );
        }
    }
}

/// Every kind of block's tangent step against central differences of its
/// forward step (the block's output, or a plain layer's post-activation),
/// and its backward step as the adjoint of the derivative of its pre rows:
/// <J^T d, t> = <d, J t>. Residual blocks with projection shortcuts on x
/// and on the shared layers' output (batch-norm pre-activation, NF-ResNet's
/// scale), strided convolutions, pooling, normalisations, in one file.
#[test]
fn every_block_steps_as_its_derivative_and_adjoint() {
    let text = r#"
input = { channels = 3, size = 6 }
block = [
  { type = "conv", channels = 4, kernel = 3, stride = 2, act = "tanh", sigma-b2 = 0.1 },
  { type = "residual", alpha = 0.7, shortcut = { kernel = 1, channels = 5 }, layer = [
    { type = "conv", channels = 5, kernel = 3, act = "gelu" },
    { type = "conv", channels = 5, kernel = 3, padding = "zero", act = "identity" },
  ] },
  { type = "residual", shared = 1, shortcut = { kernel = 1, channels = 4, stride = 3, padding = "zero", sigma-b2 = 0.2 }, layer = [
    { type = "batch-norm", act = "tanh" },
    { type = "conv", channels = 4, kernel = 3, stride = 3, padding = "zero", act = "identity" },
    { type = "layer-norm", act = "silu" },
  ] },
  { type = "residual", alpha = 0.3, shared = 1, shortcut = { kernel = 1, channels = 4, weight-standardisation = "scaled", gamma = 1.0 }, layer = [
    { type = "scale", factor = 0.8, act = "tanh" },
    { type = "conv", channels = 4, kernel = 1, act = "identity", weight-standardisation = "scaled", gamma = 1.2 },
  ] },
  { type = "avg-pool", kernel = 1, act = "tanh" },
  { type = "global-avg-pool", act = "gelu" },
  { type = "rms-norm", act = "tanh" },
  { type = "dense", width = 3, act = "tanh" },
]
"#;
    let arch = crate::model::arch::Architecture::parse("steps.toml", text).unwrap();
    let spec = crate::spec::RunSpec::dense(8, 1).build().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut draw = |rows: usize, n: usize| -> Vec<Row> {
        (0..rows)
            .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect()
    };
    let dot = |a: &[Row], b: &[Row]| -> f64 {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(u, v)| u * v)
            .sum()
    };
    let mut number = 0;
    for (l, block) in arch.blocks.iter().enumerate() {
        let weights: Vec<Weights> = block
            .layers()
            .iter()
            .map(|layer| {
                number += 1;
                draw_weights(&spec, 0, number, layer)
            })
            .collect();
        let shifts = vec![0.0; weights.len()];
        let (n_in, n_out) = (arch.units(l), arch.units(l + 1));
        let x = draw(4, n_in);
        let (t, d) = (draw(4, n_in), draw(4, n_out));
        let (_, _, _, saved) = forward_step(block, &weights, &shifts, &x);
        let h = 1e-5;
        let moved = |sign: f64| -> (Vec<Row>, Vec<Row>) {
            let xs: Vec<Row> = x
                .iter()
                .zip(&t)
                .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u + sign * h * v).collect())
                .collect();
            let (pre, post, _, _) = forward_step(block, &weights, &shifts, &xs);
            (pre, post)
        };
        let ((pre_p, post_p), (pre_m, post_m)) = (moved(1.0), moved(-1.0));
        let difference = |p: &[Row], m: &[Row]| -> Vec<Row> {
            p.iter()
                .zip(m)
                .map(|(a, b)| a.iter().zip(b).map(|(u, v)| (u - v) / (2.0 * h)).collect())
                .collect()
        };
        let tangent = tangent_step(block, &saved, &weights, &t);
        let want = difference(&post_p, &post_m);
        let scale = want.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for (g, w) in tangent.iter().flatten().zip(want.iter().flatten()) {
            assert!(
                (g - w).abs() <= 1e-6 * scale,
                "block {} tangent: {g} vs {w}",
                l + 1
            );
        }
        let back = backward_step(block, &saved, &weights, &d);
        let (lhs, rhs) = (dot(&back, &t), dot(&d, &difference(&pre_p, &pre_m)));
        assert!(
            (lhs - rhs).abs() <= 1e-6 * lhs.abs().max(rhs.abs()),
            "block {} adjoint: {lhs} vs {rhs}",
            l + 1
        );
    }
}
