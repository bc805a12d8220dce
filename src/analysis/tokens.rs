//! The token columns of a run on sequences: per row the mean cosine
//! similarity between a sequence's tokens (`token_cos`), the stable rank of
//! its token matrix (`stable_rank`), at rows with attention the attention
//! entropy (`attn_entropy`) and, with the backward pass, the mean square
//! entry of the gradient with respect to the query, key and value weights
//! (`grad_wq`, `grad_wk`, `grad_wv`), each as mean and standard error
//! across networks (`sim::stats::tokens` says what each is).

use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::sim::stats::mean_se;
use crate::sim::stats::tokens::TokenRow;

type Quantity = (&'static str, fn(&TokenRow) -> f64);

/// The token quantities of every run on sequences, as the columns name them.
const FORWARD: [Quantity; 3] = [
    ("token_cos", |r| r.cosine),
    ("stable_rank", |r| r.stable_rank),
    ("attn_entropy", |r| r.entropy),
];

/// ... and those of the backward pass.
const BACKWARD: [Quantity; 3] = [
    ("grad_wq", |r| r.grad_wq),
    ("grad_wk", |r| r.grad_wk),
    ("grad_wv", |r| r.grad_wv),
];

/// Every token quantity's name.
pub const TOKEN_QUANTITIES: [&str; 6] = [
    "token_cos",
    "stable_rank",
    "attn_entropy",
    "grad_wq",
    "grad_wk",
    "grad_wv",
];

/// The quantities of `run` with, per row, (mean, se) across networks (None
/// without sequences).
#[allow(clippy::type_complexity)]
pub fn token_table(run: &RunOutput) -> Option<(Vec<&'static str>, Vec<Vec<(f64, f64)>>)> {
    let first = run.tokens.first()?;
    let mut quantities: Vec<Quantity> = FORWARD.to_vec();
    if run.spec.probes.needs_backward() {
        quantities.extend(BACKWARD);
    }
    let rows = (0..first.len())
        .map(|l| {
            quantities
                .iter()
                .map(|(_, f)| mean_se(run.tokens.iter().map(move |net| f(&net[l]))))
                .collect()
        })
        .collect();
    Some((quantities.iter().map(|(name, _)| *name).collect(), rows))
}

/// Adds the token columns (mean and se per quantity) to `table`.
pub fn add_token_columns(table: &mut Table, run: &RunOutput) {
    let Some((names, rows)) = token_table(run) else {
        return;
    };
    for name in names {
        for suffix in ["mean", "se"] {
            table.columns.push(format!("{name}_{suffix}"));
        }
    }
    for (row, measured) in table.rows.iter_mut().zip(rows) {
        for (mean, se) in measured {
            let cell = |v: f64| {
                if v.is_finite() {
                    Cell::Num(v)
                } else {
                    Cell::Empty
                }
            };
            row.push(cell(mean));
            row.push(cell(se));
        }
    }
}
