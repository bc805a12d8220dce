//! Architectures beyond the plain stack, described in a TOML file: dense,
//! convolution and transposed-convolution layers, normalisation layers
//! (layer-norm, rms-norm, batch-norm), pooling and scale layers, residual
//! and highway blocks and ResNet stages, each with its own activation and
//! initialisation, with repeat counts (a `sequence` repeats a group of
//! layers). This file holds the model the engines and the theory walk (shapes,
//! layers, blocks, and each layer's fans and weight law); `file` parses and
//! validates the TOML (shapes must chain) and expands repeats.
//!
//! ```toml
//! input = { channels = 4, size = 16 }   # or input = 784 for vectors,
//!                                       # input = { tokens = 16, width = 64 } for sequences
//!
//! [[block]]
//! type = "conv"          # dense | conv | conv-transpose | layer-norm | rms-norm | batch-norm | avg-pool | global-avg-pool | scale | attention | sequence | residual | highway | stage
//! channels = 8
//! kernel = 3
//! act = "relu"
//! init = "he-normal"
//! repeat = 10
//! ```

use crate::model::activation::Activation;
use crate::model::init::{Dist, InitSpec, Scheme, WeightLaw};

/// The shape of the signal between blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Shape {
    Vector(usize),
    /// channels, height, width
    Image(usize, usize, usize),
    /// A transformer's sequence: `tokens` tokens of `width` units each,
    /// stored channel-major like an image of height 1 (unit c of token t at
    /// c T + t). Dense layers act on every token alike (a 1 x 1
    /// convolution), layer-norm and rms-norm normalise each token.
    Sequence {
        tokens: usize,
        width: usize,
    },
}

impl Shape {
    pub fn units(&self) -> usize {
        let (c, h, w) = self.dims();
        c * h * w
    }

    /// (channels, height, width): a vector is n channels at one position, a
    /// sequence `width` channels at `tokens` positions.
    pub fn dims(&self) -> (usize, usize, usize) {
        match *self {
            Shape::Vector(n) => (n, 1, 1),
            Shape::Image(c, h, w) => (c, h, w),
            Shape::Sequence { tokens, width } => (width, 1, tokens),
        }
    }

    /// Units of one position (a vector's units, an image's channels, a
    /// token's width).
    pub fn channels(&self) -> usize {
        self.dims().0
    }

    pub fn is_sequence(&self) -> bool {
        matches!(self, Shape::Sequence { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// What the mean-field theory of CNNs assumes (Xiao et al. 2018).
    Circular,
    Zero,
}

/// Fan-in convention of a transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransposedFan {
    /// PyTorch's: the weight is (C_in, C_out, k, k), so fan_in = C_out k^2.
    Pytorch,
    /// The true per-position fan-in in the interior: C_in (k/s)^2.
    True,
}

/// What a normalisation layer divides by, and over which units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormKind {
    /// y = (x - mean) / sqrt(var + eps), the statistics of each input over
    /// all its units (channels and positions for an image: PyTorch's
    /// LayerNorm over [C, H, W], GroupNorm with one group)
    LayerNorm,
    /// y = x / sqrt(mean x^2 + eps) over each input's units
    RmsNorm,
    /// y = (x - mean) / sqrt(var + eps), the statistics of each channel (unit
    /// of a vector) over the batch and positions, biased variance: training
    /// mode, as in the first forward pass of training
    BatchNorm,
}

impl NormKind {
    pub fn name(&self) -> &'static str {
        match self {
            NormKind::LayerNorm => "layer-norm",
            NormKind::RmsNorm => "rms-norm",
            NormKind::BatchNorm => "batch-norm",
        }
    }
}

/// The shape of an attention layer.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Attention {
    pub heads: usize,
    /// d_k: query and key units per head
    pub key_width: usize,
    /// d_v: value units per head
    pub value_width: usize,
    /// tau of the scores tau q . k: 1/sqrt(d_k) unless given
    pub temperature: f64,
    /// token t attends to tokens s <= t only
    pub causal: bool,
    /// W_q = 0: every score is 0 and attention is uniform (Noci et al.
    /// 2022's zero-initialised queries)
    pub zero_queries: bool,
    /// Value-SkipInit (He et al. 2023): the tokens are mixed by alpha I +
    /// beta A in place of A (alpha = identity_mix, default 0; beta =
    /// attention_mix, default 1)
    pub identity_mix: f64,
    pub attention_mix: f64,
}

/// One of an attention layer's four weight matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    Query,
    Key,
    Value,
    Output,
}

/// A matrix of an attention layer: its first row in the layer's stream, its
/// rows (outputs) and its columns (fan-in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionMatrix {
    pub projection: Projection,
    pub first_row: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Attention {
    /// W_q, W_k, W_v, W_o of a layer on tokens of `width` units, in the
    /// order of the stream's rows.
    pub fn matrices(&self, width: usize) -> [AttentionMatrix; 4] {
        let (hk, hv) = (self.heads * self.key_width, self.heads * self.value_width);
        let m = |projection, first_row, rows, cols| AttentionMatrix {
            projection,
            first_row,
            rows,
            cols,
        };
        [
            m(Projection::Query, 0, hk, width),
            m(Projection::Key, hk, hk, width),
            m(Projection::Value, 2 * hk, hv, width),
            m(Projection::Output, 2 * hk + hv, width, hv),
        ]
    }
}

/// The factor of a `scale` layer.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum ScaleFactor {
    Value(f64),
    /// 1 / sqrt(E[x^2]) of the layer's input as the mean-field theory
    /// predicts it (`sim::plan::Program` resolves it for the engines)
    InverseRootQ,
}

/// PyTorch's default eps of LayerNorm and BatchNorm2d.
pub const NORM_EPS: f64 = 1e-5;

/// A layer: weights (dense, convolutions) or a normalisation. Every layer
/// is followed by its activation.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Dense {
        width: usize,
    },
    /// odd kernel, k/2 padding on each side: output size ceil(H / stride)
    /// (the input's at stride 1)
    Conv {
        channels: usize,
        kernel: usize,
        padding: Padding,
        stride: usize,
    },
    /// No weights: the mean over each channel's kh x kw windows at
    /// `stride`, no padding, output floor((H - kh) / stride) + 1; global
    /// average pooling is the window of the whole image
    AvgPool {
        kh: usize,
        kw: usize,
        stride: usize,
    },
    /// No weights: y = factor x, the factor a number or 1/sqrt(q) of its
    /// input from the analytic recurrence (NF-ResNets' 1/beta)
    Scale {
        factor: ScaleFactor,
    },
    /// output size (H - 1) s + k, no padding
    ConvTranspose {
        channels: usize,
        kernel: usize,
        stride: usize,
        fan: TransposedFan,
    },
    /// Multi-head softmax self-attention over a sequence's tokens (Vaswani
    /// et al. 2017), the shape kept: per head h, q_t = W_q^h x_t, k_t =
    /// W_k^h x_t, v_t = W_v^h x_t, A_ts = softmax_s(tau q_t . k_s) (s <= t
    /// when causal), o_t^h = sum_s A_ts v_s, and the layer's pre-activation
    /// W_o [o_t^1; ...; o_t^H]. No biases (PyTorch's MultiheadAttention
    /// starts its biases at 0). Its four matrices come from the layer's one
    /// stream, rows numbered W_q, W_k, W_v, W_o (`attention_blocks`), each
    /// drawn by the layer's init with its own fans.
    Attention(Attention),
    /// No weights: normalises, keeping the shape. Its gain and bias, if
    /// `affine` (PyTorch's default), are at their initial values 1 and 0, so
    /// they change no forward value; they are parameters of the NTK
    /// (`sim::cpu::block_steps::ntk`): per unit on vectors, per channel on
    /// images, rms-norm's gain only.
    Norm {
        kind: NormKind,
        eps: f64,
        affine: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub kind: LayerKind,
    pub act: Activation,
    pub init: InitSpec,
    /// `delta-orthogonal` convolutions (Xiao et al. 2018): an orthogonal
    /// C_out x C_in matrix at the kernel's centre, zero elsewhere.
    pub delta_orthogonal: bool,
    /// Multiplies the weights' standard deviation (Fixup's branch scaling);
    /// 0 zeroes the layer.
    pub scale: f64,
    /// Weight standardisation of each output unit's (channel's) weights
    /// over its fan-in, after they are drawn.
    pub standardise: Option<Standardisation>,
    pub input: Shape,
    pub output: Shape,
}

/// Weight standardisation (Qiao et al. 2019; scaled, Brock et al. 2021):
/// each output's fan-in weights W (N = fan_in of them) become
/// gain (W - mean W) / std W, std the population one, so every row has mean
/// 0 and mean square gain^2 exactly.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Standardisation {
    /// gain 1: entries of variance 1
    Plain,
    /// gain gamma / sqrt(N): entries of variance gamma^2 / N, gamma =
    /// 1 / sqrt(Var phi(z)) for z ~ N(0, 1) of the activation that made the
    /// layer's input (ReLU: sqrt(2 / (1 - 1/pi)); 1 for the network's input
    /// and for sums) unless given, as NF-ResNets attach it
    Scaled { gamma: f64 },
}

impl Standardisation {
    /// The gain multiplying (W - mean) / std for a fan-in of `n`.
    pub fn gain(&self, n: usize) -> f64 {
        match *self {
            Standardisation::Plain => 1.0,
            Standardisation::Scaled { gamma } => gamma / (n as f64).sqrt(),
        }
    }
}

/// How much of the residual branch is added.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Alpha {
    Value(f64),
    /// 1/sqrt(L), L the number of residual blocks
    InverseSqrtDepth,
    /// branch weights scaled by L^(-1/(2m-2)), last layer zero (Zhang et al. 2019)
    Fixup,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Layer(Layer),
    /// S + alpha F(x), F any number of layers; S the identity x, or a
    /// projection (a linear layer, identity activation) of the output z of
    /// the branch's first `shared` layers (x itself when 0): ResNet-V2's
    /// pre-activation and NF-ResNet's x / beta feed both paths
    Residual {
        branch: Vec<Layer>,
        alpha: f64,
        shared: usize,
        shortcut: Option<Layer>,
    },
    /// T H(x) + (1 - T) x, T = sigmoid(W_T x + gate_bias)
    Highway {
        transform: Layer,
        gate: Layer,
        gate_bias: f64,
    },
}

impl Block {
    pub fn output(&self) -> Shape {
        match self {
            Block::Layer(l) => l.output,
            Block::Residual { branch, .. } => branch.last().unwrap().output,
            Block::Highway { transform, .. } => transform.output,
        }
    }

    /// Its weight layers, in the order their random streams are numbered.
    pub fn layers(&self) -> Vec<&Layer> {
        match self {
            Block::Layer(l) => vec![l],
            Block::Residual {
                branch, shortcut, ..
            } => branch.iter().chain(shortcut).collect(),
            Block::Highway {
                transform, gate, ..
            } => vec![transform, gate],
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub input: Shape,
    pub blocks: Vec<Block>,
}

impl Architecture {
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// Units of row l (row 0 is the input).
    pub fn units(&self, row: usize) -> usize {
        if row == 0 {
            self.input.units()
        } else {
            self.blocks[row - 1].output().units()
        }
    }

    /// Positively homogeneous throughout (activations, no biases, no
    /// highway gates, no normalisation, whose eps breaks the homogeneity,
    /// no attention, whose scores scale with the square of its input):
    /// the engines renormalise every block and carry the scale as a log
    /// (unless the mean-preserving shift is on).
    pub fn is_homogeneous(&self) -> bool {
        self.blocks.iter().all(|b| {
            !matches!(b, Block::Highway { .. })
                && b.layers().iter().all(|l| {
                    l.act.is_positively_homogeneous()
                        && l.init.has_no_bias()
                        && !l.is_norm()
                        && !l.is_attention()
                })
        })
    }

    /// Whether any layer normalises over the batch (so inputs are coupled).
    pub fn has_batch_norm(&self) -> bool {
        self.blocks.iter().flat_map(|b| b.layers()).any(|l| {
            matches!(
                l.kind,
                LayerKind::Norm {
                    kind: NormKind::BatchNorm,
                    ..
                }
            )
        })
    }

    /// The same network on sequences of `tokens` tokens (every shape's
    /// token count replaced; a file on sequences works for any count).
    pub fn with_tokens(mut self, tokens: usize) -> Architecture {
        let retoken = |s: &mut Shape| {
            if let Shape::Sequence { width, .. } = *s {
                *s = Shape::Sequence { tokens, width };
            }
        };
        retoken(&mut self.input);
        for block in &mut self.blocks {
            let layers: Vec<&mut Layer> = match block {
                Block::Layer(l) => vec![l],
                Block::Residual {
                    branch, shortcut, ..
                } => branch.iter_mut().chain(shortcut.iter_mut()).collect(),
                Block::Highway {
                    transform, gate, ..
                } => vec![transform, gate],
            };
            for l in layers {
                retoken(&mut l.input);
                retoken(&mut l.output);
            }
        }
        self
    }

    /// The shape of row l.
    pub fn shape(&self, row: usize) -> Shape {
        if row == 0 {
            self.input
        } else {
            self.blocks[row - 1].output()
        }
    }
}

impl Architecture {
    /// A plain stack of dense layers (for the mean-preserving bias, which
    /// runs on the block engine).
    pub fn plain(widths: &[usize], act: Activation, init: InitSpec) -> Architecture {
        let blocks = widths
            .windows(2)
            .map(|w| {
                Block::Layer(Layer {
                    kind: LayerKind::Dense { width: w[1] },
                    act,
                    init,
                    delta_orthogonal: false,
                    scale: 1.0,
                    standardise: None,
                    input: Shape::Vector(w[0]),
                    output: Shape::Vector(w[1]),
                })
            })
            .collect();
        Architecture {
            input: Shape::Vector(widths[0]),
            blocks,
        }
    }
}

impl Layer {
    pub fn is_norm(&self) -> bool {
        matches!(self.kind, LayerKind::Norm { .. })
    }

    pub fn is_attention(&self) -> bool {
        matches!(self.kind, LayerKind::Attention(_))
    }

    /// Dense and convolution layers (normalisations and pooling have no
    /// random weights).
    pub fn has_weights(&self) -> bool {
        !matches!(
            self.kind,
            LayerKind::Norm { .. } | LayerKind::AvgPool { .. } | LayerKind::Scale { .. }
        )
    }

    /// fan_in and fan_out of the init conventions.
    pub fn fans(&self) -> (usize, usize) {
        match (&self.kind, self.input) {
            // on a sequence, each token's units
            (LayerKind::Dense { width }, Shape::Sequence { width: d, .. }) => (d, *width),
            (LayerKind::Dense { width }, input) => (input.units(), *width),
            (LayerKind::Norm { .. }, input) => (input.units(), input.units()),
            // the value and output matrices' fan-in and fan-out (each
            // matrix is drawn with its own: `matrix_law`)
            (LayerKind::Attention(a), input) => (input.channels(), a.heads * a.value_width),
            (LayerKind::AvgPool { kh, kw, .. }, _) => (kh * kw, 1),
            (LayerKind::Scale { .. }, _) => (1, 1),
            (
                LayerKind::Conv {
                    channels, kernel, ..
                },
                Shape::Image(c, ..),
            ) => (c * kernel * kernel, channels * kernel * kernel),
            (
                LayerKind::ConvTranspose {
                    channels,
                    kernel,
                    stride,
                    fan,
                },
                Shape::Image(c, ..),
            ) => match fan {
                TransposedFan::Pytorch => (channels * kernel * kernel, c * kernel * kernel),
                TransposedFan::True => {
                    let per_position = (*kernel as f64 / *stride as f64).powi(2);
                    (
                        (c as f64 * per_position).round().max(1.0) as usize,
                        channels * kernel * kernel,
                    )
                }
            },
            _ => unreachable!("convolutions have image inputs"),
        }
    }

    /// The law of this layer's weights as the theory sees them: the draw's
    /// ([`Self::draw_law`]), or after weight standardisation entries of
    /// variance gain^2 (Fixup's scale included).
    pub fn weight_law(&self, layer_number: usize) -> WeightLaw {
        let mut law = self.draw_law(layer_number);
        if let Some(ws) = self.standardise {
            let n = self.fans().0;
            law.variance = (ws.gain(n) * self.scale).powi(2);
        }
        law
    }

    /// The law the weights are drawn from (`layer_number` 1-based, for
    /// siren's first-layer rule), Fixup's scale included; a normalisation
    /// has none (variance 0).
    pub fn draw_law(&self, layer_number: usize) -> WeightLaw {
        if !self.has_weights() {
            return WeightLaw {
                dist: Dist::Normal,
                variance: 0.0,
            };
        }
        let (fan_in, fan_out) = self.fans();
        let mut law = if self.delta_orthogonal {
            // only the centre tap is nonzero: an orthogonal C_out x C_in matrix times the gain
            let (c_in, c_out) = match (&self.kind, self.input) {
                (LayerKind::Conv { channels, .. }, Shape::Image(c, ..)) => (c, *channels),
                _ => unreachable!(),
            };
            WeightLaw {
                dist: Dist::Orthogonal,
                variance: self.init.gain * self.init.gain / c_in.max(c_out) as f64,
            }
        } else {
            self.init
                .weight_law(&self.act, layer_number, fan_in, fan_out)
        };
        // a standardised layer is drawn at its own scale: the gain
        // (`weight_law`) takes Fixup's
        if self.standardise.is_none() {
            law.variance *= self.scale * self.scale;
        }
        law
    }

    /// The law an attention layer's matrix is drawn from: the layer's init
    /// at the matrix's own fans (and 0 for zero-initialised queries).
    pub fn matrix_law(&self, layer_number: usize, m: &AttentionMatrix) -> WeightLaw {
        let mut law = self
            .init
            .weight_law(&self.act, layer_number, m.cols, m.rows);
        law.variance *= self.scale * self.scale;
        if let LayerKind::Attention(a) = &self.kind
            && a.zero_queries
            && m.projection == Projection::Query
        {
            law.variance = 0.0;
        }
        law
    }

    pub fn bias_law(&self) -> WeightLaw {
        if !self.has_weights() || self.is_attention() {
            return WeightLaw {
                dist: Dist::Normal,
                variance: 0.0,
            };
        }
        self.init.bias_law(self.fans().0)
    }

    /// sigma_w^2 as the mean-field theory sees it: the number of inputs that
    /// reach an output unit in the interior times v.
    pub fn sigma_w2(&self, layer_number: usize) -> f64 {
        let v = self.weight_law(layer_number).variance;
        match (&self.kind, self.input) {
            (LayerKind::Norm { .. } | LayerKind::AvgPool { .. } | LayerKind::Scale { .. }, _) => {
                1.0
            }
            (LayerKind::Dense { .. }, _) => self.fans().0 as f64 * v,
            // not one linear map of Gaussian fields: the theory treats it
            // on its own (theory::arch)
            (LayerKind::Attention(_), _) => f64::NAN,
            (LayerKind::Conv { kernel, .. }, Shape::Image(c, ..)) => {
                if self.delta_orthogonal {
                    c as f64 * v
                } else {
                    (c * kernel * kernel) as f64 * v
                }
            }
            (LayerKind::ConvTranspose { kernel, stride, .. }, Shape::Image(c, ..)) => {
                c as f64 * (*kernel as f64 / *stride as f64).powi(2) * v
            }
            _ => unreachable!(),
        }
    }
}

mod file;
