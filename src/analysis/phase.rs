//! `varprop phase`: the order-to-chaos diagram of one activation. On a grid
//! of (sigma_w^2, sigma_b^2) every point is a run (weights of variance
//! sigma_w^2/fan_in, biases of variance sigma_b^2); its correlation c and
//! log q at the last layer are set beside the mean-field table at that
//! layer and the fixed point (q*, c*, chi_1). The picture: the measured c
//! as a heatmap, the mean-field one beside it, and the edge of chaos
//! chi_1 = 1 (`theory::edge_of_chaos_sigma_w2` along sigma_b^2) over both.

use crate::analysis::headline::Headline;
use crate::config::settings::{NetworkSettings, RunSettings};
use crate::error::{Error, Result};
use crate::io::output::{Cell, Table};
use crate::io::plot::heatmap::{HeatmapFigure, HeatmapPanel};
use crate::model::activation::Activation;
use crate::model::init::InitFlags;
use crate::sim::RunOutput;
use crate::spec::RunSpec;
use crate::theory;

/// `A:B:N`: N evenly spaced values from A to B (both included); `A` alone
/// is one value.
/// Points of one axis of the grid at most (every point is a simulation).
pub const MAX_POINTS_PER_AXIS: usize = 1000;

/// Points of the whole grid at most.
pub const MAX_GRID_POINTS: usize = 10_000;

pub fn parse_range(flag: &str, text: &str) -> Result<Vec<f64>> {
    let bad = |why: &str| {
        Error::invalid(
            flag,
            format!("'{text}': {why} (expected A:B:N, e.g. 0.5:4:8)"),
        )
    };
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    let number = |s: &str| -> Result<f64> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(&format!("'{s}' is not a number")))
    };
    let values = match parts.as_slice() {
        [a] => vec![number(a)?],
        [a, b, n] => {
            let (a, b) = (number(a)?, number(b)?);
            let n: usize = n.parse().map_err(|_| bad("N is not a count"))?;
            if n == 0 {
                return Err(bad("N must be >= 1"));
            }
            if n > MAX_POINTS_PER_AXIS {
                return Err(bad(&format!("N is at most {MAX_POINTS_PER_AXIS}")));
            }
            if n == 1 && a != b {
                return Err(bad("one point needs A = B"));
            }
            if n > 1 && a >= b {
                return Err(bad("needs A < B"));
            }
            (0..n)
                .map(|i| {
                    if n == 1 {
                        a
                    } else {
                        a + (b - a) * i as f64 / (n - 1) as f64
                    }
                })
                .collect()
        }
        _ => return Err(bad("not a range")),
    };
    if values.iter().any(|v| *v < 0.0) {
        return Err(bad("variances must be >= 0"));
    }
    Ok(values)
}

/// The runs of the grid: the base settings with init custom, sigma_w2 and
/// sigma_b2 from the grid, sigma_b2 outermost. The base must leave those
/// three to the grid.
pub fn grid(
    base: &RunSettings,
    sigma_w2s: &[f64],
    sigma_b2s: &[f64],
    default_networks: usize,
) -> Result<Vec<(f64, f64, RunSpec)>> {
    if base.net.init.init.as_deref().is_some_and(|i| i != "custom") {
        return Err(Error::invalid(
            "--init",
            "phase runs --init custom (v = sigma_w2/fan_in); leave --init out",
        ));
    }
    if base.net.init.sigma_w2.is_some() {
        return Err(Error::invalid(
            "--sigma-w2",
            "phase takes --sigma-w2-range instead",
        ));
    }
    if base.net.init.sigma_b2.is_some() {
        return Err(Error::invalid(
            "--sigma-b2",
            "phase takes --sigma-b2-range instead",
        ));
    }
    let mut out = Vec::new();
    for &b in sigma_b2s {
        for &w in sigma_w2s {
            let point = RunSettings {
                net: NetworkSettings {
                    init: InitFlags {
                        init: Some("custom".into()),
                        sigma_w2: Some(w),
                        sigma_b2: Some(b),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            };
            let spec = base.overlay(&point).resolve(default_networks)?;
            out.push((w, b, spec));
        }
    }
    Ok(out)
}

/// One point of the diagram.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhasePoint {
    pub sigma_w2: f64,
    pub sigma_b2: f64,
    /// The fixed point of the mean-field maps (None where there is none,
    /// e.g. q* diverges).
    pub chi1: Option<f64>,
    pub q_star: Option<f64>,
    pub c_star: Option<f64>,
    pub xi_c: Option<f64>,
    /// c_pre at layer L, measured (mean, SE) and mean-field, and the z.
    pub c_last: Option<f64>,
    pub c_last_se: Option<f64>,
    pub c_last_theory: Option<f64>,
    pub c_last_z: Option<f64>,
    /// ln of the mean q_post at layer L, its SE, and the mean-field one.
    pub log_q_last: Option<f64>,
    pub log_q_last_se: Option<f64>,
    pub log_q_last_theory: Option<f64>,
    /// With `--quantity ntk_cond`: log10 of the mean over networks of the
    /// NTK's condition number, and of the infinite-width kernel's for the
    /// same inputs (Xiao, Pennington and Schoenholz's trainability picture).
    pub log10_ntk_cond: Option<f64>,
    pub log10_ntk_cond_theory: Option<f64>,
}

impl PhasePoint {
    pub fn new(sigma_w2: f64, sigma_b2: f64, spec: &RunSpec, headline: &Headline) -> PhasePoint {
        let finite = |x: f64| x.is_finite().then_some(x);
        let fp = theory::summary(&spec.net).ok().map(|s| s.fixed_point);
        PhasePoint {
            sigma_w2,
            sigma_b2,
            chi1: fp.as_ref().and_then(|f| finite(f.chi1)),
            q_star: fp.as_ref().and_then(|f| finite(f.q_star)),
            c_star: fp.as_ref().and_then(|f| finite(f.c_star)),
            xi_c: fp.as_ref().and_then(|f| finite(f.xi_c)),
            c_last: headline.c_last,
            c_last_se: headline.c_last_se,
            c_last_theory: headline.c_last_theory,
            c_last_z: crate::analysis::comparisons::z_score(
                headline.c_last,
                headline.c_last_se,
                headline.c_last_theory,
            ),
            log_q_last: headline.log_q_last,
            log_q_last_se: headline.log_q_last_se,
            log_q_last_theory: headline.log_q_last_theory,
            log10_ntk_cond: None,
            log10_ntk_cond_theory: None,
        }
    }
}

/// The columns `--quantity ntk_cond` adds.
pub const NTK_PHASE_COLUMNS: &[&str] = &["log10_ntk_cond", "log10_ntk_cond_theory"];

pub const PHASE_COLUMNS: &[&str] = &[
    "sigma_w2",
    "sigma_b2",
    "chi1",
    "q_star",
    "c_star",
    "xi_c",
    "c_last",
    "c_last_se",
    "c_last_theory",
    "c_last_z",
    "log_q_last",
    "log_q_last_se",
    "log_q_last_theory",
];

/// The grid as a table, one row per point.
pub fn phase_table(points: &[PhasePoint]) -> Table {
    let rows = points
        .iter()
        .map(|p| {
            vec![
                Cell::Num(p.sigma_w2),
                Cell::Num(p.sigma_b2),
                Cell::from(p.chi1),
                Cell::from(p.q_star),
                Cell::from(p.c_star),
                Cell::from(p.xi_c),
                Cell::from(p.c_last),
                Cell::from(p.c_last_se),
                Cell::from(p.c_last_theory),
                Cell::from(p.c_last_z),
                Cell::from(p.log_q_last),
                Cell::from(p.log_q_last_se),
                Cell::from(p.log_q_last_theory),
            ]
        })
        .collect();
    let mut table = Table {
        columns: PHASE_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    };
    if points.iter().any(|p| p.log10_ntk_cond.is_some()) {
        table
            .columns
            .extend(NTK_PHASE_COLUMNS.iter().map(|c| c.to_string()));
        for (row, p) in table.rows.iter_mut().zip(points) {
            row.push(Cell::from(p.log10_ntk_cond));
            row.push(Cell::from(p.log10_ntk_cond_theory));
        }
    }
    table
}

/// The edge of chaos over a sigma_b2 range, as pieces inside the sigma_w2
/// range (points where no edge exists are left out).
pub fn edge_line(
    act: &Activation,
    (w0, w1): (f64, f64),
    (b0, b1): (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    let steps = 120;
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for k in 0..=steps {
        let b = b0 + (b1 - b0) * k as f64 / steps as f64;
        match theory::edge_of_chaos_sigma_w2(act, b) {
            Ok(e) if e.sigma_w2.is_finite() && (w0..=w1).contains(&e.sigma_w2) => {
                current.push((e.sigma_w2, b))
            }
            _ if !current.is_empty() => pieces.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// One value per grid cell, rows along sigma_b2, None where no point is.
fn grid_field(
    sigma_w2s: &[f64],
    sigma_b2s: &[f64],
    points: &[PhasePoint],
    f: &dyn Fn(&PhasePoint) -> Option<f64>,
) -> Vec<Vec<Option<f64>>> {
    sigma_b2s
        .iter()
        .map(|&b| {
            sigma_w2s
                .iter()
                .map(|&w| {
                    points
                        .iter()
                        .find(|p| p.sigma_w2 == w && p.sigma_b2 == b)
                        .and_then(f)
                })
                .collect()
        })
        .collect()
}

/// The heatmaps: measured c at layer L, mean-field c at layer L, with the
/// edge of chaos over both.
pub fn phase_figure(
    act: &Activation,
    depth: usize,
    shape: &str,
    sigma_w2s: &[f64],
    sigma_b2s: &[f64],
    points: &[PhasePoint],
) -> HeatmapFigure {
    let field =
        |f: &dyn Fn(&PhasePoint) -> Option<f64>| grid_field(sigma_w2s, sigma_b2s, points, f);
    let lowest = points
        .iter()
        .flat_map(|p| [p.c_last, p.c_last_theory])
        .flatten()
        .fold(0.0f64, f64::min);
    let edges_w = crate::io::plot::heatmap::cell_edges(sigma_w2s);
    let edges_b = crate::io::plot::heatmap::cell_edges(sigma_b2s);
    let b_range = (edges_b[0].max(0.0), edges_b[edges_b.len() - 1]);
    HeatmapFigure {
        title: format!("varprop phase: {act}, correlation c at layer L = {depth}; {shape}"),
        x_label: "sigma_w² (weight variance × fan_in)".into(),
        y_label: "sigma_b² (bias variance)".into(),
        xs: sigma_w2s.to_vec(),
        ys: sigma_b2s.to_vec(),
        panels: vec![
            HeatmapPanel {
                title: "measured: mean over networks".into(),
                values: field(&|p| p.c_last),
            },
            HeatmapPanel {
                title: "mean-field theory".into(),
                values: field(&|p| p.c_last_theory),
            },
        ],
        value_label: format!("c at layer {depth}"),
        value_range: (lowest, 1.0),
        line: edge_line(act, (edges_w[0], edges_w[edges_w.len() - 1]), b_range),
        line_label: "χ₁ = 1 (edge of chaos, theory)".into(),
    }
}

/// The headline of every run, for the points.
pub fn phase_points(grid: &[(f64, f64, RunSpec)], runs: &[RunOutput]) -> Vec<PhasePoint> {
    grid.iter()
        .zip(runs)
        .map(|((w, b, spec), run)| {
            let (table, predictions) = crate::analysis::headline::table_with_theory(spec, run);
            let headline = Headline::of(spec, run, &table, &predictions);
            let mut point = PhasePoint::new(*w, *b, spec, &headline);
            if let Some(ntk) = crate::analysis::ntk::ntk_report(spec, run) {
                let log10 =
                    |v: Option<f64>| v.filter(|v| *v > 0.0 && v.is_finite()).map(f64::log10);
                point.log10_ntk_cond = log10(ntk.ntk_cond.mean);
                point.log10_ntk_cond_theory = log10(ntk.ntk_cond.theory);
            }
            point
        })
        .collect()
}

/// The heatmaps of `--quantity ntk_cond`: log10 of the measured and of the
/// infinite-width NTK condition number at layer L, with the edge of chaos.
pub fn ntk_phase_figure(
    act: &Activation,
    depth: usize,
    shape: &str,
    sigma_w2s: &[f64],
    sigma_b2s: &[f64],
    points: &[PhasePoint],
) -> HeatmapFigure {
    let mut figure = phase_figure(act, depth, shape, sigma_w2s, sigma_b2s, points);
    let field =
        |f: &dyn Fn(&PhasePoint) -> Option<f64>| grid_field(sigma_w2s, sigma_b2s, points, f);
    let values: Vec<f64> = points
        .iter()
        .flat_map(|p| [p.log10_ntk_cond, p.log10_ntk_cond_theory])
        .flatten()
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    figure.title =
        format!("varprop phase: {act}, NTK condition number at layer L = {depth}; {shape}");
    figure.panels = vec![
        HeatmapPanel {
            title: "measured: mean over networks".into(),
            values: field(&|p| p.log10_ntk_cond),
        },
        HeatmapPanel {
            title: "infinite width".into(),
            values: field(&|p| p.log10_ntk_cond_theory),
        },
    ];
    figure.value_label = format!("log10 cond(Theta) at layer {depth}");
    figure.value_range = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    figure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive() {
        assert_eq!(parse_range("--r", "0:1:3").unwrap(), vec![0.0, 0.5, 1.0]);
        assert_eq!(parse_range("--r", "2").unwrap(), vec![2.0]);
        assert_eq!(parse_range("--r", "2:2:1").unwrap(), vec![2.0]);
        for bad in ["1:0:3", "0:1:0", "a:1:2", "0:1", "-1:1:3", "0:1:2:3"] {
            let e = parse_range("--sigma-w2-range", bad)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--sigma-w2-range:"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_base_leaves_the_grid_to_the_grid() {
        let base = RunSettings {
            net: NetworkSettings {
                init: InitFlags {
                    sigma_w2: Some(1.0),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let e = grid(&base, &[1.0], &[0.0], 4).unwrap_err().to_string();
        assert!(e.starts_with("--sigma-w2:"), "{e}");
        let ok = RunSettings {
            net: NetworkSettings {
                act: Some("erf".into()),
                width: Some(8),
                depth: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let g = grid(&ok, &[1.0, 2.0], &[0.0, 0.1], 4).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!((g[1].0, g[1].1), (2.0, 0.0));
        assert_eq!(g[3].2.net.init.sigma_w2, 2.0);
    }
}
