//! Sequences and attention (issue 18) on the f64 CPU reference, through the
//! library as a user runs them: zero-initialised queries make attention
//! uniform (every token the sequence mean: token cosine 1, entropy ln T);
//! a one-token, one-head attention layer is W_o W_v x, so it follows the
//! law of two dense identity layers; the token inputs have the token
//! correlation asked for; the pure-attention stack collapses and the
//! residual one does not.

mod common;

use varprop::analysis::comparisons::z_bound;
use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::sim::{RunOutput, run_cpu};

fn run_file(
    text: &str,
    name: &str,
    batch: usize,
    networks: usize,
    extra: NetworkSettings,
) -> RunOutput {
    let path = common::write_arch("transformer", name, text);
    let spec = RunSettings {
        net: NetworkSettings {
            arch: Some(path),
            ..extra
        },
        batch: Some(batch),
        networks: Some(networks),
        seed: Some(3),
        ..Default::default()
    }
    .resolve(networks)
    .unwrap();
    run_cpu(&spec, &mut |_, _| {}).unwrap()
}

#[test]
fn zero_queries_make_every_token_the_sequence_mean() {
    let text = "input = { tokens = 7, width = 12 }\n[[block]]\ntype = \"attention\"\nheads = 3\nzero-queries = true\n";
    let run = run_file(text, "zero_queries.toml", 4, 2, NetworkSettings::default());
    for net in &run.tokens {
        // uniform attention: o_t = mean_s v_s for every t, so all tokens
        // are equal (f64 rounding only)
        assert!(
            (net[1].cosine - 1.0).abs() < 1e-12,
            "cosine {}",
            net[1].cosine
        );
        assert!(
            (net[1].stable_rank - 1.0).abs() < 1e-9,
            "stable rank {}",
            net[1].stable_rank
        );
        assert!(
            (net[1].entropy - 7f64.ln()).abs() < 1e-12,
            "entropy {}",
            net[1].entropy
        );
        // the inputs' tokens are independent: far from collapsed
        assert!(net[0].cosine.abs() < 0.5);
        assert!(net[0].entropy.is_nan(), "no attention at the input");
    }
}

#[test]
fn one_token_one_head_attention_follows_two_dense_layers() {
    // T = 1: A = 1, so the layer is W_o W_v x, whose law is that of two
    // dense identity layers 16 -> 8 -> 16 with the same init (different
    // draws): ln q at the top compared in mean, Welch's z
    let attention = "input = { tokens = 1, width = 16 }\n[[block]]\ntype = \"attention\"\nheads = 1\nkey-width = 8\nvalue-width = 8\ninit = \"xavier-normal\"\n";
    let dense = "input = 16\n[[block]]\ntype = \"dense\"\nwidth = 8\nact = \"identity\"\ninit = \"xavier-normal\"\n[[block]]\ntype = \"dense\"\nwidth = 16\nact = \"identity\"\ninit = \"xavier-normal\"\n";
    let networks = 400;
    let a = run_file(
        attention,
        "one_token.toml",
        2,
        networks,
        NetworkSettings::default(),
    );
    let d = run_file(
        dense,
        "two_dense.toml",
        2,
        networks,
        NetworkSettings::default(),
    );
    let top = |run: &RunOutput, row: usize| -> Vec<f64> {
        run.per_network.iter().map(|n| n[row].log_q_post).collect()
    };
    let (xa, xd) = (top(&a, 1), top(&d, 2));
    let mean_var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let s2 = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        (m, s2 / v.len() as f64)
    };
    let ((ma, va), (md, vd)) = (mean_var(&xa), mean_var(&xd));
    let z = (ma - md) / (va + vd).sqrt();
    // one comparison, false failure 1e-4
    let bound = z_bound(1, networks, 1e-4);
    assert!(
        z.abs() < bound,
        "ln q: attention {ma} against dense {md}, z {z} (bound {bound})"
    );
    // and the spread agrees (ratio of variances of the per-network ln q)
    let ratio = (va / vd).sqrt();
    assert!((0.75..1.33).contains(&ratio), "spread ratio {ratio}");
}

#[test]
fn token_inputs_have_the_token_correlation_asked_for() {
    let text = "input = { tokens = 6, width = 64 }\n[[block]]\ntype = \"layer-norm\"\n";
    let c = 0.6;
    let extra = NetworkSettings {
        token_c0: Some(c),
        ..Default::default()
    };
    let networks = 40;
    let run = run_file(text, "token_c0.toml", 4, networks, extra);
    let cos: Vec<f64> = run.tokens.iter().map(|n| n[0].cosine).collect();
    let m = cos.iter().sum::<f64>() / networks as f64;
    let se = (cos.iter().map(|x| (x - m).powi(2)).sum::<f64>()
        / (networks - 1) as f64
        / networks as f64)
        .sqrt();
    // the cosine of two tokens at width 64 is a ratio: its mean differs
    // from c by O(1/d), well inside this bound at these sizes
    let bound = z_bound(1, networks, 1e-4);
    assert!(
        ((m - c) / se).abs() < bound + 0.02 / se,
        "token cosine {m} ± {se} against {c}"
    );
}

#[test]
fn pure_attention_collapses_and_residual_attention_does_not() {
    let pure = "input = { tokens = 8, width = 32 }\n[[block]]\ntype = \"attention\"\nheads = 2\ninit = \"xavier-normal\"\nrepeat = 6\n";
    let residual = "input = { tokens = 8, width = 32 }\n[[block]]\ntype = \"transformer\"\nblocks = 3\nheads = 2\ninit = \"xavier-normal\"\n";
    let backward = |text: &str, name: &str| {
        let path = common::write_arch("transformer", name, text);
        let spec = RunSettings {
            net: NetworkSettings {
                arch: Some(path),
                ..Default::default()
            },
            batch: Some(4),
            networks: Some(4),
            seed: Some(3),
            backward: Some(true),
            ..Default::default()
        }
        .resolve(4)
        .unwrap();
        run_cpu(&spec, &mut |_, _| {}).unwrap()
    };
    let p = backward(pure, "pure.toml");
    let r = backward(residual, "residual.toml");
    for net in &p.tokens {
        // Dong et al.: 1 - cos falls doubly exponentially
        assert!(
            1.0 - net[6].cosine < 1e-6,
            "pure attention at depth 6: cos {}",
            net[6].cosine
        );
        // Noci et al.: on collapsed tokens the query and key weights get
        // no gradient, the value weights do
        let g = &net[6];
        assert!(
            g.grad_wq < 1e-12 * g.grad_wv && g.grad_wk < 1e-12 * g.grad_wv,
            "{g:?}"
        );
        assert!(
            net[1].grad_wq > 1e-4 * net[1].grad_wv,
            "before the collapse: {:?}",
            net[1]
        );
    }
    for net in &r.tokens {
        assert!(
            net[6].cosine < 0.9,
            "pre-LN transformer at 6 blocks: cos {}",
            net[6].cosine
        );
        assert!(net[6].stable_rank > 1.5);
        // the attention sub-blocks are rows 1, 3, 5: their query gradient lives
        assert!(net[5].grad_wq > 1e-4 * net[5].grad_wv, "{:?}", net[5]);
        assert!(net[6].grad_wq.is_nan(), "an MLP row has no attention");
    }
}

#[test]
fn every_transformer_file_runs_forward_backward_and_jacobian() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/transformers");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 3, "pure attention, pre-LN and post-LN");
    for path in paths {
        let spec = RunSettings {
            net: NetworkSettings {
                arch: Some(path.display().to_string()),
                tokens: Some(4),
                ..Default::default()
            },
            batch: Some(2),
            networks: Some(2),
            backward: Some(true),
            jacobian: Some(true),
            ..Default::default()
        }
        .resolve(2)
        .unwrap();
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        assert!(
            out.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            out.warnings
        );
        let rows = out.tokens[0].len();
        assert_eq!(
            rows,
            out.per_network[0].len(),
            "{}: a token row per row",
            path.display()
        );
        assert!(
            out.per_network[0][0].log_g.is_finite(),
            "{}: the backward pass ran",
            path.display()
        );
    }
}

#[test]
fn uniform_attention_transformers_follow_the_infinite_width_field() {
    // zero-initialised queries: the attention is uniform and every column's
    // theory exact at infinite width (theory::arch::attention); at width
    // 128 the measured q, pair correlation, token cosine and stable rank of
    // every row agree within SE: a pure attention layer, then pre-LN or
    // post-LN blocks; and Value-SkipInit layers (0.8 I + 0.6 A with zero
    // queries, then I + 0 A with random ones); tokens at correlation 0.3;
    // Student-t bound, Bonferroni over every comparison, false failure 1e-4
    // in all (the
    // token term (T - 1) k of the attention's output taken 10% low fails it)
    let networks = 48;
    let mut comparisons = Vec::new();
    let skip = "input = { tokens = 8, width = 128 }\n[[block]]\ntype = \"attention\"\nheads = 2\nzero-queries = true\nidentity-mix = 0.8\nattention-mix = 0.6\ninit = \"xavier-normal\"\n[[block]]\ntype = \"attention\"\nheads = 2\nidentity-mix = 1\nattention-mix = 0\ninit = \"xavier-normal\"\n".to_string();
    for norm in ["pre", "post", "value-skipinit"] {
        let text = if norm == "value-skipinit" {
            skip.clone()
        } else {
            format!(
                "input = {{ tokens = 8, width = 128 }}\n[[block]]\ntype = \"attention\"\nheads = 2\nzero-queries = true\ninit = \"xavier-normal\"\n[[block]]\ntype = \"transformer\"\nnorm = \"{norm}\"\nblocks = 2\nheads = 4\nzero-queries = true\ninit = \"xavier-normal\"\nact = \"tanh\"\n"
            )
        };
        let extra = NetworkSettings {
            token_c0: Some(0.3),
            ..Default::default()
        };
        let run = run_file(&text, &format!("uniform_{norm}.toml"), 8, networks, extra);
        let table = run.table_with_theory();
        let col = |name: &str| table.columns.iter().position(|c| c == name).unwrap();
        for row in &table.rows {
            for q in ["q_post", "c_pre", "token_cos", "stable_rank"] {
                let z = &row[col(&format!("{q}_z"))];
                let varprop::io::output::Cell::Num(z) = z else {
                    panic!("{norm}: {q} has no z-score: {z:?}");
                };
                comparisons.push((norm, q, *z));
            }
        }
    }
    let bound = z_bound(comparisons.len(), networks, 1e-4);
    for (norm, q, z) in &comparisons {
        assert!(z.abs() < bound, "{norm}-LN {q}: z {z} (bound {bound})");
    }
}
