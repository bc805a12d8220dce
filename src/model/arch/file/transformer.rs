//! `type = "transformer"`: a transformer block on a sequence, as residual
//! blocks and layers, so that a 12-block encoder is a few lines. Each block
//! is an attention sub-block and a position-wise MLP (dense to `mlp-width`,
//! default 4 d, with `act`, default relu; dense back to d), each added to the
//! residual stream with `alpha` (a number or "1/sqrt(L)", L the residual
//! branches of the file; default 1):
//!
//!   pre-LN  (`norm = "pre"`, the default; GPT-2, Xiong et al. 2020):
//!           x + alpha Attn(LN(x)), then x + alpha MLP(LN(x))
//!   post-LN (`norm = "post"`; Vaswani et al. 2017):
//!           LN(x + alpha Attn(x)), then LN(x + alpha MLP(x))
//!
//! The attention keys (heads, key-width, value-width, temperature, causal,
//! zero-queries) and the init keys (for every weight matrix) are the
//! attention layer's; `eps` is the layer-norms'. `blocks` repeats it.

use super::*;

/// The blocks of the transformer blocks `b` on the sequence `input`.
pub(super) fn transformer(
    number: usize,
    b: &BlockFile,
    input: Shape,
    residual_count: usize,
) -> Result<Vec<Block>> {
    for (key, present) in [
        ("width", b.width.is_some()),
        ("channels", b.channels.is_some()),
        ("kernel", b.kernel.is_some()),
        ("stride", b.stride.is_some()),
        ("padding", b.padding.is_some()),
        ("fan", b.fan.is_some()),
        ("shortcut", b.shortcut.is_some()),
        ("shared", b.shared.is_some()),
        ("layer", !b.layers.is_empty()),
        ("gate-bias", b.gate_bias.is_some()),
        ("gate-init", b.gate_init.is_some()),
        ("style", b.style.is_some()),
        ("bottleneck", b.bottleneck.is_some()),
        ("factor", b.factor.is_some()),
        ("weight-standardisation", b.weight_standardisation.is_some()),
        ("gamma", b.gamma.is_some()),
        ("affine", b.affine.is_some()),
    ] {
        if present {
            return Err(err(number, key, "does not apply to a transformer block"));
        }
    }
    let Shape::Sequence { width: d, .. } = input else {
        return Err(err(
            number,
            "type",
            "a transformer block needs a sequence input (input = { tokens = T, width = d })",
        ));
    };
    let pre = match b.norm.as_deref().unwrap_or("pre") {
        "pre" => true,
        "post" => false,
        other => {
            return Err(err(
                number,
                "norm",
                format!("unknown '{other}'; accepted: pre, post"),
            ));
        }
    };
    let count = match b.blocks {
        None => 1,
        Some(n) if n >= 1 => n,
        Some(_) => return Err(err(number, "blocks", "must be >= 1")),
    };
    let mlp_width = match b.mlp_width {
        None => 4 * d,
        Some(w) if w >= 1 => w,
        Some(_) => return Err(err(number, "mlp-width", "must be >= 1")),
    };
    let layer_norm = || LayerFile {
        kind: Some("layer-norm".into()),
        eps: b.eps,
        ..Default::default()
    };
    let attention = LayerFile {
        kind: Some("attention".into()),
        attention: b.attention.clone(),
        init: b.init.clone(),
        ..Default::default()
    };
    let dense = |width: usize, act: Option<String>| LayerFile {
        kind: Some("dense".into()),
        width: Some(width),
        act: Some(act.unwrap_or_else(|| "identity".into())),
        alpha: b.leaky_alpha,
        omega: b.omega,
        init: b.init.clone(),
        ..Default::default()
    };
    let act = Some(b.act.clone().unwrap_or_else(|| "relu".into()));
    let branches = [vec![attention], vec![dense(mlp_width, act), dense(d, None)]];
    let mut blocks = Vec::new();
    let mut shape = input;
    for _ in 0..count {
        for branch in &branches {
            let mut layers = branch.clone();
            if pre {
                layers.insert(0, layer_norm());
            }
            let block_file = BlockFile {
                kind: "residual".into(),
                repeat: 1,
                alpha: b.alpha.clone(),
                layers,
                ..Default::default()
            };
            let block = residual(
                number,
                &block_file,
                shape,
                residual_count,
                &Activation::Identity,
            )?;
            shape = block.output();
            blocks.push(block);
            if !pre {
                let norm = layer(number, &layer_norm(), shape, &Activation::Identity)?;
                shape = norm.output;
                blocks.push(Block::Layer(norm));
            }
        }
    }
    Ok(blocks)
}
