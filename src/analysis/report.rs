//! From a run to its table and its config block: the column names here are
//! the stable contract of `varprop run` (extend, never rename).

use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::spec::RunSpec;

/// The measured columns, in order, after `layer,width`.
pub const MEASURED_COLUMNS: &[&str] = &[
    "q_pre_mean",
    "q_pre_se",
    "log_q_pre_mean",
    "log_q_pre_std",
    "q_post_mean",
    "q_post_se",
    "log_q_post_mean",
    "log_q_post_std",
    "mean_pre_mean",
    "mean_pre_se",
    "mean_post_mean",
    "mean_post_se",
    "kurt_pre_mean",
    "kurt_pre_se",
    "zero_frac_mean",
    "zero_frac_se",
    "c_pre_mean",
    "c_pre_se",
    "log_q_post_sample_mean",
    "log_q_post_sample_se",
    "log_q_post_sample_std",
    "log1m_c_pre_mean",
    "log1m_c_pre_se",
];

/// With the backward pass.
pub const BACKWARD_COLUMNS: &[&str] = &["g_mean", "g_se", "log_g_mean", "log_g_std"];
/// With --weight-grads.
pub const WEIGHT_GRAD_COLUMNS: &[&str] = &["gw_mean", "gw_se"];
/// With --jacobian.
pub const JACOBIAN_COLUMNS: &[&str] = &[
    "jac_m1_mean",
    "jac_m1_se",
    "log_jac_m1_mean",
    "log_jac_m1_std",
];

/// The predictions `run` adds as `<name>_theory` and `<name>_z`.
pub const PREDICTED: &[&str] = &[
    "q_pre",
    "q_post",
    "c_pre",
    "mean_post",
    "kurt_pre",
    "zero_frac",
    "log1m_c_pre",
    "log_q_post_sample",
    "g",
    "jac_m1",
];

/// What each measured column of `run` is (`varprop columns`): means and
/// standard errors are across the S networks; a row's quantities are over
/// its units and the batch. `<name>_theory` is the prediction for
/// `<name>_mean` and `<name>_z` = (mean - theory) / se.
pub const COLUMN_LEGEND: &[(&str, &str)] = &[
    ("layer", "l; row 0 is the input"),
    ("width", "n_l, the units of the row"),
    (
        "q_pre_mean, q_pre_se",
        "q_pre = mean of h^2, h_l = W_l x_{l-1} + b_l",
    ),
    (
        "log_q_pre_mean, log_q_pre_std",
        "mean and standard deviation of ln q_pre",
    ),
    (
        "q_post_mean, q_post_se",
        "q_post = mean of x^2, x_l = phi(h_l) (row 0: the input)",
    ),
    (
        "log_q_post_mean, log_q_post_std",
        "mean and standard deviation of ln q_post",
    ),
    ("mean_pre_mean, mean_pre_se", "mean of h"),
    ("mean_post_mean, mean_post_se", "mean of phi(h)"),
    (
        "kurt_pre_mean, kurt_pre_se",
        "mean(h^4) / q_pre^2, 3 for a Gaussian",
    ),
    (
        "zero_frac_mean, zero_frac_se",
        "fraction of units with phi'(h) = 0 (relu: 1/2)",
    ),
    (
        "c_pre_mean, c_pre_se",
        "correlation of h between the two inputs of each pair; 1 - c from sum (h_a - h_b)^2",
    ),
    (
        "log_q_post_sample_mean, _se, _std",
        "ln(||x||^2 / n) of one input: mean, its standard error, and its spread",
    ),
    (
        "log1m_c_pre_mean, log1m_c_pre_se",
        "ln(1 - c_pre) per network: mean and standard error",
    ),
    (
        "g_mean, g_se",
        "--backward: ||delta_l||^2 / n_l, delta_L standard normal",
    ),
    (
        "log_g_mean, log_g_std",
        "--backward: mean and standard deviation of ln g",
    ),
    (
        "gw_mean, gw_se",
        "--weight-grads: mean square of dL/dW_l = delta_l x_{l-1}^T",
    ),
    (
        "jac_m1_mean, jac_m1_se",
        "--jacobian: ||J_l u||^2 / n_l for random unit-variance u",
    ),
    (
        "log_jac_m1_mean, log_jac_m1_std",
        "--jacobian: mean and standard deviation of ln jac_m1",
    ),
    (
        "ntk_layer_mean, ntk_layer_se",
        "--ntk: layer l's term of Theta(a, a), (delta_l . delta_l)(v_l x_{l-1} . x_{l-1} + sb_l) (ntk) or (x . x + [sb > 0]) (standard), delta_l = df/dh_l, f = w^T x_L / sqrt(n_L); mean over the batch",
    ),
    (
        "ntk_layer_c_mean, ntk_layer_c_se",
        "--ntk: that term's correlation between the two inputs of each pair",
    ),
    (
        "spp_mean2_mean, spp_mean2_se",
        "--spp (an --arch run): the mean over channels of the squared channel mean, over the batch and positions of each channel (timm's avg_sq_ch_mean)",
    ),
    (
        "spp_var_mean, spp_var_se",
        "--spp: the mean over channels of the unbiased channel variance (timm's avg_ch_var)",
    ),
    (
        "spp_branch_var_mean, spp_branch_var_se",
        "--spp, residual rows: the same variance of the branch's output F(x), before alpha (timm's avg_ch_var_residual)",
    ),
    (
        "token_cos_mean, token_cos_se",
        "runs on sequences: the mean over token pairs t != s of one sequence of cos(x_t, x_s), averaged over the batch (1: rank collapse)",
    ),
    (
        "stable_rank_mean, stable_rank_se",
        "runs on sequences: the stable rank ||X||_F^2 / ||X||_2^2 of a sequence's T x d token matrix, averaged over the batch",
    ),
    (
        "attn_entropy_mean, attn_entropy_se",
        "rows with attention: the mean over heads, queries and the batch of -sum_s A_ts ln A_ts (ln T when uniform)",
    ),
    (
        "grad_wq_mean, grad_wk_mean, grad_wv_mean (and _se)",
        "rows with attention, --backward: the mean square entry of dL/dW_Q, dL/dW_K, dL/dW_V, L = delta_L . x_L (Noci et al. 2022: the query and key gradients vanish under rank collapse)",
    ),
    (
        "NAME_theory",
        "the prediction for NAME_mean (mean field, or exact where it holds)",
    ),
    ("NAME_z", "(NAME_mean - NAME_theory) / NAME_se"),
    (
        "log_q_post_sample_std_theory",
        "the exact spread of one input's ln q (relu, identity)",
    ),
];

/// Whether `varprop run` can have the column `name` (CSV header).
pub fn known_column(name: &str) -> bool {
    let predicted = |suffix: &str| {
        name.strip_suffix(suffix)
            .is_some_and(|base| PREDICTED.contains(&base))
    };
    ["layer", "width", "log_q_post_sample_std_theory"].contains(&name)
        || [
            MEASURED_COLUMNS,
            BACKWARD_COLUMNS,
            WEIGHT_GRAD_COLUMNS,
            JACOBIAN_COLUMNS,
            super::ntk::NTK_COLUMNS,
            &[
                "ntk_layer_theory",
                "ntk_layer_z",
                "ntk_layer_c_theory",
                "ntk_layer_c_z",
            ],
        ]
        .iter()
        .any(|list| list.contains(&name))
        || super::spp::SPP_QUANTITIES.iter().any(|q| {
            name.strip_prefix(q)
                .is_some_and(|rest| ["_mean", "_se", "_theory", "_z"].contains(&rest))
        })
        || super::tokens::TOKEN_QUANTITIES.iter().any(|q| {
            name.strip_prefix(q)
                .is_some_and(|rest| ["_mean", "_se", "_theory", "_z"].contains(&rest))
        })
        || predicted("_theory")
        || predicted("_z")
}

/// The probe flag a column needs, if any.
pub fn probe_of_column(name: &str) -> Option<&'static str> {
    if name.starts_with("g_") || name.starts_with("log_g_") {
        Some("--backward")
    } else if name.starts_with("gw_") {
        Some("--weight-grads")
    } else if name.contains("jac_m1") {
        Some("--jacobian")
    } else if name.starts_with("ntk_") {
        Some("--ntk")
    } else if name.starts_with("spp_") {
        Some("--spp")
    } else {
        None
    }
}

pub fn run_table(spec: &RunSpec, run: &RunOutput) -> Table {
    let probes = spec.probes;
    let mut columns: Vec<String> = vec!["layer".into(), "width".into()];
    columns.extend(MEASURED_COLUMNS.iter().map(|c| c.to_string()));
    let optional = [
        (probes.backward, BACKWARD_COLUMNS),
        (probes.weight_grads, WEIGHT_GRAD_COLUMNS),
        (probes.jacobian, JACOBIAN_COLUMNS),
    ];
    for (on, names) in optional {
        if on {
            columns.extend(names.iter().map(|c| c.to_string()));
        }
    }
    let rows = run
        .summary
        .iter()
        .enumerate()
        .map(|(l, s)| {
            let mut row = vec![Cell::Int(l as u64), Cell::Int(spec.net.widths[l] as u64)];
            for (a, b) in [
                s.q_pre,
                s.log_q_pre,
                s.q_post,
                s.log_q_post,
                s.mean_pre,
                s.mean_post,
                s.kurt_pre,
                s.zero_frac,
                s.c_pre,
            ] {
                row.push(Cell::Num(a));
                row.push(Cell::Num(b));
            }
            row.push(Cell::Num(s.sample_log_q_post_mean));
            row.push(Cell::Num(s.sample_log_q_post_se));
            row.push(Cell::Num(s.sample_log_q_post_std));
            row.push(Cell::Num(s.log1m_c_pre.0));
            row.push(Cell::Num(s.log1m_c_pre.1));
            if probes.backward {
                row.extend([s.g.0, s.g.1, s.log_g.0, s.log_g.1].map(Cell::Num));
            }
            if probes.weight_grads {
                // no weight gradient for the input row
                row.extend(if l == 0 {
                    [Cell::Empty, Cell::Empty]
                } else {
                    [s.gw.0, s.gw.1].map(Cell::Num)
                });
            }
            if probes.jacobian {
                row.extend([s.jac_m1.0, s.jac_m1.1, s.log_jac_m1.0, s.log_jac_m1.1].map(Cell::Num));
            }
            row
        })
        .collect();
    Table { columns, rows }
}

/// The Jacobian of the whole network: m1 = mean ||J u||^2, m2 = mean
/// ||J^T J u||^2 over unit probes u (estimates of the first two moments of
/// the squared singular values), and the spread m2/m1^2 - 1; per network,
/// then mean and standard error across networks.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct JacobianSummary {
    pub jac_m1_mean: f64,
    pub jac_m1_se: f64,
    pub jac_m2_mean: f64,
    pub jac_m2_se: f64,
    pub jac_spread_mean: f64,
    pub jac_spread_se: f64,
}

pub fn jacobian_summary(run: &RunOutput) -> JacobianSummary {
    use crate::sim::stats::{mean_se, mean_se_of_exp};
    let logs1 = run.tops.iter().map(|t| t.log_jac_m1);
    let logs2 = run.tops.iter().map(|t| t.log_jac_m2);
    let (m1, m1_se) = mean_se_of_exp(logs1);
    let (m2, m2_se) = mean_se_of_exp(logs2);
    let (spread, spread_se) = mean_se(
        run.tops
            .iter()
            .map(|t| (t.log_jac_m2 - 2.0 * t.log_jac_m1).exp() - 1.0),
    );
    JacobianSummary {
        jac_m1_mean: m1,
        jac_m1_se: m1_se,
        jac_m2_mean: m2,
        jac_m2_se: m2_se,
        jac_spread_mean: spread,
        jac_spread_se: spread_se,
    }
}

/// The per-position second moments of one row beside the theory's: one CSV
/// line per position (y, x), means and standard errors across networks.
pub fn position_map_csv(
    spec: &RunSpec,
    a: &crate::spec::ArchRun,
    row: usize,
    run: &RunOutput,
) -> String {
    let theory = crate::theory::arch::arch_table_with_tokens(
        &a.arch,
        spec.net.q0,
        spec.net.c0,
        a.token_c0,
        a.mean_preserving,
    );
    let crate::model::arch::Shape::Image(_, _, w) = a.arch.shape(row) else {
        return String::new();
    };
    let mut out =
        String::from("y,x,q_pre_mean,q_pre_se,q_pre_theory,q_post_mean,q_post_se,q_post_theory\n");
    for p in 0..theory[row].pre.q.len() {
        let (pre, pre_se) = crate::sim::stats::mean_se(run.positions.iter().map(|(pre, _)| pre[p]));
        let (post, post_se) =
            crate::sim::stats::mean_se(run.positions.iter().map(|(_, post)| post[p]));
        out += &format!(
            "{},{},{pre:?},{pre_se:?},{:?},{post:?},{post_se:?},{:?}\n",
            p / w,
            p % w,
            theory[row].pre.q[p],
            theory[row].post.q[p]
        );
    }
    out
}

/// A compact width list: runs of equal widths as NxK.
pub fn widths_text(widths: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < widths.len() {
        let mut j = i;
        while j + 1 < widths.len() && widths[j + 1] == widths[i] {
            j += 1;
        }
        let k = j - i + 1;
        parts.push(if k == 1 {
            widths[i].to_string()
        } else {
            format!("{}x{k}", widths[i])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Consecutive weight layers that share one resolved law: what the config
/// block and the table header state, so that nobody has to guess what a
/// scheme name meant.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerLaws {
    /// The weight layers, 1-based (an architecture file's layers in the
    /// order of their random streams).
    pub first_layer: usize,
    pub last_layer: usize,
    pub weight_dist: crate::model::init::Dist,
    /// A truncated normal's bound, in std of the untruncated normal.
    pub truncation: Option<f64>,
    /// v fan_in: the entry variance times the fan-in.
    pub v_fan_in: f64,
    pub fan_in: usize,
    pub gain: Option<f64>,
    pub gain_source: Option<String>,
    pub bias_dist: Option<crate::model::init::Dist>,
    pub bias_variance: f64,
}

impl LayerLaws {
    /// "layers 1-50: normal, v fan_in = 2, gain 1.414 (...); bias none".
    pub fn in_words(&self) -> String {
        use crate::model::init::describe;
        let layers = if self.first_layer == self.last_layer {
            format!("layer {}", self.first_layer)
        } else {
            format!("layers {}-{}", self.first_layer, self.last_layer)
        };
        let weights = describe::law_in_words(
            &crate::model::init::WeightLaw {
                dist: self.weight_dist,
                variance: self.v_fan_in / self.fan_in as f64,
            },
            self.fan_in,
        );
        let gain = match (&self.gain, &self.gain_source) {
            (Some(g), Some(source)) => {
                format!(", gain {} ({source})", crate::io::output::format_num(*g))
            }
            _ => String::new(),
        };
        let bias = describe::bias_in_words(&crate::model::init::WeightLaw {
            dist: self.bias_dist.unwrap_or(crate::model::init::Dist::Normal),
            variance: self.bias_variance,
        });
        format!("{layers}: W {weights}{gain}; bias {bias}")
    }
}

/// The resolved law of every weight layer of a run, runs of equal laws merged.
pub fn layer_laws(spec: &RunSpec) -> Vec<LayerLaws> {
    network_layer_laws(&spec.net, spec.arch.as_ref().map(|a| &a.arch))
}

/// The same for a plain stack, or an architecture's layers.
pub fn network_layer_laws(
    net: &crate::spec::NetworkSpec,
    arch: Option<&crate::model::arch::Architecture>,
) -> Vec<LayerLaws> {
    use crate::model::init::{GainSource, InitSpec, WeightLaw};
    // Runs are merged as the layers go by, on a key with no strings in it:
    // a depth-10^7 stack makes one entry, not 10^7.
    let mut runs: Vec<LayerLaws> = Vec::new();
    let mut last_key = None;
    let mut add = |layer: usize, w: WeightLaw, b: WeightLaw, fan_in: usize, init: &InitSpec| {
        let v_fan_in = w.variance * fan_in as f64;
        let key = (w, v_fan_in, fan_in, init.gain, init.gain_source, b);
        // a run covers consecutive layers (a normalisation between two equal
        // laws splits them: it has none)
        let adjacent = runs.last().is_some_and(|r| r.last_layer + 1 == layer);
        if last_key == Some(key) && adjacent {
            runs.last_mut().expect("a run is open").last_layer = layer;
            return;
        }
        last_key = Some(key);
        let has_gain = init.gain_source != GainSource::None;
        runs.push(LayerLaws {
            first_layer: layer,
            last_layer: layer,
            weight_dist: w.dist,
            truncation: w.dist.truncation(),
            v_fan_in,
            fan_in,
            gain: has_gain.then_some(init.gain),
            gain_source: has_gain.then(|| init.gain_source.describe()),
            bias_dist: (b.variance > 0.0).then_some(b.dist),
            bias_variance: b.variance,
        });
    };
    match arch {
        Some(a) => {
            // normalisations have no weights: they keep their numbers but no laws
            let layers = a.blocks.iter().flat_map(|b| b.layers()).enumerate();
            for (i, l) in layers.filter(|(_, l)| l.has_weights()) {
                add(
                    i + 1,
                    l.weight_law(i + 1),
                    l.bias_law(),
                    l.fans().0,
                    &l.init,
                );
            }
        }
        None => {
            for l in 1..=net.depth() {
                add(
                    l,
                    net.weight_law(l),
                    net.bias_law(l),
                    net.widths[l - 1],
                    &net.init,
                );
            }
        }
    }
    runs
}

/// The init line of the table header: the scheme, its convention, and the
/// first few runs of layer laws (all of them are in the JSON config).
pub fn init_header(
    net: &crate::spec::NetworkSpec,
    arch: Option<&crate::model::arch::Architecture>,
) -> String {
    const SHOWN: usize = 3;
    let laws = network_layer_laws(net, arch);
    let mut text = match arch {
        Some(_) => "init per the architecture file: ".to_string(),
        None => format!(
            "init {} ({} convention): ",
            net.init.scheme.name(),
            net.init.convention.name()
        ),
    };
    let words: Vec<String> = laws.iter().take(SHOWN).map(|l| l.in_words()).collect();
    text += &words.join("; ");
    if laws.len() > SHOWN {
        text += &format!(
            "; and {} more runs of layers (the JSON config's layer_laws)",
            laws.len() - SHOWN
        );
    }
    text
}

/// The fully resolved configuration, as the JSON `config` block.
pub fn config_json(spec: &RunSpec, run: &RunOutput) -> serde_json::Value {
    let net = &spec.net;
    let init = &net.init;
    let layer1 = net.weight_law(1);
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "engine": run.info.engine,
        "engine_reason": run.info.engine_reason,
        "gram_rank_min": run.info.gram_rank_min,
        "adapter": run.info.adapter.as_ref().map(|a| a.name.clone()),
        "backend": run.info.adapter.as_ref().map(|a| a.backend.clone()),
        "device_type": run.info.adapter.as_ref().map(|a| a.device_type.clone()),
        "seed": spec.seed,
        "widths": widths_text(&net.widths),
        "depth": net.depth(),
        "act": net.act.name(),
        "act_param": net.act.param(),
        "init": init.scheme.name(),
        "convention": init.convention,
        "gain": init.gain,
        "gain_source": init.gain_source.describe(),
        "fan_mode": init.fan_mode.name(),
        "layer1_weight_dist": layer1.dist,
        "layer1_weight_variance": layer1.variance,
        "sigma_w2": init.sigma_w2,
        "sigma_b2": net.bias_law(1).variance,
        "bias_dist": net.bias_law(1).dist,
        "layer_laws": layer_laws(spec),
        "q0": net.q0,
        "c0": net.c0,
        "batch": spec.batch,
        "networks": spec.networks,
        "renormalised": spec.renormalises(),
        "backward": spec.probes.backward,
        "jacobian": spec.probes.jacobian,
        "weight_grads": spec.probes.weight_grads,
        "checkpoint_every": run.info.checkpoint_every,
        "chunk": run.info.chunk,
        "device_bytes_peak": run.info.device_bytes_peak,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn widths_are_compacted() {
        assert_eq!(
            super::widths_text(&[784, 1024, 1024, 1024, 10]),
            "784,1024x3,10"
        );
    }
}

#[cfg(test)]
mod legend_tests {
    use super::*;

    /// The legend's names, `a_mean, _se` written out as `a_mean, a_se`.
    fn legend_names() -> Vec<String> {
        let mut names = Vec::new();
        for (entry, _) in COLUMN_LEGEND {
            let mut parts = entry.split(", ");
            let first = parts.next().unwrap();
            let base = first.rsplit_once('_').map_or(first, |(b, _)| b);
            names.push(first.to_string());
            for p in parts {
                names.push(if p.starts_with('_') {
                    format!("{base}{p}")
                } else {
                    p.to_string()
                });
            }
        }
        names
    }

    /// Every measured column `run` can write is in `varprop columns`.
    #[test]
    fn the_legend_covers_every_measured_column() {
        let names = legend_names();
        let spp: Vec<String> = super::super::spp::SPP_QUANTITIES
            .iter()
            .flat_map(|q| [format!("{q}_mean"), format!("{q}_se")])
            .collect();
        let spp: Vec<&str> = spp.iter().map(String::as_str).collect();
        for list in [
            MEASURED_COLUMNS,
            BACKWARD_COLUMNS,
            WEIGHT_GRAD_COLUMNS,
            JACOBIAN_COLUMNS,
            &spp,
        ] {
            for column in list {
                assert!(
                    names.iter().any(|n| n == column),
                    "{column} is not in the legend"
                );
            }
        }
    }
}
