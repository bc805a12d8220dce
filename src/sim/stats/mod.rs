//! Per-layer moments (DESIGN section 2): from one network's partial sums to
//! its measurement of a layer, and from S networks to means, standard errors
//! and the spread of log q. Both engines go through these functions, so the
//! CPU reference checks the kernels, not a second copy of this arithmetic.

/// Sums over one layer of one network, in f64, on the stored scale (see
/// `log_scale`): per pair (2k, 2k+1) and over everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerSums {
    pub width: usize,
    pub batch: usize,
    /// per pair: sum h_a^2, sum h_b^2, sum h_a h_b, sum x_a^2, sum x_b^2,
    /// sum (h_a - h_b)^2
    pub pairs: Vec<[f64; 6]>,
    pub sum_h: f64,
    pub sum_h4: f64,
    pub sum_x: f64,
    /// units with phi'(h) = 0
    pub zeros: f64,
    /// The renormalisation factor this layer applied to the next one
    /// (1 unless the stack is homogeneous).
    pub renorm: f64,
}

/// Sums of squares per row (one per sample, tangent, or backward vector) of
/// one layer, on the stored scale, with the renormalisation factor(s) the
/// engine applied after it: `renorm[0]` for the first B rows, `renorm[1]`
/// for the rest (the vector-Jacobian rows of the backward pass).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowSums {
    pub norms: Vec<f64>,
    pub renorm: [f64; 2],
}

/// Everything one network's run measured, rows 0..=L, before scales are
/// undone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkSums {
    pub forward: Vec<LayerSums>,
    /// ||t_l||^2 per probe (row 0: ||u||^2), with the tangent's renormalisation.
    pub tangent: Option<Vec<RowSums>>,
    /// ||delta_l||^2 per row: B gradient rows, then B vector-Jacobian rows
    /// with --jacobian (row 0 is the gradient with respect to the input).
    pub backward: Option<Vec<RowSums>>,
    /// Layers 1..=L (index l-1): the Gram matrices (B x B, row-major) of
    /// x_{l-1} and of delta_l, on the stored scales.
    pub grams: Option<Vec<(Vec<f64>, Vec<f64>)>>,
    /// One row's sums of pre^2 and post^2 per spatial position (over channels
    /// and the batch), on the stored scale (--position-map).
    pub positions: Option<PositionSums>,
    /// The empirical NTK's Gram matrices (--ntk on a plain stack).
    pub ntk: Option<NtkSums>,
    /// The empirical NTK's terms per row (--ntk through an architecture file).
    pub ntk_terms: Option<ntk::NtkTerms>,
    /// Per row, the per-channel sums of the Signal Propagation Plot (--spp).
    pub channels: Option<Vec<ChannelSums>>,
    /// Per row, the token statistics (runs on sequences).
    pub tokens: Option<Vec<tokens::TokenSums>>,
}

impl NetworkSums {
    /// A network's sums, without per-position sums.
    pub fn new(
        forward: Vec<LayerSums>,
        tangent: Option<Vec<RowSums>>,
        backward: Option<Vec<RowSums>>,
        grams: Option<Vec<(Vec<f64>, Vec<f64>)>>,
    ) -> Self {
        NetworkSums {
            forward,
            tangent,
            backward,
            grams,
            positions: None,
            ntk: None,
            ntk_terms: None,
            channels: None,
            tokens: None,
        }
    }
}

/// Sums of squares per spatial position of one row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PositionSums {
    pub row: usize,
    /// channels times batch: the terms in each sum
    pub count: usize,
    pub pre: Vec<f64>,
    pub post: Vec<f64>,
}

/// The per-position second moments (pre, post) of a network's position row,
/// on the true scale.
pub fn network_positions(sums: &NetworkSums) -> Option<(Vec<f64>, Vec<f64>)> {
    let p = sums.positions.as_ref()?;
    let log_t = carried_log_scales(sums.forward.iter().map(|s| s.renorm))[p.row];
    let scale = (2.0 * log_t).exp() / p.count as f64;
    Some((
        p.pre.iter().map(|v| v * scale).collect(),
        p.post.iter().map(|v| v * scale).collect(),
    ))
}

/// Per-network results that are not per layer: the Jacobian's moments.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetworkTop {
    /// log of the mean over probes of ||J u||^2/||u||^2 (J: input to output)
    pub log_jac_m1: f64,
    /// log of the mean over probes of ||J^T J u||^2/||u||^2
    pub log_jac_m2: f64,
}

/// One network's measurement of one layer, on the true scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerSample {
    pub log_q_pre: f64,
    pub log_q_post: f64,
    pub mean_pre: f64,
    pub mean_post: f64,
    pub kurt_pre: f64,
    pub zero_frac: f64,
    pub c_pre: f64,
    /// log(1 - c_pre), from the pairs' differences (`pair_correlation`): the
    /// scale on which c near 1 is compared.
    pub log1m_c_pre: f64,
    /// Mean over the batch of log(||x_b||^2 / n): the per-input log q.
    pub sample_log_q_post: f64,
    /// Mean over the batch of its square (for the spread across inputs).
    pub sample_log_q_post_sq: f64,
    /// log of the mean of delta^2 over the gradient rows and units (NaN
    /// without the backward pass).
    pub log_g: f64,
    /// log of the mean square entry of the weight gradient of this layer.
    pub log_gw: f64,
    /// log of the mean over probes of ||J_l u||^2/||u||^2.
    pub log_jac_m1: f64,
}

impl LayerSample {
    /// `log_scale` is log T: the true values are T times the stored ones
    /// (T = 1 unless the engine renormalised).
    pub fn from_sums(s: &LayerSums, log_scale: f64) -> Self {
        let count = (s.width * s.batch) as f64;
        let sum_h2: f64 = s.pairs.iter().map(|p| p[0] + p[1]).sum();
        let sum_x2: f64 = s.pairs.iter().map(|p| p[3] + p[4]).sum();
        let q_pre = sum_h2 / count;
        let scale = log_scale.exp();
        let one_minus_c = s
            .pairs
            .iter()
            .map(|p| 1.0 - pair_correlation(p))
            .sum::<f64>()
            / s.pairs.len() as f64;
        let c_pre = 1.0 - one_minus_c;
        let n = s.width as f64;
        let (mut log_sum, mut log_sq) = (0.0, 0.0);
        for p in &s.pairs {
            for norm2 in [p[3], p[4]] {
                let l = (norm2 / n).ln() + 2.0 * log_scale;
                log_sum += l;
                log_sq += l * l;
            }
        }
        LayerSample {
            log_q_pre: q_pre.ln() + 2.0 * log_scale,
            log_q_post: (sum_x2 / count).ln() + 2.0 * log_scale,
            mean_pre: s.sum_h / count * scale,
            mean_post: s.sum_x / count * scale,
            kurt_pre: (s.sum_h4 / count) / (q_pre * q_pre),
            zero_frac: s.zeros / count,
            c_pre,
            log1m_c_pre: one_minus_c.ln(),
            sample_log_q_post: log_sum / s.batch as f64,
            sample_log_q_post_sq: log_sq / s.batch as f64,
            log_g: f64::NAN,
            log_gw: f64::NAN,
            log_jac_m1: f64::NAN,
        }
    }

    pub fn is_finite(&self) -> bool {
        self.log_q_pre.is_finite() && self.log_q_post.is_finite() && self.mean_pre.is_finite()
    }

    pub const NAN: LayerSample = LayerSample {
        log_q_pre: f64::NAN,
        log_q_post: f64::NAN,
        mean_pre: f64::NAN,
        mean_post: f64::NAN,
        kurt_pre: f64::NAN,
        zero_frac: f64::NAN,
        c_pre: f64::NAN,
        log1m_c_pre: f64::NAN,
        sample_log_q_post: f64::NAN,
        sample_log_q_post_sq: f64::NAN,
        log_g: f64::NAN,
        log_gw: f64::NAN,
        log_jac_m1: f64::NAN,
    };
}

/// The correlation of a pair from its sums: 1 - c = (sum (h_a - h_b)^2 -
/// (|h_a| - |h_b|)^2) / (2 |h_a| |h_b|), which keeps the relative precision
/// of 1 - c however close c is to 1 (the f32 sums of h_a h_b and h_a^2 agree
/// to about 1e-7, and deep networks reach 1 - c ~ 1e-5 and below).
pub fn pair_correlation(p: &[f64; 6]) -> f64 {
    let (na, nb) = (p[0].sqrt(), p[1].sqrt());
    1.0 - (p[5] - (na - nb) * (na - nb)) / (2.0 * na * nb)
}

/// log of the mean of exp(x) over the values, computed relative to the
/// largest so that nothing over- or underflows.
pub fn log_mean_exp(logs: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = logs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        // f64::max skips NaN: all -inf beside a NaN is NaN, not -inf (a 0)
        return if logs.clone().any(f64::is_nan) {
            f64::NAN
        } else {
            top
        };
    }
    let n = logs.clone().count() as f64;
    top + (logs.map(|x| (x - top).exp()).sum::<f64>() / n).ln()
}

/// The logs of the scales T of a renormalised sequence of rows, true =
/// T * stored: T = 1 for the first row produced and T_next = T / r, where r
/// is the factor the engine applied after a row. `renorms` lists r in the
/// order the rows were produced.
fn carried_log_scales(renorms: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut log_t = 0.0;
    let mut out = Vec::new();
    for r in renorms {
        out.push(log_t);
        log_t -= r.ln();
    }
    out
}

/// Where one network's values stopped being finite: f32 overflow in the
/// engine's partial sums (the CPU reference's f64 only much later). Each
/// entry is a column marked NaN, the row where that happened first (for g,
/// the backward pass's first, from the top), and a description for the
/// warning; entries are in the order they were found, forward first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NonFinite {
    pub marks: Vec<NonFiniteMark>,
    /// The first row from which every column is NaN: h itself could not be
    /// measured (its sums of h or h^2 overflowed).
    pub all_from: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteMark {
    /// The column's name as in the table, without `_mean` (`kurt_pre`, `g`).
    pub column: &'static str,
    pub row: usize,
    /// Where it is NaN, for the warning: "kurt_pre on 71 rows from layer 58".
    pub what: String,
}

impl NonFinite {
    /// The first row and column that became non-finite (the earliest row;
    /// on a tie, the first found).
    pub fn first(&self) -> Option<(usize, &'static str)> {
        let mut first: Option<&NonFiniteMark> = None;
        for m in &self.marks {
            if first.is_none_or(|f| m.row < f.row) {
                first = Some(m);
            }
        }
        first.map(|m| (m.row, m.column))
    }

    /// The warning for network `network`, if any value of it was not finite.
    pub fn warning(&self, network: usize) -> Option<String> {
        let (row, column) = self.first()?;
        let lost: Vec<String> = self.marks.iter().map(|m| m.what.clone()).collect();
        Some(format!(
            "network {network}: values became non-finite (overflow in f32) at layer {row}, first in {column}; NaN where they did: {}",
            lost.join(", ")
        ))
    }

    fn mark(&mut self, column: &'static str, row: usize, what: String) {
        self.marks.push(NonFiniteMark { column, row, what });
    }

    /// Marks a column found non-finite at `rows` (ascending), if any.
    fn mark_rows(&mut self, column: &'static str, rows: &[usize]) {
        match rows {
            [] => {}
            [one] => self.mark(column, *one, format!("{column} at layer {one}")),
            [first, ..] => self.mark(
                column,
                *first,
                format!("{column} on {} rows from layer {first}", rows.len()),
            ),
        }
    }
}

/// A log-scale value that is not a number or +inf: its sums were not finite
/// (-inf is the log of a true 0, e.g. a dead layer, and is kept).
fn log_lost(v: f64) -> bool {
    v.is_nan() || v == f64::INFINITY
}

/// Turns one network's sums into samples (rows 0..=L) and its Jacobian
/// moments: undoes every renormalisation by carrying its log, and marks NaN
/// every value that could not be computed from finite sums, saying where
/// (`NonFinite`): every column from the first row whose h overflowed on, a
/// single column of a row where only its own sums overflowed, and the
/// backward pass's columns on every row once it ran through an overflowed
/// row.
pub fn network_results(sums: &NetworkSums) -> (Vec<LayerSample>, NetworkTop, NonFinite) {
    let (mut samples, mut lost) = network_samples(&sums.forward);
    let depth = samples.len() - 1;
    let batch = sums.forward[0].batch;
    let mut top = NetworkTop {
        log_jac_m1: f64::NAN,
        log_jac_m2: f64::NAN,
    };
    let width = |l: usize| sums.forward[l].width as f64;
    let forward_log_t = carried_log_scales(sums.forward.iter().map(|s| s.renorm));
    let all_from = lost.all_from.unwrap_or(depth + 1);

    // tangents: row 0 holds ||u_b||^2
    let mut log_u = vec![0.0; batch];
    if let Some(tangent) = &sums.tangent {
        let log_t = carried_log_scales(tangent.iter().map(|t| t.renorm[0]));
        log_u = tangent[0].norms.iter().map(|u| u.ln()).collect();
        for (l, t) in tangent.iter().enumerate() {
            let ratios = t.norms.iter().zip(&log_u).map(|(n, lu)| n.ln() - lu);
            samples[l].log_jac_m1 = 2.0 * log_t[l] + log_mean_exp(ratios);
        }
        // the tangent is carried forward: an overflow spoils the rows above
        if let Some(bad) = (0..all_from).find(|&l| log_lost(samples[l].log_jac_m1)) {
            for s in &mut samples[bad..] {
                s.log_jac_m1 = f64::NAN;
            }
            lost.mark_rows("jac_m1", &(bad..all_from).collect::<Vec<_>>());
        }
    }

    if let Some(backward) = &sums.backward {
        // produced from the top down: delta_L is stored at its true scale
        let down = carried_log_scales(backward.iter().rev().map(|b| b.renorm[0]));
        for (l, b) in backward.iter().enumerate() {
            let log_t = down[depth - l];
            let mean = b.norms[..batch].iter().sum::<f64>() / (batch as f64 * width(l));
            samples[l].log_g = mean.ln() + 2.0 * log_t;
        }
        if let (Some(tangent), true) = (&sums.tangent, backward[0].norms.len() == 2 * batch) {
            // the vector-Jacobian rows start at the top as phi'(h_L) t_L,
            // at the tangent's scale
            let tangent_log_t = carried_log_scales(tangent.iter().map(|t| t.renorm[0]));
            let start = tangent_log_t[depth];
            let vjp = carried_log_scales(backward.iter().rev().map(|b| b.renorm[1]));
            let log_t0 = start + vjp[depth];
            let ratios = backward[0].norms[batch..]
                .iter()
                .zip(&log_u)
                .map(|(n, lu)| n.ln() - lu);
            top.log_jac_m2 = 2.0 * log_t0 + log_mean_exp(ratios);
        }
        if let Some(grams) = &sums.grams {
            for (i, (gx, gd)) in grams.iter().enumerate() {
                let l = i + 1;
                let dot: f64 = gx.iter().zip(gd).map(|(a, b)| a * b).sum();
                let mean = dot / ((batch * batch) as f64 * width(l) * width(l - 1));
                samples[l].log_gw = mean.ln() + 2.0 * forward_log_t[l - 1] + 2.0 * down[depth - l];
            }
        }
        // The backward pass starts at the top row and walks down through
        // phi'(h_l): once the forward pass overflowed at some row, or delta
        // itself at row l, every row below was computed from it, and none
        // of g, gw (or the Jacobian's m2) is known there.
        let backward_from = if all_from <= depth {
            Some(all_from)
        } else {
            (0..=depth).rev().find(|&l| log_lost(samples[l].log_g))
        };
        if let Some(from) = backward_from {
            // rows 0..end (from itself too, unless every column is lost there)
            let end = if from == all_from { from } else { from + 1 };
            for s in &mut samples[..end] {
                s.log_g = f64::NAN;
                s.log_gw = f64::NAN;
            }
            top.log_jac_m2 = f64::NAN;
            let columns = if sums.grams.is_some() {
                "g and gw"
            } else {
                "g"
            };
            let what = if from == all_from {
                format!("{columns} on every row (the backward pass runs through layer {from})")
            } else {
                format!("{columns} from layer {from} down")
            };
            lost.mark("g", from, what);
        } else if sums.grams.is_some() {
            // the weight gradient also needs x_{l-1}'s Gram matrix
            let gw_lost: Vec<usize> = (1..=depth)
                .filter(|&l| log_lost(samples[l].log_gw))
                .collect();
            for &l in &gw_lost {
                samples[l].log_gw = f64::NAN;
            }
            lost.mark_rows("gw", &gw_lost);
        }
    }
    if let Some(l) = lost.all_from {
        for s in &mut samples[l..] {
            *s = LayerSample::NAN;
        }
    }
    if sums.tangent.is_some() {
        top.log_jac_m1 = samples[depth].log_jac_m1;
    }
    (samples, top, lost)
}

/// Marks NaN the columns of a row whose own f32 sums overflowed while h's
/// did not, and returns their names in table order.
///
/// Why only those columns: the engines' partial sums are f32, and sum h^4
/// overflows (q ~ 1e17 at width 64) long before sum h^2 or h itself does
/// (q ~ 1e36). Such a row's q, c and means come from finite sums and are
/// right, so they are kept; the kurtosis is not infinite, it is unknown, so
/// it is NaN rather than inf, and the warning says so. The next rows are
/// computed from finite h, so each row is judged by its own sums. Sums
/// that are finite but give no value (0/0 at a dead layer) stay as they
/// are: nothing overflowed there.
fn mask_overflowed(sample: &mut LayerSample, s: &LayerSums) -> Vec<&'static str> {
    let pairs_finite = |i: usize| s.pairs.iter().all(|p| p[i].is_finite());
    let mut lost = Vec::new();
    if !(pairs_finite(3) && pairs_finite(4)) {
        sample.log_q_post = f64::NAN;
        sample.sample_log_q_post = f64::NAN;
        sample.sample_log_q_post_sq = f64::NAN;
        lost.push("q_post");
    }
    if !s.sum_x.is_finite() {
        sample.mean_post = f64::NAN;
        lost.push("mean_post");
    }
    if !s.sum_h4.is_finite() {
        sample.kurt_pre = f64::NAN;
        lost.push("kurt_pre");
    }
    if !s.zeros.is_finite() {
        sample.zero_frac = f64::NAN;
        lost.push("zero_frac");
    }
    if !pairs_finite(5) {
        sample.c_pre = f64::NAN;
        sample.log1m_c_pre = f64::NAN;
        lost.push("c_pre");
    }
    lost
}

/// The forward part of `network_results`: the samples, with what was not
/// finite marked NaN and recorded.
pub fn network_samples(sums: &[LayerSums]) -> (Vec<LayerSample>, NonFinite) {
    let mut log_scale = 0.0;
    let mut out = Vec::with_capacity(sums.len());
    let mut lost = NonFinite::default();
    // per column, the rows where only it overflowed
    let mut columns: Vec<(&'static str, Vec<usize>)> = Vec::new();
    for (l, s) in sums.iter().enumerate() {
        if lost.all_from.is_some() {
            out.push(LayerSample::NAN);
            continue;
        }
        let mut sample = LayerSample::from_sums(s, log_scale);
        // a dead layer (all zero) is finite, only its log is -inf
        let q_finite = !sample.log_q_pre.is_nan() && sample.log_q_pre != f64::INFINITY;
        if sample.mean_pre.is_finite() && q_finite {
            for name in mask_overflowed(&mut sample, s) {
                match columns.iter_mut().find(|(c, _)| *c == name) {
                    Some((_, rows)) => rows.push(l),
                    None => columns.push((name, vec![l])),
                }
            }
            out.push(sample);
        } else {
            for (name, rows) in columns.drain(..) {
                lost.mark_rows(name, &rows);
            }
            lost.all_from = Some(l);
            let column = if q_finite { "mean_pre" } else { "q_pre" };
            lost.mark(
                column,
                l,
                format!("every column from layer {l} on ({column})"),
            );
            out.push(LayerSample::NAN);
        }
        // the next layer's stored values are r times smaller than true ones
        log_scale -= s.renorm.ln();
    }
    for (name, rows) in columns {
        lost.mark_rows(name, &rows);
    }
    (out, lost)
}

/// Mean and standard error of the mean (NaN for one value).
pub fn mean_se(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mean, std) = mean_std(values.clone());
    let n = values.count() as f64;
    (mean, std / n.sqrt())
}

/// Mean and sample standard deviation (n - 1; NaN for one value).
pub fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let ss: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// Mean and standard error of exp(x) from the logs x, computed relative to
/// the largest, so that values far below f64's range (log q = -5000) keep
/// their relative spread instead of flushing to 0 before the mean is taken.
pub fn mean_se_of_exp(logs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let top = logs.clone().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return mean_se(logs.map(f64::exp));
    }
    let (mean, se) = mean_se(logs.map(|x| (x - top).exp()));
    (mean * top.exp(), se * top.exp())
}

/// The aggregate of one layer over S networks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerSummary {
    pub q_pre: (f64, f64),
    pub q_post: (f64, f64),
    /// mean and std across networks of log q
    pub log_q_pre: (f64, f64),
    pub log_q_post: (f64, f64),
    pub mean_pre: (f64, f64),
    pub mean_post: (f64, f64),
    pub kurt_pre: (f64, f64),
    pub zero_frac: (f64, f64),
    pub c_pre: (f64, f64),
    /// log(1 - c_pre): mean and standard error across networks
    pub log1m_c_pre: (f64, f64),
    /// per-input log q_post: mean (over networks and inputs), its standard
    /// error (from the per-network means, which are independent), and the
    /// standard deviation of one input's log q across networks and inputs.
    pub sample_log_q_post_mean: f64,
    pub sample_log_q_post_se: f64,
    pub sample_log_q_post_std: f64,
    /// mean of delta^2: mean and standard error; its log: mean and std
    pub g: (f64, f64),
    pub log_g: (f64, f64),
    /// mean square weight-gradient entry: mean and standard error
    pub gw: (f64, f64),
    /// mean over probes of ||J_l u||^2: mean and standard error; log: mean, std
    pub jac_m1: (f64, f64),
    pub log_jac_m1: (f64, f64),
}

/// Aggregates `per_network[s][l]` over s for every row l.
pub fn summarise(per_network: &[Vec<LayerSample>]) -> Vec<LayerSummary> {
    let rows = per_network[0].len();
    (0..rows)
        .map(|l| {
            let col = |f: fn(&LayerSample) -> f64| per_network.iter().map(move |net| f(&net[l]));
            let (sample_mean, sample_se) = mean_se(col(|s| s.sample_log_q_post));
            let second: f64 =
                col(|s| s.sample_log_q_post_sq).sum::<f64>() / per_network.len() as f64;
            // clamped at 0 against rounding, but NaN stays NaN: f64::max
            // would make the spread of no finite values 0
            let pooled_var = second - sample_mean * sample_mean;
            let pooled_var = if pooled_var < 0.0 { 0.0 } else { pooled_var };
            LayerSummary {
                q_pre: mean_se_of_exp(col(|s| s.log_q_pre)),
                q_post: mean_se_of_exp(col(|s| s.log_q_post)),
                log_q_pre: mean_std(col(|s| s.log_q_pre)),
                log_q_post: mean_std(col(|s| s.log_q_post)),
                mean_pre: mean_se(col(|s| s.mean_pre)),
                mean_post: mean_se(col(|s| s.mean_post)),
                kurt_pre: mean_se(col(|s| s.kurt_pre)),
                zero_frac: mean_se(col(|s| s.zero_frac)),
                c_pre: mean_se(col(|s| s.c_pre)),
                log1m_c_pre: mean_se(col(|s| s.log1m_c_pre)),
                sample_log_q_post_mean: sample_mean,
                sample_log_q_post_se: sample_se,
                sample_log_q_post_std: pooled_var.sqrt(),
                g: mean_se_of_exp(col(|s| s.log_g)),
                log_g: mean_std(col(|s| s.log_g)),
                gw: mean_se_of_exp(col(|s| s.log_gw)),
                jac_m1: mean_se_of_exp(col(|s| s.log_jac_m1)),
                log_jac_m1: mean_std(col(|s| s.log_jac_m1)),
            }
        })
        .collect()
}

pub mod ntk;
pub mod spp;
pub mod tokens;

pub use ntk::{NtkSums, NtkTerms};
pub use spp::ChannelSums;

#[cfg(test)]
mod tests;
