//! The architecture file: its TOML schema, parsed and validated into the
//! model of `super` (errors name the block, 1-based, and the key; shapes
//! must chain; repeats expand).

use serde::Deserialize;

use super::*;
use crate::error::{Error, Result};
use crate::model::init::InitFlags;

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    input: InputFile,
    #[serde(rename = "block")]
    blocks: Vec<BlockFile>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(untagged)]
enum InputFile {
    Units(usize),
    Image(ImageFile),
    Sequence(SequenceFile),
}

/// `input = { tokens = T, width = d }`: sequences of T tokens of d units
/// (`--tokens` changes T).
#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SequenceFile {
    tokens: usize,
    width: usize,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    channels: usize,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    height: Option<usize>,
    #[serde(default)]
    width: Option<usize>,
}

#[derive(Deserialize, serde::Serialize, Clone, Default)]
#[serde(rename_all = "kebab-case")]
struct LayerFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    width: Option<usize>,
    channels: Option<usize>,
    kernel: Option<usize>,
    stride: Option<usize>,
    padding: Option<String>,
    fan: Option<String>,
    act: Option<String>,
    alpha: Option<f64>,
    omega: Option<f64>,
    eps: Option<f64>,
    affine: Option<bool>,
    #[serde(alias = "ws")]
    weight_standardisation: Option<String>,
    gamma: Option<f64>,
    factor: Option<toml::Value>,
    #[serde(flatten)]
    attention: AttentionFile,
    #[serde(flatten)]
    init: InitFlags,
}

/// An attention layer's keys (`type = "attention"`).
#[derive(Deserialize, serde::Serialize, Clone, Default, PartialEq)]
#[serde(rename_all = "kebab-case")]
struct AttentionFile {
    heads: Option<usize>,
    #[serde(alias = "d-k")]
    key_width: Option<usize>,
    #[serde(alias = "d-v")]
    value_width: Option<usize>,
    temperature: Option<f64>,
    causal: Option<bool>,
    zero_queries: Option<bool>,
    identity_mix: Option<f64>,
    attention_mix: Option<f64>,
}

#[derive(Deserialize, serde::Serialize, Clone, Default)]
#[serde(rename_all = "kebab-case")]
struct BlockFile {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "one")]
    repeat: usize,
    // a plain layer's keys (also the highway's transform)
    width: Option<usize>,
    channels: Option<usize>,
    kernel: Option<usize>,
    stride: Option<usize>,
    padding: Option<String>,
    fan: Option<String>,
    act: Option<String>,
    #[serde(rename = "leaky-alpha", alias = "leaky_alpha")]
    leaky_alpha: Option<f64>,
    omega: Option<f64>,
    // normalisation layers
    eps: Option<f64>,
    affine: Option<bool>,
    // weight standardisation of a dense or conv layer
    #[serde(alias = "ws")]
    weight_standardisation: Option<String>,
    gamma: Option<f64>,
    // attention layers
    #[serde(flatten)]
    attention: AttentionFile,
    #[serde(flatten)]
    init: InitFlags,
    // residual
    alpha: Option<toml::Value>,
    #[serde(default, rename = "layer")]
    layers: Vec<LayerFile>,
    shortcut: Option<LayerFile>,
    shared: Option<usize>,
    factor: Option<toml::Value>,
    // highway
    #[serde(alias = "gate_bias")]
    gate_bias: Option<f64>,
    #[serde(alias = "gate_init")]
    gate_init: Option<String>,
    // stage (stage.rs)
    style: Option<String>,
    blocks: Option<usize>,
    bottleneck: Option<bool>,
    // transformer (transformer.rs)
    norm: Option<String>,
    mlp_width: Option<usize>,
}

fn one() -> usize {
    1
}

/// Errors name the block (1-based, as in the file) and the key.
fn err(block: usize, key: &str, message: impl Into<String>) -> Error {
    Error::invalid(format!("--arch block {block}, key '{key}'"), message)
}

impl BlockFile {
    fn layer_file(&self) -> LayerFile {
        LayerFile {
            kind: Some(self.kind.clone()),
            width: self.width,
            channels: self.channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding.clone(),
            fan: self.fan.clone(),
            act: self.act.clone(),
            alpha: self.leaky_alpha,
            omega: self.omega,
            eps: self.eps,
            affine: self.affine,
            weight_standardisation: self.weight_standardisation.clone(),
            gamma: self.gamma,
            factor: self.factor.clone(),
            attention: self.attention.clone(),
            init: self.init.clone(),
        }
    }
}

impl LayerFile {
    /// Which of the type-specific keys are set (act, leaky-alpha and omega
    /// apply to every layer).
    fn keys_set(&self) -> [(&'static str, bool); 13] {
        [
            ("width", self.width.is_some()),
            ("channels", self.channels.is_some()),
            ("kernel", self.kernel.is_some()),
            ("stride", self.stride.is_some()),
            ("padding", self.padding.is_some()),
            ("fan", self.fan.is_some()),
            ("init", self.init != InitFlags::default()),
            ("eps", self.eps.is_some()),
            ("affine", self.affine.is_some()),
            (
                "weight-standardisation",
                self.weight_standardisation.is_some(),
            ),
            ("gamma", self.gamma.is_some()),
            ("factor", self.factor.is_some()),
            ("heads", self.attention != AttentionFile::default()),
        ]
    }
}

/// Refuses every type-specific key of `f` but the `accepted` ones: a
/// weightless layer (normalisation, pooling, scale) would ignore them.
fn refuse_other_keys(
    block: usize,
    f: &LayerFile,
    kind_name: &str,
    accepted: &[&str],
) -> Result<()> {
    match f
        .keys_set()
        .iter()
        .find(|(key, set)| *set && !accepted.contains(key))
    {
        Some((key, _)) => Err(err(
            block,
            key,
            format!("does not apply to a {kind_name} layer"),
        )),
        None => Ok(()),
    }
}

/// A layer without weights (normalisation, pooling, scale) of `kind`, its
/// activation from `act` (identity unless given).
fn weightless_layer(
    block: usize,
    f: &LayerFile,
    kind: LayerKind,
    input: Shape,
    output: Shape,
) -> Result<Layer> {
    let act = Activation::parse(f.act.as_deref().unwrap_or("identity"), f.alpha, f.omega)
        .map_err(|e| retag(block, e))?;
    let mut init = InitSpec::resolve(&InitFlags::default(), &act).map_err(|e| retag(block, e))?;
    init.sigma_b2 = Some(0.0);
    Ok(Layer {
        kind,
        act,
        init,
        delta_orthogonal: false,
        scale: 1.0,
        standardise: None,
        input,
        output,
    })
}

/// The layer types of a block or of a residual branch's layer.
const LAYER_TYPES: &str = "dense, conv, conv-transpose, layer-norm, rms-norm, batch-norm, avg-pool, global-avg-pool, scale, attention";

/// A `scale` layer: y = factor x (a number, or "1/sqrt(q)": NF-ResNets'
/// 1/beta, from the analytic q of its input), then its activation.
fn scale_layer(block: usize, f: &LayerFile, input: Shape) -> Result<Layer> {
    refuse_other_keys(block, f, "scale", &["factor"])?;
    let accepted = "accepted: a finite number, or \"1/sqrt(q)\" (1/beta of NF-ResNets from the analytic q of the layer's input)";
    let factor = match &f.factor {
        None => {
            return Err(err(
                block,
                "factor",
                format!("is required for a scale layer; {accepted}"),
            ));
        }
        Some(toml::Value::Float(v)) if v.is_finite() => ScaleFactor::Value(*v),
        Some(toml::Value::Integer(v)) => ScaleFactor::Value(*v as f64),
        Some(toml::Value::String(s)) if s == "1/sqrt(q)" => ScaleFactor::InverseRootQ,
        Some(other) => {
            return Err(err(block, "factor", format!("got {other}; {accepted}")));
        }
    };
    weightless_layer(block, f, LayerKind::Scale { factor }, input, input)
}

/// Average pooling (`avg-pool`: kernel, stride [default: the kernel]) or
/// global average pooling over the whole image; `act` is identity unless
/// given.
fn pool_layer(block: usize, f: &LayerFile, global: bool, input: Shape) -> Result<Layer> {
    let kind_name = if global {
        "global-avg-pool"
    } else {
        "avg-pool"
    };
    let Shape::Image(c, h, w) = input else {
        return Err(err(
            block,
            "type",
            format!("a {kind_name} layer needs an image input"),
        ));
    };
    let accepted: &[&str] = if global { &[] } else { &["kernel", "stride"] };
    refuse_other_keys(block, f, kind_name, accepted)?;
    let (kh, kw, stride) = if global {
        (h, w, 1)
    } else {
        let kernel = match f.kernel {
            Some(k) if k >= 1 => k,
            Some(_) => return Err(err(block, "kernel", "must be >= 1")),
            None => return Err(err(block, "kernel", "is required for an avg-pool layer")),
        };
        if kernel > h || kernel > w {
            return Err(err(
                block,
                "kernel",
                format!("{kernel} is larger than the {h}x{w} image"),
            ));
        }
        let stride = f.stride.unwrap_or(kernel);
        if stride == 0 {
            return Err(err(block, "stride", "must be >= 1"));
        }
        (kernel, kernel, stride)
    };
    weightless_layer(
        block,
        f,
        LayerKind::AvgPool { kh, kw, stride },
        input,
        Shape::Image(c, (h - kh) / stride + 1, (w - kw) / stride + 1),
    )
}

/// A normalisation layer from its keys: `act` (identity unless given) and
/// `eps` (PyTorch's 1e-5); `affine` (the gain and bias, 1 and 0 at
/// initialisation; true unless given, as in PyTorch) changes no forward
/// value at initialisation, only what --ntk counts as parameters.
fn norm_layer(block: usize, f: &LayerFile, kind: NormKind, input: Shape) -> Result<Layer> {
    let kind_name = kind.name();
    refuse_other_keys(block, f, kind_name, &["eps", "affine"])?;
    let eps = f.eps.unwrap_or(NORM_EPS);
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(err(
            block,
            "eps",
            format!("must be a finite number >= 0 (got {eps})"),
        ));
    }
    let affine = f.affine.unwrap_or(true);
    weightless_layer(
        block,
        f,
        LayerKind::Norm { kind, eps, affine },
        input,
        input,
    )
}

fn norm_kind(name: &str) -> Option<NormKind> {
    match name {
        "layer-norm" => Some(NormKind::LayerNorm),
        "rms-norm" => Some(NormKind::RmsNorm),
        "batch-norm" => Some(NormKind::BatchNorm),
        _ => None,
    }
}

/// Builds one layer from its keys, checking them against `input`.
/// `input_act`: the activation that made the layer's input (identity for
/// the network's input and for sums), whose variance the default gamma of
/// scaled weight standardisation undoes.
fn layer(block: usize, f: &LayerFile, input: Shape, input_act: &Activation) -> Result<Layer> {
    let kind_name = f.kind.as_deref().unwrap_or("dense");
    if let Some(kind) = norm_kind(kind_name) {
        return norm_layer(block, f, kind, input);
    }
    if kind_name == "avg-pool" || kind_name == "global-avg-pool" {
        return pool_layer(block, f, kind_name == "global-avg-pool", input);
    }
    if kind_name == "scale" {
        return scale_layer(block, f, input);
    }
    if f.factor.is_some() {
        return Err(err(
            block,
            "factor",
            format!("applies to scale layers, not to a {kind_name} layer"),
        ));
    }
    for (key, present) in [("eps", f.eps.is_some()), ("affine", f.affine.is_some())] {
        if present {
            return Err(err(
                block,
                key,
                format!("applies to normalisation layers, not to a {kind_name} layer"),
            ));
        }
    }
    let a = &f.attention;
    let attention_keys = [
        ("heads", a.heads.is_some()),
        ("key-width", a.key_width.is_some()),
        ("value-width", a.value_width.is_some()),
        ("temperature", a.temperature.is_some()),
        ("causal", a.causal.is_some()),
        ("zero-queries", a.zero_queries.is_some()),
        ("identity-mix", a.identity_mix.is_some()),
        ("attention-mix", a.attention_mix.is_some()),
    ];
    if kind_name != "attention"
        && let Some((key, _)) = attention_keys.iter().find(|(_, set)| *set)
    {
        return Err(err(
            block,
            key,
            format!("applies to attention layers, not to a {kind_name} layer"),
        ));
    }
    let need = |v: Option<usize>, key: &str| -> Result<usize> {
        match v {
            Some(0) => Err(err(block, key, "must be >= 1")),
            Some(v) => Ok(v),
            None => Err(err(
                block,
                key,
                format!("is required for a {kind_name} layer"),
            )),
        }
    };
    let forbid = |present: bool, key: &str| -> Result<()> {
        if present {
            Err(err(
                block,
                key,
                format!("does not apply to a {kind_name} layer"),
            ))
        } else {
            Ok(())
        }
    };
    let (kind, output) = match kind_name {
        "dense" => {
            forbid(f.channels.is_some(), "channels")?;
            forbid(f.kernel.is_some(), "kernel")?;
            forbid(f.stride.is_some(), "stride")?;
            forbid(f.padding.is_some(), "padding")?;
            let width = need(f.width, "width")?;
            let output = match input {
                // every token alike
                Shape::Sequence { tokens, .. } => Shape::Sequence { tokens, width },
                _ => Shape::Vector(width),
            };
            (LayerKind::Dense { width }, output)
        }
        "attention" => {
            for (key, present) in [
                ("width", f.width.is_some()),
                ("channels", f.channels.is_some()),
                ("kernel", f.kernel.is_some()),
                ("stride", f.stride.is_some()),
                ("padding", f.padding.is_some()),
                ("fan", f.fan.is_some()),
            ] {
                forbid(present, key)?;
            }
            let Shape::Sequence { width: d, .. } = input else {
                return Err(err(
                    block,
                    "type",
                    "an attention layer needs a sequence input (input = { tokens = T, width = d })",
                ));
            };
            let heads = need(a.heads.or(Some(1)), "heads")?;
            if a.key_width.is_none() && d % heads != 0 {
                return Err(err(
                    block,
                    "heads",
                    format!(
                        "{heads} heads do not divide the width {d}: give key-width and value-width, or a divisor"
                    ),
                ));
            }
            let key_width = need(a.key_width.or(Some(d / heads)), "key-width")?;
            let value_width = need(a.value_width.or(Some(key_width)), "value-width")?;
            let temperature = a.temperature.unwrap_or(1.0 / (key_width as f64).sqrt());
            if !temperature.is_finite() || temperature < 0.0 {
                return Err(err(
                    block,
                    "temperature",
                    format!("must be a finite number >= 0 (got {temperature})"),
                ));
            }
            let finite = |v: Option<f64>, default: f64, key: &str| -> Result<f64> {
                match v.unwrap_or(default) {
                    v if v.is_finite() => Ok(v),
                    v => Err(err(
                        block,
                        key,
                        format!("must be a finite number (got {v})"),
                    )),
                }
            };
            let identity_mix = finite(a.identity_mix, 0.0, "identity-mix")?;
            let attention_mix = finite(a.attention_mix, 1.0, "attention-mix")?;
            let attention = Attention {
                heads,
                key_width,
                value_width,
                temperature,
                causal: a.causal.unwrap_or(false),
                zero_queries: a.zero_queries.unwrap_or(false),
                identity_mix,
                attention_mix,
            };
            (LayerKind::Attention(attention), input)
        }
        "conv" | "conv-transpose" => {
            forbid(f.width.is_some(), "width")?;
            let Shape::Image(_, h, w) = input else {
                return Err(err(
                    block,
                    "type",
                    format!(
                        "a {kind_name} layer needs an image input (channels, height, width), not a vector"
                    ),
                ));
            };
            let channels = need(f.channels, "channels")?;
            let kernel = need(f.kernel, "kernel")?;
            if kind_name == "conv" {
                forbid(f.fan.is_some(), "fan")?;
                let stride = need(f.stride.or(Some(1)), "stride")?;
                if kernel % 2 == 0 {
                    return Err(err(
                        block,
                        "kernel",
                        format!(
                            "must be odd: padding k/2 on each side keeps the size at stride 1, ceil(size/stride) beyond (got {kernel})"
                        ),
                    ));
                }
                if kernel > h || kernel > w {
                    return Err(err(
                        block,
                        "kernel",
                        format!("{kernel} is larger than the {h}x{w} image"),
                    ));
                }
                let padding = match f.padding.as_deref().unwrap_or("circular") {
                    "circular" => Padding::Circular,
                    "zero" => Padding::Zero,
                    other => {
                        return Err(err(
                            block,
                            "padding",
                            format!("unknown padding '{other}'; accepted: circular, zero"),
                        ));
                    }
                };
                if padding == Padding::Circular && (h % stride != 0 || w % stride != 0) {
                    return Err(err(
                        block,
                        "stride",
                        format!(
                            "a circular convolution of stride {stride} needs the {h}x{w} image's sides to be multiples of it (or padding = \"zero\")"
                        ),
                    ));
                }
                (
                    LayerKind::Conv {
                        channels,
                        kernel,
                        padding,
                        stride,
                    },
                    Shape::Image(channels, (h - 1) / stride + 1, (w - 1) / stride + 1),
                )
            } else {
                forbid(f.padding.is_some(), "padding")?;
                let stride = need(f.stride.or(Some(1)), "stride")?;
                let fan = match f.fan.as_deref().unwrap_or("pytorch") {
                    "pytorch" => TransposedFan::Pytorch,
                    "true" => TransposedFan::True,
                    other => {
                        return Err(err(
                            block,
                            "fan",
                            format!("unknown fan convention '{other}'; accepted: pytorch, true"),
                        ));
                    }
                };
                let (ho, wo) = ((h - 1) * stride + kernel, (w - 1) * stride + kernel);
                (
                    LayerKind::ConvTranspose {
                        channels,
                        kernel,
                        stride,
                        fan,
                    },
                    Shape::Image(channels, ho, wo),
                )
            }
        }
        other => {
            return Err(err(
                block,
                "type",
                format!("unknown layer type '{other}'; accepted here: {LAYER_TYPES}"),
            ));
        }
    };
    let delta_orthogonal = f.init.init.as_deref() == Some("delta-orthogonal");
    if delta_orthogonal && !matches!(kind, LayerKind::Conv { .. }) {
        return Err(err(
            block,
            "init",
            "delta-orthogonal applies to conv layers only",
        ));
    }
    let siren = f.init.init.as_deref() == Some("siren");
    let act_name = f.act.as_deref().unwrap_or(if siren {
        "sin"
    } else if kind_name == "attention" {
        "identity"
    } else {
        "relu"
    });
    let omega = if act_name == "sin" {
        f.omega.or(if siren {
            Some(crate::model::activation::SIREN_OMEGA)
        } else {
            None
        })
    } else {
        f.omega
    };
    let act = Activation::parse(act_name, f.alpha, omega).map_err(|e| retag(block, e))?;
    let flags = InitFlags {
        init: if delta_orthogonal {
            Some("orthogonal".into())
        } else {
            f.init.init.clone()
        },
        ..f.init.clone()
    };
    let init = InitSpec::resolve(&flags, &act).map_err(|e| retag(block, e))?;
    if init.scheme == Scheme::Orthogonal && matches!(kind, LayerKind::Attention(_)) {
        return Err(err(
            block,
            "init",
            "orthogonal does not apply to attention layers: their four matrices are drawn iid",
        ));
    }
    if init.scheme == Scheme::Orthogonal
        && !delta_orthogonal
        && !matches!(kind, LayerKind::Dense { .. })
    {
        return Err(err(
            block,
            "init",
            "orthogonal applies to dense layers; use delta-orthogonal for convolutions",
        ));
    }
    let standardise = standardisation(block, f, &kind, input_act, &init, delta_orthogonal)?;
    Ok(Layer {
        kind,
        act,
        init,
        delta_orthogonal,
        scale: 1.0,
        standardise,
        input,
        output,
    })
}

/// 1 / sqrt(Var phi(z)), z ~ N(0, 1), where it has a closed form: the
/// positively homogeneous activations (phi(z) = z for z > 0, a z below).
fn default_gamma(act: &Activation) -> Option<f64> {
    use std::f64::consts::PI;
    let variance = match *act {
        Activation::Identity => 1.0,
        Activation::Relu => 0.5 - 0.5 / PI,
        Activation::LeakyRelu { alpha } => {
            0.5 * (1.0 + alpha * alpha) - (1.0 - alpha).powi(2) / (2.0 * PI)
        }
        Activation::Abs => 1.0 - 2.0 / PI,
        _ => return None,
    };
    Some(1.0 / variance.sqrt())
}

/// A layer's `weight-standardisation` ("plain" or "scaled") and `gamma`.
fn standardisation(
    block: usize,
    f: &LayerFile,
    kind: &LayerKind,
    input_act: &Activation,
    init: &InitSpec,
    delta_orthogonal: bool,
) -> Result<Option<Standardisation>> {
    let Some(name) = f.weight_standardisation.as_deref() else {
        if f.gamma.is_some() {
            return Err(err(
                block,
                "gamma",
                "is the gain of weight-standardisation = \"scaled\"; give that too",
            ));
        }
        return Ok(None);
    };
    let key = "weight-standardisation";
    if !matches!(kind, LayerKind::Dense { .. } | LayerKind::Conv { .. }) {
        return Err(err(block, key, "applies to dense and conv layers"));
    }
    if delta_orthogonal || init.scheme == Scheme::Orthogonal {
        return Err(err(
            block,
            key,
            "does not apply to orthogonal weights (their rows are already fixed)",
        ));
    }
    match name {
        "plain" => {
            if f.gamma.is_some() {
                return Err(err(
                    block,
                    "gamma",
                    "applies to weight-standardisation = \"scaled\"",
                ));
            }
            Ok(Some(Standardisation::Plain))
        }
        "scaled" => {
            let gamma = match f.gamma {
                Some(g) if g.is_finite() && g > 0.0 => g,
                Some(g) => return Err(err(block, "gamma", format!("must be a finite number > 0 (got {g})"))),
                None => default_gamma(input_act).ok_or_else(|| {
                    err(
                        block,
                        "gamma",
                        format!(
                            "has no closed form for the {input_act} that makes this layer's input: give gamma = 1/sqrt(Var phi(z)), z ~ N(0, 1) (e.g. 1.5939 for tanh, 1.7015 for gelu)"
                        ),
                    )
                })?,
            };
            Ok(Some(Standardisation::Scaled { gamma }))
        }
        other => Err(err(
            block,
            key,
            format!("unknown '{other}'; accepted: plain, scaled"),
        )),
    }
}

/// Turns a flag-named error from the init/activation parsers into one that
/// names the block and key.
fn retag(block: usize, e: Error) -> Error {
    match e {
        Error::Invalid { flag, message } => err(block, flag.trim_start_matches("--"), message),
        other => other,
    }
}

impl Architecture {
    /// Parses and validates an architecture file's text; errors of a block
    /// name the file too (`--arch FILE, block N, key 'k'`).
    pub fn parse(path: &str, text: &str) -> Result<Architecture> {
        Self::parse_blocks(path, text).map_err(|e| match e {
            Error::Invalid { flag, message } => match flag.strip_prefix("--arch block ") {
                Some(rest) => Error::invalid(format!("--arch {path}, block {rest}"), message),
                None => Error::Invalid { flag, message },
            },
            other => other,
        })
    }

    fn parse_blocks(path: &str, text: &str) -> Result<Architecture> {
        let file: File = crate::io::toml::parse_toml(path, text)?;
        let input = match file.input {
            InputFile::Units(0) => {
                return Err(Error::invalid(
                    format!("--arch {path}, key 'input'"),
                    "must be >= 1",
                ));
            }
            InputFile::Units(n) => Shape::Vector(n),
            InputFile::Sequence(s) => {
                if s.tokens == 0 || s.width == 0 {
                    return Err(Error::invalid(
                        format!("--arch {path}, key 'input'"),
                        "tokens and width must be >= 1",
                    ));
                }
                Shape::Sequence {
                    tokens: s.tokens,
                    width: s.width,
                }
            }
            InputFile::Image(img) => {
                let (h, w) = match (img.size, img.height, img.width) {
                    (Some(s), None, None) => (s, s),
                    (None, Some(h), Some(w)) => (h, w),
                    _ => {
                        return Err(Error::invalid(
                            format!("--arch {path}, key 'input'"),
                            "give channels and either size or height and width",
                        ));
                    }
                };
                if img.channels == 0 || h == 0 || w == 0 {
                    return Err(Error::invalid(
                        format!("--arch {path}, key 'input'"),
                        "channels, height and width must be >= 1",
                    ));
                }
                Shape::Image(img.channels, h, w)
            }
        };
        if file.blocks.is_empty() {
            return Err(Error::invalid(
                format!("--arch {path}"),
                "no [[block]] tables",
            ));
        }
        // residual blocks in all, for 1/sqrt(L) and Fixup
        let residual_count: usize = file
            .blocks
            .iter()
            .map(|b| match b.kind.as_str() {
                "residual" => b.repeat,
                "stage" => b.repeat * b.blocks.unwrap_or(0),
                "transformer" => b.repeat * 2 * b.blocks.unwrap_or(1),
                _ => 0,
            })
            .sum();
        let mut blocks = Vec::new();
        let mut shape = input;
        // the activation that made the stream (a sum's is the identity)
        let mut stream_act = Activation::Identity;
        for (i, b) in file.blocks.iter().enumerate() {
            let number = i + 1;
            if b.repeat == 0 {
                return Err(err(number, "repeat", "must be >= 1"));
            }
            if b.kind != "transformer" {
                for (key, present) in [
                    ("norm", b.norm.is_some()),
                    ("mlp-width", b.mlp_width.is_some()),
                ] {
                    if present {
                        return Err(err(
                            number,
                            key,
                            format!("applies to transformer blocks, not to a {} block", b.kind),
                        ));
                    }
                }
            }
            for _ in 0..b.repeat {
                let block = match b.kind.as_str() {
                    "dense" | "conv" | "conv-transpose" | "layer-norm" | "rms-norm"
                    | "batch-norm" | "avg-pool" | "global-avg-pool" | "scale" | "attention" => {
                        if !b.layers.is_empty() {
                            return Err(err(
                                number,
                                "layer",
                                format!("only residual blocks have sub-layers, not {}", b.kind),
                            ));
                        }
                        let flat = flatten(shape, &b.kind);
                        Block::Layer(layer(number, &b.layer_file(), flat, &stream_act)?)
                    }
                    "residual" => residual(number, b, shape, residual_count, &stream_act)?,
                    "stage" => {
                        // its residual blocks, all but the last pushed here
                        let mut expanded =
                            stage::stage(number, b, shape, residual_count, &stream_act)?;
                        let last = expanded.pop().expect("a stage has blocks");
                        blocks.extend(expanded);
                        last
                    }
                    "highway" => highway(number, b, shape, &stream_act)?,
                    "transformer" => {
                        let mut expanded =
                            transformer::transformer(number, b, shape, residual_count)?;
                        let last = expanded.pop().expect("a transformer has blocks");
                        blocks.extend(expanded);
                        last
                    }
                    "sequence" => {
                        // its layers as blocks of their own, all but the
                        // last pushed here
                        let mut expanded = sequence(number, b, shape, &stream_act)?;
                        let last = expanded.pop().expect("a sequence has layers");
                        blocks.extend(expanded);
                        last
                    }
                    other => {
                        return Err(err(
                            number,
                            "type",
                            format!(
                                "unknown block type '{other}'; accepted: {LAYER_TYPES}, sequence, residual, highway, stage, transformer"
                            ),
                        ));
                    }
                };
                shape = block.output();
                stream_act = match &block {
                    Block::Layer(l) => l.act,
                    _ => Activation::Identity,
                };
                blocks.push(block);
            }
        }
        Ok(Architecture { input, blocks })
    }

    pub fn load(path: &std::path::Path) -> Result<Architecture> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("--arch {}", path.display()), e.to_string()))?;
        Architecture::parse(&path.display().to_string(), &text)
    }
}

/// `type = "sequence"`: its [[block.layer]] tables one after the other, each
/// a block of its own (so that `repeat` repeats a group of layers, such as
/// a dense layer and the normalisation after it).
fn sequence(
    number: usize,
    b: &BlockFile,
    input: Shape,
    input_act: &Activation,
) -> Result<Vec<Block>> {
    let own_keys = [
        ("act", b.act.is_some()),
        ("alpha", b.alpha.is_some()),
        ("shortcut", b.shortcut.is_some()),
        ("shared", b.shared.is_some()),
        ("gate-bias", b.gate_bias.is_some()),
        ("gate-init", b.gate_init.is_some()),
        ("style", b.style.is_some()),
        ("blocks", b.blocks.is_some()),
        ("bottleneck", b.bottleneck.is_some()),
    ];
    let layer_keys = b.layer_file().keys_set();
    if let Some((key, _)) = own_keys
        .iter()
        .chain(layer_keys.iter())
        .find(|(_, present)| *present)
    {
        return Err(err(
            number,
            key,
            "does not apply to a sequence: its layers go in [[block.layer]] tables",
        ));
    }
    if b.layers.is_empty() {
        return Err(err(
            number,
            "layer",
            "a sequence needs at least one [[block.layer]]",
        ));
    }
    let layers = layer_chain(number, &b.layers, input, input_act)?;
    Ok(layers.into_iter().map(Block::Layer).collect())
}

/// A block's [[block.layer]] tables as layers, each fed by the one before
/// (the first by `input`, made by `input_act`).
fn layer_chain(
    number: usize,
    files: &[LayerFile],
    input: Shape,
    input_act: &Activation,
) -> Result<Vec<Layer>> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut shape = input;
    for lf in files {
        let made_by = layers.last().map_or(*input_act, |l| l.act);
        let kind = lf.kind.as_deref().unwrap_or("dense");
        let l = layer(number, lf, flatten(shape, kind), &made_by)?;
        shape = l.output;
        layers.push(l);
    }
    Ok(layers)
}

/// A dense layer after an image sees it flattened.
fn flatten(shape: Shape, kind: &str) -> Shape {
    match (shape, kind) {
        (Shape::Image(..), "dense") => Shape::Vector(shape.units()),
        _ => shape,
    }
}

fn residual(
    number: usize,
    b: &BlockFile,
    input: Shape,
    residual_count: usize,
    input_act: &Activation,
) -> Result<Block> {
    let plain_keys = [
        ("width", b.width.is_some()),
        ("channels", b.channels.is_some()),
        ("kernel", b.kernel.is_some()),
        ("act", b.act.is_some()),
        ("init", b.init.init.is_some()),
        ("eps", b.eps.is_some()),
        ("affine", b.affine.is_some()),
        ("weight-standardisation", b.weight_standardisation.is_some()),
        ("gamma", b.gamma.is_some()),
        ("factor", b.factor.is_some()),
    ];
    if let Some((key, _)) = plain_keys.iter().find(|(_, present)| *present) {
        return Err(err(
            number,
            key,
            "a residual block's layers go in [[block.layer]] tables",
        ));
    }
    if b.layers.is_empty() {
        return Err(err(
            number,
            "layer",
            "a residual branch needs at least one [[block.layer]]",
        ));
    }
    let alpha = match &b.alpha {
        None => Alpha::Value(1.0),
        Some(toml::Value::Float(a)) => Alpha::Value(*a),
        Some(toml::Value::Integer(a)) => Alpha::Value(*a as f64),
        Some(toml::Value::String(s)) => match s.as_str() {
            "1/sqrt(L)" => Alpha::InverseSqrtDepth,
            "0" | "skipinit" | "rezero" => Alpha::Value(0.0),
            "fixup" => Alpha::Fixup,
            other => {
                return Err(err(
                    number,
                    "alpha",
                    format!(
                        "unknown '{other}'; accepted: a number, \"1/sqrt(L)\", 0 (SkipInit/ReZero), \"fixup\""
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(err(
                number,
                "alpha",
                format!("expected a number or a string, got {other}"),
            ));
        }
    };
    let mut branch = layer_chain(number, &b.layers, input, input_act)?;
    let shape = branch.last().expect("a branch has layers").output;
    let shared = b.shared.unwrap_or(0);
    if shared >= branch.len() {
        return Err(err(
            number,
            "shared",
            format!(
                "the branch's first `shared` layers feed the shortcut too; it must be below the branch's {} layers",
                branch.len()
            ),
        ));
    }
    if shared > 0 && b.shortcut.is_none() {
        return Err(err(
            number,
            "shared",
            "applies to a projection shortcut (give `shortcut`); the identity shortcut is x",
        ));
    }
    let shortcut = match &b.shortcut {
        None => {
            if shape != input {
                return Err(err(
                    number,
                    "layer",
                    format!(
                        "the branch maps {input:?} to {shape:?}: it must keep the shape for x + alpha F(x), or give a projection `shortcut`"
                    ),
                ));
            }
            None
        }
        Some(sf) => {
            let z = if shared == 0 {
                input
            } else {
                branch[shared - 1].output
            };
            let kind = sf.kind.as_deref().unwrap_or("conv");
            if !matches!(kind, "conv" | "dense") {
                return Err(err(
                    number,
                    "shortcut",
                    format!("a projection is a conv or dense layer, not {kind}"),
                ));
            }
            if sf.act.as_deref().is_some_and(|a| a != "identity") {
                return Err(err(
                    number,
                    "shortcut",
                    "a projection has no activation (act = \"identity\")",
                ));
            }
            let mut sf = sf.clone();
            sf.kind = Some(kind.to_string());
            sf.act = Some("identity".into());
            let made_by = if shared == 0 {
                *input_act
            } else {
                branch[shared - 1].act
            };
            let p = layer(number, &sf, flatten(z, kind), &made_by)?;
            if p.output != shape {
                return Err(err(
                    number,
                    "shortcut",
                    format!(
                        "the projection maps to {:?} but the branch to {shape:?}",
                        p.output
                    ),
                ));
            }
            Some(p)
        }
    };
    let value = match alpha {
        Alpha::Value(a) => a,
        Alpha::InverseSqrtDepth => 1.0 / (residual_count as f64).sqrt(),
        Alpha::Fixup => {
            // Fixup counts the branch's weight layers
            let m = branch.iter().filter(|l| l.has_weights()).count();
            if m < 2 {
                return Err(err(
                    number,
                    "alpha",
                    "fixup scales branches of m >= 2 layers by L^(-1/(2m-2))",
                ));
            }
            let scale = (residual_count as f64).powf(-1.0 / (2.0 * m as f64 - 2.0));
            for l in branch.iter_mut().filter(|l| l.has_weights()) {
                l.scale = scale;
            }
            if let Some(last) = branch.iter_mut().rev().find(|l| l.has_weights()) {
                last.scale = 0.0;
            }
            1.0
        }
    };
    Ok(Block::Residual {
        branch,
        alpha: value,
        shared,
        shortcut,
    })
}

fn highway(number: usize, b: &BlockFile, input: Shape, input_act: &Activation) -> Result<Block> {
    if !b.layers.is_empty() {
        return Err(err(
            number,
            "layer",
            "a highway block is one dense layer: give width, act and init on the block",
        ));
    }
    let Shape::Vector(n) = input else {
        return Err(err(
            number,
            "type",
            "a highway block needs a vector input (flatten with a dense layer first)",
        ));
    };
    let mut f = b.layer_file();
    f.kind = Some("dense".into());
    if f.width.is_some_and(|w| w != n) {
        return Err(err(
            number,
            "width",
            format!("a highway block keeps the width: {n} in, so {n} out"),
        ));
    }
    f.width = Some(n);
    let transform = layer(number, &f, input, input_act)?;
    let gate_flags = LayerFile {
        kind: Some("dense".into()),
        width: Some(n),
        act: Some("sigmoid".into()),
        init: InitFlags {
            init: b.gate_init.clone().or(b.init.init.clone()),
            gain: b.init.gain,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut gate = layer(number, &gate_flags, input, input_act)?;
    // the gate's bias is the constant gate_bias, not a random one
    gate.init.sigma_b2 = Some(0.0);
    Ok(Block::Highway {
        transform,
        gate,
        gate_bias: b.gate_bias.unwrap_or(-2.0),
    })
}

mod stage;
mod transformer;

#[cfg(test)]
mod tests;
