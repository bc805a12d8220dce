//! The NTK through architecture files against central finite differences
//! of the network's output f(x) = w^T x_L / sqrt(n_L) with respect to every
//! weight, bias, normalisation gain and bias, and readout weight, summed
//! over parameters: Theta(a, b) = sum_theta c_theta df_a/dtheta df_b/dtheta
//! with c_theta the parametrisation's factor (ntk: v for weights, sb for
//! biases; standard: 1, and 1 for biases where sb > 0; 1 for gains and
//! norm biases in both; the readout's w in ntk, w / sqrt(n_L) in standard).
//! The forward map
//! here is written out separately from the engine's (the gains and biases
//! of the normalisations are explicit parameters of it).

use super::super::block_steps::*;
use crate::config::settings::{NetworkSettings, RunSettings};
use crate::model::arch::{Block, Layer, LayerKind, NormKind};
use crate::model::rng::{Stream, normal_entry};
use crate::sim::plan::Program;
use crate::spec::{Parametrisation, RunSpec};

fn spec_of(toml: &str, name: &str, param: &str, batch: usize) -> RunSpec {
    let path = std::env::temp_dir().join(format!("varprop-ntk-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, toml).unwrap();
    RunSettings {
        net: NetworkSettings {
            arch: Some(path.to_string_lossy().into_owned()),
            q0: Some(1.2),
            c0: Some(0.3),
            ..Default::default()
        },
        batch: Some(batch),
        networks: Some(1),
        seed: Some(5),
        ntk: Some(true),
        parametrisation: Some(param.into()),
        ..Default::default()
    }
    .resolve(1)
    .unwrap()
}

/// Every parameter of network 0: the drawn weights and biases per layer (a
/// scale layer's factor from the program), and a gain and bias per
/// normalisation parameter (per unit of a vector, per channel of an image).
struct Params {
    weights: Vec<Weights>,
    /// a standardised layer's raw draws V (its W is standardised from them here)
    raw: Vec<Option<Vec<f64>>>,
    gains: Vec<(Vec<f64>, Vec<f64>)>,
    readout: Vec<f64>,
}

fn affine_len(layer: &Layer) -> usize {
    layer.output.channels()
}

fn params(spec: &RunSpec, program: &Program) -> Params {
    let arch = program.arch;
    let layers: Vec<&Layer> = arch.blocks.iter().flat_map(|b| b.layers()).collect();
    let mut weights = Vec::new();
    let mut gains = Vec::new();
    let mut raw = Vec::new();
    for (m, layer) in layers.iter().enumerate() {
        let mut wt = draw_weights(spec, 0, m + 1, layer);
        if let LayerKind::Scale { .. } = layer.kind {
            wt.w[0] = program.factors[m];
        }
        weights.push(wt);
        // the same draws before standardisation: the layer without it (and
        // without Fixup's scale, which a standardised layer's draws leave out)
        raw.push(layer.standardise.map(|_| {
            let plain = Layer {
                standardise: None,
                scale: 1.0,
                ..(*layer).clone()
            };
            draw_weights(spec, 0, m + 1, &plain).w
        }));
        let p = affine_len(layer);
        gains.push((vec![1.0; p], vec![0.0; p]));
    }
    let depth = arch.depth();
    let n_top = arch.units(depth);
    Params {
        weights,
        raw,
        gains,
        readout: (0..n_top)
            .map(|i| normal_entry(spec.seed, Stream::Readout, 0, depth, 0, i))
            .collect(),
    }
}

/// A layer's pre-activation over the batch, with a normalisation's gain and bias.
fn pre(layer: &Layer, p: &Params, m: usize, x: &[Row]) -> Vec<Row> {
    let standardised = p.raw[m].as_ref().map(|v| {
        let per_row = layer.fans().0;
        let mut w = v.clone();
        let gain = layer.standardise.unwrap().gain(per_row) * layer.scale;
        standardise_rows(&mut w, per_row, gain);
        Weights {
            w,
            b: p.weights[m].b.clone(),
            ..Default::default()
        }
    });
    let (mut h, _) = forward_rows(
        layer,
        standardised.as_ref().unwrap_or(&p.weights[m]),
        x,
        true,
    );
    if let LayerKind::Norm { .. } = layer.kind {
        let (gain, bias) = &p.gains[m];
        let per = layer.output.units() / gain.len();
        for row in h.iter_mut() {
            for (i, v) in row.iter_mut().enumerate() {
                *v = gain[i / per] * *v + bias[i / per];
            }
        }
    }
    h
}

/// f(x_a) for every input of the batch (a batch-norm would couple them).
fn outputs(program: &Program, p: &Params, x0: &[Row]) -> Vec<f64> {
    let arch = program.arch;
    let mut x = x0.to_vec();
    let mut m = 0;
    for block in &arch.blocks {
        x = match block {
            Block::Layer(layer) => {
                let h = pre(layer, p, m, &x);
                post_activation(layer, &h, program.shifts[m])
            }
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            } => {
                let project = |z: &[Row]| pre(shortcut.as_ref().unwrap(), p, m + branch.len(), z);
                let mut s = match shortcut {
                    Some(_) if *shared == 0 => Some(project(&x)),
                    Some(_) => None,
                    None => Some(x.clone()),
                };
                let mut f = x.clone();
                for (i, layer) in branch.iter().enumerate() {
                    f = post_activation(layer, &pre(layer, p, m + i, &f), program.shifts[m + i]);
                    if shortcut.is_some() && i + 1 == *shared {
                        s = Some(project(&f));
                    }
                }
                s.unwrap()
                    .iter()
                    .zip(&f)
                    .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u + alpha * v).collect())
                    .collect()
            }
            Block::Highway {
                transform,
                gate,
                gate_bias,
            } => x
                .iter()
                .map(|r| {
                    let hh = apply(transform, &p.weights[m], r, true);
                    let g = apply(gate, &p.weights[m + 1], r, false);
                    (0..r.len())
                        .map(|i| {
                            let t = sigmoid(g[i] + gate_bias);
                            t * transform.act.value(hh[i]) + (1.0 - t) * r[i]
                        })
                        .collect()
                })
                .collect(),
        };
        m += block.layers().len();
    }
    let n_top = p.readout.len() as f64;
    x.iter()
        .map(|r| r.iter().zip(&p.readout).map(|(a, w)| a * w).sum::<f64>() / n_top.sqrt())
        .collect()
}

/// Theta by central differences over every parameter.
fn finite_difference_kernel(spec: &RunSpec, program: &Program) -> Vec<f64> {
    let param = spec.probes.ntk.unwrap();
    let arch = program.arch;
    let n0 = arch.input.units();
    let x0: Vec<Row> = crate::sim::cpu::dense::inputs(spec, 0)
        .chunks(n0)
        .map(|c| c.to_vec())
        .collect();
    let mut p = params(spec, program);
    let eps = 1e-6;
    let b = spec.batch;
    let mut theta = vec![0.0; b * b];
    let mut add = |p: &mut Params, get: &dyn Fn(&mut Params) -> &mut f64, factor: f64| {
        if factor == 0.0 {
            return;
        }
        let v = *get(p);
        *get(p) = v + eps;
        let up = outputs(program, p, &x0);
        *get(p) = v - eps;
        let down = outputs(program, p, &x0);
        *get(p) = v;
        let g: Vec<f64> = up
            .iter()
            .zip(&down)
            .map(|(u, d)| (u - d) / (2.0 * eps))
            .collect();
        for i in 0..b {
            for j in 0..b {
                theta[i * b + j] += factor * g[i] * g[j];
            }
        }
    };
    let mut m = 0;
    for block in &arch.blocks {
        for layer in block.layers() {
            let number = m + 1;
            let (v, sb) = (layer.draw_law(number).variance, layer.bias_law().variance);
            let (fw, fb) = match param {
                Parametrisation::Ntk => (v, sb),
                Parametrisation::Standard => (1.0, if sb > 0.0 { 1.0 } else { 0.0 }),
            };
            if p.raw[m].is_some() {
                // the parameters are the raw draws
                for k in 0..p.weights[m].w.len() {
                    add(
                        &mut p,
                        &|p: &mut Params| &mut p.raw[m].as_mut().unwrap()[k],
                        fw,
                    );
                }
            } else if layer.has_weights() {
                for k in 0..p.weights[m].w.len() {
                    add(&mut p, &|p: &mut Params| &mut p.weights[m].w[k], fw);
                }
            }
            if layer.has_weights() {
                // (a highway gate's bias is not in its output: its derivatives are 0)
                for k in 0..p.weights[m].b.len() {
                    add(&mut p, &|p: &mut Params| &mut p.weights[m].b[k], fb);
                }
            }
            if let LayerKind::Norm {
                kind, affine: true, ..
            } = layer.kind
            {
                let shift = if kind == NormKind::RmsNorm { 0.0 } else { 1.0 };
                for k in 0..p.gains[m].0.len() {
                    add(&mut p, &|p: &mut Params| &mut p.gains[m].0[k], 1.0);
                    add(&mut p, &|p: &mut Params| &mut p.gains[m].1[k], shift);
                }
            }
            m += 1;
        }
    }
    let n_top = p.readout.len() as f64;
    let readout = match param {
        Parametrisation::Ntk => 1.0,
        // d f / d(w_i / sqrt(n_L)) = sqrt(n_L) d f / d w_i
        Parametrisation::Standard => n_top,
    };
    for k in 0..p.readout.len() {
        add(&mut p, &|p: &mut Params| &mut p.readout[k], readout);
    }
    theta
}

/// Checks both parametrisations; whether the engine renormalised the stream.
fn check(toml: &str, name: &str) -> bool {
    let mut renormalised = false;
    for param in ["ntk", "standard"] {
        let spec = spec_of(toml, name, param, 4);
        let run = spec.arch.as_ref().unwrap();
        let program = Program::new(&run.arch, spec.net.q0, spec.net.c0, run.mean_preserving);
        renormalised = program.renormalise;
        let sums = crate::sim::cpu::blocks::run_network(&spec, &program, 0, None);
        let ntk = crate::sim::stats::ntk::network_ntk(&spec, &sums).unwrap();
        let fd = finite_difference_kernel(&spec, &program);
        let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (k, (a, e)) in ntk.kernel.iter().zip(&fd).enumerate() {
            assert!(
                (a - e).abs() <= 1e-6 * scale,
                "{name} ({param}): Theta[{k}] = {a}, finite differences {e}"
            );
        }
        // the per-row terms and the readout's add up to the kernel
        let diag: f64 = ntk.layer_diag.iter().sum();
        assert!(
            diag < ntk.diag * (1.0 + 1e-12),
            "{name}: {diag} vs {}",
            ntk.diag
        );
    }
    renormalised
}

#[test]
fn convolutions_strides_norms_pools_and_projections_match_finite_differences() {
    check(
        r#"
input = { channels = 2, size = 6 }
[[block]]
type = "conv"
channels = 3
kernel = 3
act = "tanh"
init = "custom"
sigma-w2 = 1.5
sigma-b2 = 0.2
[[block]]
type = "conv"
channels = 3
kernel = 3
stride = 2
padding = "zero"
act = "erf"
init = "custom"
sigma-w2 = 1.3
sigma-b2 = 0.1
[[block]]
type = "layer-norm"
act = "tanh"
[[block]]
type = "residual"
alpha = 0.7
shared = 1
shortcut = { kernel = 1, channels = 4 }
  [[block.layer]]
  type = "rms-norm"
  act = "tanh"
  [[block.layer]]
  type = "conv"
  channels = 4
  kernel = 3
  act = "tanh"
  init = "xavier-normal"
[[block]]
type = "avg-pool"
kernel = 2
[[block]]
type = "dense"
width = 3
act = "tanh"
init = "custom"
sigma-w2 = 1.1
sigma-b2 = 0.3
"#,
        "conv",
    );
}

#[test]
fn dense_norms_and_highway_blocks_match_finite_differences() {
    check(
        r#"
input = 5
[[block]]
type = "dense"
width = 6
act = "tanh"
init = "custom"
sigma-w2 = 1.4
sigma-b2 = 0.2
[[block]]
type = "rms-norm"
act = "erf"
[[block]]
type = "highway"
act = "tanh"
init = "lecun-normal"
gate-bias = -1.0
[[block]]
type = "layer-norm"
affine = false
act = "tanh"
[[block]]
type = "layer-norm"
[[block]]
type = "dense"
width = 4
act = "erf"
init = "xavier-normal"
"#,
        "dense",
    );
}

#[test]
fn transposed_convolutions_scales_and_global_pooling_match_finite_differences() {
    check(
        r#"
input = { channels = 2, size = 3 }
[[block]]
type = "conv-transpose"
channels = 2
kernel = 3
stride = 2
act = "tanh"
init = "custom"
sigma-w2 = 2.0
sigma-b2 = 0.1
[[block]]
type = "scale"
factor = 0.6
act = "tanh"
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 3
act = "identity"
init = "lecun-normal"
"#,
        "transpose",
    );
}

/// ReLU without biases: the engine renormalises the stream after every
/// block, and the NTK undoes it.
#[test]
fn a_renormalised_relu_resnet_matches_finite_differences() {
    let renormalised = check(
        r#"
input = { channels = 2, size = 4 }
[[block]]
type = "conv"
channels = 3
kernel = 3
act = "relu"
init = "custom"
sigma-w2 = 9.0
[[block]]
type = "residual"
alpha = 1.5
repeat = 2
  [[block.layer]]
  type = "conv"
  channels = 3
  kernel = 3
  act = "relu"
  init = "custom"
  sigma-w2 = 8.0
[[block]]
type = "dense"
width = 3
act = "relu"
init = "he-normal"
"#,
        "relu",
    );
    assert!(renormalised);
}

/// Weight standardisation (plain and scaled, dense and conv, with Fixup's
/// scale): the gradient with respect to the raw draws, through the
/// standardisation's Jacobian.
#[test]
fn standardised_layers_match_finite_differences() {
    check(
        r#"
input = { channels = 3, size = 4 }
[[block]]
type = "conv"
channels = 4
kernel = 3
act = "relu"
init = "he-normal"
weight-standardisation = "scaled"
[[block]]
type = "residual"
alpha = 0.3
  [[block.layer]]
  type = "conv"
  channels = 4
  kernel = 3
  act = "tanh"
  init = "custom"
  sigma-w2 = 1.0
  sigma-b2 = 0.1
  weight-standardisation = "plain"
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 3
act = "tanh"
init = "lecun-normal"
weight-standardisation = "scaled"
gamma = 1.3
"#,
        "standardised",
    );
}

/// Batch-norm couples the inputs: f_a depends on every input, and its
/// gradient has rows beside a's (images and vectors, with and without
/// affine, in a residual branch).
#[test]
fn batch_norm_matches_finite_differences() {
    check(
        r#"
input = { channels = 2, size = 4 }
[[block]]
type = "conv"
channels = 3
kernel = 3
act = "identity"
init = "custom"
sigma-w2 = 1.5
sigma-b2 = 0.2
[[block]]
type = "residual"
alpha = 0.8
  [[block.layer]]
  type = "batch-norm"
  act = "tanh"
  [[block.layer]]
  type = "conv"
  channels = 3
  kernel = 3
  act = "identity"
  init = "he-normal"
[[block]]
type = "batch-norm"
affine = false
act = "relu"
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 4
act = "identity"
init = "lecun-normal"
[[block]]
type = "batch-norm"
act = "tanh"
[[block]]
type = "dense"
width = 3
act = "tanh"
init = "lecun-normal"
"#,
        "batch-norm",
    );
}
