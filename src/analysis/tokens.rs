//! The token columns of a run on sequences: per row the mean cosine
//! similarity between a sequence's tokens (`token_cos`), the stable rank of
//! its token matrix (`stable_rank`) and, at rows with attention, the
//! attention entropy (`attn_entropy`), each as mean and standard error
//! across networks (`sim::stats::tokens` says what each is).

use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::sim::stats::mean_se;
use crate::sim::stats::tokens::TokenRow;

/// The token quantities, as the columns name them.
pub const TOKEN_QUANTITIES: [&str; 3] = ["token_cos", "stable_rank", "attn_entropy"];

/// Per row and quantity: (mean, se) across networks (None without sequences).
pub fn token_table(run: &RunOutput) -> Option<Vec<[(f64, f64); 3]>> {
    let first = run.tokens.first()?;
    Some(
        (0..first.len())
            .map(|l| {
                let col =
                    |f: fn(&TokenRow) -> f64| mean_se(run.tokens.iter().map(move |net| f(&net[l])));
                [
                    col(|r| r.cosine),
                    col(|r| r.stable_rank),
                    col(|r| r.entropy),
                ]
            })
            .collect(),
    )
}

/// Adds the token columns (mean and se per quantity) to `table`.
pub fn add_token_columns(table: &mut Table, run: &RunOutput) {
    let Some(rows) = token_table(run) else {
        return;
    };
    for name in TOKEN_QUANTITIES {
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
