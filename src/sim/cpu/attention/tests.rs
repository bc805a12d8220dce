//! Attention's tangent against central finite differences of its forward
//! map, its adjoint against the tangent (<g, J t> = <J^T g, t>), and its
//! softmax rows (masked entries 0, rows summing to 1).

use super::*;
use crate::model::arch::{Architecture, Block};
use rand::{RngExt, SeedableRng};

/// The first layer of an architecture text on sequences.
fn attention_layer(tokens: usize, width: usize, keys: &str) -> Layer {
    let text = format!(
        "input = {{ tokens = {tokens}, width = {width} }}\n[[block]]\ntype = \"attention\"\n{keys}\n"
    );
    let arch = Architecture::parse("test.toml", &text).unwrap();
    match &arch.blocks[0] {
        Block::Layer(l) => l.clone(),
        _ => unreachable!(),
    }
}

fn random(rng: &mut rand::rngs::StdRng, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| scale * (rng.random::<f64>() * 2.0 - 1.0))
        .collect()
}

fn weights(rng: &mut rand::rngs::StdRng, layer: &Layer) -> Weights {
    let len: usize = matrices(layer).iter().map(|(m, _)| m.rows * m.cols).sum();
    Weights {
        w: random(rng, len, 0.8),
        ..Default::default()
    }
}

const CASES: [(usize, usize, &str); 4] = [
    (4, 6, "heads = 2"),
    (
        5,
        4,
        "heads = 1\nkey-width = 3\nvalue-width = 2\ncausal = true",
    ),
    (3, 6, "heads = 3\ntemperature = 1.7"),
    (1, 4, "heads = 2"),
];

#[test]
fn tangent_is_the_derivative_of_the_forward_map() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for (tokens, width, keys) in CASES {
        let layer = attention_layer(tokens, width, keys);
        let wt = weights(&mut rng, &layer);
        let x = random(&mut rng, tokens * width, 1.0);
        let dx = random(&mut rng, tokens * width, 1.0);
        let h = 1e-5;
        let shifted = |s: f64| -> Row {
            let xs: Row = x.iter().zip(&dx).map(|(a, b)| a + s * b).collect();
            forward(&layer, &wt, &xs)
        };
        let (plus, minus) = (shifted(h), shifted(-h));
        let exact = tangent(&layer, &wt, &x, &dx);
        for ((p, m), e) in plus.iter().zip(&minus).zip(&exact) {
            let fd = (p - m) / (2.0 * h);
            // central differences: error O(h^2) plus rounding O(eps / h)
            assert!(
                (fd - e).abs() < 1e-7 * (1.0 + e.abs()),
                "{keys}: fd {fd} against {e}"
            );
        }
    }
}

#[test]
fn adjoint_is_the_transpose_of_the_tangent() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    for (tokens, width, keys) in CASES {
        let layer = attention_layer(tokens, width, keys);
        let wt = weights(&mut rng, &layer);
        let x = random(&mut rng, tokens * width, 1.0);
        let t = random(&mut rng, tokens * width, 1.0);
        let g = random(&mut rng, tokens * width, 1.0);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        let lhs = dot(&g, &tangent(&layer, &wt, &x, &t));
        let rhs = dot(&adjoint(&layer, &wt, &x, &g), &t);
        assert!(
            (lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()),
            "{keys}: {lhs} against {rhs}"
        );
    }
}

#[test]
fn attention_rows_are_distributions_and_respect_the_mask() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let layer = attention_layer(5, 4, "heads = 2\ncausal = true");
    let wt = weights(&mut rng, &layer);
    let x = random(&mut rng, 20, 1.0);
    let p = pass(&layer, &wt, &x);
    for head in &p.a {
        for (t, row) in head.iter().enumerate() {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-14);
            assert!(
                row[t + 1..].iter().all(|a| *a == 0.0),
                "token {t} sees the future"
            );
        }
    }
    // the first token sees itself only: entropy 0 there
    assert_eq!(p.a[0][0][0], 1.0);
}

#[test]
fn zero_queries_attend_uniformly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let layer = attention_layer(6, 4, "heads = 2\nzero-queries = true");
    let spec = crate::spec::RunSpec::dense(4, 1).build().unwrap();
    let wt = draw(&spec, 0, 1, &layer);
    let (mq, aq) = matrices(&layer)[0];
    assert!(wt.w[aq..aq + mq.rows * mq.cols].iter().all(|w| *w == 0.0));
    let x = random(&mut rng, 24, 1.0);
    let (sum, terms) = entropy(&layer, &wt, &x);
    assert_eq!(terms, 2 * 6);
    assert!((sum / terms as f64 - 6f64.ln()).abs() < 1e-14);
}
