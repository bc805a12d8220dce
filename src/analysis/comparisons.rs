//! Measured against predicted: the z score of each column at each layer,
//! which comparisons the rules of `predictions` keep (`comparisons_at`,
//! `mean_is_honest`), and the bound a run's largest |z| must stay within
//! for a stated false-failure rate (`theory_bound`, `z_bound`).

use super::predictions::Prediction;
use crate::io::output::{Cell, Table};
use crate::sim::RunOutput;
use crate::spec::RunSpec;
use crate::theory;

/// log(1 - c) is compared where the spread of one input's log q across
/// networks (the finite-width scale: 5 sum 1/n_l for relu, and a collapse
/// of c does not move it) is at most this. In a float64 Monte Carlo of relu
/// networks (width 512, 48 networks, and width 2048) the log-normal estimate
/// of E[1 - c] matched the c-map to within its standard error up to a log q
/// spread of 1.5 (log(1 - c) spreading about 0.7 as much), and was 0.48 low
/// at 2.6 (row 1000 of width 512).
pub const LOG_NORMAL_MAX_LOG_Q_STD: f64 = 1.2;

/// A mean of a positive quantity is compared on a log scale up to this
/// spread of its log across networks: log q is a sum of independent
/// per-layer terms, close to normal, so that E[X] = exp(mu + s^2 / 2) up to
/// its third cumulant, kappa_3 s^3 / 6.
pub const LOG_NORMAL_MAX_LOG_STD: f64 = 1.2;

/// log E[X] estimated from the mean m and standard error se of log X over S
/// networks, for log-normal X: m + s^2 / 2 with s^2 = S se^2, and its
/// standard error sqrt(s^2 / S + s^4 / (2 (S - 1))) (the sample variance of
/// S normal values has variance 2 s^4 / (S - 1)).
pub fn log_normal_mean(m: f64, se: f64, networks: usize) -> (f64, f64) {
    let s = networks as f64;
    let var = s * se * se;
    (
        m + var / 2.0,
        (var / s + var * var / (2.0 * (s - 1.0))).sqrt(),
    )
}

/// Adds `<name>_theory` and `<name>_z` beside the measured columns, and the
/// spreads of log q the exact law predicts.
pub fn add_theory_columns(
    table: &mut Table,
    spec: &RunSpec,
    preds: &[Prediction],
    theory_net: &crate::spec::NetworkSpec,
) {
    for p in preds {
        let (Some(means), Some(ses)) =
            (table.values(&p.mean_column()), table.values(&p.se_column()))
        else {
            continue;
        };
        table.columns.push(format!("{}_theory", p.name));
        table.columns.push(format!("{}_z", p.name));
        for (l, row) in table.rows.iter_mut().enumerate() {
            row.push(Cell::from(p.theory[l]));
            let (m, s) = match (means[l], ses[l]) {
                (Some(m), Some(s)) if p.log_normal => {
                    let (m, s) = log_normal_mean(m, s, spec.networks);
                    (Some(m), Some(s))
                }
                other => other,
            };
            row.push(Cell::from(z_score(m, s, p.theory[l])));
        }
    }
    if spec.arch.is_some() {
        return;
    }
    let rows = theory::layer_table(theory_net);
    if rows.iter().all(|r| r.log_q_post_std.is_some()) {
        table.columns.push("log_q_post_sample_std_theory".into());
        for (row, r) in table.rows.iter_mut().zip(&rows) {
            row.push(Cell::from(r.log_q_post_std));
        }
        // the batch-level log q equals one input's when the batch is one
        // input twice (B = 2, c0 = 1)
        if spec.batch == 2 && spec.net.c0 == 1.0 {
            table.columns.push("log_q_post_mean_theory".into());
            table.columns.push("log_q_post_std_theory".into());
            for (row, r) in table.rows.iter_mut().zip(&rows) {
                row.push(Cell::from(r.log_q_post_mean));
                row.push(Cell::from(r.log_q_post_std));
            }
        }
    }
}

/// (measured - theory) / se; None where there is no theory or no SE.
pub fn z_score(mean: Option<f64>, se: Option<f64>, theory: Option<f64>) -> Option<f64> {
    let (m, s, t) = (mean?, se?, theory?);
    if m == t {
        return Some(0.0);
    }
    let z = (m - t) / s;
    z.is_finite().then_some(z)
}

/// One comparison of a measured mean with its prediction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    pub layer: usize,
    pub column: String,
    pub measured: f64,
    pub se: f64,
    pub theory: f64,
    pub z: f64,
    pub exact: bool,
}

/// The comparisons the rule allows (see the module documentation).
pub fn comparisons(table: &Table, run: &RunOutput, preds: &[Prediction]) -> Vec<Comparison> {
    comparisons_at(table, run, preds, FALSE_FAILURE_RATE)
}

/// `comparisons` for a family false-failure rate of `rate` (the skewness
/// rule depends on the bound).
pub fn comparisons_at(
    table: &Table,
    run: &RunOutput,
    preds: &[Prediction],
    rate: f64,
) -> Vec<Comparison> {
    let networks = run.per_network.len();
    let spread_at = |l: usize| run.summary[l].sample_log_q_post_std;
    // (the mean's comparison, the log scale's and the spread deciding)
    let mut candidates = Vec::new();
    for p in preds {
        let (Some(means), Some(ses)) =
            (table.values(&p.mean_column()), table.values(&p.se_column()))
        else {
            continue;
        };
        let mean_column = p.mean_column();
        let logs = p
            .log_columns()
            .and_then(|(m, s)| Some((table.values(&m)?, table.values(&s)?, m)));
        for l in 0..table.rows.len() {
            let (Some(m), Some(s), Some(t)) = (means[l], ses[l], p.theory[l]) else {
                continue;
            };
            let compare = |column: &str, m: f64, s: f64, t: f64| {
                z_score(Some(m), Some(s), Some(t)).map(|z| Comparison {
                    layer: l,
                    column: column.to_string(),
                    measured: m,
                    se: s,
                    theory: t,
                    z,
                    exact: p.exact,
                })
            };
            // the finite-width bias of a mean-field prediction, against the SE
            let bias_ok = |scale: f64, se: f64| p.exact || scale * spread_at(l).powi(2) < se;
            if p.log_normal {
                if !(spread_at(l) <= LOG_NORMAL_MAX_LOG_Q_STD) {
                    continue;
                }
                let (m, s) = log_normal_mean(m, s, networks);
                if let Some(c) = compare(&mean_column, m, s, t) {
                    candidates.push((Some(c), None, None));
                }
                continue;
            }
            let plain = compare(&mean_column, m, s, t).filter(|_| bias_ok(p.scale[l].abs(), s));
            let Some((log_means, log_stds, log_column)) = &logs else {
                candidates.push((plain, None, None));
                continue;
            };
            let (Some(lm), Some(ls)) = (log_means[l], log_stds[l]) else {
                continue;
            };
            let (est, est_se) = log_normal_mean(lm, ls / (networks as f64).sqrt(), networks);
            let on_log = (t > 0.0 && ls <= LOG_NORMAL_MAX_LOG_STD)
                .then(|| compare(log_column, est, est_se, t.ln()))
                .flatten()
                .filter(|_| bias_ok(1.0, est_se));
            if plain.is_some() || on_log.is_some() {
                candidates.push((plain, on_log, Some(ls)));
            }
        }
    }
    // the skewness rule at the bound of all candidates: at least the bound
    // of those kept, so at least as strict
    let bound = theory_bound_at(candidates.len(), networks, rate);
    candidates
        .into_iter()
        .filter_map(|(plain, on_log, spread)| match spread {
            Some(s) if !mean_is_honest(s, networks, bound) => on_log,
            _ => plain,
        })
        .collect()
}

/// Whether the Student-t bound z holds, to within a factor 2 in its tail,
/// for the mean of S positive values whose logs have standard deviation
/// `log_std` (close to log-normal, as q across networks is). The one-term
/// Edgeworth expansion of the studentised mean (Hall 1987) puts the lower
/// tail at P(T < -z) = Phi(-z) + gamma (2 z^2 + 1) phi(z) / (6 sqrt(S)),
/// gamma = (e^{s^2} + 2) sqrt(e^{s^2} - 1) the skewness of a log-normal law:
/// the rule asks the correction to be at most Phi(-z). At S = 32 and the
/// bound of 5,000 comparisons (z = 7.7) that is log_std <= 0.012, at 100
/// comparisons (z = 6.3) 0.022; at S = 16 and 5,000 (z = 11.3) 0.003. The
/// bound is taken at half the family's rate (`theory_bound`), so a doubled
/// tail keeps the stated rate.
pub fn mean_is_honest(log_std: f64, networks: usize, z: f64) -> bool {
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};
    if !(log_std >= 0.0) || networks < 2 {
        return false;
    }
    let skew = log_normal_skewness(log_std);
    let normal = Normal::new(0.0, 1.0).expect("standard normal");
    let tail = normal.sf(z);
    let correction = skew * (2.0 * z * z + 1.0) * normal.pdf(z) / (6.0 * (networks as f64).sqrt());
    correction <= tail
}

/// The skewness of e^{s Z}, Z standard normal.
pub fn log_normal_skewness(s: f64) -> f64 {
    let v = s * s;
    (v.exp() + 2.0) * v.exp_m1().sqrt()
}

/// The |z| bound `check` applies to `k` comparisons with theory over
/// `networks` networks: the family's false-failure rate FALSE_FAILURE_RATE,
/// half of it spent on the Bonferroni bound and half kept for the tails
/// that `mean_is_honest` allows to double.
pub fn theory_bound(k: usize, networks: usize) -> f64 {
    theory_bound_at(k, networks, FALSE_FAILURE_RATE)
}

/// `theory_bound` for a family false-failure rate of `rate`.
pub fn theory_bound_at(k: usize, networks: usize, rate: f64) -> f64 {
    z_bound(k, networks, rate / 2.0)
}

/// The |z| bound for `k` comparisons of means over `networks` networks such
/// that a correct simulator fails the whole table with probability below
/// `rate`: Bonferroni over k, each z being Student-t with S - 1 degrees of
/// freedom (the SE is estimated from the S networks).
pub fn z_bound(k: usize, networks: usize, rate: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let p = 1.0 - rate / (2.0 * k.max(1) as f64);
    let dof = (networks.max(2) - 1) as f64;
    StudentsT::new(0.0, 1.0, dof)
        .map(|t| t.inverse_cdf(p))
        .unwrap_or(f64::INFINITY)
}

/// The family-wise false-failure rate `check` is designed for.
pub const FALSE_FAILURE_RATE: f64 = 1e-4;

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest log_std `mean_is_honest` accepts, by bisection.
    fn largest_honest_spread(networks: usize, z: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, 10.0);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if mean_is_honest(mid, networks, z) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The closed form against the moments of e^{s z} integrated over the
    /// normal density (trapezoid on [-14, 14], step 1e-3).
    #[test]
    fn log_normal_skewness_matches_quadrature() {
        for s in [0.05, 0.3, 1.0] {
            let moment = |k: i32| {
                let h = 1e-3;
                (0..28_001)
                    .map(|i| {
                        let z = -14.0 + i as f64 * h;
                        let w = if i == 0 || i == 28_000 { 0.5 } else { 1.0 };
                        w * h * (k as f64 * s * z).exp() * (-0.5 * z * z).exp()
                    })
                    .sum::<f64>()
                    / (2.0 * std::f64::consts::PI).sqrt()
            };
            let (m1, m2, m3) = (moment(1), moment(2), moment(3));
            let var = m2 - m1 * m1;
            let skew = (m3 - 3.0 * m1 * var - m1.powi(3)) / var.powf(1.5);
            let closed = log_normal_skewness(s);
            assert!(
                (skew - closed).abs() < 1e-6 * closed,
                "s {s}: {skew} vs {closed}"
            );
        }
    }

    /// The rule's edges: a constant is honest, a wide spread is not, and the
    /// thresholds quoted in `check --help` are the rule's.
    #[test]
    fn honest_spread_thresholds_are_the_documented_ones() {
        assert!(mean_is_honest(0.0, 32, 7.7));
        assert!(!mean_is_honest(1.0, 32, 7.7));
        assert!(!mean_is_honest(f64::NAN, 32, 7.7));
        for (k, z, spread) in [(5000, 7.7, 0.012), (100, 6.3, 0.022)] {
            let bound = theory_bound(k, 32);
            assert!((bound - z).abs() < 0.05, "K {k}: bound {bound}");
            let top = largest_honest_spread(32, bound);
            assert!((top - spread).abs() < 0.0006, "K {k}: {top}");
        }
    }
}
