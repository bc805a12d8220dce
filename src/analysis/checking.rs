//! `check` as a library call: compare a run's every layer with theory and
//! say whether all comparisons stay within the statistical bound. The same
//! steps as `varprop check` (src/cli/check.rs) takes for one case, for
//! callers of the library (the Python package's `varprop.check`).

use crate::analysis::comparisons::{self, Comparison};
use crate::analysis::predictions;
use crate::analysis::report;
use crate::io::output::Table;
use crate::sim::RunOutput;
use crate::spec::NetworkSpec;

/// Networks `check` runs when not told: enough for tight t statistics.
pub const CHECK_NETWORKS: usize = 32;

/// One run compared with theory.
#[derive(Clone, Debug)]
pub struct CheckOutcome {
    /// The run's table with the theory columns (the rows `run` prints).
    pub table: Table,
    /// Every comparison the rules allow (see `predictions`).
    pub comparisons: Vec<Comparison>,
    /// The |z| bound applied: `max_z`, else Bonferroni over the comparisons.
    pub bound: f64,
}

impl CheckOutcome {
    pub fn failures(&self) -> impl Iterator<Item = &Comparison> {
        self.comparisons
            .iter()
            .filter(move |c| c.z.abs() > self.bound)
    }

    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The comparison with the largest |z|.
    pub fn worst(&self) -> Option<&Comparison> {
        self.comparisons
            .iter()
            .max_by(|a, b| a.z.abs().total_cmp(&b.z.abs()))
    }
}

/// Compares `run` with the theory of `theory_net` (the run's own network,
/// or a deliberately wrong one to test the test).
pub fn check_run(run: &RunOutput, theory_net: &NetworkSpec, max_z: Option<f64>) -> CheckOutcome {
    let spec = &run.spec;
    let mut table = report::run_table(spec, run);
    let preds = predictions::predictions(spec, theory_net);
    comparisons::add_theory_columns(&mut table, spec, &preds, theory_net);
    let comparisons = comparisons::comparisons(&table, run, &preds);
    let bound =
        max_z.unwrap_or_else(|| comparisons::theory_bound(comparisons.len(), spec.networks));
    CheckOutcome {
        table,
        comparisons,
        bound,
    }
}
