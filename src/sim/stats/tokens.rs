//! What a run on sequences measures about its tokens, per row: the mean
//! cosine similarity between the tokens of one sequence (1 when the tokens
//! have collapsed to one direction: rank collapse, Dong et al. 2021), the
//! stable rank of the T x d token matrix, ||X||_F^2 / ||X||_2^2 (between 1
//! and min(T, d)), and at rows with attention the attention entropy, the
//! mean over heads and queries of -sum_s A_ts ln A_ts (ln T at uniform
//! attention over T tokens). All three are scale-free, so the stored scale
//! needs no undoing.

use super::NetworkSums;

/// One row's token statistics of one network, summed over its sequences.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenSums {
    pub sequences: usize,
    /// sum over sequences of the mean over token pairs t != s of cos(x_t, x_s)
    pub cosine: f64,
    /// sum over sequences of the stable rank
    pub stable_rank: f64,
    /// at rows with attention: the sum of the (head, query) entropies and
    /// their count
    pub entropy: Option<(f64, usize)>,
    /// at rows with attention, with --backward: the sum over the batch of
    /// the mean square entry of dL/dW_Q, dL/dW_K and dL/dW_V (true scale)
    pub weight_grads: Option<[f64; 3]>,
}

impl TokenSums {
    /// The sums of `rows` (channel-major sequences of `tokens` tokens of
    /// `width` units), with the entropy of the row's attention if it has one.
    pub fn of(
        rows: &[Vec<f64>],
        tokens: usize,
        width: usize,
        entropy: Option<(f64, usize)>,
    ) -> Self {
        let mut sums = TokenSums {
            sequences: rows.len(),
            entropy,
            ..Default::default()
        };
        for row in rows {
            let gram = token_gram(row, tokens, width);
            sums.cosine += mean_cosine(&gram, tokens);
            sums.stable_rank += stable_rank(&gram, tokens);
        }
        sums
    }
}

/// G_ts = x_t . x_s of a channel-major sequence.
pub fn token_gram(row: &[f64], tokens: usize, width: usize) -> Vec<f64> {
    let mut g = vec![0.0; tokens * tokens];
    for t in 0..tokens {
        for s in t..tokens {
            let dot: f64 = (0..width)
                .map(|j| row[j * tokens + t] * row[j * tokens + s])
                .sum();
            g[t * tokens + s] = dot;
            g[s * tokens + t] = dot;
        }
    }
    g
}

/// The mean over t != s of G_ts / sqrt(G_tt G_ss) (NaN for one token or a
/// zero token).
pub fn mean_cosine(gram: &[f64], tokens: usize) -> f64 {
    if tokens < 2 {
        return f64::NAN;
    }
    let mut total = 0.0;
    for t in 0..tokens {
        for s in 0..tokens {
            if s != t {
                total +=
                    gram[t * tokens + s] / (gram[t * tokens + t] * gram[s * tokens + s]).sqrt();
            }
        }
    }
    total / (tokens * (tokens - 1)) as f64
}

/// trace G / lambda_max(G) = ||X||_F^2 / ||X||_2^2.
pub fn stable_rank(gram: &[f64], tokens: usize) -> f64 {
    let trace: f64 = (0..tokens).map(|t| gram[t * tokens + t]).sum();
    let top = crate::linalg::eigen_symmetric(gram, tokens, 0.0).values[0];
    trace / top
}

/// One network's token statistics of one row: means over its sequences
/// (the entropy NaN at rows without attention).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TokenRow {
    pub cosine: f64,
    pub stable_rank: f64,
    pub entropy: f64,
    /// mean square entries of the query, key and value weights' gradient
    /// (NaN without --backward or attention)
    pub grad_wq: f64,
    pub grad_wk: f64,
    pub grad_wv: f64,
}

/// A network's token rows (rows 0..=L), when it ran on sequences.
pub fn network_tokens(sums: &NetworkSums) -> Option<Vec<TokenRow>> {
    let rows = sums.tokens.as_ref()?;
    Some(
        rows.iter()
            .map(|r| {
                let n = r.sequences as f64;
                let grad = |k: usize| r.weight_grads.map_or(f64::NAN, |g| g[k] / n);
                TokenRow {
                    cosine: r.cosine / n,
                    stable_rank: r.stable_rank / n,
                    entropy: r
                        .entropy
                        .map_or(f64::NAN, |(sum, terms)| sum / terms as f64),
                    grad_wq: grad(0),
                    grad_wk: grad(1),
                    grad_wv: grad(2),
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsed_tokens_have_cosine_one_and_stable_rank_one() {
        // every token the same direction (scaled): rank 1
        let (tokens, width) = (5, 3);
        let dir = [0.3, -1.2, 2.0];
        let row: Vec<f64> = (0..width)
            .flat_map(|j| (0..tokens).map(move |t| dir[j] * (1.0 + t as f64)))
            .collect();
        let g = token_gram(&row, tokens, width);
        assert!((mean_cosine(&g, tokens) - 1.0).abs() < 1e-12);
        assert!((stable_rank(&g, tokens) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn orthonormal_tokens_have_cosine_zero_and_full_stable_rank() {
        // tokens e_0, e_1, e_2 in width 4: G = I, stable rank 3
        let (tokens, width) = (3, 4);
        let mut row = vec![0.0; tokens * width];
        for t in 0..tokens {
            row[t * tokens + t] = 1.0;
        }
        let g = token_gram(&row, tokens, width);
        assert_eq!(mean_cosine(&g, tokens), 0.0);
        assert!((stable_rank(&g, tokens) - 3.0).abs() < 1e-12);
    }
}
