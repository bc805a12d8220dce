//! The exact finite-width law of log q, where it is known.
//!
//! With Gaussian weights (variance v_l) and no bias, the pre-activation of
//! layer l given the layer below is h_l ~ N(0, v_l ||x_{l-1}||^2 I), so
//!
//! ```text
//! ||h_l||^2 = v_l ||x_{l-1}||^2 chi^2_{n_l}                 (any phi)
//! ||x_l||^2 = v_l ||x_{l-1}||^2 chi^2_K,  K ~ Binomial(n_l, 1/2)   (relu)
//! ||x_l||^2 = v_l ||x_{l-1}||^2 chi^2_{n_l}                 (identity, abs)
//! ```
//!
//! with fresh, independent draws in every layer: the relu keeps the units
//! with h > 0, each contributing a chi^2_1. The input x_0 ~ N(0, q0 I_{n_0})
//! has ||x_0||^2 = q0 chi^2_{n_0}. So log ||x_l||^2 is a sum of independent
//! terms, and its mean and variance are sums of
//!
//! ```text
//! E[log chi^2_k] = log 2 + digamma(k/2),  Var[log chi^2_k] = trigamma(k/2).
//! ```
//!
//! For relu the event K = 0 (probability 2^-n_l) kills the network and
//! makes the log -infinity: the moments here are conditional on K >= 1 in
//! every layer. The per-row values are for one input: log q = log(||x||^2 / n).

use std::collections::HashMap;
use std::f64::consts::LN_2;

use super::special::{digamma, trigamma};
use crate::model::activation::Activation;
use crate::model::init::Dist;
use crate::spec::NetworkSpec;

/// Mean and variance of a logarithm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogMoments {
    pub mean: f64,
    pub var: f64,
}

impl LogMoments {
    pub fn std(&self) -> f64 {
        self.var.sqrt()
    }

    /// The moments of the sum of two independent logs.
    pub fn plus(self, other: LogMoments) -> LogMoments {
        LogMoments {
            mean: self.mean + other.mean,
            var: self.var + other.var,
        }
    }

    /// Shifted by a constant.
    pub fn shift(self, by: f64) -> LogMoments {
        LogMoments {
            mean: self.mean + by,
            var: self.var,
        }
    }
}

/// log chi^2_k, k > 0 degrees of freedom.
pub fn log_chi_squared(k: f64) -> LogMoments {
    LogMoments {
        mean: LN_2 + digamma(0.5 * k),
        var: trigamma(0.5 * k),
    }
}

/// Terms of Binomial(n, 1/2) below this fraction of the mode's probability
/// are dropped. The largest dropped term is below 1e-300 times the mode and
/// the terms fall off geometrically beyond it, so the dropped mass is far
/// below 1e-290 of the total. This keeps about 37 sqrt(n) terms: O(sqrt(n)).
const BINOMIAL_CUTOFF: f64 = 1e-300;

/// log chi^2_K with K ~ Binomial(n, 1/2), conditioned on K >= 1.
///
/// The binomial weights are built outward from the mode by the ratios
/// P(k+1)/P(k) = (n-k)/(k+1), relative to the mode (no factorials, so no
/// overflow at n = 10^6, and rounding grows only like the number of terms),
/// then normalised by their sum, which also does the conditioning on
/// K >= 1 (k = 0 is never included). Then
/// E = sum_k p_k (log 2 + digamma(k/2)) and, by the law of total variance,
/// Var = sum_k p_k trigamma(k/2) + Var_K[digamma(K/2)].
pub fn log_chi_squared_binomial(n: usize) -> LogMoments {
    assert!(n >= 1, "width must be >= 1");
    let mode = (n / 2).max(1);
    let mut terms: Vec<(f64, usize)> = vec![(1.0, mode)];
    let mut w = 1.0;
    for k in (1..mode).rev() {
        // P(k) / P(k+1) = (k+1) / (n-k)
        w *= (k + 1) as f64 / (n - k) as f64;
        if w < BINOMIAL_CUTOFF {
            break;
        }
        terms.push((w, k));
    }
    let mut w = 1.0;
    for k in mode..n {
        // P(k+1) / P(k) = (n-k) / (k+1)
        w *= (n - k) as f64 / (k + 1) as f64;
        if w < BINOMIAL_CUTOFF {
            break;
        }
        terms.push((w, k + 1));
    }
    let total: f64 = terms.iter().map(|(w, _)| w).sum();
    let mut mean_digamma = 0.0;
    let mut mean_trigamma = 0.0;
    for &(w, k) in &terms {
        let p = w / total;
        mean_digamma += p * digamma(0.5 * k as f64);
        mean_trigamma += p * trigamma(0.5 * k as f64);
    }
    let var_digamma: f64 = terms
        .iter()
        .map(|&(w, k)| (w / total) * (digamma(0.5 * k as f64) - mean_digamma).powi(2))
        .sum();
    LogMoments {
        mean: LN_2 + mean_digamma,
        var: mean_trigamma + var_digamma,
    }
}

/// How ||x_l||^2 / (v_l ||x_{l-1}||^2) is distributed, for the activations
/// with an exact law.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostLaw {
    /// chi^2_n: identity, abs, leaky-relu with alpha = +-1 (phi(h)^2 = h^2).
    AllUnits,
    /// chi^2_K, K ~ Binomial(n, 1/2): relu, leaky-relu with alpha = 0.
    HalfUnits,
}

pub fn post_law(act: &Activation) -> Option<PostLaw> {
    match *act {
        Activation::Identity | Activation::Abs => Some(PostLaw::AllUnits),
        Activation::Relu => Some(PostLaw::HalfUnits),
        Activation::LeakyRelu { alpha } if alpha * alpha == 1.0 => Some(PostLaw::AllUnits),
        Activation::LeakyRelu { alpha: 0.0 } => Some(PostLaw::HalfUnits),
        _ => None,
    }
}

/// The exact law of log q_pre and log q_post in one row, where known.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ExactRow {
    pub log_q_pre: Option<LogMoments>,
    pub log_q_post: Option<LogMoments>,
}

/// Rows 0..=L of the exact law. Row 0 (the input) is always exact. Row l's
/// pre-activation is exact while layers 1..=l have Gaussian weights with
/// v > 0 and no bias and the post-activation below is exact; its
/// post-activation when, in addition, phi has an exact law ([`post_law`]).
/// The binomial sums are computed once per distinct width.
pub fn exact_rows(net: &NetworkSpec) -> Vec<ExactRow> {
    let depth = net.depth();
    let law = post_law(&net.act);
    let mut binomial: HashMap<usize, LogMoments> = HashMap::new();
    let mut rows = Vec::with_capacity(depth + 1);
    let n0 = net.widths[0] as f64;
    // log ||x_0||^2 = log q0 + log chi^2_{n_0}
    let mut norm_below = Some(log_chi_squared(n0).shift(net.q0.ln()));
    let input = norm_below.map(|m| m.shift(-n0.ln()));
    rows.push(ExactRow {
        log_q_pre: input,
        log_q_post: input,
    });
    for l in 1..=depth {
        let weights = net.weight_law(l);
        let gaussian = weights.dist == Dist::Normal
            && weights.variance > 0.0
            && net.bias_law(l).variance == 0.0;
        let below = if gaussian { norm_below } else { None };
        let n = net.widths[l];
        let ln_n = (n as f64).ln();
        let ln_v = weights.variance.ln();
        let pre = below.map(|b| b.plus(log_chi_squared(n as f64)).shift(ln_v));
        let post_norm = match (below, law) {
            (Some(b), Some(PostLaw::AllUnits)) => {
                Some(b.plus(log_chi_squared(n as f64)).shift(ln_v))
            }
            (Some(b), Some(PostLaw::HalfUnits)) => {
                let k = *binomial
                    .entry(n)
                    .or_insert_with(|| log_chi_squared_binomial(n));
                Some(b.plus(k).shift(ln_v))
            }
            _ => None,
        };
        rows.push(ExactRow {
            log_q_pre: pre.map(|m| m.shift(-ln_n)),
            log_q_post: post_norm.map(|m| m.shift(-ln_n)),
        });
        norm_below = post_norm;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_law_by_full_enumeration() {
        // Small n: the full sum over k = 1..n with exact binomial weights.
        for n in [1usize, 2, 3, 7, 20, 64] {
            let mut ln_binom = vec![0.0f64; n + 1];
            for k in 1..=n {
                ln_binom[k] = ln_binom[k - 1] + ((n - k + 1) as f64 / k as f64).ln();
            }
            let p: Vec<f64> = (0..=n)
                .map(|k| (ln_binom[k] - n as f64 * LN_2).exp())
                .collect();
            let z: f64 = p[1..].iter().sum();
            let m: f64 = (1..=n)
                .map(|k| p[k] * log_chi_squared(k as f64).mean)
                .sum::<f64>()
                / z;
            let second: f64 = (1..=n)
                .map(|k| {
                    let l = log_chi_squared(k as f64);
                    p[k] * (l.var + l.mean * l.mean)
                })
                .sum::<f64>()
                / z;
            let got = log_chi_squared_binomial(n);
            assert!((got.mean - m).abs() < 1e-13, "n={n}: {} vs {m}", got.mean);
            assert!(
                (got.var - (second - m * m)).abs() < 1e-12,
                "n={n}: {} vs {}",
                got.var,
                second - m * m
            );
        }
    }

    #[test]
    fn binomial_law_at_large_width_is_close_to_its_expansion() {
        // K = n/2 + O(sqrt n) and E[log chi^2_k] = log k - 1/k + O(1/k^2), so
        // E[log chi^2_K] = E[log K] - E[1/K] = log(n/2) - 1/(2n) - 2/n + O(1/n^2);
        // Var = E[trigamma(K/2)] + Var[log K] = 4/n + 1/n + O(1/n^2). The
        // O(1/n^2) coefficients are a few units, hence the bounds.
        for n in [10_000usize, 1_000_000] {
            let got = log_chi_squared_binomial(n);
            let nf = n as f64;
            assert!((got.mean - ((nf / 2.0).ln() - 2.5 / nf)).abs() < 20.0 / (nf * nf));
            assert!((got.var * nf - 5.0).abs() < 30.0 / nf);
        }
    }
}
