//! Theory beside measurement: the predictions for a run's columns, and the
//! rule for which of them are meaningful at finite width. `comparisons`
//! turns them into z scores, theory columns and the verdict of `check`.
//!
//! The rule for what is compared:
//! - Exact finite-width statements are always compared: E[q_pre], E[q_post],
//!   E[g] and E[||J_l u||^2] for identity, relu, leaky-relu and abs (their
//!   recurrences hold in expectation at any width, for any symmetric weight
//!   and bias laws), the zero fraction 1/2 of relu, and the law of log q for
//!   one input (relu or identity, Gaussian weights, no bias).
//! - An infinite-width prediction m is compared at a layer only where its
//!   finite-width bias, estimated as |m| * Var[log q] (corrections to means
//!   are second order in the fluctuations of q, whose relative size is the
//!   measured spread of one input's log q across networks), is below the
//!   measured standard error.
//! - A mean of a positive, log-normal-like quantity (q, g, ||J u||^2, and
//!   1 - c) is compared only where its standard error is honest: at depth of
//!   order width, q across networks is close to log-normal with Var[log q] of
//!   several units, the sample mean is far below E[q] in most runs and its
//!   SE far below its real spread (issue 12). The rule (`mean_is_honest`)
//!   bounds the skewness the Student-t tail can bear. Where it fails, the
//!   quantity is compared on a log scale instead: one input's log q against
//!   its exact law (relu, identity), and log(1 - c) near c = 1.

use crate::model::init::Dist;
use crate::spec::RunSpec;
use crate::theory::{self, LayerTheory};

/// A prediction for one measured column, per layer: the column
/// `<name>_mean` with its standard error `<name>_se`.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// `<name>_theory` and `<name>_z` are the columns it adds.
    pub name: &'static str,
    pub theory: Vec<Option<f64>>,
    /// Holds exactly in expectation at the simulated width.
    pub exact: bool,
    /// Scale of the quantity for the finite-width bias bound (|m| for q,
    /// 1 for a correlation, ...), per layer.
    pub scale: Vec<f64>,
    /// For a mean of a positive quantity X: the table also has the mean and
    /// the standard deviation of log X across networks (`log_columns`).
    /// Where the spread leaves the mean's standard error honest
    /// (`mean_is_honest`) the mean is compared; else, up to a spread of
    /// LOG_NORMAL_MAX_LOG_STD, the log-normal estimate of log E[X] from them
    /// (`log_normal_mean`).
    pub log_scale: bool,
    /// The measured mean and SE are of log X across networks (X = 1 - c):
    /// compared is the log-normal estimate of log E[X] (`log_normal_mean`),
    /// where the one input's log q spread is at most LOG_NORMAL_MAX_LOG_Q_STD.
    pub log_normal: bool,
}

impl Prediction {
    /// A prediction of a mean.
    fn mean(name: &'static str, theory: Vec<Option<f64>>, scale: Vec<f64>, exact: bool) -> Self {
        let (log_scale, log_normal) = (false, false);
        Prediction {
            name,
            theory,
            exact,
            scale,
            log_scale,
            log_normal,
        }
    }

    /// A prediction of a positive quantity's mean, also read on a log scale.
    fn positive(
        name: &'static str,
        theory: Vec<Option<f64>>,
        scale: Vec<f64>,
        exact: bool,
    ) -> Self {
        Prediction {
            log_scale: true,
            ..Self::mean(name, theory, scale, exact)
        }
    }

    /// A positive quantity predicted at every layer, its own scale.
    fn positive_everywhere(name: &'static str, values: Vec<f64>, exact: bool) -> Self {
        let theory = values.iter().copied().map(Some).collect();
        Self::positive(name, theory, values, exact)
    }

    pub fn mean_column(&self) -> String {
        format!("{}_mean", self.name)
    }

    pub fn se_column(&self) -> String {
        format!("{}_se", self.name)
    }

    /// The mean and the standard deviation of log X across networks.
    pub fn log_columns(&self) -> Option<(String, String)> {
        let name = self.name;
        self.log_scale
            .then(|| (format!("log_{name}_mean"), format!("log_{name}_std")))
    }
}

/// c_pre at least this (mean field) is also compared as log(1 - c).
pub const NEAR_ONE: f64 = 0.9;

/// log(1 - c) is compared only where the mean-field 1 - c is at least this.
/// The engines hold rows in f32: a unit's h_a - h_b carries a rounding of
/// about ulp(h), eps32 / sqrt(1 - c) of the difference, so its square biases
/// 1 - c by about eps32^2 / (1 - c) relative: at most 1e-3 above this floor
/// (1e3 eps32^2), where below it the measurement is the rounding itself
/// (torch-default at depth 50: 1 - c of 1e-16 in theory, 2e-15 measured).
pub const LOG1M_C_FLOOR: f64 = 1e3 * (f32::EPSILON as f64) * (f32::EPSILON as f64);

/// Activations whose moment recurrences are exact in expectation at finite
/// width: phi(h)^2 and phi'(h)^2 are even in h times a fixed multiple of
/// h^2 (resp. a constant), and h is symmetric given the layer below.
fn exact_in_expectation(spec: &RunSpec) -> bool {
    use crate::model::activation::Activation::*;
    matches!(spec.net.act, Identity | Relu | LeakyRelu { .. } | Abs)
}

/// The kurtosis of h_l at infinite width. W x is Gaussian (variance a =
/// q_pre - s), the bias an independent term of variance s and standardised
/// fourth moment k_b (3 for normal biases, 9/5 for torch-default's uniform
/// ones): (3 a^2 + 6 a s + k_b s^2) / (a + s)^2. Row 0, the Gaussian input,
/// and layers without bias: 3.
fn kurtosis_pre(net: &crate::spec::NetworkSpec, row: &LayerTheory) -> f64 {
    if row.layer == 0 {
        return 3.0;
    }
    let bias = net.bias_law(row.layer);
    let (q, s) = (row.q_pre, bias.variance);
    if s == 0.0 || q.is_nan() || q <= 0.0 {
        return 3.0;
    }
    let a = (q - s).max(0.0);
    let k_b = bias.dist.standardised_fourth_moment();
    (3.0 * a * a + 6.0 * a * s + k_b * s * s) / (q * q)
}

/// E[phi'(h_l)^2] n_l v_l: the factor by which a tangent's squared norm
/// grows through layer l (mean field).
fn chi_factor(spec: &RunSpec, rows: &[LayerTheory], l: usize) -> f64 {
    let net = &spec.net;
    net.widths[l] as f64
        * net.weight_law(l).variance
        * theory::gauss::deriv_second_moment(&net.act, rows[l].q_pre)
}

/// Predictions for a run through an architecture (block by block, all at
/// infinite width).
fn arch_predictions(spec: &RunSpec, a: &crate::spec::ArchRun) -> Vec<Prediction> {
    let rows = theory::arch::arch_table_with_tokens(
        &a.arch,
        spec.net.q0,
        spec.net.c0,
        a.token_c0,
        a.mean_preserving,
    );
    let depth = rows.len() - 1;
    let col = |f: &dyn Fn(&theory::arch::ArchRow) -> f64| {
        rows.iter().map(|r| Some(f(r))).collect::<Vec<_>>()
    };
    let ones = vec![1.0; depth + 1];
    let q_pre = rows.iter().map(|r| r.pre.q_mean()).collect();
    let q_post = rows.iter().map(|r| r.post.q_mean()).collect();
    let mut out = vec![
        Prediction::positive_everywhere("q_pre", q_pre, false),
        Prediction::positive_everywhere("q_post", q_post, false),
        Prediction::mean("c_pre", col(&|r| r.pre.c_mean()), ones.clone(), false),
        Prediction::mean(
            "mean_post",
            col(&|r| r.post.m_mean()),
            rows.iter().map(|r| r.post.q_mean().sqrt()).collect(),
            false,
        ),
    ];
    let plain =
        |l: usize| l > 0 && matches!(a.arch.blocks[l - 1], crate::model::arch::Block::Layer(_));
    if spec.probes.backward {
        // the gradient with respect to h for plain rows, to the block's output otherwise
        let mut g = vec![1.0; depth + 1];
        let mut cur = 1.0;
        for l in (1..=depth).rev() {
            let stream = rows[l].back_linear * cur;
            let below = l - 1;
            cur = if plain(below) {
                stream * rows[below].deriv_sq.iter().sum::<f64>()
                    / rows[below].deriv_sq.len() as f64
            } else {
                stream
            };
            g[below] = cur;
        }
        out.push(Prediction::positive_everywhere("g", g, false));
    }
    if spec.probes.jacobian {
        let mut m1 = vec![1.0; depth + 1];
        for l in 1..=depth {
            m1[l] = m1[l - 1] * rows[l].forward_factor;
        }
        out.push(Prediction::positive_everywhere("jac_m1", m1, false));
    }
    out
}

/// The predictions for the columns `run` has, from the same init code the
/// engines use.
pub fn predictions(spec: &RunSpec, theory_net: &crate::spec::NetworkSpec) -> Vec<Prediction> {
    if let Some(a) = &spec.arch {
        return arch_predictions(spec, a);
    }
    let rows = theory::layer_table(theory_net);
    let depth = spec.net.depth();
    let exact = exact_in_expectation(spec);
    let all = |f: &dyn Fn(&LayerTheory) -> f64| rows.iter().map(|r| Some(f(r))).collect::<Vec<_>>();
    let ones = vec![1.0; depth + 1];
    let q_pre = rows.iter().map(|r| r.q_pre_ln.exp()).collect();
    let q_post = rows.iter().map(|r| r.q_post_ln.exp()).collect();
    let mut out = vec![
        Prediction::positive_everywhere("q_pre", q_pre, exact),
        Prediction::positive_everywhere("q_post", q_post, exact),
        Prediction::mean("c_pre", all(&|r| r.c_pre), ones.clone(), false),
        Prediction::mean(
            "mean_post",
            all(&|r| r.mean_post),
            rows.iter().map(|r| r.q_post_ln.exp().sqrt()).collect(),
            false,
        ),
        Prediction::mean(
            "kurt_pre",
            all(&|r| kurtosis_pre(theory_net, r)),
            vec![3.0; depth + 1],
            false,
        ),
    ];
    // the zero fraction: relu's is 1/2 exactly (h is symmetric), relu6's is
    // 1/2 + P(h >= 6) at infinite width; row 0 has none
    use crate::model::activation::Activation;
    let zero = match spec.net.act {
        Activation::Relu => Some((true, rows.iter().map(|_| 0.5).collect::<Vec<_>>())),
        Activation::Relu6 => Some((
            false,
            rows.iter()
                .map(|r| 0.5 + theory::special::normal_sf(6.0 / r.q_pre.sqrt()))
                .collect(),
        )),
        _ => None,
    };
    if let Some((exact, values)) = zero {
        let theory = values
            .iter()
            .enumerate()
            .map(|(l, v)| (l > 0).then_some(*v))
            .collect();
        out.push(Prediction::mean("zero_frac", theory, ones.clone(), exact));
    }
    // 1 - c near 1, on a log scale (where c_pre's own comparison is gated out)
    let log1m_c = rows
        .iter()
        .map(|r| {
            let gap = 1.0 - r.c_pre;
            (r.c_pre >= NEAR_ONE && gap >= LOG1M_C_FLOOR).then(|| gap.ln())
        })
        .collect();
    out.push(Prediction {
        log_normal: true,
        ..Prediction::mean("log1m_c_pre", log1m_c, ones.clone(), false)
    });
    // one input's log q at finite width, where the exact law applies
    if rows.iter().all(|r| r.log_q_post_mean.is_some()) {
        out.push(Prediction::mean(
            "log_q_post_sample",
            rows.iter().map(|r| r.log_q_post_mean).collect(),
            ones.clone(),
            true,
        ));
    }
    if spec.probes.backward {
        // g_L = 1 (delta_L is standard normal), g_l = factor_l g_{l+1}
        let mut g = vec![1.0; depth + 1];
        for l in (0..depth).rev() {
            g[l] = rows[l].backward_factor.unwrap_or(f64::NAN) * g[l + 1];
        }
        out.push(Prediction::positive_everywhere("g", g, exact));
    }
    if spec.probes.jacobian {
        let mut m1 = vec![1.0; depth + 1];
        for l in 1..=depth {
            m1[l] = m1[l - 1] * chi_factor(spec, &rows, l);
        }
        out.push(Prediction::positive_everywhere("jac_m1", m1, exact));
    }
    out
}

/// Predicted spread m2/m1^2 - 1 of the squared singular values of the
/// input-output Jacobian at infinite width, by free probability (Pennington,
/// Schoenholz & Ganguli 2017): the spreads of the factors add,
/// sum_l [E phi'^4 / (E phi'^2)^2 - 1 + s_W], with s_W = 1 for square
/// Gaussian weights (Marchenko-Pastur) and 0 for orthogonal ones. Only for
/// constant width with normal or orthogonal weights; None otherwise.
pub fn jacobian_spread_theory(spec: &RunSpec) -> Option<f64> {
    let net = &spec.net;
    if net.widths.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    let rows = theory::layer_table(net);
    let mut spread = 0.0;
    for (l, row) in rows.iter().enumerate().skip(1) {
        let s_w = match net.weight_law(l).dist {
            Dist::Normal => 1.0,
            Dist::Orthogonal => 0.0,
            _ => return None,
        };
        let m2 = theory::gauss::deriv_second_moment(&net.act, row.q_pre);
        let m4 = theory::gauss::deriv_fourth_moment(&net.act, row.q_pre);
        spread += m4 / (m2 * m2) - 1.0 + s_w;
    }
    Some(spread)
}
