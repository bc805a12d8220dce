//! The gram engine on architecture files of dense and normalisation layers
//! (layer-norm, rms-norm, batch-norm), against the block engine:
//! - without dense layers no weight is drawn, so both engines compute the
//!   same networks from the same input and delta_L streams: every
//!   per-network statistic, forward and backward, at f32 tolerance (as
//!   tests/arch_gpu.rs compares the block engine with the CPU);
//! - with dense layers gram draws Z, not W, so the two agree in law: means
//!   within their standard errors (independent seeds), and the theory;
//! - normalised rows are exact (q = 1, mean 0) on gram too;
//! - auto's choice and the reasons it gives where gram cannot run.
//!
//! z bounds: common::z_bound (false failure at most 1e-4 a test).

mod common;

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::gpu::{GpuOptions, choose_engine, run_gpu};
use varprop::sim::RunOutput;
use varprop::spec::{EngineChoice, RunSpec};
use varprop::theory;

fn write_arch(name: &str, text: &str) -> String {
    common::write_arch("gram-norm", name, text)
}

fn settings(name: &str, text: &str, batch: usize, networks: usize, seed: u64) -> RunSettings {
    let net = NetworkSettings {
        arch: Some(write_arch(name, text)),
        q0: Some(1.3),
        c0: Some(0.3),
        ..Default::default()
    };
    common::run_settings(net, batch, networks, seed)
}

/// With `probes`, the backward pass and the Jacobian's tangents and
/// vector-Jacobian rows.
fn spec(s: &RunSettings, engine: &str, probes: bool) -> RunSpec {
    let mut s = s.clone();
    s.engine = Some(engine.into());
    s.backward = Some(probes);
    s.jacobian = Some(probes);
    s.resolve(1).unwrap()
}

fn run(spec: &RunSpec, every: Option<usize>) -> RunOutput {
    let ctx = common::gpu();
    let options = GpuOptions {
        checkpoint_every: every,
        ..Default::default()
    };
    run_gpu(&ctx, spec, options, &mut |_, _| {}).unwrap()
}

/// Only normalisations, each with its own activation: no weights anywhere.
fn norms_only(width: usize) -> String {
    format!(
        r#"
input = {width}
block = [
  {{ type = "layer-norm", act = "tanh" }},
  {{ type = "batch-norm", act = "relu" }},
  {{ type = "rms-norm", act = "gelu" }},
  {{ type = "batch-norm", act = "identity" }},
  {{ type = "layer-norm", act = "relu", eps = 1e-3 }},
]
"#
    )
}

/// f32 arithmetic on the same numbers: sums of at most a few hundred terms
/// in each engine, in different orders (a relative error near 1e-6); a
/// wrong group, kind, eps, adjoint or activation is off by far more.
const RTOL: f64 = 2e-4;

#[test]
fn normalisation_only_networks_equal_the_block_engine() {
    // widths that are not multiples of 4 (the rows' padding), batch-norm at
    // batch 2, and checkpoint intervals that put segment ends on every layer
    for (width, batch, every) in [(37, 2, 1), (64, 6, 2), (64, 4, 3)] {
        let s = settings(&format!("only{width}"), &norms_only(width), batch, 3, 5);
        let gram_spec = spec(&s, "gram", true);
        let blocks_spec = spec(&s, "blocks", true);
        let gram = run(&gram_spec, Some(every));
        let blocks = run(&blocks_spec, Some(every));
        assert_eq!(gram.info.engine, "gpu-gram");
        assert_eq!(blocks.info.engine, "gpu-blocks");
        // the whole network's ||J^T J u||^2 (the vector-Jacobian rows)
        for (k, (g, b)) in gram.tops.iter().zip(&blocks.tops).enumerate() {
            if batch > 2 {
                let what = format!("width {width} batch {batch} network {k} log_jac_m2");
                assert!(
                    (g.log_jac_m2 - b.log_jac_m2).abs() <= RTOL,
                    "{what}: gram {} vs blocks {}",
                    g.log_jac_m2,
                    b.log_jac_m2
                );
            }
        }
        for (k, (g_net, b_net)) in gram.per_network.iter().zip(&blocks.per_network).enumerate() {
            for (l, (g, b)) in g_net.iter().zip(b_net).enumerate() {
                let what = format!("width {width} batch {batch} every {every} network {k} row {l}");
                let close = |name: &str, x: f64, y: f64, scale: f64| {
                    assert!(
                        (x - y).abs() <= RTOL * scale,
                        "{what} {name}: gram {x} vs blocks {y}"
                    );
                };
                close("log_q_pre", g.log_q_pre, b.log_q_pre, 1.0);
                close("log_q_post", g.log_q_post, b.log_q_post, 1.0);
                close("mean_pre", g.mean_pre, b.mean_pre, 1.0);
                close("mean_post", g.mean_post, b.mean_post, 1.0);
                close("c_pre", g.c_pre, b.c_pre, 1.0);
                // batch-norm at batch 2 maps every unit's pair to +-1, so
                // its Jacobian vanishes but for eps: the gradient below
                // the batch-norms (layers 2 and 4) and the tangents above
                // the first are rounding (e^-21 of the others), not compared
                if batch > 2 || l >= 4 {
                    close("log_g", g.log_g, b.log_g, 1.0);
                }
                if batch > 2 || l < 2 {
                    close("log_jac_m1", g.log_jac_m1, b.log_jac_m1, 1.0);
                }
            }
        }
    }
}

/// Rows wider than the 65,536 loop iterations llvmpipe allows an
/// invocation, over the lanes of one subgroup (8 on lavapipe): the row
/// normalisations used to stop part-way there, leaving layer-norm rows of
/// 300,000 units q = 1.5 instead of 1. Forward, backward and --jacobian
/// against the block engine, and the normalised rows' q.
#[test]
fn wide_rows_are_normalised_on_gram() {
    let text = r#"
input = 300000
block = [
  { type = "layer-norm", act = "tanh" },
  { type = "rms-norm", act = "relu" },
  { type = "layer-norm", act = "identity" },
]
"#;
    let s = settings("wide", text, 4, 1, 3);
    let gram = run(&spec(&s, "gram", true), Some(1));
    let blocks = run(&spec(&s, "blocks", true), Some(1));
    for (l, (g, b)) in gram.per_network[0]
        .iter()
        .zip(&blocks.per_network[0])
        .enumerate()
    {
        for (name, x, y) in [
            ("log_q_pre", g.log_q_pre, b.log_q_pre),
            ("c_pre", g.c_pre, b.c_pre),
            ("log_g", g.log_g, b.log_g),
            ("log_jac_m1", g.log_jac_m1, b.log_jac_m1),
        ] {
            assert!(
                (x - y).abs() <= RTOL,
                "row {l} {name}: gram {x} vs blocks {y}"
            );
        }
    }
    // q = var / (var + eps) = 1 - eps / var within 1e-4 (var > 0.1 here)
    for l in 1..=3 {
        let q = gram.per_network[0][l].log_q_pre.exp();
        assert!((q - 1.0).abs() < 1e-4, "row {l}: q {q}");
    }
}

/// Dense layers with normalisations between them (tests/arch.rs checks
/// the CPU reference against the theory on the same file).
use common::DENSE_AND_NORMS;

#[test]
fn dense_and_normalisation_layers_on_gram_follow_the_block_engine_and_theory() {
    let networks = 32;
    let gram_settings = settings("dense_norms", DENSE_AND_NORMS, 8, networks, 1);
    // auto takes gram here (4 B = 32 <= 256)
    let gram = run(&spec(&gram_settings, "auto", true), None);
    assert_eq!(gram.info.engine, "gpu-gram", "{}", gram.info.engine_reason);
    let blocks_settings = settings("dense_norms", DENSE_AND_NORMS, 8, networks, 2);
    let blocks = run(&spec(&blocks_settings, "blocks", true), None);
    let depth = gram.summary.len() - 1;
    let bound = common::z_bound(6 * depth);
    type Column = fn(&varprop::sim::stats::LayerSummary) -> (f64, f64);
    let columns: [(&str, Column); 4] = [
        ("q_post", |s| s.q_post),
        ("c_pre", |s| s.c_pre),
        ("log_g", |s| s.log_g),
        ("log_jac_m1", |s| s.log_jac_m1),
    ];
    for (name, column) in columns {
        for l in 1..=depth {
            let (a, sa) = column(&gram.summary[l]);
            let (b, sb) = column(&blocks.summary[l]);
            let z = (a - b) / (sa * sa + sb * sb).sqrt();
            assert!(
                z.abs() < bound,
                "{name} row {l}: gram {a} ± {sa} vs blocks {b} ± {sb} (z = {z:.2}, bound {bound:.2})"
            );
        }
    }
    // the theory (as the CPU reference's test reads it): q at every row, c
    // down to the batch-norm (whose cross moments are the infinite batch's)
    let arch = &gram.spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(arch, 1.3, 0.3, false);
    let before_bn = 6;
    for l in 1..=depth {
        let (q, se) = gram.summary[l].q_post;
        let z = (q - rows[l].post.q_mean()) / se;
        assert!(
            z.abs() < bound,
            "q_post row {l}: {q} ± {se} vs theory (z = {z:.2})"
        );
        if l <= before_bn {
            let (c, se) = gram.summary[l].c_pre;
            let z = (c - rows[l].pre.c_mean()) / se;
            assert!(
                z.abs() < bound,
                "c_pre row {l}: {c} ± {se} vs theory (z = {z:.2})"
            );
        }
    }
}

#[test]
fn normalised_rows_are_exact_on_gram() {
    // eps tiny, so that q = var / (var + eps) is 1 to f32 rounding
    for (kind, centred) in [
        ("layer-norm", true),
        ("rms-norm", false),
        ("batch-norm", true),
    ] {
        let text = format!(
            r#"
input = 128
block = [
  {{ type = "dense", width = 128, act = "identity", init = "he-normal", sigma-b2 = 0.5 }},
  {{ type = "{kind}", act = "relu", eps = 1e-12 }},
  {{ type = "dense", width = 128, act = "identity", init = "he-normal", sigma-b2 = 0.5 }},
  {{ type = "{kind}", act = "identity", eps = 1e-12 }},
]
"#
        );
        let s = settings(kind, &text, 8, 4, 3);
        let out = run(&spec(&s, "gram", false), None);
        for (k, net) in out.per_network.iter().enumerate() {
            for l in [2, 4] {
                let row = &net[l];
                assert!(
                    row.log_q_pre.abs() < 1e-5,
                    "{kind} network {k} row {l}: q = exp({})",
                    row.log_q_pre
                );
                if centred {
                    assert!(
                        row.mean_pre.abs() < 1e-5,
                        "{kind} network {k} row {l}: mean {}",
                        row.mean_pre
                    );
                }
            }
        }
    }
}

fn choice(
    text: &str,
    name: &str,
    batch: usize,
    edit: impl FnOnce(&mut RunSettings),
) -> (EngineChoice, String) {
    let mut s = settings(name, text, batch, 2, 0);
    edit(&mut s);
    choose_engine(&s.resolve(1).unwrap()).unwrap()
}

#[test]
fn auto_takes_gram_where_it_is_exact_and_says_why_not() {
    let (engine, reason) = choice(DENSE_AND_NORMS, "auto", 8, |_| {});
    assert_eq!(engine, EngineChoice::Gram, "{reason}");
    // where it cannot, the block engine and the reason
    let (engine, reason) = choice(DENSE_AND_NORMS, "jacobian", 8, |s| s.jacobian = Some(true));
    assert_eq!(engine, EngineChoice::Gram, "{reason}");
    let cases: [(&str, &str, usize, fn(&mut RunSettings), &str); 3] = [
        ("big batch", DENSE_AND_NORMS, 128, |_| {}, "batch 128"),
        (
            "conv",
            "input = { channels = 2, size = 8 }\nblock = [ { type = \"conv\", channels = 4, kernel = 3, act = \"relu\", init = \"he-normal\" } ]\n",
            2,
            |_| {},
            "image inputs",
        ),
        (
            "residual",
            "input = 64\n[[block]]\ntype = \"residual\"\n[[block.layer]]\ntype = \"dense\"\nwidth = 64\nact = \"relu\"\ninit = \"he-normal\"\n",
            4,
            |_| {},
            "residual",
        ),
    ];
    for (name, text, batch, edit, says) in cases {
        let (engine, reason) = choice(text, name, batch, edit);
        assert_eq!(engine, EngineChoice::Blocks, "{name}: {reason}");
        assert!(reason.contains(says), "{name}: {reason}");
    }
    // --spp's channel sums are the block engine's
    let mut spp = settings("spp", DENSE_AND_NORMS, 8, 2, 0)
        .resolve(1)
        .unwrap();
    spp.arch.as_mut().unwrap().spp = true;
    let (engine, reason) = choose_engine(&spp).unwrap();
    assert!(
        engine == EngineChoice::Blocks && reason.contains("--spp"),
        "{reason}"
    );
    // standardised weights are not Gaussian
    let ws = DENSE_AND_NORMS.replacen(
        "init = \"he-normal\" }",
        "init = \"he-normal\", weight-standardisation = \"scaled\" }",
        1,
    );
    let (engine, reason) = choice(&ws, "ws", 8, |_| {});
    assert!(
        engine == EngineChoice::Blocks && reason.contains("standardised"),
        "{reason}"
    );
    // an explicit gram that cannot run is refused before any work, with why
    let mut s = settings("explicit", &ws, 8, 2, 0);
    s.engine = Some("gram".into());
    let err = s.resolve(1).unwrap_err().to_string();
    assert!(
        err.contains("--engine") && err.contains("standardised"),
        "{err}"
    );
    // --engine blocks runs an architecture on the block engine, and is
    // refused on a plain stack
    let (engine, _) = choice(DENSE_AND_NORMS, "blocks", 8, |s| {
        s.engine = Some("blocks".into())
    });
    assert_eq!(engine, EngineChoice::Blocks);
    let mut plain = common::run_settings(common::stack(64, 3, "relu", "he-normal"), 4, 2, 0);
    plain.engine = Some("blocks".into());
    let err = plain.resolve(1).unwrap_err().to_string();
    assert!(
        err.contains("--engine") && err.contains("plain stack"),
        "{err}"
    );
}

#[test]
fn checkpoint_spacing_changes_nothing_on_gram_with_normalisations() {
    // the backward pass recomputes each segment from its checkpoint with
    // the same Z, coefficients and kernels: bit for bit the same numbers
    let s = settings("spacing", DENSE_AND_NORMS, 8, 2, 4);
    let spec = spec(&s, "gram", true);
    let reference = run(&spec, Some(8));
    for every in [1, 2, 3] {
        let out = run(&spec, Some(every));
        for (a, b) in out.per_network.iter().zip(&reference.per_network) {
            for (l, (x, y)) in a.iter().zip(b).enumerate() {
                assert_eq!(x.log_g, y.log_g, "every {every} row {l}");
                assert_eq!(x.log_q_post, y.log_q_post, "every {every} row {l}");
            }
        }
    }
}

/// tests/gram.rs's `narrow_bindings_change_no_bit` with normalisation
/// layers: a binding of two panels and buffers of six, so that every
/// normalisation dispatch (forward, recomputed, tangents, adjoint) runs
/// through windows, some across store buffers: the results equal those
/// with whole-buffer bindings bit for bit.
#[test]
fn narrow_bindings_change_no_bit_with_normalisations() {
    let wide = common::gpu();
    let mut narrow = common::gpu();
    let (width, batch) = (200usize, 4);
    let panel = (width * 2 * batch * 4).next_multiple_of(256) as u64;
    narrow.limits.max_storage_buffer_binding_size = 2 * panel;
    narrow.limits.max_buffer_size = 6 * panel;
    let mut text = format!("input = {width}\nblock = [\n");
    for kind in [
        "layer-norm",
        "batch-norm",
        "rms-norm",
        "layer-norm",
        "batch-norm",
        "rms-norm",
    ] {
        text += &format!(
            "  {{ type = \"dense\", width = {width}, act = \"identity\", init = \"he-normal\", sigma-b2 = 0.1 }},\n  {{ type = \"{kind}\", act = \"tanh\" }},\n"
        );
    }
    text += "]\n";
    let s = settings("narrow", &text, batch, 2, 5);
    let spec = spec(&s, "gram", true);
    let options = GpuOptions::default();
    let a = run_gpu(&wide, &spec, options, &mut |_, _| {}).unwrap();
    let b = run_gpu(&narrow, &spec, options, &mut |_, _| {}).unwrap();
    assert_eq!(a.info.engine, "gpu-gram");
    assert!(a.per_network[0][12].log_jac_m1.is_finite());
    assert_eq!(
        format!("{:?}", a.per_network),
        format!("{:?}", b.per_network)
    );
    assert_eq!(format!("{:?}", a.tops), format!("{:?}", b.tops));
}

/// The same for --ntk through layer-norm and rms-norm (the gain terms'
/// product rows must share a binding window with delta's).
#[test]
fn narrow_bindings_change_no_bit_for_the_ntk() {
    let wide = common::gpu();
    let mut narrow = common::gpu();
    let (width, batch) = (200usize, 4);
    let panel = (width * batch * 4).next_multiple_of(256) as u64;
    narrow.limits.max_storage_buffer_binding_size = 2 * panel;
    narrow.limits.max_buffer_size = 6 * panel;
    let mut text = format!("input = {width}\nblock = [\n");
    for kind in ["layer-norm", "rms-norm", "layer-norm"] {
        text += &format!(
            "  {{ type = \"dense\", width = {width}, act = \"identity\", init = \"he-normal\", sigma-b2 = 0.1 }},\n  {{ type = \"{kind}\", act = \"tanh\" }},\n"
        );
    }
    text += "]\n";
    let mut s = settings("narrow-ntk", &text, batch, 2, 5);
    s.ntk = Some(true);
    s.engine = Some("gram".into());
    let spec = s.resolve(1).unwrap();
    let options = GpuOptions::default();
    let a = run_gpu(&wide, &spec, options, &mut |_, _| {}).unwrap();
    let b = run_gpu(&narrow, &spec, options, &mut |_, _| {}).unwrap();
    assert_eq!(a.info.engine, "gpu-gram");
    assert!(
        a.ntk[0]
            .layer_diag
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    );
    assert_eq!(a.ntk, b.ntk);
}
