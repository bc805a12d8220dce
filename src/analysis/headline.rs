//! The headline numbers of a run, one row per scheme (`compare`), per
//! configuration (`sweep`) or per grid point (`phase`): where log q ends,
//! how fast it moves, how much the gradient shrinks or grows, the zero
//! fraction and the correlation at the top, and how far the run is from
//! theory (the largest |z| of `check`'s comparisons against its bound).

use serde::Serialize;

use crate::analysis::comparisons;
use crate::analysis::curves::{Measure, TheoryCurves, late_slope, log_curve};
use crate::analysis::predictions::{self, Prediction};
use crate::analysis::report;
use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::spec::RunSpec;

/// The run's per-layer table with the theory columns `run` prints, and the
/// predictions behind them.
pub fn table_with_theory(spec: &RunSpec, run: &RunOutput) -> (Table, Vec<Prediction>) {
    let mut table = report::run_table(spec, run);
    let predictions = predictions::predictions(spec, &spec.net);
    comparisons::add_theory_columns(&mut table, spec, &predictions, &spec.net);
    super::ntk::add_ntk_columns(&mut table, spec, run);
    super::spp::add_spp_columns(&mut table, spec, run);
    super::tokens::add_token_columns(&mut table, run);
    (table, predictions)
}

/// Logs are natural logs; "mean" is the mean over the S networks. Absent
/// (None, JSON null) where a number does not apply or is not finite.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Headline {
    /// ln of the mean q_post at layer L, its standard error, and the
    /// mean-field prediction.
    pub log_q_last: Option<f64>,
    pub log_q_last_se: Option<f64>,
    pub log_q_last_theory: Option<f64>,
    /// Standard deviation across networks of ln q_post at layer L: the
    /// spread of the typical network.
    pub log_q_last_std: Option<f64>,
    /// Slope per layer of ln(mean q_post) over the last half of the layers
    /// (least squares), measured and mean-field.
    pub log_q_slope: Option<f64>,
    pub log_q_slope_theory: Option<f64>,
    /// ln(g_1 / g_L), g the mean of delta^2 (with the backward pass): below
    /// 0 the gradient vanishes towards the input, above 0 it explodes.
    pub log_grad_ratio: Option<f64>,
    pub log_grad_ratio_theory: Option<f64>,
    /// g_1 / g_L itself (absent where it under- or overflows f64).
    pub grad_ratio: Option<f64>,
    /// Fraction of units with phi'(h) = 0 at layer L.
    pub zero_frac_last: Option<f64>,
    /// c_pre at layer L: measured mean, standard error, mean-field.
    pub c_last: Option<f64>,
    pub c_last_se: Option<f64>,
    pub c_last_theory: Option<f64>,
    /// `check`'s comparisons with theory: how many, the largest |z|, where,
    /// and the bound a correct simulator stays under (Bonferroni, t with
    /// S - 1 degrees of freedom).
    pub comparisons: usize,
    pub max_abs_z: Option<f64>,
    pub max_z_layer: Option<usize>,
    pub max_z_column: Option<String>,
    pub z_bound: Option<f64>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl Headline {
    /// `table` and `predictions` from [`table_with_theory`].
    pub fn of(
        spec: &RunSpec,
        run: &RunOutput,
        table: &Table,
        predictions: &[Prediction],
    ) -> Headline {
        let depth = spec.net.depth();
        let theory_rows = TheoryCurves::of(spec);
        let q = log_curve(spec, run, &theory_rows, Measure::QPost);
        let measured_ln: Vec<Option<f64>> =
            q.measured.iter().map(|m| m.map(|m| m.ln_mean)).collect();
        let last = q.measured[depth];
        let (log_grad_ratio, log_grad_ratio_theory) = if spec.probes.backward && depth >= 1 {
            let g = log_curve(spec, run, &theory_rows, Measure::Gradient);
            let ratio = |a: Option<f64>, b: Option<f64>| Some(a? - b?).and_then(finite);
            (
                ratio(
                    g.measured[1].map(|m| m.ln_mean),
                    g.measured[depth].map(|m| m.ln_mean),
                ),
                ratio(g.theory[1], g.theory[depth]),
            )
        } else {
            (None, None)
        };
        let top = &run.summary[depth];
        let comparisons = comparisons::comparisons(table, run, predictions);
        let worst = comparisons
            .iter()
            .max_by(|a, b| a.z.abs().total_cmp(&b.z.abs()));
        Headline {
            log_q_last: last.map(|m| m.ln_mean),
            log_q_last_se: last.and_then(|m| finite(m.rel_se)),
            log_q_last_theory: q.theory[depth],
            log_q_last_std: finite(top.log_q_post.1),
            log_q_slope: late_slope(&measured_ln),
            log_q_slope_theory: late_slope(&q.theory),
            log_grad_ratio,
            log_grad_ratio_theory,
            grad_ratio: log_grad_ratio
                .map(f64::exp)
                .filter(|r| r.is_finite() && *r > 0.0),
            zero_frac_last: finite(top.zero_frac.0),
            c_last: finite(top.c_pre.0),
            c_last_se: finite(top.c_pre.1),
            c_last_theory: theory_rows.c_pre[depth],
            comparisons: comparisons.len(),
            max_abs_z: worst.map(|c| c.z.abs()),
            max_z_layer: worst.map(|c| c.layer),
            max_z_column: worst.map(|c| c.column.to_string()),
            z_bound: finite(comparisons::theory_bound(comparisons.len(), spec.networks)),
        }
    }

    /// The headline's numbers as named JSON values, in field order.
    pub fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self).expect("json") {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a struct serialises to an object"),
        }
    }
}

/// A JSON value as a table cell: numbers as they are, booleans as 0/1,
/// anything else empty.
pub fn json_cell(v: &serde_json::Value) -> Cell {
    match v {
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(i) => Cell::Int(i),
            None => Cell::from(n.as_f64()),
        },
        serde_json::Value::Bool(b) => Cell::Int(*b as u64),
        _ => Cell::Empty,
    }
}

/// The numeric fields of several headlines as one table (the text field
/// `max_z_column` left out), one row each.
pub fn headline_table(headlines: &[Headline]) -> Table {
    let fields: Vec<_> = headlines.iter().map(Headline::fields).collect();
    let columns: Vec<String> = fields
        .first()
        .map(|f| f.keys().filter(|k| *k != "max_z_column").cloned().collect())
        .unwrap_or_default();
    let rows = fields
        .iter()
        .map(|f| columns.iter().map(|c| json_cell(&f[c])).collect())
        .collect();
    Table { columns, rows }
}
