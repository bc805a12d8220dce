//! The table `varprop theory` prints, as a library call: the mean-field
//! recurrences layer by layer (the same columns as src/cli/theory.rs), and
//! with `--ntk` the infinite-width neural tangent kernel.

use crate::error::{Error, Result};
use crate::io::output::{Cell, Table};
use crate::spec::{NetworkSpec, Parametrisation};
use crate::theory::LayerTheory;
use crate::theory::ntk::ntk_table;

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

/// The columns of `varprop theory --ntk`: per depth l, the NTK of the
/// network cut at l with the readout on x_l (`ntk_diag`, `ntk_c`, as `run
/// --ntk` names the whole network's), and layer l's contribution to the
/// whole network's kernel (`ntk_layer`, `ntk_layer_c`, as in `run`).
pub const NTK_THEORY_COLUMNS: &[&str] = &[
    "layer",
    "width",
    "ntk_diag_theory",
    "ntk_c_theory",
    "ntk_layer_theory",
    "ntk_layer_c_theory",
];

/// The `varprop theory --ntk` table, or the error naming why the theory
/// has none.
pub fn ntk_theory_table(net: &NetworkSpec, param: Parametrisation) -> Result<Table> {
    let theory = ntk_table(net, param).map_err(|why| Error::invalid("--ntk", why))?;
    // row 0: the readout on the input itself, Theta = x_0^a . x_0^b / n_0
    let mut rows = vec![vec![
        Cell::Int(0),
        Cell::Int(net.widths[0] as u64),
        Cell::Num(net.q0),
        Cell::Num(net.c0),
        Cell::Empty,
        Cell::Empty,
    ]];
    for (i, (cut, layer)) in theory.cut.iter().zip(&theory.layers).enumerate() {
        rows.push(vec![
            Cell::Int(i as u64 + 1),
            Cell::Int(net.widths[i + 1] as u64),
            Cell::Num(cut.diag()),
            Cell::Num(cut.correlation()),
            Cell::Num(layer.diag()),
            Cell::Num(layer.correlation()),
        ]);
    }
    Ok(Table {
        columns: NTK_THEORY_COLUMNS.iter().map(|c| c.to_string()).collect(),
        rows,
    })
}
