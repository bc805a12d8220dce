//! Which runs the gram engine can do (unsupported), what each of its layers
//! does (GramLayer: a Gaussian or orthogonal linear map, or a normalisation
//! of the rows it holds), and the settings it reads from the environment.

use super::*;
use crate::model::activation::Activation;
use crate::model::arch::{Block, LayerKind, NormKind, Shape};

use crate::model::init::WeightLaw;

/// What layer l of a gram run does to x_{l-1}.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum LayerStep {
    /// row 0: the inputs themselves
    Input,
    /// h = W x + b, W drawn from `weight` (normal or orthogonal), b from `bias`
    Linear { weight: WeightLaw, bias: WeightLaw },
    /// h = norm(x) over each input's units (layer-norm, rms-norm) or over
    /// the batch per unit (batch-norm): it acts on the rows the engine holds,
    /// so the next layer's conditioning on X^T X stays exact; `affine`:
    /// whether it has a gain and bias (1 and 0 at init: the forward pass
    /// ignores them, the NTK counts their gradients)
    Norm {
        kind: NormKind,
        eps: f64,
        affine: bool,
    },
}

/// Layer l: its step and the activation after it (index 0: the input row,
/// `LayerStep::Input`, its activation the first layer's, never applied).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct GramLayer {
    pub(super) step: LayerStep,
    pub(super) act: Activation,
}

impl GramLayer {
    pub(super) fn is_norm(&self) -> bool {
        matches!(self.step, LayerStep::Norm { .. })
    }
}

/// The layers of `spec` as the gram engine runs them, or why it cannot: a
/// plain stack, or an architecture file of dense and normalisation layers
/// on vector inputs.
pub(super) fn gram_layers(spec: &RunSpec) -> std::result::Result<Vec<GramLayer>, String> {
    let net = &spec.net;
    let input = GramLayer {
        step: LayerStep::Input,
        act: net.act,
    };
    let Some(run) = &spec.arch else {
        let linear = |l: usize| GramLayer {
            step: LayerStep::Linear {
                weight: net.weight_law(l),
                bias: net.bias_law(l),
            },
            act: net.act,
        };
        return Ok(std::iter::once(input)
            .chain((1..=net.depth()).map(linear))
            .collect());
    };
    if run.mean_preserving {
        return Err(
            "the mean-preserving bias (--bias mean-preserving) runs on the block engine".into(),
        );
    }
    if run.spp {
        return Err("--spp's per-channel sums are the block engine's".into());
    }
    let arch = &run.arch;
    if let Shape::Image(..) = arch.input {
        return Err("image inputs (convolutions, pooling) run on the block engine".into());
    }
    let mut layers = vec![GramLayer {
        act: arch.blocks[0].layers()[0].act,
        ..input
    }];
    for (i, block) in arch.blocks.iter().enumerate() {
        let l = i + 1;
        let Block::Layer(layer) = block else {
            return Err(format!(
                "block {l} is a residual or highway block: those run on the block engine"
            ));
        };
        let step = match layer.kind {
            LayerKind::Dense { .. } if layer.standardise.is_some() => {
                return Err(format!(
                    "layer {l}'s weights are standardised: each row's mean and norm are then fixed, so W X has no Gaussian law"
                ));
            }
            LayerKind::Dense { .. } => LayerStep::Linear {
                weight: layer.weight_law(l),
                bias: layer.bias_law(),
            },
            LayerKind::Norm { kind, eps, affine } => LayerStep::Norm { kind, eps, affine },
            _ => {
                return Err(format!(
                    "layer {l} is not a dense or normalisation layer: it runs on the block engine"
                ));
            }
        };
        layers.push(GramLayer {
            step,
            act: layer.act,
        });
    }
    Ok(layers)
}

pub(super) fn has_orthogonal_layers(spec: &RunSpec) -> bool {
    gram_layers(spec).is_ok_and(|layers| {
        layers.iter().any(|g| {
            matches!(g.step, LayerStep::Linear { weight, .. } if weight.dist == Dist::Orthogonal)
        })
    })
}

/// Why the gram engine cannot run `spec` (None: it can).
pub fn unsupported(spec: &RunSpec) -> Option<String> {
    if let Some(run) = &spec.arch
        && spec.probes.ntk.is_some()
        && run.arch.has_batch_norm()
    {
        return Some(
            "--ntk through a batch-norm runs on the block engine: each output depends on the whole batch, so its gradient needs B backward passes of B rows".into(),
        );
    }
    let layers = match gram_layers(spec) {
        Ok(layers) => layers,
        Err(why) => return Some(why),
    };
    let net = &spec.net;
    for (l, layer) in layers.iter().enumerate().skip(1) {
        let LayerStep::Linear { weight: law, .. } = layer.step else {
            continue;
        };
        match law.dist {
            Dist::Normal => {}
            Dist::Orthogonal => {
                let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
                if n_in != n_out {
                    return Some(format!(
                        "orthogonal layer {l} is {n_out} x {n_in}: only square orthogonal layers are supported"
                    ));
                }
                let k = if spec.probes.jacobian { 2 } else { 1 } * spec.batch;
                if n_in < 4 * k {
                    return Some(format!(
                        "orthogonal layers need width >= 4 B, 8 B with --jacobian (width {n_in}, batch {}): below 4 K (K = B columns, 2 B with the tangents) the backward frame of span(X)^perp comes from a nearly singular Wishart matrix and the f32 Gram matrices lose the isometry",
                        spec.batch
                    ));
                }
            }
            Dist::Uniform | Dist::TruncatedNormal { .. } => {
                let scheme = match &spec.arch {
                    Some(run) => run.arch.blocks[l - 1].layers()[0].init.scheme.name(),
                    None => net.init.scheme.name(),
                };
                return Some(format!(
                    "layer {l}'s weights are {} (init {scheme}), not Gaussian: W X has no closed-form law",
                    law.dist.name(),
                ));
            }
        }
    }
    None
}

/// Test-only: VARPROP_TEST_GRAM_CUTOFF=eps cuts the forward pass's
/// eigenvalues below K eps lambda_max, as the engine did (with eps = eps_f32)
/// before issue 12, so that a test can show `check` catching the collapse
/// of deep correlations this causes.
pub(super) fn legacy_cutoff() -> Option<f64> {
    static CUTOFF: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *CUTOFF.get_or_init(|| {
        std::env::var("VARPROP_TEST_GRAM_CUTOFF")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}
