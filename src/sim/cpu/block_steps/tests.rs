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
/// and mean square gamma^2 / N exactly (N the fan-in), dense and conv alike.
#[test]
fn standardised_rows_have_mean_zero_and_the_stated_variance() {
    let text = r#"
input = { channels = 3, size = 5 }
block = [
  { type = "conv", channels = 4, kernel = 3, act = "relu", weight-standardisation = "scaled" },
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
        .zip([relu_gamma, 1.3])
        .enumerate()
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
