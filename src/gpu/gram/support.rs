//! Which runs the gram engine can do (unsupported), and the settings it
//! reads from the environment.

use super::*;

pub(super) fn has_orthogonal_layers(spec: &RunSpec) -> bool {
    (1..=spec.net.depth()).any(|l| spec.net.weight_law(l).dist == Dist::Orthogonal)
}

/// Why the gram engine cannot run `spec` (None: it can).
pub fn unsupported(spec: &RunSpec) -> Option<String> {
    if spec.arch.is_some() {
        return Some(
            "architecture files and the mean-preserving bias (--arch, --bias mean-preserving) run on the block engine".into(),
        );
    }
    let net = &spec.net;
    for l in 1..=net.depth() {
        let law = net.weight_law(l);
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
                return Some(format!(
                    "layer {l}'s weights are {} (init {}), not Gaussian: W X has no closed-form law",
                    law.dist.name(),
                    net.init.scheme.name()
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
