//! `type = "stage"`: a stage of residual blocks as ResNets build them, so
//! that a ResNet-V2-50-shaped network is a dozen lines. Keys: `blocks` (the
//! count), `channels` (the stage's width), `stride` (its first block's,
//! default 1), `bottleneck` (default true: 1x1, 3x3, 1x1 convolutions, the
//! middle a quarter as wide; false: two 3x3), `style`, `act` (default relu),
//! `padding`, the init keys (for every convolution), `eps` (batch-norm) and
//! `alpha`. The first block is a transition (a 1x1 projection shortcut of
//! the stage's stride) when the stride or the width changes; its shortcut
//! reads the pre-activation, as both styles do.
//!
//! `style = "bn-relu"` (pre-activation ResNet-V2, He et al. 2016): each
//! convolution after batch-norm and the activation; alpha 1.
//! `style = "nf"` (NF-ResNets, Brock, De and Smith 2021): the branch sees
//! act(x / beta), beta = sqrt(q) of x from the theory, every convolution has
//! scaled weight standardisation (`weight-standardisation = "none"` drops
//! it); alpha 0.2 unless given.

use super::*;

/// The residual blocks of the stage `b` that starts from `input`.
pub(super) fn stage(
    number: usize,
    b: &BlockFile,
    input: Shape,
    residual_count: usize,
    input_act: &Activation,
) -> Result<Vec<Block>> {
    for (key, present) in [
        ("width", b.width.is_some()),
        ("kernel", b.kernel.is_some()),
        ("layer", !b.layers.is_empty()),
        ("shortcut", b.shortcut.is_some()),
        ("shared", b.shared.is_some()),
        ("factor", b.factor.is_some()),
        ("gamma", b.gamma.is_some()),
        ("fan", b.fan.is_some()),
        ("affine", b.affine.is_some()),
        ("gate-bias", b.gate_bias.is_some()),
        ("gate-init", b.gate_init.is_some()),
    ] {
        if present {
            return Err(err(
                number,
                key,
                "does not apply to a stage (its blocks are built from blocks, channels, stride, bottleneck, style)",
            ));
        }
    }
    let nf = match b.style.as_deref().unwrap_or("bn-relu") {
        "bn-relu" => false,
        "nf" => true,
        other => {
            return Err(err(
                number,
                "style",
                format!(
                    "unknown '{other}'; accepted: bn-relu (pre-activation ResNet-V2), nf (NF-ResNet)"
                ),
            ));
        }
    };
    let count = match b.blocks {
        Some(n) if n >= 1 => n,
        _ => return Err(err(number, "blocks", "a stage needs blocks >= 1")),
    };
    let channels = match b.channels {
        Some(c) if c >= 1 => c,
        _ => return Err(err(number, "channels", "a stage needs channels >= 1")),
    };
    let bottleneck = b.bottleneck.unwrap_or(true);
    if bottleneck && channels % 4 != 0 {
        return Err(err(
            number,
            "channels",
            format!(
                "a bottleneck stage's width is a multiple of 4 (its middle is a quarter): got {channels}"
            ),
        ));
    }
    if !matches!(input, Shape::Image(..)) {
        return Err(err(number, "type", "a stage needs an image input"));
    }
    let ws = match (nf, b.weight_standardisation.as_deref()) {
        (true, None) => Some("scaled".to_string()),
        (_, Some("none")) | (false, None) => None,
        (_, Some(other)) => Some(other.to_string()),
    };
    if nf && b.eps.is_some() {
        return Err(err(
            number,
            "eps",
            "applies to style = \"bn-relu\" (batch-norm)",
        ));
    }
    let alpha = b.alpha.clone().or(if nf {
        Some(toml::Value::Float(0.2))
    } else {
        None
    });
    let act = b.act.clone().unwrap_or_else(|| "relu".into());
    let conv = |kernel: usize, channels: usize, stride: usize, act: &str| LayerFile {
        kind: Some("conv".into()),
        channels: Some(channels),
        kernel: Some(kernel),
        stride: (stride != 1).then_some(stride),
        padding: b.padding.clone(),
        act: Some(act.to_string()),
        alpha: b.leaky_alpha,
        weight_standardisation: ws.clone(),
        init: b.init.clone(),
        ..Default::default()
    };
    let norm = || LayerFile {
        kind: Some("batch-norm".into()),
        act: Some(act.clone()),
        alpha: b.leaky_alpha,
        eps: b.eps,
        ..Default::default()
    };
    let mut blocks = Vec::with_capacity(count);
    let mut shape = input;
    for i in 0..count {
        let stride = if i == 0 { b.stride.unwrap_or(1) } else { 1 };
        let Shape::Image(c_in, ..) = shape else {
            unreachable!("stages keep images")
        };
        let transition = stride != 1 || c_in != channels;
        let middle = if bottleneck { channels / 4 } else { channels };
        // the convolutions: (kernel, width, stride), the last without activation
        let convs: Vec<(usize, usize, usize)> = if bottleneck {
            vec![(1, middle, 1), (3, middle, stride), (1, channels, 1)]
        } else {
            vec![(3, channels, stride), (3, channels, 1)]
        };
        let mut layers = vec![if nf {
            LayerFile {
                kind: Some("scale".into()),
                factor: Some(toml::Value::String("1/sqrt(q)".into())),
                act: Some(act.clone()),
                alpha: b.leaky_alpha,
                ..Default::default()
            }
        } else {
            norm()
        }];
        for (j, &(k, c, s)) in convs.iter().enumerate() {
            let last = j + 1 == convs.len();
            if nf {
                layers.push(conv(k, c, s, if last { "identity" } else { &act }));
            } else {
                if j > 0 {
                    layers.push(norm());
                }
                layers.push(conv(k, c, s, "identity"));
            }
        }
        let shortcut = transition.then(|| conv(1, channels, stride, "identity"));
        let block_file = BlockFile {
            kind: "residual".into(),
            repeat: 1,
            alpha: alpha.clone(),
            layers,
            shared: shortcut.as_ref().map(|_| 1),
            shortcut,
            ..Default::default()
        };
        let made_by = if i == 0 {
            *input_act
        } else {
            Activation::Identity
        };
        let block = residual(number, &block_file, shape, residual_count, &made_by)?;
        shape = block.output();
        blocks.push(block);
    }
    Ok(blocks)
}
