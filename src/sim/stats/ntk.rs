//! The empirical neural tangent kernel of one network (--ntk), from the
//! Gram matrices an engine measured (`NtkSums`): with the readout
//! f(x) = w^T x_L / sqrt(n_L) and delta_l = df/dh_l, layer l adds
//!
//! ```text
//! C_l(a, b) = (delta_l^a . delta_l^b) (v_l x_{l-1}^a . x_{l-1}^b + sb_l)       ntk
//! C_l(a, b) = (delta_l^a . delta_l^b) (x_{l-1}^a . x_{l-1}^b + [sb_l > 0])     standard
//! Theta(a, b) = sum_l C_l(a, b) + x_L^a . x_L^b / n_L  (ntk; standard: x_L^a . x_L^b), the readout's own term
//! ```
//!
//! (spec::Parametrisation says which parameters each counts.) Per network:
//! the B x B kernel, each layer's mean diagonal contribution and its
//! correlation between the paired inputs (2k, 2k + 1), the kernel's mean
//! diagonal and pair correlation, and the condition numbers of Theta and of
//! the NNGP kernel K = X_L^T X_L / n_L.

use super::{NetworkSums, RowSums, carried_log_scales, mean_se};
use crate::linalg::condition_number;
use crate::spec::{Parametrisation, RunSpec};

/// What the empirical NTK of one network is made of: the B x B Gram
/// matrices (row-major) of x_l for rows l = 0..=L, on the stored scales
/// (the forward renormalisations), and of delta_l = df/dh_l for layers
/// l = 1..=L (index l - 1), where f = w^T x_L / sqrt(n_L) is the readout,
/// on the scale exp(delta_log_scale[l - 1]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NtkSums {
    pub x: Vec<Vec<f64>>,
    pub delta: Vec<Vec<f64>>,
    pub delta_log_scale: Vec<f64>,
}

impl NtkSums {
    /// The sums of a GPU engine's NTK pass: its backward pass's Gram
    /// matrices (x_{l-1}, delta_l) of layers 1..=L, X_L^T X_L, and delta's
    /// scales: the backward rows' renormalisations carried down from the top
    /// (as `network_results` carries them for g) and the readout's
    /// 1 / sqrt(n_L), which the engines leave out of w.
    pub fn from_backward(
        grams: Vec<(Vec<f64>, Vec<f64>)>,
        top_x: Vec<f64>,
        back: &[RowSums],
        n_top: usize,
    ) -> NtkSums {
        let depth = grams.len();
        let down = carried_log_scales(back.iter().rev().map(|b| b.renorm[0]));
        let readout = -0.5 * (n_top as f64).ln();
        let (mut x, delta): (Vec<_>, Vec<_>) = grams.into_iter().unzip();
        x.push(top_x);
        NtkSums {
            x,
            delta,
            delta_log_scale: (1..=depth).map(|l| readout + down[depth - l]).collect(),
        }
    }
}

/// What the empirical NTK of one network through an architecture file is
/// made of (the block engines): each row's term of Theta (the parameters of
/// block l's layers, at index l - 1; B x B, row-major, at the true scale,
/// counted as the run's parametrisation says), and the Gram matrices of
/// x_L and x_0 at their true scales.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NtkTerms {
    pub terms: Vec<Vec<f64>>,
    pub top_x: Vec<f64>,
    pub input_x: Vec<f64>,
    pub n_top: usize,
}

impl NtkTerms {
    /// The terms of a gram run through a file of dense and normalisation
    /// layers (vectors; no batch-norm). `sums` is as
    /// `NtkSums::from_backward` made it, except at a normalisation l: with
    /// a gain and bias, x[l - 1] holds the Gram matrix of the gains'
    /// gradients delta_l * y_l (the bias's is delta's own), and both are
    /// empty without. `input_x`: X_0^T X_0 as stored; `forward_renorms`:
    /// the factors the engine applied to each forward row.
    pub fn from_gram_file(
        spec: &RunSpec,
        sums: &NtkSums,
        input_x: &[f64],
        forward_renorms: impl Iterator<Item = f64>,
    ) -> NtkTerms {
        use crate::model::arch::LayerKind;
        let run = spec.arch.as_ref().expect("a file's run");
        let param = spec.probes.ntk.expect("an NTK run");
        let b = spec.batch;
        let log_t = carried_log_scales(forward_renorms);
        let true_x = |l: usize, x: &[f64]| -> Vec<f64> {
            let scale = (2.0 * log_t[l]).exp();
            x.iter().map(|v| v * scale).collect()
        };
        let depth = sums.delta.len();
        let terms = (1..=depth)
            .map(|l| {
                let layer = run.arch.blocks[l - 1].layers()[0];
                let delta_scale = (2.0 * sums.delta_log_scale[l - 1]).exp();
                let (x, delta) = (&sums.x[l - 1], &sums.delta[l - 1]);
                match layer.kind {
                    LayerKind::Norm { affine: false, .. } => vec![0.0; b * b],
                    LayerKind::Norm { kind, .. } => {
                        // gamma^a . gamma^b + beta^a . beta^b
                        let (c_gain, c_bias) = affine_coefficients(kind);
                        x.iter()
                            .zip(delta)
                            .map(|(g, d)| delta_scale * (c_gain * g + c_bias * d))
                            .collect()
                    }
                    _ => {
                        // (d^a . d^b)(v x^a . x^b + sb)
                        let (c_w, c_b) = layer_coefficients(layer, l, param, true);
                        true_x(l - 1, x)
                            .iter()
                            .zip(delta)
                            .map(|(x, d)| delta_scale * d * (c_w * x + c_b))
                            .collect()
                    }
                }
            })
            .collect();
        NtkTerms {
            terms,
            top_x: true_x(depth, &sums.x[depth]),
            input_x: true_x(0, input_x),
            n_top: spec.net.widths[depth],
        }
    }
}

/// How Theta counts a weight layer's parameters: the factors of its weight
/// gradients' and bias gradients' dot products, (v, sb) in the NTK
/// parametrisation (W = sqrt(v) omega, b = sqrt(sb) beta), (1, [sb > 0]) in
/// the standard one; `bias`: whether the layer's bias enters its output at
/// all (a highway gate's does not).
pub fn layer_coefficients(
    layer: &crate::model::arch::Layer,
    number: usize,
    param: Parametrisation,
    bias: bool,
) -> (f64, f64) {
    let (v, sb) = (layer.draw_law(number).variance, layer.bias_law().variance);
    let sb = if bias { sb } else { 0.0 };
    match param {
        Parametrisation::Ntk => (v, sb),
        Parametrisation::Standard => (1.0, if sb > 0.0 { 1.0 } else { 0.0 }),
    }
}

/// A normalisation's affine gain and bias (1 and 0 at initialisation) are
/// counted as themselves in either parametrisation (neural-tangents'
/// normalisations have none to scale): the factors of the gain's and the
/// bias's gradient dot products; rms-norm has a gain only, as PyTorch's.
pub fn affine_coefficients(kind: crate::model::arch::NormKind) -> (f64, f64) {
    match kind {
        crate::model::arch::NormKind::RmsNorm => (1.0, 0.0),
        _ => (1.0, 1.0),
    }
}

/// One network's NTK.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NetworkNtk {
    /// Theta, B x B row-major.
    pub kernel: Vec<f64>,
    /// Layer l's mean over the batch of C_l(a, a), at index l - 1.
    pub layer_diag: Vec<f64>,
    /// Layer l's mean over the pairs of C_l(a, b) / sqrt(C_l(a, a) C_l(b, b)).
    pub layer_c: Vec<f64>,
    /// The mean over the batch of Theta(a, a).
    pub diag: f64,
    /// The mean over the pairs of Theta's correlation.
    pub c: f64,
    /// lambda_max / lambda_min of Theta (infinite where lambda_min is 0 to
    /// rounding).
    pub cond: f64,
    /// The same for K = X_L^T X_L / n_L.
    pub nngp_cond: f64,
    /// x_0^a . x_0^b, B x B: the inputs, for the theory of the batch kernel.
    pub input_gram: Vec<f64>,
}

/// The mean over the batch of m(a, a), and the mean over the pairs
/// (2k, 2k + 1) of m's correlation.
fn diag_and_pair_correlation(m: &[f64], b: usize) -> (f64, f64) {
    let diag = (0..b).map(|a| m[a * b + a]).sum::<f64>() / b as f64;
    let c = (0..b / 2)
        .map(|k| {
            let (a, z) = (2 * k, 2 * k + 1);
            m[a * b + z] / (m[a * b + a] * m[z * b + z]).sqrt()
        })
        .sum::<f64>()
        / (b / 2) as f64;
    (diag, c)
}

/// The NTK of one network, where the engine measured it (--ntk).
pub fn network_ntk(spec: &RunSpec, sums: &NetworkSums) -> Option<NetworkNtk> {
    let param = spec.probes.ntk?;
    if let Some(t) = &sums.ntk_terms {
        return Some(terms_ntk(t, param, spec.batch));
    }
    let ntk = sums.ntk.as_ref()?;
    let net = &spec.net;
    let (b, depth) = (spec.batch, net.depth());
    let log_t = carried_log_scales(sums.forward.iter().map(|s| s.renorm));
    let true_x = |l: usize| -> Vec<f64> {
        let scale = (2.0 * log_t[l]).exp();
        ntk.x[l].iter().map(|v| v * scale).collect()
    };
    let n_top = net.widths[depth] as f64;
    let nngp: Vec<f64> = true_x(depth).iter().map(|v| v / n_top).collect();
    // the readout's own term: its parameters are w (ntk) or w / sqrt(n_L)
    let mut kernel = match param {
        Parametrisation::Ntk => nngp.clone(),
        Parametrisation::Standard => true_x(depth),
    };
    let (mut layer_diag, mut layer_c) = (Vec::with_capacity(depth), Vec::with_capacity(depth));
    for l in 1..=depth {
        let gx = true_x(l - 1);
        let delta_scale = (2.0 * ntk.delta_log_scale[l - 1]).exp();
        let (v, sb) = (net.weight_law(l).variance, net.bias_law(l).variance);
        let contribution: Vec<f64> = gx
            .iter()
            .zip(&ntk.delta[l - 1])
            .map(|(x, d)| {
                let params = match param {
                    Parametrisation::Ntk => v * x + sb,
                    Parametrisation::Standard => x + if sb > 0.0 { 1.0 } else { 0.0 },
                };
                d * delta_scale * params
            })
            .collect();
        let (diag, c) = diag_and_pair_correlation(&contribution, b);
        layer_diag.push(diag);
        layer_c.push(c);
        for (k, c) in kernel.iter_mut().zip(&contribution) {
            *k += c;
        }
    }
    Some(assemble(kernel, &nngp, layer_diag, layer_c, true_x(0), b))
}

/// The NTK of one network from an architecture's terms: the readout's term
/// plus every row's.
fn terms_ntk(t: &NtkTerms, param: Parametrisation, b: usize) -> NetworkNtk {
    let nngp: Vec<f64> = t.top_x.iter().map(|v| v / t.n_top as f64).collect();
    let mut kernel = match param {
        Parametrisation::Ntk => nngp.clone(),
        Parametrisation::Standard => t.top_x.clone(),
    };
    let (mut layer_diag, mut layer_c) = (Vec::new(), Vec::new());
    for term in &t.terms {
        let (diag, c) = diag_and_pair_correlation(term, b);
        layer_diag.push(diag);
        layer_c.push(c);
        for (k, c) in kernel.iter_mut().zip(term) {
            *k += c;
        }
    }
    assemble(kernel, &nngp, layer_diag, layer_c, t.input_x.clone(), b)
}

/// The summary quantities of a kernel Theta and its NNGP kernel K.
fn assemble(
    kernel: Vec<f64>,
    nngp: &[f64],
    layer_diag: Vec<f64>,
    layer_c: Vec<f64>,
    input_gram: Vec<f64>,
    b: usize,
) -> NetworkNtk {
    let (diag, c) = diag_and_pair_correlation(&kernel, b);
    NetworkNtk {
        cond: condition_number(&kernel, b),
        nngp_cond: condition_number(nngp, b),
        kernel,
        layer_diag,
        layer_c,
        diag,
        c,
        input_gram,
    }
}

/// The NTK across networks: (mean, standard error) of each quantity.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NtkSummary {
    /// Per layer l at index l - 1: `ntk_layer` and `ntk_layer_c`.
    pub layer_diag: Vec<(f64, f64)>,
    pub layer_c: Vec<(f64, f64)>,
    pub diag: (f64, f64),
    pub c: (f64, f64),
    pub cond: (f64, f64),
    pub nngp_cond: (f64, f64),
}

impl NtkSummary {
    pub fn of(networks: &[NetworkNtk]) -> NtkSummary {
        let each = |f: &dyn Fn(&NetworkNtk) -> f64| {
            mean_se(networks.iter().map(f).collect::<Vec<_>>().into_iter())
        };
        let depth = networks[0].layer_diag.len();
        NtkSummary {
            layer_diag: (0..depth).map(|l| each(&|n| n.layer_diag[l])).collect(),
            layer_c: (0..depth).map(|l| each(&|n| n.layer_c[l])).collect(),
            diag: each(&|n| n.diag),
            c: each(&|n| n.c),
            cond: each(&|n| n.cond),
            nngp_cond: each(&|n| n.nngp_cond),
        }
    }
}
