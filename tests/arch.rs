//! Architecture files: every example parses and runs, the block engine agrees
//! with the plain engine on a plain stack, and every block type follows its
//! theory within the measured standard errors (z bounds: common::z_bound).

mod common;

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::model::arch::Architecture;
use varprop::sim::{RunOutput, run_cpu};
use varprop::spec::RunSpec;
use varprop::theory;
use varprop::theory::arch::ArchRow;

fn arch_spec(
    text: &str,
    batch: usize,
    networks: usize,
    seed: u64,
    extra: impl FnOnce(&mut RunSettings),
) -> RunSpec {
    let dir = std::env::temp_dir().join(format!(
        "varprop-arch-{}-{seed}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("arch.toml");
    std::fs::write(&path, text).unwrap();
    let net = NetworkSettings {
        arch: Some(path.display().to_string()),
        ..Default::default()
    };
    let mut s = common::run_settings(net, batch, networks, seed);
    extra(&mut s);
    s.resolve(networks).unwrap()
}

/// Compares `column`'s mean with the theory at every row (skipping row 0).
fn within_se(name: &str, means: &[(f64, f64)], theory: &[f64], bound: f64) {
    for (l, ((m, se), t)) in means.iter().zip(theory).enumerate().skip(1) {
        let z = (m - t) / se;
        assert!(
            z.abs() < bound,
            "{name} row {l}: {m} ± {se} vs theory {t} (z = {z:.2}, bound {bound:.2})"
        );
    }
}

/// The measured q_post and c_pre against the theory's rows, within SE.
fn q_post_and_c_pre_follow(name: &str, out: &RunOutput, rows: &[ArchRow], bound: f64) {
    within_se(
        &format!("{name} q"),
        &out.summary.iter().map(|s| s.q_post).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.post.q_mean()).collect::<Vec<_>>(),
        bound,
    );
    within_se(
        &format!("{name} c"),
        &out.summary.iter().map(|s| s.c_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.c_mean()).collect::<Vec<_>>(),
        bound,
    );
}

#[test]
fn every_example_parses_and_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        Architecture::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let s = RunSettings {
            batch: Some(2),
            networks: Some(2),
            backward: Some(true),
            jacobian: Some(true),
            net: NetworkSettings {
                arch: Some(path.display().to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let spec = s.resolve(2).unwrap();
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        assert!(
            out.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            out.warnings
        );
        assert!(
            out.per_network[0].last().unwrap().log_q_post.is_finite(),
            "{}",
            path.display()
        );
        count += 1;
    }
    assert!(count >= 6, "one example per block type");
}

/// A plain stack written as an architecture file runs on the block engine
/// and gives what the plain engine gives (f64 on both sides: the two differ
/// only in where the renormalisation is applied).
#[test]
fn block_engine_agrees_with_the_plain_engine() {
    let text = "input = 24\n[[block]]\ntype = \"dense\"\nwidth = 40\nact = \"tanh\"\ninit = \"xavier-normal\"\nsigma-b2 = 0.1\nrepeat = 3\n[[block]]\ntype = \"dense\"\nwidth = 16\nact = \"tanh\"\ninit = \"xavier-normal\"\nsigma-b2 = 0.1\n";
    let blocks = arch_spec(text, 4, 3, 11, |s| {
        s.backward = Some(true);
        s.jacobian = Some(true);
    });
    let mut plain = common::net("24,40x3,16", "tanh", "xavier-normal");
    plain.init.sigma_b2 = Some(0.1);
    let plain = RunSpec {
        probes: blocks.probes,
        ..RunSpec::new(plain, 4, 3, 11)
    };
    let a = run_cpu(&blocks, &mut |_, _| {}).unwrap();
    let b = run_cpu(&plain, &mut |_, _| {}).unwrap();
    for (na, nb) in a.per_network.iter().zip(&b.per_network) {
        for (l, (x, y)) in na.iter().zip(nb).enumerate() {
            for (name, u, v) in [
                ("log_q_pre", x.log_q_pre, y.log_q_pre),
                ("c_pre", x.c_pre, y.c_pre),
                ("log_g", x.log_g, y.log_g),
                ("log_jac_m1", x.log_jac_m1, y.log_jac_m1),
            ] {
                assert!(
                    (u - v).abs() < 1e-10,
                    "row {l} {name}: blocks {u} vs plain {v}"
                );
            }
        }
    }
    for (x, y) in a.tops.iter().zip(&b.tops) {
        assert!((x.log_jac_m2 - y.log_jac_m2).abs() < 1e-10);
    }
}

/// With circular padding the position-averaged q of a CNN follows the
/// dense recurrence with sigma_w^2 = C_in k^2 v (theory against theory), and
/// the simulation follows it within SE.
#[test]
fn circular_convolution_follows_the_dense_recurrence() {
    let text = "input = { channels = 8, size = 8 }\n[[block]]\ntype = \"conv\"\nchannels = 8\nkernel = 3\nact = \"tanh\"\ninit = \"custom\"\nsigma-w2 = 1.6\nsigma-b2 = 0.05\nrepeat = 6\n";
    let spec = arch_spec(text, 4, 48, 3, |_| {});
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    // v = sigma_w2 / fan_in with fan_in = C_in k^2: the dense stack with the same sigma_w^2
    let mut flags = common::flags("64x7", "tanh", "custom");
    flags.init.sigma_w2 = Some(1.6);
    flags.init.sigma_b2 = Some(0.05);
    let dense = flags.resolve().unwrap();
    let want = theory::layer_table(&dense);
    for (r, w) in rows.iter().zip(&want) {
        assert!(
            (r.pre.q_mean() - w.q_pre).abs() < 1e-12 * w.q_pre,
            "q {} vs {}",
            r.pre.q_mean(),
            w.q_pre
        );
        assert!(
            (r.pre.c_mean() - w.c_pre).abs() < 1e-12,
            "c {} vs {}",
            r.pre.c_mean(),
            w.c_pre
        );
    }
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let bound = common::z_bound(2 * 6);
    within_se(
        "q_pre",
        &out.summary.iter().map(|s| s.q_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.q_mean()).collect::<Vec<_>>(),
        bound,
    );
    within_se(
        "c_pre",
        &out.summary.iter().map(|s| s.c_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.c_mean()).collect::<Vec<_>>(),
        bound,
    );
}

/// A linear CNN with delta-orthogonal kernels keeps every input's norm
/// exactly (circular padding: the centre tap is an orthogonal channel map).
#[test]
fn delta_orthogonal_linear_cnn_keeps_the_norm() {
    let text = "input = { channels = 6, size = 5 }\n[[block]]\ntype = \"conv\"\nchannels = 6\nkernel = 3\nact = \"identity\"\ninit = \"delta-orthogonal\"\nrepeat = 10\n";
    let spec = arch_spec(text, 4, 3, 5, |_| {});
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    for net in &out.per_network {
        for row in net {
            assert!((row.sample_log_q_post - net[0].sample_log_q_post).abs() < 1e-12);
            assert!((row.c_pre - net[0].c_pre).abs() < 1e-12);
        }
    }
}

/// A transposed convolution with k = 3, s = 2 draws on 4, 2 or 1 input
/// positions: its per-position second moment is a checkerboard, 2 to 1
/// between neighbours, and the measured map matches the theory's within SE.
#[test]
fn transposed_convolution_makes_a_checkerboard() {
    let text = "input = { channels = 6, size = 5 }\n[[block]]\ntype = \"conv-transpose\"\nchannels = 4\nkernel = 3\nstride = 2\nact = \"identity\"\ninit = \"lecun-normal\"\n";
    let mut spec = arch_spec(text, 4, 64, 9, |_| {});
    spec.arch.as_mut().unwrap().position_row = Some(1);
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    let q = &rows[1].pre.q;
    let w = 11;
    // interior: (even, even) positions get 4 inputs, (odd, odd) 1, mixed 2
    assert!(
        (q[4 * w + 4] / q[4 * w + 5] - 2.0).abs() < 1e-12
            && (q[4 * w + 5] / q[5 * w + 5] - 2.0).abs() < 1e-12
    );
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    assert_eq!(out.positions.len(), 64);
    let bound = common::z_bound(q.len());
    for (p, want) in q.iter().enumerate() {
        let (m, se) = varprop::sim::stats::mean_se(out.positions.iter().map(|(pre, _)| pre[p]));
        let z = (m - want) / se;
        assert!(
            z.abs() < bound,
            "position {p}: {m} ± {se} vs {want} (z = {z:.2})"
        );
    }
}

fn residual(alpha: &str, depth: usize) -> String {
    format!(
        "input = 256\n[[block]]\ntype = \"residual\"\nalpha = {alpha}\nrepeat = {depth}\n[[block.layer]]\nwidth = 256\nact = \"tanh\"\ninit = \"xavier-normal\"\n"
    )
}

/// q through residual stacks grows as q + alpha^2 E[F^2] per block, for
/// alpha = 1 and 1/sqrt(L); SkipInit (alpha = 0) leaves the signal exactly.
#[test]
fn residual_blocks_follow_theory() {
    for alpha in ["1.0", "\"1/sqrt(L)\""] {
        let spec = arch_spec(&residual(alpha, 8), 4, 32, 13, |s| s.backward = Some(true));
        let a = &spec.arch.as_ref().unwrap().arch;
        let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        let bound = common::z_bound(3 * 8);
        q_post_and_c_pre_follow(&format!("alpha {alpha}"), &out, &rows, bound);
        let preds = varprop::analysis::predictions::predictions(&spec, &spec.net);
        let g = preds.iter().find(|p| p.name == "g").unwrap();
        let g_theory: Vec<f64> = g.theory.iter().map(|v| v.unwrap()).collect();
        within_se(
            &format!("alpha {alpha} g"),
            &out.summary.iter().map(|s| s.g).collect::<Vec<_>>(),
            &g_theory,
            bound,
        );
    }
    let spec = arch_spec(&residual("0", 5), 4, 2, 1, |_| {});
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    for net in &out.per_network {
        for row in net {
            assert_eq!(
                row.log_q_post, net[0].log_q_post,
                "SkipInit changes nothing"
            );
        }
    }
}

/// Highway blocks and the mean-preserving bias against their theory.
#[test]
fn highway_and_mean_preserving_bias_follow_theory() {
    let highway = "input = 256\n[[block]]\ntype = \"highway\"\nact = \"tanh\"\ninit = \"lecun-normal\"\ngate-bias = -1.0\nrepeat = 6\n";
    let spec = arch_spec(highway, 4, 32, 17, |_| {});
    let rows = theory::arch::arch_table(&spec.arch.as_ref().unwrap().arch, 1.0, 0.5, false);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let bound = common::z_bound(2 * 6 + 2 * 6);
    q_post_and_c_pre_follow("highway", &out, &rows, bound);

    // relu with the mean-preserving bias: the mean of x stays at 0 and q
    // follows Var[phi] in place of E[phi^2]
    let net = NetworkSettings {
        bias: Some("mean-preserving".into()),
        ..common::stack(256, 6, "relu", "he-normal")
    };
    let settings = common::run_settings(net, 4, 32, 19);
    let spec = settings.resolve(32).unwrap();
    let rows = theory::arch::arch_table(&spec.arch.as_ref().unwrap().arch, 1.0, 0.5, true);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    within_se(
        "mean-preserving mean",
        &out.summary.iter().map(|s| s.mean_post).collect::<Vec<_>>(),
        &vec![0.0; 7],
        bound,
    );
    within_se(
        "mean-preserving q",
        &out.summary.iter().map(|s| s.q_post).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.post.q_mean()).collect::<Vec<_>>(),
        bound,
    );
}

/// The SPP's quantities k (0 spp_mean2, 1 spp_var, 2 spp_branch_var) of
/// rows `rows` against their theory within SE (row `rows.start` is not
/// compared, as within_se skips its first).
fn spp_within_se(
    name: &str,
    spp: &varprop::analysis::spp::SppTable,
    quantities: &[usize],
    rows: std::ops::Range<usize>,
    bound: f64,
) {
    for &k in quantities {
        let quantity = varprop::analysis::spp::SPP_QUANTITIES[k];
        let measured: Vec<_> = spp.measured[rows.clone()].iter().map(|m| m[k]).collect();
        let theory: Vec<f64> = spp.theory[rows.clone()]
            .iter()
            .map(|t| t[k].unwrap_or(f64::NAN))
            .collect();
        within_se(&format!("{name} {quantity}"), &measured, &theory, bound);
    }
}

/// The SPP columns of a run: per row (mean, se) and theory, per quantity.
fn spp_of(spec: &RunSpec, out: &RunOutput) -> varprop::analysis::spp::SppTable {
    varprop::analysis::spp::spp_table(spec, out).expect("a run with --spp")
}

/// Normalisations in dense stacks against their theory: layer-norm and
/// rms-norm map a Gaussian field exactly (q, c, the SPP's channel
/// statistics, the gradient through their Jacobian); batch-norm's q is 1
/// and a ReLU after it has q 1/2 exactly at any batch (the law of y is
/// symmetric). Batch-norm's cross moments are the infinite-batch limit, so
/// c and the channel statistics are compared only above it. False-failure
/// rate: common::z_bound over the comparisons made.
#[test]
fn normalisations_follow_theory() {
    let text = common::DENSE_AND_NORMS;
    let spec = arch_spec(text, 8, 32, 21, |s| s.backward = Some(true));
    let mut spec = spec;
    spec.arch.as_mut().unwrap().spp = true;
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let spp = spp_of(&spec, &out);
    let depth = a.depth();
    let bound = common::z_bound(6 * depth);
    let before_bn = 6;
    let q: Vec<_> = out.summary.iter().map(|s| s.q_post).collect();
    let q_theory: Vec<f64> = rows.iter().map(|r| r.post.q_mean()).collect();
    within_se("q_post", &q, &q_theory, bound);
    let c: Vec<_> = out
        .summary
        .iter()
        .map(|s| s.c_pre)
        .take(before_bn + 1)
        .collect();
    let c_theory: Vec<f64> = rows
        .iter()
        .map(|r| r.pre.c_mean())
        .take(before_bn + 1)
        .collect();
    within_se("c_pre", &c, &c_theory, bound);
    spp_within_se("normalisations", &spp, &[0, 1], 0..before_bn + 1, bound);
    // the gradient down to the batch-norm, through layer-norm and rms-norm
    let preds = varprop::analysis::predictions::predictions(&spec, &spec.net);
    let g = preds.iter().find(|p| p.name == "g").unwrap();
    let g_theory: Vec<f64> = g.theory.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let g_measured: Vec<_> = out.summary.iter().map(|s| s.g).collect();
    within_se("g", &g_measured[before_bn..], &g_theory[before_bn..], bound);
    // layer-norm: every input's q is v / (v + eps), within 1e-4 of 1
    assert!((out.summary[2].q_pre.0 - 1.0).abs() < 1e-4);
}

/// A pre-activation BN-ReLU ResNet (images, circular padding): each block
/// adds its branch's q = 1 (BN-ReLU-conv with He weights), so q grows by 1
/// a block, exactly at any batch; the SPP's channel statistics follow the
/// infinite-batch theory (B H W = 256 samples a channel; at 16 channels
/// the squared channel mean already falls a few percent short, the finite
/// width's share, so the branches have 32).
#[test]
fn bn_relu_resnet_grows_linearly() {
    let text = r#"
input = { channels = 8, size = 8 }
block = [
  { type = "conv", channels = 32, kernel = 3, act = "identity", init = "he-normal" },
  { type = "residual", repeat = 6, layer = [
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 32, kernel = 3, act = "identity", init = "he-normal" },
    { type = "batch-norm", act = "relu" },
    { type = "conv", channels = 32, kernel = 3, act = "identity", init = "he-normal" },
  ] },
]
"#;
    let mut spec = arch_spec(text, 4, 16, 5, |_| {});
    spec.arch.as_mut().unwrap().spp = true;
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    for (l, r) in rows.iter().enumerate().skip(1) {
        let want = 2.0 + (l - 1) as f64;
        assert!(
            (r.post.q_mean() - want).abs() < 1e-3 * want,
            "row {l}: {}",
            r.post.q_mean()
        );
    }
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let spp = spp_of(&spec, &out);
    let bound = common::z_bound(4 * 7);
    let q: Vec<_> = out.summary.iter().map(|s| s.q_post).collect();
    let q_theory: Vec<f64> = rows.iter().map(|r| r.post.q_mean()).collect();
    within_se("q_post", &q, &q_theory, bound);
    let rows = spp.measured.len();
    spp_within_se("bn-relu resnet", &spp, &[0, 1], 0..rows, bound);
    // the branch from row 2 (row 1 is the stem)
    spp_within_se("bn-relu resnet", &spp, &[2], 1..rows, bound);
}

/// A dense layer after a convolution sees the image flattened: its
/// pre-activation's q is v n times the input's position-averaged q (the
/// theory once summed the positions instead, P = 16 times too large here).
#[test]
fn dense_after_an_image_follows_theory() {
    let text = r#"
input = { channels = 2, size = 4 }
block = [
  { type = "conv", channels = 3, kernel = 3, act = "relu", padding = "zero" },
  { type = "dense", width = 64, act = "relu" },
  { type = "dense", width = 64, act = "tanh", init = "xavier-normal" },
]
"#;
    let spec = arch_spec(text, 8, 32, 3, |_| {});
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    within_se(
        "q_pre",
        &out.summary.iter().map(|s| s.q_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.q_mean()).collect::<Vec<_>>(),
        common::z_bound(3),
    );
}

/// The mean shift of ReLU networks (Brock et al. 2021): without
/// normalisation a conv after a ReLU passes on a squared channel mean
/// (q_ab grows block by block), and scaled weight standardisation, whose
/// rows sum to 0, removes the part that comes from the channels' common
/// mean. Both against the
/// theory's spp_mean2 and spp_var within SE, images with circular padding.
#[test]
fn scaled_weight_standardisation_removes_the_mean_shift() {
    // residual blocks whose branches end in a conv, as in Brock et al.'s
    // NF-ResNets: the block outputs are sums of conv outputs, whose channel
    // means come from the ReLU outputs' common mean
    let stack = |ws: &str| {
        format!(
            "input = {{ channels = 8, size = 6 }}\nblock = [\n  {{ type = \"conv\", channels = 24, kernel = 3, act = \"identity\"{ws} }},\n  {{ type = \"residual\", alpha = 0.5, repeat = 5, layer = [\n    {{ type = \"conv\", channels = 24, kernel = 3, act = \"relu\"{ws} }},\n    {{ type = \"conv\", channels = 24, kernel = 3, act = \"identity\"{ws} }},\n  ] }},\n]\n"
        )
    };
    let mut last_mean2 = Vec::new();
    for ws in ["", ", weight-standardisation = \"scaled\""] {
        let mut spec = arch_spec(&stack(ws), 4, 24, 9, |_| {});
        spec.arch.as_mut().unwrap().spp = true;
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        let spp = spp_of(&spec, &out);
        let bound = common::z_bound(2 * 2 * 6);
        let rows = spp.measured.len();
        spp_within_se(&format!("mean shift{ws}"), &spp, &[0, 1], 0..rows, bound);
        last_mean2.push(spp.measured[6][0].0);
    }
    assert!(
        last_mean2[1] < 0.2 * last_mean2[0],
        "scaled WS leaves {} of the squared channel mean {}",
        last_mean2[1],
        last_mean2[0]
    );
}

/// Strided convolutions and pooling against their theory: a convolution at
/// stride s sums the same k x k neighbourhoods (every s-th), so q follows
/// the reach of each output position; average pooling of K positions, which
/// are as independent inputs through circular convolutions, has q / K + (1
/// - 1/K) q_ab; global pooling the same with K = H W; the SPP's channel
/// statistics follow at each row.
#[test]
fn strides_and_pooling_follow_theory() {
    let text = r#"
input = { channels = 4, size = 16 }
block = [
  { type = "conv", channels = 16, kernel = 3, stride = 2, act = "relu" },
  { type = "conv", channels = 16, kernel = 3, act = "relu" },
  { type = "avg-pool", kernel = 2 },
  { type = "conv", channels = 24, kernel = 3, act = "tanh", init = "xavier-normal" },
  { type = "global-avg-pool" },
  { type = "dense", width = 64, act = "relu" },
]
"#;
    let mut spec = arch_spec(text, 8, 32, 11, |_| {});
    spec.arch.as_mut().unwrap().spp = true;
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    let spp = spp_of(&spec, &out);
    let bound = common::z_bound(5 * 6);
    q_post_and_c_pre_follow("strides and pooling", &out, &rows, bound);
    within_se(
        "q_pre",
        &out.summary.iter().map(|s| s.q_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.q_mean()).collect::<Vec<_>>(),
        bound,
    );
    let rows = spp.measured.len();
    spp_within_se("strides and pooling", &spp, &[0, 1], 0..rows, bound);
    // zero padding at stride 2: q per position, the border's smaller
    let text = "input = { channels = 4, size = 7 }\nblock = [{ type = \"conv\", channels = 32, kernel = 3, stride = 2, padding = \"zero\", act = \"relu\" }, { type = \"conv\", channels = 32, kernel = 3, stride = 2, padding = \"zero\", act = \"relu\" }]\n";
    let spec = arch_spec(text, 8, 32, 12, |_| {});
    let a = &spec.arch.as_ref().unwrap().arch;
    let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
    let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
    within_se(
        "zero padding q_pre",
        &out.summary.iter().map(|s| s.q_pre).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.pre.q_mean()).collect::<Vec<_>>(),
        common::z_bound(2),
    );
}

/// Brock, De and Smith's (2021) variance recurrences, from the theory of
/// the `stage` blocks: in an NF-ResNet Var[h] grows by alpha^2 a block and
/// is 1 + alpha^2 after each transition; in a BN-ReLU ResNet-V2 it grows by
/// the branch's 1 a block and is 2 after each transition (the projection of
/// the pre-activation and the branch). Then both against simulation within
/// SE over two stages: q, the SPP's channel variance and squared channel
/// mean, and the branch variance; and scaled WS's NF-ResNet keeps the
/// squared channel mean far below the one without it.
#[test]
fn resnet_stages_follow_the_papers_recurrences() {
    let net = |style: &str, extra: &str, blocks: usize, channels: usize| {
        format!(
            "input = {{ channels = 3, size = 8 }}\n[[block]]\ntype = \"conv\"\nchannels = {channels}\nkernel = 3\nact = \"identity\"\nweight-standardisation = \"scaled\"\n\
             [[block]]\ntype = \"stage\"\nstyle = \"{style}\"\nblocks = {blocks}\nchannels = {channels}\nbottleneck = false\n{extra}\n\
             [[block]]\ntype = \"stage\"\nstyle = \"{style}\"\nblocks = {blocks}\nchannels = {}\nstride = 2\nbottleneck = false\n{extra}\n",
            2 * channels
        )
    };
    // the recurrences, exactly, at the depth of the shipped files
    // (batch-norm's eps = 1e-5 moves each of its q by 1e-5 relative)
    for (style, alpha, reset, step, tolerance) in [
        ("nf", 0.2, 1.04, 0.04, 1e-9),
        ("bn-relu", 1.0, 2.0, 1.0, 1e-4),
    ] {
        let text = net(style, &format!("alpha = {alpha}"), 50, 32);
        let spec = arch_spec(&text, 4, 2, 1, |_| {});
        let rows = theory::arch::arch_table(&spec.arch.as_ref().unwrap().arch, 1.0, 0.5, false);
        for (l, row) in rows.iter().enumerate().skip(2) {
            // rows 2..=51 the first stage (its first block a transition for
            // bn-relu, whose stem is not followed by a projection for nf)
            let k = (l - 2) % 50;
            let first = if style == "nf" && l < 52 {
                1.0 + step
            } else {
                reset
            };
            let want = first + k as f64 * step;
            let got = row.post.q_mean();
            assert!(
                (got - want).abs() < tolerance * want,
                "{style} row {l}: {got} vs {want}"
            );
        }
    }
    // simulation, 2 stages of 3 blocks
    let mut mean2_at_top = Vec::new();
    for (style, extra) in [
        ("nf", "alpha = 0.2"),
        ("nf", "alpha = 0.2\nweight-standardisation = \"none\""),
        ("bn-relu", ""),
    ] {
        let mut spec = arch_spec(&net(style, extra, 3, 32), 4, 24, 2, |_| {});
        spec.arch.as_mut().unwrap().spp = true;
        let a = &spec.arch.as_ref().unwrap().arch;
        let rows = theory::arch::arch_table(a, 1.0, 0.5, false);
        let out = run_cpu(&spec, &mut |_, _| {}).unwrap();
        let spp = spp_of(&spec, &out);
        let bound = common::z_bound(4 * 7 * 3);
        let name = format!("{style} {extra}");
        within_se(
            &format!("{name} q_post"),
            &out.summary.iter().map(|s| s.q_post).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.post.q_mean()).collect::<Vec<_>>(),
            bound,
        );
        let rows = spp.measured.len();
        spp_within_se(&name, &spp, &[0, 1], 0..rows, bound);
        // the branch from row 2 (row 1 is the stem)
        spp_within_se(&name, &spp, &[2], 1..rows, bound);
        mean2_at_top.push(spp.measured.last().unwrap()[0].0);
    }
    assert!(
        mean2_at_top[0] < 0.1 * mean2_at_top[1],
        "scaled WS: {} against {} without",
        mean2_at_top[0],
        mean2_at_top[1]
    );
}
