//! The NTK through architecture files (--ntk, issue 17): the block engine
//! against the f64 CPU reference on the same draws (itself checked against
//! finite differences of the output over every parameter in
//! `sim::cpu::block_ntk`'s tests), every entry of every network's kernel
//! and every row's term; the gram engine on dense and normalisation layers
//! against the block engine (the same networks where no weight is drawn,
//! in law where gram draws Z for W) and against the plain stack; and which
//! engine auto takes for --ntk with a file.
//!
//! Tolerance, as tests/arch_gpu.rs argues for these sizes (f32 draws and
//! sums of at most a few hundred terms, stacks a few blocks deep): relative
//! differences near 1e-5, allowed 2e-4 of the kernel's largest entry; a
//! wrong tap, stride, scale, layer or parameter count is off by far more.

mod common;

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::run_cpu;
use varprop::sim::stats::ntk::{NetworkNtk, NtkSummary};
use varprop::spec::RunSpec;

const RTOL: f64 = 2e-4;

fn spec_of(name: &str, text: &str, param: &str, engine: &str) -> RunSpec {
    sized_spec(name, text, param, engine, (4, 2, 9))
}

/// With (batch, networks, seed).
fn sized_spec(
    name: &str,
    text: &str,
    param: &str,
    engine: &str,
    (batch, networks, seed): (usize, usize, u64),
) -> RunSpec {
    let net = NetworkSettings {
        arch: Some(common::write_arch("ntk-blocks", name, text)),
        q0: Some(1.3),
        c0: Some(0.3),
        ..Default::default()
    };
    RunSettings {
        ntk: Some(true),
        parametrisation: Some(param.into()),
        engine: Some(engine.into()),
        ..common::run_settings(net, batch, networks, seed)
    }
    .resolve(2)
    .unwrap()
}

/// A stem, an NF-ResNet-style transition (1 / sqrt(q), relu, strided conv,
/// the shortcut a strided 1x1 projection of relu(x / beta)), an identity
/// block, pooling and a readout layer.
const NF_STYLE: &str = r#"
input = { channels = 3, size = 8 }
[[block]]
type = "conv"
channels = 4
kernel = 3
act = "identity"
init = "he-normal"
[[block]]
type = "residual"
alpha = 0.2
shared = 2
shortcut = { kernel = 1, channels = 6, stride = 2, init = "he-normal" }
  [[block.layer]]
  type = "scale"
  factor = "1/sqrt(q)"
  [[block.layer]]
  type = "rms-norm"
  act = "relu"
  [[block.layer]]
  type = "conv"
  channels = 6
  kernel = 3
  stride = 2
  padding = "zero"
  act = "relu"
  init = "custom"
  sigma-w2 = 2.0
  sigma-b2 = 0.05
  [[block.layer]]
  type = "conv"
  channels = 6
  kernel = 3
  act = "identity"
  init = "he-normal"
[[block]]
type = "residual"
alpha = 0.5
  [[block.layer]]
  type = "layer-norm"
  act = "gelu"
  [[block.layer]]
  type = "conv"
  channels = 6
  kernel = 3
  act = "identity"
  init = "xavier-normal"
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 5
act = "identity"
init = "lecun-normal"
"#;

/// 3 x 3 stride-1 convolutions (the sliding weight-gradient kernel) with
/// zero and circular padding, channel counts off multiples of 4, a 5 x 5
/// image (the first and last columns' missing taps).
const SLIDING: &str = r#"
input = { channels = 5, size = 5 }
[[block]]
type = "conv"
channels = 7
kernel = 3
padding = "zero"
act = "tanh"
init = "custom"
sigma-w2 = 1.5
sigma-b2 = 0.1
[[block]]
type = "conv"
channels = 3
kernel = 3
padding = "circular"
act = "relu"
init = "he-normal"
[[block]]
type = "global-avg-pool"
"#;

/// Vectors: dense with biases, layer-norm without affine, a highway block,
/// and a transposed convolution from a small image.
const MIXED: &str = r#"
input = { channels = 2, size = 3 }
[[block]]
type = "conv-transpose"
channels = 3
kernel = 3
stride = 2
act = "tanh"
init = "custom"
sigma-w2 = 1.8
sigma-b2 = 0.1
[[block]]
type = "dense"
width = 24
act = "tanh"
init = "custom"
sigma-w2 = 1.5
sigma-b2 = 0.2
[[block]]
type = "layer-norm"
affine = false
act = "erf"
[[block]]
type = "highway"
act = "tanh"
init = "lecun-normal"
gate-bias = -1.5
repeat = 2
[[block]]
type = "dense"
width = 8
act = "tanh"
init = "xavier-normal"
"#;

/// Weight standardisation (plain and scaled, conv and dense, with an NF
/// stage): the gradients with respect to the raw draws.
const STANDARDISED: &str = r#"
input = { channels = 3, size = 6 }
[[block]]
type = "conv"
channels = 8
kernel = 3
act = "identity"
weight-standardisation = "scaled"
[[block]]
type = "stage"
style = "nf"
blocks = 2
channels = 8
alpha = 0.3
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 4
act = "tanh"
init = "lecun-normal"
weight-standardisation = "plain"
"#;

/// Batch-norm couples the inputs (B sets of B backward rows): a ResNet-V2
/// stage (BN-ReLU before each conv, a strided projection transition), a
/// dense layer and a batch-norm on vectors.
const BATCH_NORM: &str = r#"
input = { channels = 3, size = 8 }
[[block]]
type = "conv"
channels = 8
kernel = 3
act = "identity"
init = "he-normal"
[[block]]
type = "stage"
style = "bn-relu"
blocks = 2
channels = 8
stride = 2
[[block]]
type = "global-avg-pool"
[[block]]
type = "dense"
width = 6
act = "identity"
init = "custom"
sigma-w2 = 1.0
sigma-b2 = 0.1
[[block]]
type = "batch-norm"
act = "tanh"
[[block]]
type = "dense"
width = 4
act = "identity"
init = "lecun-normal"
"#;

/// ReLU without biases: renormalised after every block on the device,
/// delta-orthogonal convolutions.
const HOMOGENEOUS: &str = r#"
input = { channels = 4, size = 6 }
[[block]]
type = "conv"
channels = 4
kernel = 3
act = "relu"
init = "delta-orthogonal"
[[block]]
type = "residual"
alpha = 1.0
repeat = 3
  [[block.layer]]
  type = "conv"
  channels = 4
  kernel = 3
  act = "relu"
  init = "he-normal"
[[block]]
type = "dense"
width = 6
act = "relu"
init = "he-normal"
"#;

/// Every entry of Theta and every row's term of `a` within RTOL of `b`'s
/// largest entry.
fn assert_kernels_close(a: &NetworkNtk, b: &NetworkNtk, what: &str) {
    let scale = b.kernel.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (x, y)) in a.kernel.iter().zip(&b.kernel).enumerate() {
        assert!(
            (x - y).abs() <= RTOL * scale,
            "{what}: Theta[{k}] {x} vs {y}"
        );
    }
    for (l, (x, y)) in a.layer_diag.iter().zip(&b.layer_diag).enumerate() {
        let row = l + 1;
        assert!(
            (x - y).abs() <= RTOL * scale,
            "{what}: row {row} term {x} vs {y}"
        );
    }
}

#[test]
fn block_gpu_ntk_matches_the_cpu_reference_on_the_same_draws() {
    let ctx = common::gpu();
    for (name, text) in [
        ("nf", NF_STYLE),
        ("sliding", SLIDING),
        ("mixed", MIXED),
        ("homogeneous", HOMOGENEOUS),
        ("standardised", STANDARDISED),
        ("batch-norm", BATCH_NORM),
    ] {
        for param in ["ntk", "standard"] {
            let spec = spec_of(name, text, param, "blocks");
            let gpu = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
            assert_eq!(gpu.info.engine, "gpu-blocks");
            let cpu = run_cpu(&spec, &mut |_, _| {}).unwrap();
            assert_eq!(gpu.ntk.len(), 2);
            for (g, c) in gpu.ntk.iter().zip(&cpu.ntk) {
                assert_kernels_close(g, c, &format!("{name} ({param}) gpu against cpu"));
                assert!(c.layer_diag.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// Auto takes gram for dense and layer-norm layers (exact there), and the
/// block engine where a batch-norm couples the inputs, saying why.
#[test]
fn auto_runs_an_ntk_file_on_gram_unless_a_batch_norm_couples_the_batch() {
    let ctx = common::gpu();
    let text = "input = 64\n[[block]]\ntype = \"sequence\"\nrepeat = 2\n  [[block.layer]]\n  type = \"dense\"\n  width = 64\n  init = \"he-normal\"\n  [[block.layer]]\n  type = \"layer-norm\"\n  act = \"relu\"\n";
    let spec = spec_of("ln", text, "ntk", "auto");
    let run = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(run.info.engine, "gpu-gram", "{}", run.info.engine_reason);
    let bn = text.replace("layer-norm", "batch-norm");
    let spec = spec_of("bn", &bn, "ntk", "auto");
    let run = run_gpu(&ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(run.info.engine, "gpu-blocks", "{}", run.info.engine_reason);
    let why = &run.info.engine_reason;
    assert!(why.contains("--ntk") && why.contains("batch-norm"), "{why}");
}

/// Normalisations only, with their own activations (one without affine
/// parameters): no weight is drawn, and the readout w is the same stream on
/// both engines, so gram computes the block engine's very kernels.
fn norms_only(width: usize) -> String {
    format!(
        r#"
input = {width}
block = [
  {{ type = "layer-norm", act = "tanh" }},
  {{ type = "rms-norm", act = "gelu" }},
  {{ type = "layer-norm", act = "relu", eps = 1e-3, affine = false }},
  {{ type = "layer-norm", act = "identity" }},
]
"#
    )
}

fn run_with(spec: &RunSpec, every: Option<usize>) -> varprop::sim::RunOutput {
    let options = GpuOptions {
        checkpoint_every: every,
        ..Default::default()
    };
    run_gpu(&common::gpu(), spec, options, &mut |_, _| {}).unwrap()
}

#[test]
fn gram_ntk_of_normalisation_only_networks_equals_the_block_engine() {
    // widths off multiples of 4 (the rows' padding), segment ends on every layer
    for (width, batch, every) in [(37, 2, 1), (64, 6, 2), (64, 4, 3)] {
        for param in ["ntk", "standard"] {
            let name = format!("norms{width}");
            let at = |engine: &str| {
                let spec = sized_spec(&name, &norms_only(width), param, engine, (batch, 3, 5));
                run_with(&spec, Some(every))
            };
            let (gram, blocks) = (at("gram"), at("blocks"));
            assert_eq!(gram.info.engine, "gpu-gram");
            for (g, b) in gram.ntk.iter().zip(&blocks.ntk) {
                let what = format!("width {width} batch {batch} every {every} ({param})");
                assert_kernels_close(g, b, &format!("{what} gram against blocks"));
                // the layer without affine parameters adds nothing
                assert_eq!(g.layer_diag[2], 0.0, "{what}");
                assert!(g.layer_diag[0] > 0.0 && g.layer_diag[1] > 0.0, "{what}");
            }
        }
    }
}

/// A file of plain dense layers is the plain stack: gram draws the same
/// numbers for both (renormalised relu rows, so the scales are carried too).
#[test]
fn gram_ntk_of_a_plain_file_equals_the_plain_stack() {
    let layer = "  { type = \"dense\", width = 64, act = \"relu\", init = \"he-normal\" },\n";
    let text = format!("input = 64\nblock = [\n{}]\n", layer.repeat(3));
    let file = run_with(&spec_of("plain", &text, "ntk", "gram"), None);
    // the inputs spec_of gives the file
    let net = NetworkSettings {
        q0: Some(1.3),
        c0: Some(0.3),
        ..common::stack(64, 3, "relu", "he-normal")
    };
    let stack = RunSettings {
        ntk: Some(true),
        engine: Some("gram".into()),
        ..common::run_settings(net, 4, 2, 9)
    };
    let stack = run_with(&stack.resolve(2).unwrap(), None);
    assert!(file.spec.renormalises());
    assert_eq!(file.ntk, stack.ntk);
}

/// Dense layers draw Z on gram and W on the block engine: the kernels agree
/// in law (means over independent networks within their standard errors;
/// z bound common::z_bound, false failure at most 1e-4).
#[test]
fn gram_ntk_with_dense_and_normalisation_layers_follows_the_block_engine_in_law() {
    let text = r#"
input = 128
block = [
  { type = "dense", width = 128, act = "identity", init = "he-normal" },
  { type = "layer-norm", act = "relu" },
  { type = "dense", width = 96, act = "tanh", init = "xavier-normal", sigma-b2 = 0.1 },
  { type = "rms-norm", act = "erf" },
  { type = "dense", width = 128, act = "identity", init = "lecun-normal" },
  { type = "layer-norm", act = "identity", affine = false },
]
"#;
    let networks = 48;
    for param in ["ntk", "standard"] {
        let at = |engine: &str, seed: u64| {
            let spec = sized_spec("dense-norms", text, param, engine, (4, networks, seed));
            run_with(&spec, None)
        };
        let (gram, blocks) = (at("gram", 21), at("blocks", 22));
        let (g, b) = (NtkSummary::of(&gram.ntk), NtkSummary::of(&blocks.ntk));
        let mut pairs = vec![("ntk_diag", g.diag, b.diag), ("ntk_c", g.c, b.c)];
        for l in 0..g.layer_diag.len() {
            if l != 5 {
                pairs.push(("ntk_layer", g.layer_diag[l], b.layer_diag[l]));
                pairs.push(("ntk_layer_c", g.layer_c[l], b.layer_c[l]));
            }
        }
        let bound = common::z_bound(2 * pairs.len());
        for (k, (name, (a, sa), (c, sc))) in pairs.iter().enumerate() {
            let z = (a - c) / (sa * sa + sc * sc).sqrt();
            assert!(
                z.abs() < bound,
                "{param} {name} (entry {k}): gram {a} ± {sa} vs blocks {c} ± {sc} (z = {z:.2}, bound {bound:.2})"
            );
        }
    }
}

/// --checkpoint-every spaces the NTK's own backward pass too: accepted with
/// --ntk alone, and the kernel does not depend on it.
#[test]
fn checkpoints_apply_to_the_ntk_pass() {
    let run = |extra: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_varprop"))
            .args([
                "run",
                "--ntk",
                "--width",
                "64",
                "--depth",
                "6",
                "--networks",
                "2",
            ])
            .args(["--format", "json", "-q"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (spaced, default) = (run(&["--checkpoint-every", "2"]), run(&[]));
    assert_eq!(spaced["config"]["checkpoint_every"], 2);
    assert_eq!(spaced["ntk"]["networks"], default["ntk"]["networks"]);
}
