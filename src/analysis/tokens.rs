//! The token columns of a run on sequences: per row the mean cosine
//! similarity between a sequence's tokens (`token_cos`), the stable rank of
//! its token matrix (`stable_rank`), at rows with attention the attention
//! entropy (`attn_entropy`) and, with the backward pass, the mean square
//! entry of the gradient with respect to the query, key and value weights
//! (`grad_wq`, `grad_wk`, `grad_wv`), each as mean and standard error
//! across networks (`sim::stats::tokens` says what each is), with `_theory`
//! and `_z` for the first three where the infinite-width field gives them:
//! token_cos -> k / q of the row's field (`theory::arch`), stable_rank -> T
//! / (1 + (T - 1) k / q) (the T x T Gram matrix q ((1 - rho) I + rho 1 1^T)
//! that d -> infinity gives), attn_entropy -> ln T at uniform attention
//! (zero queries or temperature 0; causal: the mean over t of ln(t + 1)),
//! exact at any width.

use crate::analysis::comparisons::z_score;
use crate::io::output::{Cell, Table};
use crate::model::arch::{Block, LayerKind};
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

/// Per row: the theory of token_cos, stable_rank and attn_entropy (NaN
/// where there is none).
pub fn token_theory(run: &RunOutput) -> Vec<[f64; 3]> {
    let Some(a) = run.spec.arch.as_ref() else {
        return Vec::new();
    };
    let net = &run.spec.net;
    let rows = crate::theory::arch::arch_table_with_tokens(
        &a.arch,
        net.q0,
        net.c0,
        a.token_c0,
        a.mean_preserving,
    );
    rows.iter()
        .enumerate()
        .map(|(l, row)| {
            let (_, _, tokens) = a.arch.shape(l).dims();
            let t = tokens as f64;
            let rho = row.post.k[0] / row.post.q[0];
            let stable_rank = t / (1.0 + (t - 1.0) * rho);
            let entropy = match l {
                0 => f64::NAN,
                _ => uniform_attention_entropy(&a.arch.blocks[l - 1], tokens),
            };
            let cosine = if tokens > 1 { rho } else { f64::NAN };
            [cosine, stable_rank, entropy]
        })
        .collect()
}

/// The attention entropy of a block whose attention layers attend
/// uniformly (zero queries or temperature 0), NaN otherwise.
fn uniform_attention_entropy(block: &Block, tokens: usize) -> f64 {
    let attention: Vec<_> = block
        .layers()
        .into_iter()
        .filter_map(|l| match &l.kind {
            LayerKind::Attention(a) => Some(*a),
            _ => None,
        })
        .collect();
    if attention.is_empty()
        || attention
            .iter()
            .any(|a| !a.zero_queries && a.temperature != 0.0)
    {
        return f64::NAN;
    }
    // every layer of the block alike: the mean over its layers' terms
    let per_layer = |causal: bool| {
        if causal {
            (1..=tokens).map(|n| (n as f64).ln()).sum::<f64>() / tokens as f64
        } else {
            (tokens as f64).ln()
        }
    };
    attention.iter().map(|a| per_layer(a.causal)).sum::<f64>() / attention.len() as f64
}

/// Adds the token columns (mean and se per quantity; theory and z for
/// those that have one) to `table`.
pub fn add_token_columns(table: &mut Table, run: &RunOutput) {
    let Some((names, rows)) = token_table(run) else {
        return;
    };
    let theory = token_theory(run);
    for (k, name) in names.iter().enumerate() {
        let suffixes: &[&str] = if k < 3 {
            &["mean", "se", "theory", "z"]
        } else {
            &["mean", "se"]
        };
        for suffix in suffixes {
            table.columns.push(format!("{name}_{suffix}"));
        }
    }
    let cell = |v: f64| {
        if v.is_finite() {
            Cell::Num(v)
        } else {
            Cell::Empty
        }
    };
    for (l, (row, measured)) in table.rows.iter_mut().zip(rows).enumerate() {
        for (k, (mean, se)) in measured.into_iter().enumerate() {
            row.push(cell(mean));
            row.push(cell(se));
            if k < 3 {
                let th = theory.get(l).map_or(f64::NAN, |t| t[k]);
                let finite = th.is_finite().then_some(th);
                row.push(Cell::from(finite));
                row.push(Cell::from(z_score(Some(mean), Some(se), finite)));
            }
        }
    }
}

/// The figure of `varprop tokens`: against depth, 1 - token_cos (rank
/// collapse: Dong et al. 2021), the stable rank and, with the backward
/// pass, the query weights' gradient over the value weights' (Noci et al.
/// 2022), one colour per labelled run, measured (mean over networks in a
/// band of +-2 SE) beside theory (dashed) where there is one, log scales.
pub fn tokens_figure(
    title: String,
    runs: &[(String, &RunOutput)],
) -> crate::analysis::layer_plot::LayerFigure {
    use crate::analysis::curves::{LogCurve, LogMean, Measure};
    use crate::analysis::layer_plot::{BAND_SE, Curve, LayerFigure, Panel};
    let backward = runs.iter().all(|(_, r)| r.spec.probes.needs_backward());
    // per network and row, the plotted value
    type Value = fn(&TokenRow) -> f64;
    let mut panels: Vec<(&str, Value, Option<usize>)> = vec![
        ("1 - token cosine", |r| 1.0 - r.cosine, Some(0)),
        ("stable rank of the tokens", |r| r.stable_rank, Some(1)),
    ];
    if backward {
        panels.push(("grad W_Q / grad W_V", |r| r.grad_wq / r.grad_wv, None));
    }
    let panels = panels
        .into_iter()
        .map(|(name, value, theory_column)| {
            let curves = runs
                .iter()
                .map(|(label, run)| {
                    let rows = run.tokens.first().map_or(0, Vec::len);
                    let measured = (0..rows)
                        .map(|l| {
                            let (mean, se) = mean_se(run.tokens.iter().map(|net| value(&net[l])));
                            (mean > 0.0 && mean.is_finite()).then(|| LogMean {
                                ln_mean: mean.ln(),
                                rel_se: se / mean,
                            })
                        })
                        .collect();
                    let theory = token_theory(run)
                        .iter()
                        .map(|t| {
                            let v = match theory_column {
                                Some(0) => 1.0 - t[0],
                                Some(k) => t[k],
                                None => f64::NAN,
                            };
                            (v > 0.0 && v.is_finite()).then(|| v.ln())
                        })
                        .collect();
                    Curve {
                        label: label.clone(),
                        curve: LogCurve {
                            measure: Measure::QPost,
                            measured,
                            theory,
                        },
                    }
                })
                .collect();
            Panel {
                y_label: format!("{name} (log scale), ± {BAND_SE} SE"),
                curves,
                // the gradient ratio exists at attention rows only
                bridge_gaps: theory_column.is_none(),
            }
        })
        .collect();
    LayerFigure { title, panels }
}
