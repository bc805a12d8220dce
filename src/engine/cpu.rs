//! The CPU reference engine: the same forward pass as the GPU kernels, on the
//! same Philox streams, in f64, written as plainly as possible. It exists to
//! check the kernels; it is O(B n^2) per layer and meant for small sizes.

use crate::rng::{self, Stream};
use crate::spec::RunSpec;
use crate::stats::LayerSums;

/// W_l of network `network` (row-major n_out x n_in), in f64.
pub fn weights(spec: &RunSpec, network: usize, layer: usize) -> Vec<f64> {
    let net = &spec.net;
    let (n_in, n_out) = (net.widths[layer - 1], net.widths[layer]);
    let law = net.weight_law(layer);
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

fn bias(spec: &RunSpec, network: usize, layer: usize) -> Vec<f64> {
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

/// The input batch (sample-major), pairs with correlation c0.
pub fn inputs(spec: &RunSpec, network: usize) -> Vec<f64> {
    let n = spec.net.widths[0];
    let (q0, c0) = (spec.net.q0, spec.net.c0);
    let z = |row: usize, i: usize| {
        let b = rng::bits(
            spec.seed,
            Stream::Input,
            network as u32,
            0,
            row as u32,
            (i / 4) as u32,
        );
        rng::normal4(b)[i % 4]
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
        let mut p = [0.0; 5];
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

/// Rows 0..=L of network `network`.
pub fn run_network(spec: &RunSpec, network: usize) -> Vec<LayerSums> {
    let net = &spec.net;
    let batch = spec.batch;
    let (mut x, sums0) = layer_sums(spec, &inputs(spec, network), net.widths[0], true);
    let mut renorm = sums0.renorm;
    let mut out = vec![sums0];
    for layer in 1..=net.depth() {
        let (n_in, n_out) = (net.widths[layer - 1], net.widths[layer]);
        let w = weights(spec, network, layer);
        let b = bias(spec, network, layer);
        let mut h = vec![0.0; batch * n_out];
        for s in 0..batch {
            for i in 0..n_out {
                let dot: f64 = (0..n_in).map(|j| w[i * n_in + j] * x[s * n_in + j]).sum();
                h[s * n_out + i] = renorm * dot + b[i];
            }
        }
        let (x_next, sums) = layer_sums(spec, &h, n_out, false);
        renorm = sums.renorm;
        x = x_next;
        out.push(sums);
    }
    out
}
