//! The empirical NTK through an architecture file (--ntk) on the f64 CPU
//! reference: a backward pass from the readout f = w^T x_L / sqrt(n_L), and
//! at every layer with parameters the per-example gradients of its
//! parameters, dotted between the inputs of the batch. A convolution's
//! weight gradient sums over positions (sum_p delta[co, p] x[ci, p + t]),
//! so its term is the Gram matrix of the per-example gradients themselves,
//! not a product of two B x B Gram matrices as for a dense layer.
//! What each parameter counts (`stats::ntk::layer_coefficients`) is as for
//! plain stacks.

use crate::model::arch::{Block, Layer, LayerKind};
use crate::model::rng::{self, Stream};
use crate::sim::stats::ntk::{NtkTerms, affine_coefficients, layer_coefficients};
use crate::spec::Parametrisation;

use super::block_steps::*;

/// Row-major B x B Gram matrix of the rows.
fn gram(rows: &[Row]) -> Vec<f64> {
    let b = rows.len();
    let mut g = vec![0.0; b * b];
    for i in 0..b {
        for j in 0..b {
            g[i * b + j] = rows[i].iter().zip(&rows[j]).map(|(u, v)| u * v).sum();
        }
    }
    g
}

/// Per sample: the sum over each output channel's positions of d (and of
/// d y with `y`): the gradients of per-channel biases (and gains).
fn per_channel(layer: &Layer, d: &[Row], y: Option<&[Row]>) -> Vec<Row> {
    let (c, h, w) = dims(layer.output);
    let positions = h * w;
    (0..d.len())
        .map(|b| {
            (0..c)
                .map(|ch| {
                    (ch * positions..(ch + 1) * positions)
                        .map(|i| d[b][i] * y.map_or(1.0, |y| y[b][i]))
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// Per sample, the gradient of a layer's weights W from its input rows x
/// and the gradient d with respect to its pre-activation, in W's layout.
fn weight_gradients(layer: &Layer, n_weights: usize, x: &[Row], d: &[Row]) -> Vec<Row> {
    (0..d.len())
        .map(|b| {
            let mut g = vec![0.0; n_weights];
            for_each_connection(layer, |o, i, w| g[w] += d[b][o] * x[b][i]);
            g
        })
        .collect()
}

/// A standardised layer's W = s (V - mean V) per row, s = gain / std V:
/// the gradient G with respect to W taken back to the raw draws V, row by
/// row, through the standardisation's Jacobian s (I - 1 1^T / N - u u^T / N),
/// u = (V - mean V) / std V = W / gain.
fn through_standardisation(grads: &mut [Row], wt: &Weights, gain: f64) {
    let rows = wt.row_scales.len();
    let per_row = wt.w.len() / rows;
    let n = per_row as f64;
    for g in grads.iter_mut() {
        for (r, s) in wt.row_scales.iter().enumerate() {
            let u: Vec<f64> = wt.w[r * per_row..(r + 1) * per_row]
                .iter()
                .map(|w| w / gain)
                .collect();
            let row = &mut g[r * per_row..(r + 1) * per_row];
            let mean = row.iter().sum::<f64>() / n;
            let along_u = row.iter().zip(&u).map(|(a, b)| a * b).sum::<f64>() / n;
            for (v, ui) in row.iter_mut().zip(&u) {
                *v = s * (*v - mean - ui * along_u);
            }
        }
    }
}

/// A layer as the backward walk reaches it: weight layer `number`, its
/// draws, its input rows `x` (true scale), for a normalisation its output
/// `y`, the gradient `d` with respect to its pre-activation, and whether
/// its bias enters its output (a highway gate's does not).
struct AtLayer<'a> {
    layer: &'a Layer,
    number: usize,
    wt: &'a Weights,
    x: &'a [Row],
    y: &'a [Row],
    d: &'a [Row],
    bias: bool,
}

/// A layer's parameter gradients, per row: (factor, one gradient row per
/// sample) for each kind of its parameters.
fn parameter_gradients(at: &AtLayer, param: Parametrisation) -> Vec<(f64, Vec<Row>)> {
    let AtLayer {
        layer,
        number,
        wt,
        x,
        y,
        d,
        bias,
    } = *at;
    match layer.kind {
        LayerKind::Scale { .. } | LayerKind::AvgPool { .. } => Vec::new(),
        LayerKind::Norm { affine: false, .. } => Vec::new(),
        LayerKind::Norm { kind, .. } => {
            let (gain, shift) = affine_coefficients(kind);
            vec![
                (gain, per_channel(layer, d, Some(y))),
                (shift, per_channel(layer, d, None)),
            ]
        }
        _ => {
            let (v, sb) = layer_coefficients(layer, number, param, bias);
            let mut grads = weight_gradients(layer, wt.w.len(), x, d);
            if let Some(ws) = layer.standardise {
                let per_row = wt.w.len() / wt.row_scales.len();
                through_standardisation(&mut grads, wt, ws.gain(per_row) * layer.scale);
            }
            vec![(v, grads), (sb, per_channel(layer, d, None))]
        }
    }
}

/// Layer `layer`'s term of Theta where each sample's gradient is its own
/// row's: sum over its parameters' kinds of factor times the Gram matrix of
/// their per-sample gradients (a plain dense layer's as (d_a . d_b)(v x_a .
/// x_b + sb), without forming them); None for a layer without parameters.
fn layer_term(at: &AtLayer, param: Parametrisation) -> Option<Vec<f64>> {
    if let (LayerKind::Dense { .. }, None) = (&at.layer.kind, at.layer.standardise) {
        let (v, sb) = layer_coefficients(at.layer, at.number, param, at.bias);
        let (dd, xx) = (gram(at.d), gram(at.x));
        return Some(dd.iter().zip(&xx).map(|(g, k)| g * (v * k + sb)).collect());
    }
    let grads = parameter_gradients(at, param);
    let mut terms = grads.into_iter().map(|(factor, rows)| {
        gram(&rows)
            .into_iter()
            .map(|g| factor * g)
            .collect::<Vec<f64>>()
    });
    let first = terms.next()?;
    Some(terms.fold(first, |acc, t| {
        acc.iter().zip(&t).map(|(u, v)| u + v).collect()
    }))
}

/// The input rows of each of a block's layers (`block.layers()` order) from
/// its input x and its saved forward state.
fn layer_inputs(block: &Block, saved: &Saved, shifts: &[f64], x: &[Row]) -> Vec<Vec<Row>> {
    match (block, saved) {
        (Block::Layer(_), _) => vec![x.to_vec()],
        (
            Block::Residual {
                branch,
                shared,
                shortcut,
                ..
            },
            Saved::Residual { hs, .. },
        ) => {
            let input = |i: usize| -> Vec<Row> {
                match i {
                    0 => x.to_vec(),
                    i => post_activation(&branch[i - 1], &hs[i - 1], shifts[i - 1]),
                }
            };
            let mut inputs: Vec<Vec<Row>> = (0..branch.len()).map(input).collect();
            if shortcut.is_some() {
                inputs.push(input(*shared));
            }
            inputs
        }
        (Block::Highway { .. }, _) => vec![x.to_vec(), x.to_vec()],
        _ => unreachable!("saved state matches its block"),
    }
}

/// What a layer's normalisation output is (its saved h), for its gain.
fn norm_output(saved: &Saved, slot: usize) -> &[Row] {
    match saved {
        Saved::Plain { h, .. } => h,
        Saved::Residual { hs, .. } => hs.get(slot).map_or(&[], |h| h.as_slice()),
        Saved::Highway { .. } => &[],
    }
}

/// One network's NTK terms: `inputs[l]` the rows entering block l + 1 and
/// `inputs[L]` the top rows, each on its stored scale, `log_scale[l]` the
/// log of stored over true for them (the renormalisations of a positively
/// homogeneous stack, which leave delta at its true scale: phi' of such an
/// activation does not see the scale, and such a stack has no bias or
/// normalisation). Without batch-norm one backward pass from df_a/dx_L = w
/// in every row a gives every input's gradient at once (row a is input a's);
/// with it, the pass for output a starts from w in row a only, and input a's
/// gradient is the sum over the rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn ntk_terms(
    spec: &crate::spec::RunSpec,
    program: &crate::sim::plan::Program,
    network: usize,
    param: Parametrisation,
    saved: &[Saved],
    weights: &[Weights],
    inputs: &[Vec<Row>],
    log_scale: &[f64],
) -> NtkTerms {
    let arch = program.arch;
    let depth = arch.depth();
    let n_top = arch.units(depth);
    let true_rows = |l: usize| -> Vec<Row> {
        let s = (-log_scale[l]).exp();
        inputs[l]
            .iter()
            .map(|r| r.iter().map(|v| v * s).collect())
            .collect()
    };
    let xs: Vec<Vec<Row>> = (0..depth).map(true_rows).collect();
    let w: Vec<f64> = (0..n_top)
        .map(|i| {
            rng::normal_entry(spec.seed, Stream::Readout, network, depth, 0, i)
                / (n_top as f64).sqrt()
        })
        .collect();
    let b = spec.batch;
    // the backward pass from df/dx_L = w in the rows `rows`, telling
    // `at_layer(row l, the layer)` each layer's gradient on the way
    let walk = |rows: &[usize], at_layer: &mut dyn FnMut(usize, AtLayer)| {
        let mut d: Vec<Row> = (0..b)
            .map(|r| {
                if rows.contains(&r) {
                    w.clone()
                } else {
                    vec![0.0; n_top]
                }
            })
            .collect();
        // through phi' of a plain top layer
        if let (Block::Layer(top), Saved::Plain { h, .. }) =
            (&arch.blocks[depth - 1], &saved[depth - 1])
        {
            d = times_deriv(top, h, d);
        }
        let mut number = weights.len();
        for l in (1..=depth).rev() {
            let block = &arch.blocks[l - 1];
            let first = number - block.layers().len();
            let ins = layer_inputs(
                block,
                &saved[l - 1],
                &program.shifts[first..number],
                &xs[l - 1],
            );
            let mut each = |slot: usize, delta: &[Row]| {
                let number = first + slot + 1;
                let at = AtLayer {
                    layer: block.layers()[slot],
                    number,
                    wt: &weights[number - 1],
                    x: &ins[slot],
                    y: norm_output(&saved[l - 1], slot),
                    d: delta,
                    // a highway gate's bias does not enter its output
                    bias: !matches!(block, Block::Highway { .. }) || slot == 0,
                };
                at_layer(l, at);
            };
            d = backward_step_with(block, &saved[l - 1], &weights[first..number], &d, &mut each);
            number = first;
            // below a plain layer the gradient is with respect to its h
            if l >= 2
                && let (Block::Layer(below), Saved::Plain { h, .. }) =
                    (&arch.blocks[l - 2], &saved[l - 2])
            {
                d = times_deriv(below, h, d);
            }
        }
    };
    let mut terms = vec![vec![0.0; b * b]; depth];
    if arch.has_batch_norm() {
        let summed = |rows: Vec<Row>| -> Row {
            let mut total = vec![0.0; rows.first().map_or(0, Vec::len)];
            for r in rows {
                for (t, v) in total.iter_mut().zip(r) {
                    *t += v;
                }
            }
            total
        };
        // per output a, per row l: its layers' gradients with their factors
        let mut grads: Vec<Vec<Vec<(f64, Row)>>> = vec![vec![Vec::new(); depth]; b];
        for (a, mine) in grads.iter_mut().enumerate() {
            walk(&[a], &mut |l, at| {
                // output a's gradient: the sum over the rows
                let grads = parameter_gradients(&at, param);
                mine[l - 1].extend(
                    grads
                        .into_iter()
                        .map(|(factor, rows)| (factor, summed(rows))),
                );
            });
        }
        for (l, term) in terms.iter_mut().enumerate() {
            for a in 0..b {
                for c in 0..b {
                    term[a * b + c] = grads[a][l]
                        .iter()
                        .zip(&grads[c][l])
                        .map(|((f, u), (_, v))| {
                            f * u.iter().zip(v).map(|(p, q)| p * q).sum::<f64>()
                        })
                        .sum();
                }
            }
        }
    } else {
        let all: Vec<usize> = (0..b).collect();
        walk(&all, &mut |l, at| {
            if let Some(t) = layer_term(&at, param) {
                for (acc, v) in terms[l - 1].iter_mut().zip(t) {
                    *acc += v;
                }
            }
        });
    }
    NtkTerms {
        terms,
        top_x: gram(&true_rows(depth)),
        input_x: gram(&true_rows(0)),
        n_top,
    }
}

#[cfg(test)]
mod tests;
