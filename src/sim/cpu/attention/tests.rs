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

const CASES: [(usize, usize, &str); 5] = [
    (4, 6, "heads = 2"),
    (
        5,
        4,
        "heads = 1\nkey-width = 3\nvalue-width = 2\ncausal = true",
    ),
    (3, 6, "heads = 3\ntemperature = 1.7"),
    (1, 4, "heads = 2"),
    (4, 4, "heads = 2\nidentity-mix = 0.7\nattention-mix = 0.4"),
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

#[test]
fn a_stack_of_attention_layers_is_their_composition_on_the_raw_inputs() {
    // attention is not positively homogeneous (its scores scale with the
    // square of its input), so the engine must not renormalise the rows it
    // stores between layers: the run's token statistics and q at row 3 equal
    // those of the three layers applied to the inputs themselves (q0 = 4)
    let text = "input = { tokens = 5, width = 8 }\n[[block]]\ntype = \"attention\"\nheads = 2\ninit = \"xavier-normal\"\nrepeat = 3\n";
    let path = std::env::temp_dir().join(format!("varprop-attention-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let spec = crate::config::settings::RunSettings {
        net: crate::config::settings::NetworkSettings {
            arch: Some(path.display().to_string()),
            q0: Some(4.0),
            ..Default::default()
        },
        batch: Some(2),
        networks: Some(1),
        ..Default::default()
    }
    .resolve(1)
    .unwrap();
    std::fs::remove_file(&path).ok();
    let run = crate::sim::run_cpu(&spec, &mut |_, _| {}).unwrap();
    let arch = &spec.arch.as_ref().unwrap().arch;
    let flat = crate::sim::cpu::dense::inputs(&spec, 0);
    let mut x: Vec<Row> = flat.chunks(40).map(|c| c.to_vec()).collect();
    for (number, block) in arch.blocks.iter().enumerate() {
        let Block::Layer(layer) = block else {
            unreachable!()
        };
        let wt = draw(&spec, 0, number + 1, layer);
        x = x.iter().map(|r| forward(layer, &wt, r)).collect();
    }
    let direct = crate::sim::stats::tokens::TokenSums::of(&x, 5, 8, None);
    let q: f64 = x.iter().flatten().map(|v| v * v).sum::<f64>() / 80.0;
    let measured = &run.tokens[0][3];
    assert!(
        (measured.cosine - direct.cosine / 2.0).abs() < 1e-12,
        "{} against {}",
        measured.cosine,
        direct.cosine / 2.0
    );
    let q_run = run.per_network[0][3].log_q_post.exp();
    assert!((q_run / q - 1.0).abs() < 1e-10, "q {q_run} against {q}");
}

#[test]
fn weight_gradients_are_the_finite_differences_of_the_output() {
    // L = g . forward(x): dL/dW entry by entry by central differences,
    // squared and summed per matrix, against weight_gradients
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for (tokens, width, keys) in CASES {
        let layer = attention_layer(tokens, width, keys);
        let wt = weights(&mut rng, &layer);
        let x = random(&mut rng, tokens * width, 1.0);
        let g = random(&mut rng, tokens * width, 1.0);
        let loss = |w: &Weights| -> f64 {
            forward(&layer, w, &x)
                .iter()
                .zip(&g)
                .map(|(a, b)| a * b)
                .sum()
        };
        let exact = weight_gradients(&layer, &wt, &x, &g);
        let h = 1e-6;
        for (k, (m, at)) in matrices(&layer).iter().take(3).enumerate() {
            let mut total = 0.0;
            for e in *at..at + m.rows * m.cols {
                let mut plus = Weights {
                    w: wt.w.clone(),
                    ..Default::default()
                };
                let mut minus = Weights {
                    w: wt.w.clone(),
                    ..Default::default()
                };
                plus.w[e] += h;
                minus.w[e] -= h;
                total += ((loss(&plus) - loss(&minus)) / (2.0 * h)).powi(2);
            }
            assert!(
                (total - exact[k]).abs() < 1e-6 * (1.0 + exact[k]),
                "{keys}, matrix {k}: fd {total} against {}",
                exact[k]
            );
        }
        if tokens == 1 {
            // one token: the softmax is constant, no query or key gradient
            assert!(exact[0] == 0.0 && exact[1] == 0.0, "{exact:?}");
        }
    }
}

#[test]
fn collapsed_tokens_pass_no_query_or_key_gradient() {
    // every token the same: the scores are equal, the softmax's Jacobian
    // meets a constant, and dL/dW_Q = dL/dW_K = 0 (Noci et al. 2022)
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let (tokens, width) = (5, 6);
    let layer = attention_layer(tokens, width, "heads = 2");
    let wt = weights(&mut rng, &layer);
    let token = random(&mut rng, width, 1.0);
    let x: Row = (0..width).flat_map(|j| vec![token[j]; tokens]).collect();
    let g = random(&mut rng, tokens * width, 1.0);
    let [gq, gk, gv] = weight_gradients(&layer, &wt, &x, &g);
    assert!(gq < 1e-24 && gk < 1e-24, "{gq} {gk}");
    assert!(gv > 1e-3, "the value gradient does not vanish: {gv}");
}
