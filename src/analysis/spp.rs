//! The Signal Propagation Plot of a run (--spp, `varprop spp`) beside its
//! theory: per row the average channel squared mean (`spp_mean2`), the
//! average channel variance (`spp_var`) and, for residual blocks, the
//! branch's average channel variance (`spp_branch_var`), each as mean and
//! standard error across networks, `_theory` (`theory::arch::spp_moments`:
//! exact at infinite width where the field is the same at every position,
//! empty elsewhere) and `_z`.

use super::comparisons::z_score;
use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::sim::stats::mean_se;
use crate::spec::RunSpec;
use crate::theory::arch::{arch_table_with_tokens, spp_moments};

/// The SPP's quantities, as the columns name them.
pub const SPP_QUANTITIES: [&str; 3] = ["spp_mean2", "spp_var", "spp_branch_var"];

/// Per row and quantity: (mean, se) across networks and the theory.
pub struct SppTable {
    pub measured: Vec<[(f64, f64); 3]>,
    pub theory: Vec<[Option<f64>; 3]>,
}

/// The SPP rows of a run with --spp (None without).
pub fn spp_table(spec: &RunSpec, run: &RunOutput) -> Option<SppTable> {
    let a = spec.arch.as_ref().filter(|a| a.spp)?;
    if run.spp.is_empty() {
        return None;
    }
    let rows = run.spp[0].len();
    let measured = (0..rows)
        .map(|l| {
            let col = |f: fn(&crate::sim::stats::spp::SppRow) -> f64| {
                mean_se(run.spp.iter().map(move |net| f(&net[l])))
            };
            [col(|r| r.mean2), col(|r| r.var), col(|r| r.branch_var)]
        })
        .collect();
    let finite = |v: f64| v.is_finite().then_some(v);
    let theory = arch_table_with_tokens(
        &a.arch,
        spec.net.q0,
        spec.net.c0,
        a.token_c0,
        a.mean_preserving,
    )
    .iter()
    .map(|row| {
        let (mean2, var) = spp_moments(&row.post, spec.batch);
        let branch = row
            .branch
            .as_ref()
            .map_or(f64::NAN, |f| spp_moments(f, spec.batch).1);
        [finite(mean2), finite(var), finite(branch)]
    })
    .collect();
    Some(SppTable { measured, theory })
}

/// Adds the SPP's columns (mean, se, theory, z per quantity) to `table`.
pub fn add_spp_columns(table: &mut Table, spec: &RunSpec, run: &RunOutput) {
    let Some(spp) = spp_table(spec, run) else {
        return;
    };
    for name in SPP_QUANTITIES {
        for suffix in ["mean", "se", "theory", "z"] {
            table.columns.push(format!("{name}_{suffix}"));
        }
    }
    for (l, row) in table.rows.iter_mut().enumerate() {
        for (k, &(mean, se)) in spp.measured[l].iter().enumerate() {
            let theory = spp.theory[l][k];
            let present = |v: f64| {
                if mean.is_nan() {
                    Cell::Empty
                } else {
                    Cell::Num(v)
                }
            };
            row.push(present(mean));
            row.push(present(se));
            row.push(Cell::from(theory));
            row.push(Cell::from(z_score(Some(mean), Some(se), theory)));
        }
    }
}

/// The Signal Propagation Plot as Brock et al. draw it: against depth, the
/// average channel squared mean, the average channel variance and the
/// residual branches' average channel variance, each measured (mean over
/// networks in a band of +-2 SE) beside its theory (dashed), log scale.
pub fn spp_figure(
    title: String,
    label: &str,
    spec: &RunSpec,
    run: &RunOutput,
) -> Option<crate::analysis::layer_plot::LayerFigure> {
    use crate::analysis::curves::{LogCurve, LogMean, Measure};
    use crate::analysis::layer_plot::{BAND_SE, Curve, LayerFigure, Panel};
    let spp = spp_table(spec, run)?;
    let names = [
        "avg channel squared mean",
        "avg channel variance",
        "residual branch avg channel variance",
    ];
    let panels = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let measured = spp
                .measured
                .iter()
                .map(|m| {
                    let (mean, se) = m[k];
                    (mean > 0.0 && mean.is_finite()).then(|| LogMean {
                        ln_mean: mean.ln(),
                        rel_se: se / mean,
                    })
                })
                .collect();
            let theory = spp
                .theory
                .iter()
                .map(|t| t[k].filter(|v| *v > 0.0).map(f64::ln))
                .collect();
            Panel {
                y_label: format!("{name} (log scale), ± {BAND_SE} SE"),
                bridge_gaps: false,
                curves: vec![Curve {
                    label: label.to_string(),
                    curve: LogCurve {
                        measure: Measure::QPost,
                        measured,
                        theory,
                    },
                }],
            }
        })
        .collect();
    Some(LayerFigure { title, panels })
}
