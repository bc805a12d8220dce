//! The GPU block engine against the f64 CPU block engine (its naive loops:
//! `sim::cpu::blocks`, the reference for convolutions, transposed
//! convolutions, residual and highway blocks and the mean-preserving
//! shift) on the same seeds: every per-network, per-layer statistic,
//! forward, backward and with the Jacobian probes, and the per-position
//! map. And every file under architectures/ through the CLI on the GPU.
//!
//! Tolerance: the GPU works in f32, on the same random draws. Each draw
//! carries a relative error of a few 1e-7 (Box-Muller, erfinv in f32); each
//! sum a kernel forms has at most a few hundred terms (C_in k^2 <= 175 for
//! a convolution, the widths here <= 150), adding about sqrt(n) * 6e-8 ~
//! 1e-6; the moments sum B n <= 2,000 terms per pair (another ~1e-6). The
//! stacks are at most 8 rows deep and not chaotic, so the errors add
//! rather than grow: relative differences stay near 1e-5. We allow 2e-4, as
//! the dense engine's test does; a wrong tap, stride, padding, layout,
//! stream, adjoint or shift is off by orders of magnitude more. Logs are
//! compared absolutely (a relative error in q), means on the scale
//! sqrt(q) (they can cancel to 0), and the zero fraction may differ by a
//! unit whose h is within rounding of 0.

mod common;

use std::process::Command;
use varprop::config::settings::NetworkSettings;

use varprop::config::settings::RunSettings;
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::model::arch::{Architecture, Shape};
use varprop::sim::{RunOutput, run_cpu};
use varprop::spec::RunSpec;

const RTOL: f64 = 2e-4;

fn write_arch(name: &str, text: &str) -> String {
    common::write_arch("arch-gpu", name, text)
}

/// A run of `text` with the backward pass and the Jacobian probes (which
/// run the forward pass, the tangents and the transposed products).
fn spec_of(name: &str, text: &str, probes: bool, edit: impl FnOnce(&mut RunSettings)) -> RunSpec {
    let net = NetworkSettings {
        arch: Some(write_arch(name, text)),
        q0: Some(1.3),
        c0: Some(0.3),
        ..Default::default()
    };
    let mut s = RunSettings {
        backward: Some(probes),
        jacobian: Some(probes),
        // the block engine itself (auto may take gram for dense layers)
        engine: Some("blocks".into()),
        ..common::run_settings(net, 4, 2, 7)
    };
    edit(&mut s);
    s.resolve(2).unwrap()
}

fn close(what: &str, a: f64, b: f64, scale: f64) {
    let both_nan = a.is_nan() && b.is_nan();
    assert!(
        both_nan || (a - b).abs() <= RTOL * scale,
        "{what}: gpu {a} vs cpu {b} (tolerance {})",
        RTOL * scale
    );
}

/// Compares the engines on `text` without and with the backward pass and
/// the Jacobian probes (the architecture written to `file`.toml).
fn compare_without_and_with_probes(name: &str, file: &str, text: &str) {
    for probes in [false, true] {
        let spec = spec_of(file, text, probes, |_| {});
        compare(&format!("{name}, probes {probes}"), &spec);
    }
}

/// Runs `spec` on both engines and compares every per-network value.
fn compare(name: &str, spec: &RunSpec) -> (RunOutput, RunOutput) {
    compare_with(name, spec, GpuOptions::default())
}

fn compare_with(name: &str, spec: &RunSpec, options: GpuOptions) -> (RunOutput, RunOutput) {
    let ctx = common::gpu();
    let gpu =
        run_gpu(&ctx, spec, options, &mut |_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cpu = run_cpu(spec, &mut |_, _| {}).unwrap();
    assert_eq!(gpu.info.engine, "gpu-blocks");
    assert!(gpu.warnings.is_empty(), "{name}: {:?}", gpu.warnings);
    for (s, (g_net, c_net)) in gpu.per_network.iter().zip(&cpu.per_network).enumerate() {
        assert_eq!(g_net.len(), c_net.len());
        for (l, (g, c)) in g_net.iter().zip(c_net).enumerate() {
            let what = |col: &str| format!("{name} network {s} row {l} {col}");
            close(&what("log_q_pre"), g.log_q_pre, c.log_q_pre, 1.0);
            close(&what("log_q_post"), g.log_q_post, c.log_q_post, 1.0);
            close(
                &what("sample_log_q_post"),
                g.sample_log_q_post,
                c.sample_log_q_post,
                1.0,
            );
            let root_q = |log_q: f64| (0.5 * log_q).exp();
            close(
                &what("mean_pre"),
                g.mean_pre,
                c.mean_pre,
                root_q(c.log_q_pre),
            );
            close(
                &what("mean_post"),
                g.mean_post,
                c.mean_post,
                root_q(c.log_q_post),
            );
            close(&what("kurt_pre"), g.kurt_pre, c.kurt_pre, c.kurt_pre);
            close(&what("c_pre"), g.c_pre, c.c_pre, 1.0);
            close(&what("log_g"), g.log_g, c.log_g, 1.0);
            close(&what("log_jac_m1"), g.log_jac_m1, c.log_jac_m1, 1.0);
            let unit = 1.0 / (spec.batch * spec.net.widths[l]) as f64;
            assert!(
                (g.zero_frac - c.zero_frac).abs() <= 2.0 * unit,
                "{}: gpu {} vs cpu {}",
                what("zero_frac"),
                g.zero_frac,
                c.zero_frac
            );
        }
    }
    for (s, (g, c)) in gpu.tops.iter().zip(&cpu.tops).enumerate() {
        close(
            &format!("{name} network {s} log_jac_m1"),
            g.log_jac_m1,
            c.log_jac_m1,
            1.0,
        );
        close(
            &format!("{name} network {s} log_jac_m2"),
            g.log_jac_m2,
            c.log_jac_m2,
            1.0,
        );
    }
    assert_eq!(gpu.spp.len(), cpu.spp.len());
    for (s, (g_net, c_net)) in gpu.spp.iter().zip(&cpu.spp).enumerate() {
        for (l, (g, c)) in g_net.iter().zip(c_net).enumerate() {
            let what = |col: &str| format!("{name} network {s} row {l} {col}");
            // the squared means can cancel to 0: on the scale of the variance
            close(&what("spp_mean2"), g.mean2, c.mean2, c.var.max(c.mean2));
            close(&what("spp_var"), g.var, c.var, c.var);
            close(
                &what("spp_branch_var"),
                g.branch_var,
                c.branch_var,
                c.branch_var,
            );
        }
    }
    assert_eq!(gpu.positions.len(), cpu.positions.len());
    for (s, ((gp, gq), (cp, cq))) in gpu.positions.iter().zip(&cpu.positions).enumerate() {
        for (p, (a, b)) in gp.iter().zip(cp).chain(gq.iter().zip(cq)).enumerate() {
            close(&format!("{name} network {s} position {p}"), *a, *b, b.abs());
        }
    }
    if spec.probes.needs_backward() {
        assert!(
            gpu.per_network[0][0].log_g.is_finite(),
            "{name}: the backward pass ran"
        );
    }
    (gpu, cpu)
}

#[test]
fn convolutions_match_the_cpu_reference() {
    // kernels 1, 3, 5; circular and zero padding; channel counts that are
    // not multiples of 4; a non-square image (a swapped axis shows); biases
    let text = r#"
input = { channels = 3, height = 7, width = 5 }
block = [
  { type = "conv", channels = 5, kernel = 3, padding = "circular", act = "relu", init = "he-normal", sigma-b2 = 0.1 },
  { type = "conv", channels = 6, kernel = 5, padding = "zero", act = "tanh", init = "xavier-uniform" },
  { type = "conv", channels = 7, kernel = 3, padding = "zero", act = "identity", init = "delta-orthogonal" },
  { type = "conv", channels = 3, kernel = 1, act = "relu", init = "truncated-normal" },
  { type = "conv", channels = 5, kernel = 5, padding = "circular", act = "identity", init = "lecun-normal" },
  { type = "dense", width = 9, act = "tanh", init = "xavier-normal" },
]
"#;
    compare_without_and_with_probes("conv", "conv", text);
}

#[test]
fn transposed_convolutions_match_the_cpu_reference() {
    // strides 1, 2, 3; kernels 1, 2, 3, 5; both fan conventions
    let text = r#"
input = { channels = 3, height = 4, width = 3 }
block = [
  { type = "conv-transpose", channels = 5, kernel = 3, stride = 2, act = "relu", init = "he-normal", sigma-b2 = 0.05 },
  { type = "conv-transpose", channels = 2, kernel = 5, stride = 3, fan = "true", act = "identity", init = "he-normal" },
  { type = "conv-transpose", channels = 3, kernel = 1, stride = 1, act = "tanh", init = "xavier-normal" },
  { type = "conv", channels = 2, kernel = 3, padding = "zero", act = "relu", init = "he-uniform" },
  { type = "conv-transpose", channels = 1, kernel = 2, stride = 2, act = "identity", init = "lecun-normal" },
]
"#;
    compare_without_and_with_probes("conv-transpose", "convt", text);
}

#[test]
fn position_map_matches_the_cpu_reference() {
    // the k = 3, s = 2 checkerboard, and a row inside the stack
    let text = r#"
input = { channels = 6, size = 5 }
block = [
  { type = "conv-transpose", channels = 4, kernel = 3, stride = 2, act = "relu", init = "he-normal" },
  { type = "conv", channels = 3, kernel = 3, padding = "zero", act = "identity", init = "he-normal" },
]
"#;
    for row in [1, 2] {
        let mut spec = spec_of("positions", text, false, |_| {});
        spec.arch.as_mut().unwrap().position_row = Some(row);
        let (gpu, _) = compare(&format!("position row {row}"), &spec);
        assert_eq!(gpu.positions.len(), 2);
    }
}

#[test]
fn residual_blocks_match_the_cpu_reference() {
    let cases = [
        (
            "alpha 1, one layer",
            r#"
input = 16
block = [
  { type = "residual", alpha = 1.0, repeat = 3, layer = [{ width = 16, act = "relu", init = "he-normal" }] },
]
"#,
        ),
        (
            "1/sqrt(L), two layers of other widths, bias",
            r#"
input = 12
block = [
  { type = "dense", width = 18, act = "tanh", init = "xavier-normal" },
  { type = "residual", alpha = "1/sqrt(L)", repeat = 3, layer = [
    { width = 23, act = "tanh", init = "xavier-normal", sigma-b2 = 0.05 },
    { width = 18, act = "relu", init = "he-normal" },
  ] },
  { type = "dense", width = 7, act = "identity" },
]
"#,
        ),
        (
            "fixup",
            r#"
input = 10
block = [
  { type = "residual", alpha = "fixup", repeat = 4, layer = [
    { width = 10, act = "relu", init = "he-normal" },
    { width = 10, act = "relu", init = "he-normal" },
  ] },
]
"#,
        ),
        (
            "skipinit",
            r#"
input = 10
block = [
  { type = "residual", alpha = "0", repeat = 2, layer = [{ width = 10, act = "tanh" }] },
]
"#,
        ),
        (
            "conv branch",
            r#"
input = { channels = 3, height = 5, width = 6 }
block = [
  { type = "residual", alpha = 0.5, repeat = 2, layer = [
    { type = "conv", channels = 5, kernel = 3, act = "relu", init = "he-normal" },
    { type = "conv", channels = 3, kernel = 3, padding = "zero", act = "identity", init = "he-normal" },
  ] },
]
"#,
        ),
    ];
    for (i, (name, text)) in cases.iter().enumerate() {
        compare_without_and_with_probes(name, &format!("residual{i}"), text);
    }
}

/// Layer-norm, rms-norm and batch-norm, alone and in pre-activation
/// residual branches (BN-ReLU-conv), vectors and images, several eps, batch
/// sizes 2 to 6 (batch-norm's statistics run over the batch, and with
/// --jacobian over the vector-Jacobian rows as a second set), and
/// checkpoint segments whose borders fall between normalisations.
#[test]
fn normalisations_match_the_cpu_reference() {
    let cases = [
        (
            "vectors",
            r#"
input = 12
block = [
  { type = "dense", width = 10, act = "identity" },
  { type = "layer-norm", act = "relu" },
  { type = "dense", width = 9, act = "tanh", init = "xavier-normal", sigma-b2 = 0.1 },
  { type = "rms-norm", eps = 0.01 },
  { type = "batch-norm", act = "relu", eps = 1e-3 },
  { type = "dense", width = 5, act = "identity" },
  { type = "batch-norm", act = "tanh" },
]
"#,
        ),
        (
            "images, pre-activation residual",
            r#"
input = { channels = 3, height = 5, width = 6 }
block = [
  { type = "conv", channels = 4, kernel = 3, act = "identity" },
  { type = "batch-norm", act = "relu" },
  { type = "residual", alpha = 0.8, repeat = 2, layer = [
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 5, kernel = 3, act = "identity" },
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 4, kernel = 1, padding = "zero", act = "identity" },
  ] },
  { type = "layer-norm", act = "gelu" },
  { type = "residual", layer = [{ type = "rms-norm", act = "relu" }, { type = "conv", channels = 4, kernel = 3, act = "identity" }] },
]
"#,
        ),
    ];
    // Batch-norm of a vector over B = 2 inputs gives +-sqrt(v / (v + eps))
    // whatever comes in, and its Jacobian is of order eps / v: the f32
    // gradient is all cancellation there, so vectors run at B = 4 and 6,
    // images (groups of B H W) at B = 2 and 6.
    for (i, (name, text)) in cases.iter().enumerate() {
        for batch in [[4, 6], [2, 6]][i] {
            for probes in [false, true] {
                let mut spec =
                    spec_of(&format!("norm{i}"), text, probes, |s| s.batch = Some(batch));
                // the SPP's channel sums too, on one of the two
                spec.arch.as_mut().unwrap().spp = probes;
                let (gpu, _) = compare(&format!("{name}, batch {batch}, probes {probes}"), &spec);
                assert_eq!(gpu.spp.len(), if probes { 2 } else { 0 });
            }
        }
        let spec = spec_of(&format!("norm{i}"), text, true, |_| {});
        for every in [1, 2] {
            let options = GpuOptions {
                checkpoint_every: Some(every),
                ..Default::default()
            };
            compare_with(
                &format!("{name}, checkpoints every {every}"),
                &spec,
                options,
            );
        }
    }
}

/// Weight standardisation (plain and scaled, dense and conv, inside a
/// residual branch and with Fixup's scale) on the same draws.
#[test]
fn weight_standardisation_matches_the_cpu_reference() {
    let text = r#"
input = { channels = 3, height = 5, width = 4 }
block = [
  { type = "conv", channels = 6, kernel = 3, act = "relu", weight-standardisation = "scaled" },
  { type = "conv", channels = 5, kernel = 3, padding = "zero", act = "identity", init = "xavier-normal", weight-standardisation = "plain", sigma-b2 = 0.1 },
  { type = "residual", alpha = "fixup", repeat = 2, layer = [
    { type = "conv", channels = 5, kernel = 1, act = "relu", weight-standardisation = "scaled" },
    { type = "conv", channels = 5, kernel = 3, act = "relu", weight-standardisation = "scaled" },
  ] },
  { type = "dense", width = 7, act = "tanh", init = "lecun-uniform", weight-standardisation = "scaled", gamma = 1.5939 },
]
"#;
    compare_without_and_with_probes("weight standardisation", "ws", text);
}

/// Strided convolutions (strides 2 and 3, kernels 1 and 3, circular and
/// zero padding, sides that the stride does not divide with zero padding),
/// average pooling (disjoint and overlapping windows) and global average
/// pooling into a dense head, forward and with the probes.
#[test]
fn strides_and_pooling_match_the_cpu_reference() {
    let text = r#"
input = { channels = 3, height = 12, width = 6 }
block = [
  { type = "conv", channels = 4, kernel = 3, stride = 2, act = "relu" },
  { type = "conv", channels = 5, kernel = 3, stride = 3, padding = "zero", act = "tanh", init = "xavier-normal", sigma-b2 = 0.1 },
  { type = "conv", channels = 5, kernel = 1, padding = "zero", act = "relu" },
  { type = "conv", channels = 4, kernel = 1, stride = 2, padding = "zero", act = "identity" },
]
"#;
    compare_without_and_with_probes("strided convolutions", "strided", text);
    let text = r#"
input = { channels = 3, height = 8, width = 6 }
block = [
  { type = "conv", channels = 4, kernel = 3, act = "relu" },
  { type = "avg-pool", kernel = 2 },
  { type = "conv", channels = 4, kernel = 3, padding = "zero", act = "relu" },
  { type = "avg-pool", kernel = 3, stride = 1, act = "tanh" },
  { type = "residual", layer = [{ type = "avg-pool", kernel = 1 }, { type = "conv", channels = 4, kernel = 1, act = "identity" }] },
  { type = "global-avg-pool" },
  { type = "dense", width = 5, act = "identity" },
]
"#;
    compare_without_and_with_probes("pooling", "pooling", text);
}

/// Residual blocks with a projection shortcut: on x (shared = 0), and on
/// the branch's first layers' output (ResNet-V2's BN-ReLU pre-activation,
/// NF-ResNet's relu(x / beta) with beta = sqrt(q) from the theory), strided
/// transitions between stages, with checkpoint borders between them.
#[test]
fn projection_shortcuts_match_the_cpu_reference() {
    let text = r#"
input = { channels = 3, size = 12 }
block = [
  { type = "conv", channels = 4, kernel = 3, act = "identity" },
  { type = "residual", alpha = 0.7, shortcut = { kernel = 1, channels = 6, stride = 2 }, layer = [
    { type = "conv", channels = 6, kernel = 3, stride = 2, act = "relu" },
    { type = "conv", channels = 6, kernel = 3, act = "identity" },
  ] },
  { type = "residual", shared = 1, shortcut = { kernel = 1, channels = 8, stride = 2, sigma-b2 = 0.1 }, layer = [
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 8, kernel = 3, stride = 2, act = "identity" },
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 8, kernel = 3, act = "identity" },
  ] },
  { type = "residual", alpha = 0.2, shared = 1, shortcut = { kernel = 1, channels = 5, weight-standardisation = "scaled", gamma = 1.0 }, layer = [
    { type = "scale", factor = "1/sqrt(q)", act = "relu" },
    { type = "conv", channels = 5, kernel = 3, act = "relu", weight-standardisation = "scaled" },
    { type = "conv", channels = 5, kernel = 3, act = "identity", weight-standardisation = "scaled", gamma = 1.0 },
  ] },
  { type = "residual", alpha = 0.2, repeat = 2, layer = [
    { type = "scale", factor = "1/sqrt(q)", act = "relu" },
    { type = "conv", channels = 5, kernel = 3, act = "identity", weight-standardisation = "scaled" },
  ] },
  { type = "global-avg-pool" },
  { type = "dense", width = 3, act = "identity" },
]
"#;
    compare_without_and_with_probes("projection shortcuts", "shortcuts", text);
    let spec = spec_of("shortcuts", text, true, |_| {});
    for every in [1, 2, 3] {
        let options = GpuOptions {
            checkpoint_every: Some(every),
            ..Default::default()
        };
        compare_with(
            &format!("shortcuts, checkpoints every {every}"),
            &spec,
            options,
        );
    }
}

#[test]
fn highway_blocks_match_the_cpu_reference() {
    let cases = [
        (
            "tanh, gate bias -1",
            r#"
input = 14
block = [
  { type = "highway", act = "tanh", init = "lecun-normal", gate-bias = -1.0, repeat = 3 },
]
"#,
        ),
        (
            "relu after a dense layer, gate init xavier",
            r#"
input = 9
block = [
  { type = "dense", width = 13, act = "relu", init = "he-normal", sigma-b2 = 0.1 },
  { type = "highway", act = "relu", init = "he-normal", gate-init = "xavier-normal", repeat = 2 },
]
"#,
        ),
    ];
    for (i, (name, text)) in cases.iter().enumerate() {
        compare_without_and_with_probes(name, &format!("highway{i}"), text);
    }
}

#[test]
fn siren_and_other_activations_match_the_cpu_reference() {
    // siren's first-layer rule on weight layer 1, sin(omega z) after it;
    // the activation-specialised kernels for several activations
    let text = r#"
input = { channels = 2, size = 5 }
block = [
  { type = "conv", channels = 3, kernel = 3, init = "siren", omega = 3.0 },
  { type = "dense", width = 12, init = "siren", omega = 3.0 },
  { type = "residual", layer = [{ width = 12, act = "leaky-relu", alpha = 0.2, init = "he-normal" }] },
  { type = "dense", width = 12, act = "gelu", init = "he-uniform" },
  { type = "highway", act = "selu", init = "lecun-normal" },
  { type = "dense", width = 7, act = "tanh", init = "orthogonal" },
  { type = "dense", width = 9, act = "tanh", init = "orthogonal" },
]
"#;
    // (and orthogonal layers, wide then tall, from the GPU's QR)
    compare("activations", &spec_of("siren", text, true, |_| {}));
}

#[test]
fn mean_preserving_bias_matches_the_cpu_reference() {
    // a plain stack (--width/--depth with --bias mean-preserving) ...
    for probes in [false, true] {
        let net = NetworkSettings {
            bias: Some("mean-preserving".into()),
            ..common::stack(24, 5, "relu", "he-normal")
        };
        let s = RunSettings {
            backward: Some(probes),
            jacobian: Some(probes),
            ..common::run_settings(net, 4, 2, 3)
        };
        let spec = s.resolve(2).unwrap();
        let (gpu, _) = compare(&format!("mean-preserving plain, probes {probes}"), &spec);
        // the shift is there: without it relu's mean_post is about 0.58 sqrt(q)
        let last = gpu.per_network[0].last().unwrap();
        assert!(last.mean_post.abs() < 0.5 * (0.5 * last.log_q_post).exp());
    }
    // ... and an architecture file with convolutions and a residual block
    let text = r#"
input = { channels = 2, size = 5 }
block = [
  { type = "conv", channels = 3, kernel = 3, act = "tanh", init = "xavier-normal" },
  { type = "residual", layer = [{ type = "conv", channels = 3, kernel = 3, act = "gelu", init = "he-normal" }] },
  { type = "dense", width = 11, act = "relu", init = "he-normal" },
]
"#;
    let spec = spec_of("mean-preserving", text, true, |s| {
        s.net.bias = Some("mean-preserving".into())
    });
    compare("mean-preserving arch", &spec);
}

#[test]
fn renormalised_deep_stacks_match_the_cpu_reference() {
    // homogeneous (relu, no bias): both engines renormalise every block and
    // carry the scale as a log; the signal grows over 24 blocks
    let text = r#"
input = 8
block = [
  { type = "residual", alpha = 1.5, repeat = 24, layer = [{ width = 8, act = "relu", init = "he-normal" }] },
]
"#;
    let mut spec = spec_of("renorm", text, true, |_| {});
    // the SPP's sums are taken on the stored scale and rescaled by the host
    spec.arch.as_mut().unwrap().spp = true;
    compare("renormalised", &spec);
}

#[test]
fn checkpoint_intervals_do_not_change_the_result() {
    // the backward pass recomputes segments of k blocks from checkpoints;
    // segment borders fall between every kind of block here (a plain layer
    // below a border needs its h in the segment above), for k = 1, 2, 4, L
    let text = r#"
input = { channels = 2, size = 4 }
block = [
  { type = "conv", channels = 3, kernel = 3, act = "tanh", init = "xavier-normal" },
  { type = "residual", alpha = 0.7, layer = [{ type = "conv", channels = 3, kernel = 3, act = "relu", init = "he-normal" }] },
  { type = "dense", width = 10, act = "relu", init = "he-normal" },
  { type = "highway", act = "tanh", init = "lecun-normal" },
  { type = "dense", width = 10, act = "tanh", init = "orthogonal", repeat = 2 },
  { type = "residual", repeat = 2, layer = [{ width = 10, act = "relu", init = "he-normal" }] },
]
"#;
    let spec = spec_of("checkpoints", text, true, |_| {});
    let depth = spec.net.depth();
    let ctx = common::gpu();
    for every in [1, 2, 4, depth] {
        let options = GpuOptions {
            checkpoint_every: Some(every),
            ..Default::default()
        };
        let (gpu, _) = compare_with(&format!("checkpoints every {every}"), &spec, options);
        assert_eq!(gpu.info.checkpoint_every, Some(every));
    }
    // a deep stack's memory grows like sqrt(L), not L
    let deep = |repeat: usize| {
        let text =
            format!("input = 32\n[[block]]\ntype = \"dense\"\nwidth = 32\nrepeat = {repeat}\n");
        let spec = spec_of(&format!("deep{repeat}"), &text, true, |_| {});
        let engine = varprop::gpu::blocks::BlocksGpu::new(
            &ctx,
            &spec,
            varprop::gpu::blocks::checkpoint_interval(&spec, None, None).unwrap(),
        )
        .unwrap();
        engine.device_bytes
    };
    let (small, large) = (deep(100), deep(1600));
    assert!(
        large < 3 * small,
        "16 times the depth, {large} bytes against {small}: the activations should grow like sqrt(L)"
    );
}

#[test]
fn one_context_serves_both_engines_orthogonal_kernels() {
    // the block engine runs the dense engine's orthogonal pipelines (cached
    // in the context) with its own bind group: in either order
    let ctx = common::gpu();
    let arch = spec_of(
        "ortho-shared",
        "input = 8\n[[block]]\ntype = \"dense\"\nwidth = 8\nact = \"tanh\"\ninit = \"orthogonal\"\nrepeat = 2\n",
        false,
        |_| {},
    );
    let dense = common::run_settings(common::stack(8, 2, "tanh", "orthogonal"), 4, 2, 7)
        .resolve(2)
        .unwrap();
    for spec in [&arch, &dense, &arch] {
        let gpu = run_gpu(&ctx, spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
        let cpu = run_cpu(spec, &mut |_, _| {}).unwrap();
        let (g, c) = (&gpu.per_network[1][2], &cpu.per_network[1][2]);
        close(gpu.info.engine, g.log_q_post, c.log_q_post, 1.0);
    }
}

#[test]
fn every_example_runs_on_the_gpu_through_the_cli() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let out_dir = std::env::temp_dir().join(format!("varprop-arch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut count = 0;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let csv = out_dir.join(format!("{name}.csv"));
        let map = out_dir.join(format!("{name}-positions.csv"));
        let flags = "run --batch 2 --networks 2 --backward --jacobian --device gpu --format csv";
        let mut args: Vec<String> = flags.split_whitespace().map(String::from).collect();
        args.extend(["--arch".into(), path.display().to_string()]);
        args.extend(["--out".into(), csv.display().to_string()]);
        let image = matches!(Architecture::load(&path).unwrap().input, Shape::Image(..));
        if image {
            args.extend(["--position-map".into(), map.display().to_string()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
            .args(&args)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&csv).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let col = |c: &str| header.iter().position(|h| *h == c).unwrap();
        let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
        for c in ["log_q_post_mean", "log_g_mean", "log_jac_m1_mean"] {
            let v: f64 = last[col(c)].parse().unwrap();
            assert!(v.is_finite(), "{name}: {c} = {v}");
        }
        if image {
            let map = std::fs::read_to_string(&map).unwrap();
            assert!(map.lines().count() > 1, "{name}: an empty position map");
        }
        count += 1;
    }
    assert!(count >= 6, "the examples are there ({count})");
}

/// With eps = 0 a layer-norm gives every input q = 1 (each input's own
/// mean square over its units, to f32 rounding: the spread of log q across
/// inputs and networks is at rounding level too), and a batch-norm gives
/// every channel mean 0 and biased variance 1 over the batch and positions,
/// so timm's unbiased average channel variance is N / (N - 1), N = B H W.
#[test]
fn normalised_rows_are_normalised_to_f32_rounding() {
    let text = r#"
input = { channels = 3, height = 4, width = 5 }
block = [
  { type = "conv", channels = 6, kernel = 3, act = "relu", init = "he-normal", sigma-b2 = 0.3 },
  { type = "layer-norm", eps = 0.0 },
  { type = "conv", channels = 6, kernel = 3, padding = "zero", act = "tanh", init = "xavier-normal" },
  { type = "batch-norm", eps = 0.0 },
]
"#;
    let mut spec = spec_of("normalised", text, false, |s| s.batch = Some(6));
    spec.arch.as_mut().unwrap().spp = true;
    let ctx = common::gpu();
    let out = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
    for net in &out.per_network {
        assert!(
            net[2].log_q_post.abs() < 1e-6,
            "layer-norm q: {}",
            net[2].log_q_post
        );
    }
    assert!(out.summary[2].sample_log_q_post_std < 1e-6);
    let n = (6 * 4 * 5) as f64;
    for net in &out.spp {
        assert!(
            net[4].mean2 < 1e-12,
            "batch-norm channel means: {}",
            net[4].mean2
        );
        assert!((net[4].var - n / (n - 1.0)).abs() < 1e-6, "{}", net[4].var);
    }
}

/// Every file under architectures/resnets/ (ResNet-V2 and NF-ResNet shapes,
/// up to 600 convolutions at full width) runs through `varprop spp` on the
/// GPU at batch 2, one network: every row, finite, with the SPP columns.
#[test]
fn every_resnet_file_runs_through_spp_on_the_gpu() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/resnets");
    let out_dir = std::env::temp_dir().join(format!("varprop-resnets-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 7, "the ResNet files");
    for path in paths {
        let arch = Architecture::load(&path).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let csv = out_dir.join(format!("{name}.csv"));
        let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
            .args(["spp", "--batch", "2", "--networks", "1", "--device", "gpu"])
            .args([
                "--arch",
                path.to_str().unwrap(),
                "--out",
                csv.to_str().unwrap(),
            ])
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            text.lines().count(),
            1 + arch.depth() + 1,
            "{name}: every row"
        );
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let col = |c: &str| header.iter().position(|h| *h == c).unwrap();
        let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
        for c in ["log_q_post_mean", "spp_var_mean", "spp_branch_var_mean"] {
            let v: f64 = last[col(c)].parse().unwrap();
            assert!(v.is_finite(), "{name}: {c} = {v}");
        }
    }
}

/// The tiled stride-1 convolution (8 channels x 4 positions an invocation)
/// against the plain kernel on the same draws: the same sums in the same
/// order, so every record agrees to f32 rounding of the whole network
/// (contractions into fused multiply-adds may differ), forward, backward
/// and with the Jacobian probes; channel counts that are not multiples of
/// 8 and widths that are not multiples of 4 leave partial tiles.
#[test]
fn tiled_convolutions_equal_the_plain_kernel() {
    use varprop::gpu::blocks::{BlocksGpu, ConvKernel};
    let text = r#"
input = { channels = 3, height = 6, width = 7 }
block = [
  { type = "conv", channels = 5, kernel = 3, act = "relu", init = "he-normal", sigma-b2 = 0.2 },
  { type = "conv", channels = 12, kernel = 5, padding = "zero", act = "tanh", init = "xavier-normal" },
  { type = "conv", channels = 9, kernel = 1, act = "identity", init = "he-normal" },
  { type = "conv", channels = 9, kernel = 3, stride = 1, padding = "zero", act = "relu", init = "he-normal" },
]
"#;
    let spec = spec_of("tiled", text, true, |_| {});
    let ctx = common::gpu();
    let sums = |kernel: ConvKernel| {
        let mut gpu = BlocksGpu::new(&ctx, &spec, 1).unwrap();
        gpu.conv_kernel = kernel;
        (0..spec.networks)
            .map(|s| gpu.run_network(s).unwrap())
            .collect::<Vec<_>>()
    };
    let (plain, tiled) = (sums(ConvKernel::Plain), sums(ConvKernel::Tiled));
    let close = |what: &str, a: f64, b: f64| {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1e-6),
            "{what}: plain {a} vs tiled {b}"
        );
    };
    for (s, (p, t)) in plain.iter().zip(&tiled).enumerate() {
        for (l, (a, b)) in p.forward.iter().zip(&t.forward).enumerate() {
            for (k, (x, y)) in a.pairs.iter().zip(&b.pairs).enumerate() {
                for m in 0..6 {
                    close(&format!("network {s} row {l} pair {k} sum {m}"), x[m], y[m]);
                }
            }
        }
        let rows = |n: &varprop::sim::stats::NetworkSums| {
            [n.backward.clone().unwrap(), n.tangent.clone().unwrap()]
        };
        for (which, (a, b)) in rows(p).iter().zip(&rows(t)).enumerate() {
            for (l, (x, y)) in a.iter().zip(b).enumerate() {
                for (r, (u, v)) in x.norms.iter().zip(&y.norms).enumerate() {
                    close(&format!("network {s} {which} row {l} vector {r}"), *u, *v);
                }
            }
        }
    }
}
