//! The table `varprop theory` prints, as a library call: the mean-field
//! recurrences layer by layer (the same columns as src/cli/theory.rs).

use crate::io::output::{Cell, Table};
use crate::theory::LayerTheory;

/// The columns: a prediction is named as `run` names it beside its
/// measurement (`<name>_theory`), so a theory table joins a run's on them;
/// `backward_factor` (chi_l, the factor of g from layer l + 1 to l) has no
/// measured column of its own.
pub const THEORY_COLUMNS: &[&str] = &[
    "layer",
    "width",
    "q_pre_theory",
    "q_post_theory",
    "c_pre_theory",
    "mean_post_theory",
    "log_q_post_sample_theory",
    "log_q_post_sample_std_theory",
    "backward_factor",
];

pub fn theory_table(rows: &[LayerTheory]) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                Cell::Int(r.layer as u64),
                Cell::Int(r.width as u64),
                Cell::Num(r.q_pre_ln.exp()),
                Cell::Num(r.q_post_ln.exp()),
                Cell::Num(r.c_pre),
                Cell::Num(r.mean_post),
                Cell::from(r.log_q_post_mean),
                Cell::from(r.log_q_post_std),
                Cell::from(r.backward_factor),
            ]
        })
        .collect();
    Table {
        columns: THEORY_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}
