//! The CPU reference engine: the same forward pass as the GPU kernels, on the
//! same Philox streams, in f64, written as plainly as possible. It exists to
//! check the kernels; it is O(B n^2) per layer and meant for small sizes.

use crate::model::rng::{self, Stream};
use crate::sim::stats::{LayerSums, NetworkSums, NtkSums, RowSums};
use crate::spec::RunSpec;

use super::norm_sums;

/// W_l of network `network` (row-major n_out x n_in), in f64.
pub fn weights(spec: &RunSpec, network: usize, layer: usize) -> Vec<f64> {
    let net = &spec.net;
    let (n_in, n_out) = (net.widths[layer - 1], net.widths[layer]);
    let law = net.weight_law(layer);
    if law.dist == crate::model::init::Dist::Orthogonal {
        let gain = (law.variance * n_in.max(n_out) as f64).sqrt();
        return orthogonal(spec, network, layer, gain);
    }
    let scale = law.scale();
    let mut w = vec![0.0; n_out * n_in];
    for i in 0..n_out {
        for g in 0..n_in.div_ceil(4) {
            let b = rng::bits(
                spec.seed,
                Stream::Weight,
                network as u32,
                layer as u32,
                i as u32,
                g as u32,
            );
            let z = rng::standard4(law.dist, b);
            for e in 0..4 {
                let j = 4 * g + e;
                if j < n_in {
                    w[i * n_in + j] = scale * z[e];
                }
            }
        }
    }
    w
}

/// gain * Q D from the Householder QR of the layer's Gaussian matrix G
/// (n_out x n_in; factored as G^T when n_out < n_in), D = sign(diag R), as
/// the GPU's orthogonal kernels (the QR with positive diagonal is unique, so
/// any QR algorithm gives this Q up to rounding).
pub fn orthogonal(spec: &RunSpec, network: usize, layer: usize, gain: f64) -> Vec<f64> {
    let (n_in, n_out) = (spec.net.widths[layer - 1], spec.net.widths[layer]);
    orthogonal_matrix(spec.seed, network, layer, n_out, n_in, gain)
}

/// The orthogonal matrix of `orthogonal` for any (seed, network, weight
/// layer, shape): the Gaussian is drawn as the weight stream's rows.
pub fn orthogonal_matrix(
    seed: u64,
    network: usize,
    layer: usize,
    n_out: usize,
    n_in: usize,
    gain: f64,
) -> Vec<f64> {
    let g = |i: usize, j: usize| rng::normal_entry(seed, Stream::Weight, network, layer, i, j);
    let tall = n_out >= n_in;
    let (m, n) = (n_in.max(n_out), n_in.min(n_out));
    // a[c][r]: column-major A (m x n)
    let mut a: Vec<Vec<f64>> = (0..n)
        .map(|c| {
            (0..m)
                .map(|r| if tall { g(r, c) } else { g(c, r) })
                .collect()
        })
        .collect();
    let mut betas = vec![0.0; n];
    let mut alphas = vec![0.0; n];
    for k in 0..n {
        let norm = a[k][k..].iter().map(|x| x * x).sum::<f64>().sqrt();
        let x0 = a[k][k];
        let alpha = if x0 < 0.0 { norm } else { -norm };
        a[k][k] = x0 - alpha;
        let vv: f64 = a[k][k..].iter().map(|x| x * x).sum();
        betas[k] = if vv > 0.0 { 2.0 / vv } else { 0.0 };
        alphas[k] = alpha;
        let v = a[k].clone();
        for col in a.iter_mut().skip(k + 1) {
            let f = betas[k] * (k..m).map(|i| v[i] * col[i]).sum::<f64>();
            for i in k..m {
                col[i] -= f * v[i];
            }
        }
    }
    let mut q: Vec<Vec<f64>> = (0..n)
        .map(|c| (0..m).map(|r| if r == c { 1.0 } else { 0.0 }).collect())
        .collect();
    for k in (0..n).rev() {
        let v = &a[k];
        for col in q.iter_mut().skip(k) {
            let f = betas[k] * (k..m).map(|i| v[i] * col[i]).sum::<f64>();
            for i in k..m {
                col[i] -= f * v[i];
            }
        }
    }
    let mut w = vec![0.0; n_out * n_in];
    for i in 0..n_out {
        for j in 0..n_in {
            let (r, c) = if tall { (i, j) } else { (j, i) };
            let sign = if alphas[c] < 0.0 { -1.0 } else { 1.0 };
            w[i * n_in + j] = gain * sign * q[c][r];
        }
    }
    w
}

/// b_l of network `network` (all zeros where the bias law has variance 0).
pub fn bias(spec: &RunSpec, network: usize, layer: usize) -> Vec<f64> {
    let n_out = spec.net.widths[layer];
    let law = spec.net.bias_law(layer);
    if law.variance == 0.0 {
        return vec![0.0; n_out];
    }
    (0..n_out)
        .map(|i| {
            let b = rng::bits(
                spec.seed,
                Stream::Bias,
                network as u32,
                layer as u32,
                0,
                (i / 4) as u32,
            );
            law.scale() * rng::standard4(law.dist, b)[i % 4]
        })
        .collect()
}

/// The input batch (sample-major), pairs with correlation c0: entry i of
/// inputs 2k and 2k+1 are sqrt(q0) z1 and sqrt(q0) (c0 z1 + sqrt(1 - c0^2)
/// z2), z from the input stream's layer 0 (rows 2k, 2k+1, entry i).
///
/// Sequences with token correlation c (--token-c0, a sequence --arch
/// file): token t of input b is sqrt(1 - c) e_bt + sqrt(c) u_b, e the entries
/// above (channel-major, unit j of token t at j T + t) and u_b a vector of
/// the token width drawn alike from the stream's layer 1, shared by the
/// sequence's tokens. So E[x_bt . x_bs] / d = q0 c (t != s), and the two
/// sequences of a pair keep c0 between tokens at one position.
pub fn inputs(spec: &RunSpec, network: usize) -> Vec<f64> {
    let n = spec.net.widths[0];
    let (q0, c0) = (spec.net.q0, spec.net.c0);
    let pairs = |layer: usize, n: usize| -> Vec<f64> {
        let z = |row: usize, i: usize| {
            rng::normal_entry(spec.seed, Stream::Input, network, layer, row, i)
        };
        let mut x = vec![0.0; spec.batch * n];
        for pair in 0..spec.batch / 2 {
            for i in 0..n {
                let (z1, z2) = (z(2 * pair, i), z(2 * pair + 1, i));
                x[2 * pair * n + i] = q0.sqrt() * z1;
                x[(2 * pair + 1) * n + i] =
                    q0.sqrt() * (c0 * z1 + (1.0 - c0 * c0).max(0.0).sqrt() * z2);
            }
        }
        x
    };
    let mut x = pairs(0, n);
    let sequence = spec.arch.as_ref().and_then(|a| match a.arch.input {
        crate::model::arch::Shape::Sequence { tokens, width } => Some((tokens, width, a.token_c0)),
        _ => None,
    });
    if let Some((tokens, width, c)) = sequence
        && c > 0.0
    {
        let u = pairs(1, width);
        for b in 0..spec.batch {
            for j in 0..width {
                for t in 0..tokens {
                    let e = &mut x[b * n + j * tokens + t];
                    *e = (1.0 - c).sqrt() * *e + c.sqrt() * u[b * width + j];
                }
            }
        }
    }
    x
}

/// x = phi(h) (identity for the input row) and the sums of the layer.
fn layer_sums(spec: &RunSpec, h: &[f64], n: usize, is_input: bool) -> (Vec<f64>, LayerSums) {
    let act = &spec.net.act;
    let mut sums = LayerSums {
        width: n,
        batch: spec.batch,
        renorm: 1.0,
        ..Default::default()
    };
    let mut x = vec![0.0; h.len()];
    for pair in 0..spec.batch / 2 {
        let mut p = [0.0; 6];
        for i in 0..n {
            let (a, b) = (2 * pair * n + i, (2 * pair + 1) * n + i);
            let (ha, hb) = (h[a], h[b]);
            let (xa, xb) = if is_input {
                (ha, hb)
            } else {
                (act.value(ha), act.value(hb))
            };
            if !is_input {
                sums.zeros +=
                    (act.deriv(ha) == 0.0) as u8 as f64 + (act.deriv(hb) == 0.0) as u8 as f64;
            }
            x[a] = xa;
            x[b] = xb;
            p[0] += ha * ha;
            p[1] += hb * hb;
            p[2] += ha * hb;
            p[3] += xa * xa;
            p[4] += xb * xb;
            p[5] += (ha - hb) * (ha - hb);
            sums.sum_h += ha + hb;
            sums.sum_h4 += ha.powi(4) + hb.powi(4);
            sums.sum_x += xa + xb;
        }
        sums.pairs.push(p);
    }
    if spec.net.is_homogeneous() {
        let mean_sq = sums.pairs.iter().map(|p| p[3] + p[4]).sum::<f64>() / (spec.batch * n) as f64;
        if mean_sq > 0.0 && mean_sq.is_finite() {
            sums.renorm = 1.0 / mean_sq.sqrt();
        }
    }
    (x, sums)
}

/// W x for each row x (W row-major n_out x n_in).
fn times(w: &[f64], n_out: usize, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|x| {
            (0..n_out)
                .map(|i| {
                    x.iter()
                        .enumerate()
                        .map(|(j, xj)| w[i * x.len() + j] * xj)
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// W^T d for each row d.
fn times_transposed(w: &[f64], n_in: usize, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|d| {
            (0..n_in)
                .map(|j| {
                    d.iter()
                        .enumerate()
                        .map(|(i, di)| w[i * n_in + j] * di)
                        .sum()
                })
                .collect()
        })
        .collect()
}

fn gram(rows: &[Vec<f64>]) -> Vec<f64> {
    rows.iter()
        .flat_map(|a| {
            rows.iter()
                .map(move |b| a.iter().zip(b).map(|(x, y)| x * y).sum())
        })
        .collect()
}

/// Everything one network measures, as the GPU engine computes it (the same
/// renormalisations, so the same sums up to rounding).
pub fn run_network(spec: &RunSpec, network: usize) -> NetworkSums {
    let net = &spec.net;
    let act = &net.act;
    let batch = spec.batch;
    let depth = net.depth();
    let probes = spec.probes;
    let split =
        |flat: &[f64], n: usize| -> Vec<Vec<f64>> { flat.chunks(n).map(|c| c.to_vec()).collect() };

    // forward, keeping h and x of every layer (the GPU recomputes them)
    let input = inputs(spec, network);
    let (x0, sums0) = layer_sums(spec, &input, net.widths[0], true);
    let mut renorm = sums0.renorm;
    let mut hs = vec![split(&input, net.widths[0])];
    let mut xs = vec![split(&x0, net.widths[0])];
    let mut forward = vec![sums0];
    for layer in 1..=depth {
        let (n_in, n_out) = (net.widths[layer - 1], net.widths[layer]);
        let w = weights(spec, network, layer);
        let b = bias(spec, network, layer);
        let mut h = vec![0.0; batch * n_out];
        for s in 0..batch {
            for i in 0..n_out {
                let dot: f64 = (0..n_in)
                    .map(|j| w[i * n_in + j] * xs[layer - 1][s][j])
                    .sum();
                h[s * n_out + i] = renorm * dot + b[i];
            }
        }
        let (x_next, sums) = layer_sums(spec, &h, n_out, false);
        renorm = sums.renorm;
        hs.push(split(&h, n_out));
        xs.push(split(&x_next, n_out));
        forward.push(sums);
    }
    let deriv_times = |h: &[Vec<f64>], v: Vec<Vec<f64>>, scale: f64| -> Vec<Vec<f64>> {
        v.into_iter()
            .zip(h)
            .map(|(row, hr)| {
                row.iter()
                    .zip(hr)
                    .map(|(vi, hi)| act.deriv(*hi) * scale * vi)
                    .collect()
            })
            .collect()
    };

    // tangents: t_0 = u, t_l = phi'(h_l) r (W t_{l-1})
    let mut tangent = None;
    let mut t_top = Vec::new();
    if probes.jacobian {
        let mut t = rng::normal_rows(spec.seed, Stream::Tangent, network, 0, batch, net.widths[0]);
        let mut out = Vec::new();
        for layer in 0..=depth {
            if layer > 0 {
                let w = weights(spec, network, layer);
                let r = out.last().map(|s: &RowSums| s.renorm[0]).unwrap();
                t = deriv_times(&hs[layer], times(&w, net.widths[layer], &t), r);
            }
            out.push(norm_sums(&t, None));
        }
        t_top = t;
        tangent = Some(out);
    }

    // backward: delta_L Gaussian, delta_{l-1} = phi'(h_{l-1}) r (W_l^T delta_l)
    let mut backward = None;
    let mut grams = None;
    if probes.needs_backward() {
        let mut d = rng::normal_rows(
            spec.seed,
            Stream::Delta,
            network,
            depth,
            batch,
            net.widths[depth],
        );
        let mut v = probes
            .jacobian
            .then(|| deriv_times(&hs[depth], t_top.clone(), 1.0));
        let mut out = vec![RowSums::default(); depth + 1];
        let mut g = vec![(Vec::new(), Vec::new()); depth];
        let record = |d: &[Vec<f64>], v: &Option<Vec<Vec<f64>>>| norm_sums(d, v.as_deref());
        out[depth] = record(&d, &v);
        for layer in (1..=depth).rev() {
            let w = weights(spec, network, layer);
            let n_in = net.widths[layer - 1];
            g[layer - 1] = (gram(&xs[layer - 1]), gram(&d));
            let [rd, rv] = out[layer].renorm;
            let step = |rows: Vec<Vec<f64>>, r: f64| {
                let y = times_transposed(&w, n_in, &rows);
                if layer == 1 {
                    y.into_iter()
                        .map(|row| row.iter().map(|v| r * v).collect())
                        .collect()
                } else {
                    deriv_times(&hs[layer - 1], y, r)
                }
            };
            d = step(d, rd);
            v = v.map(|v| step(v, rv));
            out[layer - 1] = record(&d, &v);
        }
        backward = Some(out);
        grams = probes.weight_grads.then_some(g);
    }
    let mut sums = NetworkSums::new(forward, tangent, backward, grams);
    if probes.ntk.is_some() {
        sums.ntk = Some(ntk_sums(spec, network, &hs, &xs));
    }
    sums
}

/// The empirical NTK's Gram matrices: delta_L = phi'(h_L) w / sqrt(n_L)
/// with the readout w shared by the batch, delta_{l-1} = phi'(h_{l-1})
/// W_l^T delta_l. A renormalised forward pass (positively homogeneous stacks)
/// scales h but not phi'(h), so delta is at its true scale.
fn ntk_sums(spec: &RunSpec, network: usize, hs: &[Vec<Vec<f64>>], xs: &[Vec<Vec<f64>>]) -> NtkSums {
    let net = &spec.net;
    let act = &net.act;
    let depth = net.depth();
    let n_top = net.widths[depth];
    let w: Vec<f64> = (0..n_top)
        .map(|i| {
            rng::normal_entry(spec.seed, Stream::Readout, network, depth, 0, i)
                / (n_top as f64).sqrt()
        })
        .collect();
    let mut d: Vec<Vec<f64>> = hs[depth]
        .iter()
        .map(|h| {
            h.iter()
                .zip(&w)
                .map(|(hi, wi)| act.deriv(*hi) * wi)
                .collect()
        })
        .collect();
    let mut delta = vec![Vec::new(); depth];
    for layer in (1..=depth).rev() {
        delta[layer - 1] = gram(&d);
        if layer > 1 {
            let back = times_transposed(&weights(spec, network, layer), net.widths[layer - 1], &d);
            d = back
                .into_iter()
                .zip(&hs[layer - 1])
                .map(|(row, h)| {
                    row.iter()
                        .zip(h)
                        .map(|(v, hi)| act.deriv(*hi) * v)
                        .collect()
                })
                .collect();
        }
    }
    NtkSums {
        x: xs.iter().map(|x| gram(x)).collect(),
        delta,
        delta_log_scale: vec![0.0; depth],
    }
}
