//! A run's per-layer curves on the log scale, measured beside theory: the
//! log of the mean over networks of q_pre, q_post or the backward g, with
//! its standard error, and the mean-field prediction of the same log. Plots
//! and the headline numbers of `compare`, `sweep` and `phase` read them.
//!
//! Everything stays in logs: the per-network logs are exact even where q
//! itself under- or overflows f64 (a 10,000-layer relu net whose q halves
//! every layer), and so is the log of their mean.

use crate::sim::RunOutput;
use crate::sim::stats::{LayerSample, mean_se};
use crate::spec::RunSpec;
use crate::theory;

/// Which per-layer quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// E[h^2]
    QPre,
    /// E[phi(h)^2]
    QPost,
    /// E[delta^2], the backward signal (with the backward pass).
    Gradient,
}

impl Measure {
    fn log_of(self, s: &LayerSample) -> f64 {
        match self {
            Measure::QPre => s.log_q_pre,
            Measure::QPost => s.log_q_post,
            Measure::Gradient => s.log_g,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Measure::QPre => "q_pre",
            Measure::QPost => "q_post",
            Measure::Gradient => "g",
        }
    }
}

/// The mean over networks of exp(log) for one layer, in logs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogMean {
    /// ln of the mean.
    pub ln_mean: f64,
    /// The standard error of the mean divided by the mean (the SE of
    /// ln_mean to first order).
    pub rel_se: f64,
}

impl LogMean {
    /// ln(mean + k SE), or None where mean + k SE <= 0.
    pub fn ln_shifted(&self, k: f64) -> Option<f64> {
        let f = 1.0 + k * self.rel_se;
        (f > 0.0 && f.is_finite()).then(|| self.ln_mean + f.ln())
    }
}

/// The mean of exp(x) over `logs` and its standard error, computed
/// relative to the largest so that nothing over- or underflows; None when a
/// value is not finite (a network that overflowed) or there are none.
pub fn log_mean(logs: &[f64]) -> Option<LogMean> {
    if logs.is_empty() || logs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mean, se) = mean_se(logs.iter().map(|x| (x - top).exp()));
    Some(LogMean {
        ln_mean: top + mean.ln(),
        rel_se: se / mean,
    })
}

/// One curve of a run: rows 0..=L.
#[derive(Clone, Debug, PartialEq)]
pub struct LogCurve {
    pub measure: Measure,
    pub measured: Vec<Option<LogMean>>,
    /// The mean-field ln of the same mean (exact in expectation at finite
    /// width for identity, relu, leaky-relu and abs).
    pub theory: Vec<Option<f64>>,
}

/// The mean-field curves of a run, rows 0..=L: ln q_pre, ln q_post, ln g
/// (g_L = 1) and c_pre. From the layer recurrences for plain stacks (where
/// the log is carried exactly through underflow), from the block-by-block
/// theory for architecture files and the mean-preserving bias.
#[derive(Clone, Debug, PartialEq)]
pub struct TheoryCurves {
    pub q_pre_ln: Vec<Option<f64>>,
    pub q_post_ln: Vec<Option<f64>>,
    pub g_ln: Vec<Option<f64>>,
    pub c_pre: Vec<Option<f64>>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl TheoryCurves {
    pub fn of(spec: &RunSpec) -> TheoryCurves {
        match &spec.arch {
            Some(_) => Self::from_predictions(spec),
            None => Self::from_layer_table(&theory::layer_table(&spec.net)),
        }
    }

    fn from_layer_table(rows: &[theory::LayerTheory]) -> TheoryCurves {
        // g_L = 1 (delta_L is standard normal), g_l = factor_l g_{l+1}
        let mut g_ln = vec![None; rows.len()];
        g_ln[rows.len() - 1] = Some(0.0);
        for l in (0..rows.len() - 1).rev() {
            g_ln[l] = match (rows[l].backward_factor, g_ln[l + 1]) {
                (Some(f), Some(next)) if f > 0.0 => finite(f.ln() + next),
                _ => None,
            };
        }
        TheoryCurves {
            q_pre_ln: rows.iter().map(|r| finite(r.q_pre_ln)).collect(),
            q_post_ln: rows.iter().map(|r| finite(r.q_post_ln)).collect(),
            g_ln,
            c_pre: rows.iter().map(|r| finite(r.c_pre)).collect(),
        }
    }

    /// The same predictions `run` and `check` print beside the measurement.
    fn from_predictions(spec: &RunSpec) -> TheoryCurves {
        let predictions = crate::analysis::predictions::predictions(spec, &spec.net);
        let rows = spec.net.depth() + 1;
        let column = |name: &str, ln: bool| -> Vec<Option<f64>> {
            match predictions.iter().find(|p| p.name == name) {
                Some(p) => p
                    .theory
                    .iter()
                    .map(|t| t.and_then(|t| if ln { finite(t.ln()) } else { finite(t) }))
                    .collect(),
                None => vec![None; rows],
            }
        };
        TheoryCurves {
            q_pre_ln: column("q_pre", true),
            q_post_ln: column("q_post", true),
            g_ln: column("g", true),
            c_pre: column("c_pre", false),
        }
    }
}

/// The curve of `measure` for a run beside `theory` (`TheoryCurves::of`
/// the same spec, computed once by the caller).
pub fn log_curve(
    spec: &RunSpec,
    run: &RunOutput,
    theory: &TheoryCurves,
    measure: Measure,
) -> LogCurve {
    let rows = spec.net.depth() + 1;
    let measured = (0..rows)
        .map(|l| {
            let logs: Vec<f64> = run
                .per_network
                .iter()
                .map(|net| measure.log_of(&net[l]))
                .collect();
            log_mean(&logs)
        })
        .collect();
    let theory = match measure {
        Measure::QPre => theory.q_pre_ln.clone(),
        Measure::QPost => theory.q_post_ln.clone(),
        Measure::Gradient => theory.g_ln.clone(),
    };
    LogCurve {
        measure,
        measured,
        theory,
    }
}

/// The least-squares slope of `values` (one per layer) against the layer
/// over the last half of the layers, `max(L/2, 1)` layers back from L:
/// the asymptotic rate per layer, past the transient from the input.
/// None with fewer than two finite values there.
pub fn late_slope(values: &[Option<f64>]) -> Option<f64> {
    let depth = values.len().checked_sub(1)?;
    if depth == 0 {
        return None;
    }
    let first = depth - (depth / 2).max(1);
    let points: Vec<(f64, f64)> = (first..=depth)
        .filter_map(|l| values[l].filter(|v| v.is_finite()).map(|v| (l as f64, v)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_of_the_mean_does_not_underflow() {
        let logs = [-1000.0, -1000.0 + 2f64.ln()];
        let m = log_mean(&logs).unwrap();
        assert!((m.ln_mean - (-1000.0 + 1.5f64.ln())).abs() < 1e-12);
        // values 1 and 2: mean 1.5, SE 0.5
        assert!((m.rel_se - 0.5 / 1.5).abs() < 1e-12);
        assert_eq!(m.ln_shifted(-4.0), None);
        assert!(log_mean(&[0.0, f64::NAN]).is_none());
    }

    #[test]
    fn the_slope_uses_the_last_half() {
        // flat for 5 layers, then down by 0.5 per layer
        let v: Vec<Option<f64>> = (0..=10)
            .map(|l| Some(if l <= 5 { 0.0 } else { -0.5 * (l - 5) as f64 }))
            .collect();
        assert!((late_slope(&v).unwrap() + 0.5).abs() < 1e-12);
        assert_eq!(late_slope(&[Some(1.0)]), None);
        assert!((late_slope(&[Some(1.0), Some(3.0)]).unwrap() - 2.0).abs() < 1e-12);
    }
}
