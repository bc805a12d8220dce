//! Multi-head softmax self-attention on the f64 CPU reference: the layer's
//! four matrices drawn from its one stream, its forward map on a sequence,
//! its tangent (forward-mode derivative) and its adjoint (the backward
//! pass), and the attention entropy. Plainly, per sequence and head.
//!
//! A row is one sequence, channel-major: unit c of token t at c T + t.
//! Inside, tokens are token-major vectors: q[t] holds every head's query
//! of token t (head h at h d_k..), likewise k, v and o.
//!
//! Per head: s_ts = tau q_t . k_s, A_ts = softmax_s(s_t.) over s <= t when
//! causal, o_t = sum_s A_ts v_s; the output is W_o o_t. The derivatives
//! follow the chain rule through each: ds = tau (dq_t . k_s + q_t . dk_s),
//! dA_ts = A_ts (ds_ts - sum_u A_tu ds_tu), do_t = sum_s dA_ts v_s + A_ts
//! dv_s; the adjoint walks the same steps backwards.

use super::block_steps::{Row, Weights};
use crate::model::arch::{Attention, AttentionMatrix, Layer, LayerKind};
use crate::model::rng::{self, Stream};
use crate::spec::RunSpec;

fn attention_of(layer: &Layer) -> &Attention {
    match &layer.kind {
        LayerKind::Attention(a) => a,
        _ => unreachable!("an attention layer"),
    }
}

fn tokens_and_width(layer: &Layer) -> (usize, usize) {
    let (d, _, t) = layer.input.dims();
    (t, d)
}

/// The four matrices, each with the offset of its entries in `Weights::w`.
fn matrices(layer: &Layer) -> [(AttentionMatrix, usize); 4] {
    let (_, d) = tokens_and_width(layer);
    let ms = attention_of(layer).matrices(d);
    let mut offset = 0;
    ms.map(|m| {
        let at = offset;
        offset += m.rows * m.cols;
        (m, at)
    })
}

/// W_q, W_k, W_v, W_o one after the other, row-major, from the layer's
/// stream: row r of the stream (r counted across the four, `first_row`)
/// holds its entries in groups of 4, as every weight row is drawn.
pub(super) fn draw(spec: &RunSpec, network: usize, number: usize, layer: &Layer) -> Weights {
    let mut w = Vec::new();
    for (m, _) in matrices(layer) {
        let law = layer.matrix_law(number, &m);
        let scale = law.scale();
        for r in 0..m.rows {
            for g in 0..m.cols.div_ceil(4) {
                let bits = rng::bits(
                    spec.seed,
                    Stream::Weight,
                    network as u32,
                    number as u32,
                    (m.first_row + r) as u32,
                    g as u32,
                );
                let z = rng::standard4(law.dist, bits);
                for (e, z) in z.iter().enumerate() {
                    if 4 * g + e < m.cols {
                        w.push(scale * z);
                    }
                }
            }
        }
    }
    Weights {
        w,
        ..Default::default()
    }
}

/// Token-major rows M x_t of the channel-major sequence x.
fn project(w: &[f64], m: &AttentionMatrix, at: usize, x: &Row, tokens: usize) -> Vec<Vec<f64>> {
    (0..tokens)
        .map(|t| {
            (0..m.rows)
                .map(|r| {
                    (0..m.cols)
                        .map(|j| w[at + r * m.cols + j] * x[j * tokens + t])
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// M^T y_t for token-major y, as a channel-major row of M's columns.
fn project_back(w: &[f64], m: &AttentionMatrix, at: usize, y: &[Vec<f64>]) -> Row {
    let tokens = y.len();
    let mut out = vec![0.0; m.cols * tokens];
    for (t, yt) in y.iter().enumerate() {
        for (r, yr) in yt.iter().enumerate() {
            for j in 0..m.cols {
                out[j * tokens + t] += w[at + r * m.cols + j] * yr;
            }
        }
    }
    out
}

/// One sequence's forward pass: what the derivatives need.
struct Pass {
    q: Vec<Vec<f64>>,
    k: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    /// a[h][t][s]: the attention of head h's query t on key s (0 where masked)
    a: Vec<Vec<Vec<f64>>>,
}

fn visible(att: &Attention, t: usize, s: usize) -> bool {
    !att.causal || s <= t
}

/// sum over the head's units of x[t] y[s]
fn head_dot(x: &[f64], y: &[f64], head: usize, width: usize) -> f64 {
    (head * width..(head + 1) * width)
        .map(|i| x[i] * y[i])
        .sum()
}

fn pass(layer: &Layer, wt: &Weights, x: &Row) -> Pass {
    let att = attention_of(layer);
    let (tokens, _) = tokens_and_width(layer);
    let [(mq, aq), (mk, ak), (mv, av), _] = matrices(layer);
    let q = project(&wt.w, &mq, aq, x, tokens);
    let k = project(&wt.w, &mk, ak, x, tokens);
    let v = project(&wt.w, &mv, av, x, tokens);
    let a = (0..att.heads)
        .map(|h| {
            (0..tokens)
                .map(|t| {
                    let scores: Vec<f64> = (0..tokens)
                        .map(|s| {
                            if visible(att, t, s) {
                                att.temperature * head_dot(&q[t], &k[s], h, att.key_width)
                            } else {
                                f64::NEG_INFINITY
                            }
                        })
                        .collect();
                    softmax(&scores)
                })
                .collect()
        })
        .collect();
    Pass { q, k, v, a }
}

/// exp(s - max) / sum, exactly 0 at -inf.
fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = scores
        .iter()
        .map(|s| {
            if *s == f64::NEG_INFINITY {
                0.0
            } else {
                (s - max).exp()
            }
        })
        .collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

/// The matrix that mixes each head's tokens: alpha I + beta A
/// (Value-SkipInit; A itself by default).
fn mixing(att: &Attention, a: &[Vec<Vec<f64>>]) -> Vec<Vec<Vec<f64>>> {
    a.iter()
        .map(|ah| {
            ah.iter()
                .enumerate()
                .map(|(t, row)| {
                    row.iter()
                        .enumerate()
                        .map(|(s, a)| {
                            let identity = if s == t { att.identity_mix } else { 0.0 };
                            identity + att.attention_mix * a
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// o_t = sum_s A_ts v_s per head, token-major.
fn mix(att: &Attention, a: &[Vec<Vec<f64>>], v: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let tokens = v.len();
    let dv = att.value_width;
    (0..tokens)
        .map(|t| {
            let mut o = vec![0.0; att.heads * dv];
            for (h, ah) in a.iter().enumerate() {
                for (s, vs) in v.iter().enumerate() {
                    for i in h * dv..(h + 1) * dv {
                        o[i] += ah[t][s] * vs[i];
                    }
                }
            }
            o
        })
        .collect()
}

/// The layer's pre-activation on one sequence: W_o o_t, channel-major.
pub(super) fn forward(layer: &Layer, wt: &Weights, x: &Row) -> Row {
    let att = attention_of(layer);
    let p = pass(layer, wt, x);
    let o = mix(att, &mixing(att, &p.a), &p.v);
    let [.., (mo, ao)] = matrices(layer);
    output_projection(&wt.w, &mo, ao, &o)
}

/// W_o o_t for token-major o, as a channel-major row.
fn output_projection(w: &[f64], mo: &AttentionMatrix, ao: usize, o: &[Vec<f64>]) -> Row {
    let tokens = o.len();
    let mut out = vec![0.0; mo.rows * tokens];
    for (t, ot) in o.iter().enumerate() {
        for r in 0..mo.rows {
            out[r * tokens + t] = (0..mo.cols).map(|c| w[ao + r * mo.cols + c] * ot[c]).sum();
        }
    }
    out
}

/// The derivative of `forward` at x along dx.
pub(super) fn tangent(layer: &Layer, wt: &Weights, x: &Row, dx: &Row) -> Row {
    let att = attention_of(layer);
    let (tokens, _) = tokens_and_width(layer);
    let p = pass(layer, wt, x);
    let [(mq, aq), (mk, ak), (mv, av), (mo, ao)] = matrices(layer);
    let dq = project(&wt.w, &mq, aq, dx, tokens);
    let dk = project(&wt.w, &mk, ak, dx, tokens);
    let dv = project(&wt.w, &mv, av, dx, tokens);
    // dA per head from ds
    let da: Vec<Vec<Vec<f64>>> = (0..att.heads)
        .map(|h| {
            (0..tokens)
                .map(|t| {
                    let ds: Vec<f64> = (0..tokens)
                        .map(|s| {
                            att.temperature
                                * (head_dot(&dq[t], &p.k[s], h, att.key_width)
                                    + head_dot(&p.q[t], &dk[s], h, att.key_width))
                        })
                        .collect();
                    let a = &p.a[h][t];
                    let mean: f64 = a.iter().zip(&ds).map(|(a, d)| a * d).sum();
                    // beta dA: the mixing matrix's derivative
                    a.iter()
                        .zip(&ds)
                        .map(|(a, d)| att.attention_mix * a * (d - mean))
                        .collect()
                })
                .collect()
        })
        .collect();
    let d_o: Vec<Vec<f64>> = mix(att, &da, &p.v)
        .iter()
        .zip(mix(att, &mixing(att, &p.a), &dv))
        .map(|(x, y)| x.iter().zip(&y).map(|(a, b)| a + b).collect())
        .collect();
    output_projection(&wt.w, &mo, ao, &d_o)
}

/// The adjoint of `tangent` at x: the gradient with respect to x from g,
/// the one with respect to the output.
pub(super) fn adjoint(layer: &Layer, wt: &Weights, x: &Row, g: &Row) -> Row {
    let [(mq, aq), (mk, ak), (mv, av), _] = matrices(layer);
    let [gq, gk, gv] = projection_gradients(layer, wt, x, g);
    let mut out = project_back(&wt.w, &mq, aq, &gq);
    for (m, at, y) in [(&mk, ak, &gk), (&mv, av, &gv)] {
        for (o, v) in out.iter_mut().zip(project_back(&wt.w, m, at, y)) {
            *o += v;
        }
    }
    out
}

/// ||dL/dW_Q||_F^2, ||dL/dW_K||_F^2 and ||dL/dW_V||_F^2 for one sequence,
/// from g = dL/d(output): dL/dW_Q = sum_t g_q[t] x_t^T, alike for K and V
/// (Noci et al. 2022: the first two vanish when the tokens have collapsed,
/// the softmax then passing no gradient, the third does not).
pub(super) fn weight_gradients(layer: &Layer, wt: &Weights, x: &Row, g: &Row) -> [f64; 3] {
    let (tokens, width) = tokens_and_width(layer);
    projection_gradients(layer, wt, x, g).map(|gp| {
        let rows = gp[0].len();
        let mut total = 0.0;
        for r in 0..rows {
            for j in 0..width {
                let entry: f64 = (0..tokens).map(|t| gp[t][r] * x[j * tokens + t]).sum();
                total += entry * entry;
            }
        }
        total
    })
}

/// The gradients with respect to each token's queries, keys and values
/// (token-major), from g = dL/d(output).
fn projection_gradients(layer: &Layer, wt: &Weights, x: &Row, g: &Row) -> [Vec<Vec<f64>>; 3] {
    let att = attention_of(layer);
    let (tokens, _) = tokens_and_width(layer);
    let p = pass(layer, wt, x);
    let [(mq, _), (mk, _), (mv, _), (mo, ao)] = matrices(layer);
    let (dk_w, dv_w) = (att.key_width, att.value_width);
    // g_o[t] = W_o^T g_t
    let go: Vec<Vec<f64>> = (0..tokens)
        .map(|t| {
            (0..mo.cols)
                .map(|c| {
                    (0..mo.rows)
                        .map(|r| wt.w[ao + r * mo.cols + c] * g[r * tokens + t])
                        .sum()
                })
                .collect()
        })
        .collect();
    let mut gq = vec![vec![0.0; mq.rows]; tokens];
    let mut gk = vec![vec![0.0; mk.rows]; tokens];
    let mut gv = vec![vec![0.0; mv.rows]; tokens];
    let m = mixing(att, &p.a);
    for h in 0..att.heads {
        for t in 0..tokens {
            let a = &p.a[h][t];
            // gA_ts = beta g_o[t] . v_s, and g_v[s] += M_ts g_o[t]
            let ga: Vec<f64> = (0..tokens)
                .map(|s| att.attention_mix * head_dot(&go[t], &p.v[s], h, dv_w))
                .collect();
            for s in 0..tokens {
                for i in h * dv_w..(h + 1) * dv_w {
                    gv[s][i] += m[h][t][s] * go[t][i];
                }
            }
            let mean: f64 = a.iter().zip(&ga).map(|(a, g)| a * g).sum();
            for s in 0..tokens {
                let gs = att.temperature * a[s] * (ga[s] - mean);
                for i in h * dk_w..(h + 1) * dk_w {
                    gq[t][i] += gs * p.k[s][i];
                    gk[s][i] += gs * p.q[t][i];
                }
            }
        }
    }
    [gq, gk, gv]
}

/// The attention entropy of one sequence: sum over heads and queries of
/// -sum_s A_ts ln A_ts, and the number of (head, query) terms.
pub(super) fn entropy(layer: &Layer, wt: &Weights, x: &Row) -> (f64, usize) {
    let p = pass(layer, wt, x);
    let total =
        p.a.iter()
            .flatten()
            .map(|row| {
                -row.iter()
                    .filter(|a| **a > 0.0)
                    .map(|a| a * a.ln())
                    .sum::<f64>()
            })
            .sum();
    (total, p.a.len() * p.a[0].len())
}

#[cfg(test)]
mod tests;
