//! The gram engine (issue 8): equal in distribution to the dense engine, on
//! the exact finite-width law at widths the dense engine cannot reach, safe
//! on rank-deficient inputs, and clear about what it refuses.

mod common;

use varprop::config::settings::NetworkSettings;
use varprop::gpu::{GpuOptions, run_gpu};
use varprop::sim::RunOutput;
use varprop::sim::stats::{LayerSample, mean_se};
use varprop::spec::{EngineChoice, Probes, RunSpec};
use varprop::theory;

use common::varprop_line;

fn spec(
    flags: NetworkSettings,
    batch: usize,
    networks: usize,
    seed: u64,
    backward: bool,
) -> RunSpec {
    RunSpec {
        probes: Probes {
            backward,
            weight_grads: backward,
            ..Default::default()
        },
        ..RunSpec::new(flags.resolve().unwrap(), batch, networks, seed)
    }
}

fn run(ctx: &varprop::gpu::GpuContext, spec: &RunSpec, engine: EngineChoice) -> RunOutput {
    let spec = RunSpec {
        engine,
        ..spec.clone()
    };
    run_gpu(ctx, &spec, GpuOptions::default(), &mut |_, _| {}).unwrap()
}

/// Two-sample Kolmogorov-Smirnov statistic D = sup |F_a - F_b|.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Its asymptotic p-value, Q_KS(lambda) = 2 sum_k (-1)^(k-1) exp(-2 k^2
/// lambda^2) with lambda = (sqrt(m) + 0.12 + 0.11/sqrt(m)) D, m = n_a n_b /
/// (n_a + n_b) (Stephens' small-sample correction, as Numerical Recipes).
fn ks_p_value(d: f64, n_a: usize, n_b: usize) -> f64 {
    let m = (n_a * n_b) as f64 / (n_a + n_b) as f64;
    let lambda = (m.sqrt() + 0.12 + 0.11 / m.sqrt()) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

#[test]
fn ks_helper_is_right_on_known_cases() {
    let a: Vec<f64> = (0..100).map(|i| i as f64).collect();
    let b: Vec<f64> = (0..100).map(|i| i as f64 + 50.0).collect();
    assert!((ks_statistic(&a, &b) - 0.5).abs() < 1e-12);
    assert_eq!(ks_statistic(&a, &a), 0.0);
    // the 5% critical value of the asymptotic law: lambda = 1.358
    let m: f64 = 1e6;
    let d = 1.358 / (m.sqrt() + 0.12 + 0.11 / m.sqrt());
    assert!((ks_p_value(d, 2_000_000, 2_000_000) - 0.05).abs() < 1e-3);
}

/// The per-network values compared between the engines.
const COLUMNS: [(&str, fn(&LayerSample) -> f64); 8] = [
    ("log_q_pre", |s| s.log_q_pre),
    ("log_q_post", |s| s.log_q_post),
    ("mean_post", |s| s.mean_post),
    ("kurt_pre", |s| s.kurt_pre),
    ("zero_frac", |s| s.zero_frac),
    ("c_pre", |s| s.c_pre),
    ("log_g", |s| s.log_g),
    ("log_gw", |s| s.log_gw),
];

/// One statistic's mean compared between the engines.
struct Comparison {
    what: String,
    dense: f64,
    gram: f64,
    /// the combined standard error of the two means
    se: f64,
}

/// The per-network values of one statistic, `a` from the dense engine and
/// `b` from gram, as a comparison of means; None where there is nothing to
/// compare: NaN in both (a column the run does not measure; NaN in one
/// engine only fails) or no spread in either (the means must then be equal).
fn compare_means(what: String, a: &[f64], b: &[f64]) -> Option<Comparison> {
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        assert!(
            a.iter().chain(b).all(|v| v.is_nan()),
            "{what}: NaN in one engine only"
        );
        return None;
    }
    let ((ma, sa), (mb, sb)) = (mean_se(a.iter().copied()), mean_se(b.iter().copied()));
    let se = (sa * sa + sb * sb).sqrt();
    if se == 0.0 {
        assert_eq!(ma, mb, "{what}");
        return None;
    }
    Some(Comparison {
        what,
        dense: ma,
        gram: mb,
        se,
    })
}

/// More than `at_least` comparisons, and a false-failure rate of 1e-4 for
/// the lot, split evenly between the z comparisons (Bonferroni: |z| <
/// z_{5e-5 / (2 K)}) and the KS tests (Bonferroni: p > 5e-5 / their
/// number); prints the figures (cargo test -- --nocapture).
fn assert_engines_agree(comparisons: &[Comparison], ks: &[(String, f64, f64)], at_least: usize) {
    let bound = common::normal_quantile_upper(5e-5 / (2.0 * comparisons.len() as f64));
    assert!(
        comparisons.len() > at_least,
        "{} comparisons",
        comparisons.len()
    );
    let mut worst = 0.0f64;
    for c in comparisons {
        let z = (c.dense - c.gram) / c.se;
        worst = worst.max(z.abs());
        assert!(
            z.abs() < bound,
            "{}: dense {} vs gram {} (combined SE {}, z = {z:.2}, bound {bound:.2})",
            c.what,
            c.dense,
            c.gram,
            c.se
        );
    }
    let alpha = 5e-5 / ks.len() as f64;
    for (label, d, p) in ks {
        assert!(
            *p > alpha,
            "{label}: KS D = {d:.3}, p = {p:.2e} < {alpha:.1e}"
        );
    }
    let least_p = ks.iter().map(|k| k.2).fold(1.0, f64::min);
    println!(
        "{} z comparisons, largest |z| {worst:.2} (bound {bound:.2}); {} KS tests, least p {least_p:.3} (alpha {alpha:.1e})",
        comparisons.len(),
        ks.len()
    );
}

/// The flags of one case of the engine comparisons: Gaussian weights of
/// variance sigma_w2 / n (`--init custom`) or orthogonal ones, and with tanh
/// the bias path (tanh is not homogeneous: no renormalisation).
fn case_flags(
    width: usize,
    depth: usize,
    act: &str,
    orthogonal: bool,
    sigma_w2: f64,
) -> NetworkSettings {
    let mut flags = common::stack(
        width,
        depth,
        act,
        if orthogonal { "orthogonal" } else { "custom" },
    );
    if !orthogonal {
        flags.init.sigma_w2 = Some(sigma_w2);
    }
    if act == "tanh" {
        flags.init.sigma_b2 = Some(0.1);
    }
    flags
}

/// For relu, tanh and identity, Gaussian and orthogonal weights, with and
/// without the backward pass: S = 200 independent networks per engine
/// (width 16, depth 3, batch 4; different seeds, so the two samples are
/// independent), and for every layer and per-network statistic the two
/// means agree within their combined standard error, and a two-sample KS
/// test on log q_post at the last layer passes.
///
/// False-failure rate: 1e-4 for the whole test (as `check`'s
/// FALSE_FAILURE_RATE), split evenly between the z comparisons (Bonferroni
/// over all of them: |z| < z_{5e-5 / (2 K)}) and the 12 KS tests
/// (Bonferroni: p > 5e-5 / 12). Means of 200 values are Gaussian to well
/// within that (the statistics are bounded or log-moments).
#[test]
fn gram_matches_dense_in_distribution() {
    let ctx = common::gpu();
    let (width, depth, batch, networks) = (16, 3, 4, 200);
    let mut cases = Vec::new();
    for act in ["relu", "tanh", "identity"] {
        for orthogonal in [false, true] {
            for backward in [false, true] {
                cases.push((act, orthogonal, backward));
            }
        }
    }
    // (case, layer, column, z) of every comparison, then the KS p-values
    let mut comparisons = Vec::new();
    let mut ks = Vec::new();
    for &(act, orthogonal, backward) in &cases {
        let sigma_w2 = if act == "tanh" { 1.5 } else { 2.0 };
        let flags = case_flags(width, depth, act, orthogonal, sigma_w2);
        let label = format!(
            "{act} {} {}",
            if orthogonal { "orthogonal" } else { "gaussian" },
            if backward { "backward" } else { "forward" }
        );
        let dense = run(
            &ctx,
            &spec(flags.clone(), batch, networks, 11, backward),
            EngineChoice::Dense,
        );
        let gram = run(
            &ctx,
            &spec(flags, batch, networks, 12, backward),
            EngineChoice::Gram,
        );
        assert_eq!(gram.info.engine, "gpu-gram");
        for l in 0..=depth {
            for (name, f) in COLUMNS {
                let a: Vec<f64> = dense.per_network.iter().map(|n| f(&n[l])).collect();
                let b: Vec<f64> = gram.per_network.iter().map(|n| f(&n[l])).collect();
                comparisons.extend(compare_means(format!("{label} layer {l} {name}"), &a, &b));
            }
        }
        let last = |o: &RunOutput| -> Vec<f64> {
            o.per_network.iter().map(|n| n[depth].log_q_post).collect()
        };
        let (a, b) = (last(&dense), last(&gram));
        let d = ks_statistic(&a, &b);
        ks.push((label, d, ks_p_value(d, a.len(), b.len())));
    }
    assert_engines_agree(&comparisons, &ks, 250);
}

/// --jacobian on both engines (width 32, depth 3, batch 4: K = 8 columns,
/// and orthogonal layers need n >= 4 K), relu and identity with Gaussian
/// weights, relu with orthogonal weights, tanh with a bias (no forward
/// renormalisation: the tangents' r_t differs from the inputs' r, and the
/// bias must not enter W t); S networks per engine on different seeds. Per
/// case: for every layer and per-network statistic (log_jac_m1 per layer,
/// the forward columns, with `backward` log_g and log_gw too) and the
/// network's log_jac_m1 and log_jac_m2, the two means agree within their
/// combined standard error; two-sample KS tests on the network's log_jac_m1
/// and log_jac_m2. False-failure rate 1e-4 for the whole test, as
/// `gram_matches_dense_in_distribution`: half to the z comparisons
/// (Bonferroni), half to the KS tests (Bonferroni). Identity with
/// orthogonal weights is exact (an isometry: log_jac_m1 = 0 up to rounding,
/// where a z-test on rounding noise means nothing): see
/// `gram_linear_orthogonal_jacobian_is_an_isometry`.
fn gram_jacobian_matches_dense(backward: bool) {
    let ctx = common::gpu();
    let (width, depth, batch) = (32, 3, 4);
    // (act, orthogonal, networks): the dense engine's orthogonal draws are
    // slow on lavapipe (about 0.13 s a network), hence fewer there
    let cases = [
        ("relu", false, 200),
        ("relu", true, 100),
        ("identity", false, 200),
        ("tanh", false, 200),
    ];
    let mut comparisons = Vec::new();
    let mut ks = Vec::new();
    for (act, orthogonal, networks) in cases {
        let sigma_w2 = match act {
            "tanh" => 1.5,
            "identity" => 1.0,
            _ => 2.0,
        };
        let flags = case_flags(width, depth, act, orthogonal, sigma_w2);
        let label = format!(
            "{act} {} --jacobian{}",
            if orthogonal { "orthogonal" } else { "gaussian" },
            if backward {
                " --backward --weight-grads"
            } else {
                ""
            }
        );
        let spec = |seed| RunSpec {
            probes: Probes {
                jacobian: true,
                backward,
                weight_grads: backward,
                ntk: None,
            },
            ..RunSpec::new(flags.clone().resolve().unwrap(), batch, networks, seed)
        };
        // --jacobian runs the backward pass anyway: other seeds with
        // --backward, so that the two tests are independent replicates
        let seed = if backward { 41 } else { 31 };
        let dense = run(&ctx, &spec(seed), EngineChoice::Dense);
        let gram = run(&ctx, &spec(seed + 1), EngineChoice::Gram);
        assert_eq!(gram.info.engine, "gpu-gram");
        assert_eq!(gram.info.gram_rank_min, Some(batch), "{label}");
        let mut compare = |name: String, a: Vec<f64>, b: Vec<f64>| {
            comparisons.extend(compare_means(format!("{label} {name}"), &a, &b));
        };
        let columns = COLUMNS
            .iter()
            .copied()
            .chain([("log_jac_m1", (|s| s.log_jac_m1) as fn(&LayerSample) -> f64)]);
        for (name, f) in columns {
            for l in 0..=depth {
                let a = dense.per_network.iter().map(|n| f(&n[l])).collect();
                let b = gram.per_network.iter().map(|n| f(&n[l])).collect();
                compare(format!("layer {l} {name}"), a, b);
            }
        }
        type Top = fn(&varprop::sim::stats::NetworkTop) -> f64;
        let tops: [(&str, Top); 2] = [
            ("log_jac_m1", |t| t.log_jac_m1),
            ("log_jac_m2", |t| t.log_jac_m2),
        ];
        for (name, f) in tops {
            let a: Vec<f64> = dense.tops.iter().map(f).collect();
            let b: Vec<f64> = gram.tops.iter().map(f).collect();
            assert!(a.iter().chain(&b).all(|v| v.is_finite()), "{label} {name}");
            compare(format!("network {name}"), a.clone(), b.clone());
            let d = ks_statistic(&a, &b);
            ks.push((
                format!("{label} {name}"),
                d,
                ks_p_value(d, a.len(), b.len()),
            ));
        }
    }
    assert_engines_agree(&comparisons, &ks, 100);
}

#[test]
fn gram_jacobian_matches_dense_in_distribution() {
    gram_jacobian_matches_dense(false);
}

#[test]
fn gram_jacobian_backward_matches_dense_in_distribution() {
    gram_jacobian_matches_dense(true);
}

/// As tests/backward.rs `linear_orthogonal_jacobian_is_an_isometry`, on the
/// gram engine: identity with orthogonal weights is an isometry, so every
/// probe keeps its norm forward and J^T J u = u: m1 = m2 = 1 and the spread
/// is 0, up to f32 rounding; with and without --backward, and with a bias
/// (sigma_b^2 = 0.5: J does not change, and J^T J u = u holds only if the
/// backward pass conditions on W t without the bias; with the bias
/// subtracted from those rows too, m2 came out 4.7).
#[test]
fn gram_linear_orthogonal_jacobian_is_an_isometry() {
    let ctx = common::gpu();
    for (backward, sigma_b2) in [(false, 0.0), (true, 0.0), (false, 0.5)] {
        let probes = Probes {
            jacobian: true,
            backward,
            ..Default::default()
        };
        let mut flags = common::flags("64x9", "identity", "orthogonal");
        flags.init.sigma_b2 = Some(sigma_b2);
        let spec = RunSpec {
            probes,
            ..RunSpec::new(flags.resolve().unwrap(), 8, 4, 21)
        };
        let label = format!("backward {backward}, sigma_b2 {sigma_b2}");
        let out = run(&ctx, &spec, EngineChoice::Gram);
        assert_eq!(out.info.engine, "gpu-gram");
        common::assert_jacobian_isometry(&label, &out);
        for top in &out.tops {
            let m2 = top.log_jac_m2.exp();
            assert!(top.log_jac_m2.abs() < 1e-4, "{label}: m2 = {m2}");
        }
    }
}

/// At n = 65,536 (a 16 GiB weight matrix for the dense engine), batch 8:
/// the per-input log q_post of relu/he-normal and identity/lecun-normal
/// follows the exact finite-width law (theory::layer_table): its mean and
/// its second moment across 48 networks, every layer, within a Bonferroni
/// bound at 1e-4 over all comparisons (SEs from the measured spread across
/// networks, which are independent; inputs within one are not).
#[test]
fn gram_follows_the_exact_finite_width_law_at_width_65536() {
    let ctx = common::gpu();
    let (width, depth, batch, networks) = (65_536, 6, 8, 48);
    let cases = [("relu", "he-normal"), ("identity", "lecun-normal")];
    let bound = common::z_bound(2 * (depth + 1) * cases.len());
    for (act, init) in cases {
        let flags = common::stack(width, depth, act, init);
        let s = spec(flags, batch, networks, 3, false);
        let law = theory::layer_table(&s.net);
        let out = run(&ctx, &s, EngineChoice::Gram);
        for (l, row) in law.iter().enumerate() {
            let (want_mean, want_std) = (row.log_q_post_mean.unwrap(), row.log_q_post_std.unwrap());
            let first: Vec<f64> = out
                .per_network
                .iter()
                .map(|n| n[l].sample_log_q_post)
                .collect();
            let second: Vec<f64> = out
                .per_network
                .iter()
                .map(|n| n[l].sample_log_q_post_sq)
                .collect();
            let (m1, se1) = mean_se(first.iter().copied());
            let (m2, se2) = mean_se(second.iter().copied());
            let z1 = (m1 - want_mean) / se1;
            let want_second = want_mean * want_mean + want_std * want_std;
            let z2 = (m2 - want_second) / se2;
            assert!(
                z1.abs() < bound,
                "{act} layer {l}: mean log q {m1} ± {se1} vs law {want_mean} (z = {z1:.2}, bound {bound:.2})"
            );
            assert!(
                z2.abs() < bound,
                "{act} layer {l}: E[(log q)^2] {m2} ± {se2} vs law {want_second} (z = {z2:.2})"
            );
        }
    }
}

/// c0 = 1 (pairs of identical inputs: X^T X has rank B/2) and a deep
/// ordered-phase tanh network (c -> 1: the rank collapses): no NaN forward
/// or backward, and the rank drop is reported.
#[test]
fn rank_deficient_inputs_run_and_report_the_rank() {
    let ctx = common::gpu();
    let flags = NetworkSettings {
        c0: Some(1.0),
        ..common::stack(64, 20, "relu", "he-normal")
    };
    let out = run(&ctx, &spec(flags, 8, 3, 1, true), EngineChoice::Gram);
    assert_eq!(out.info.gram_rank_min, Some(4));
    for net in &out.per_network {
        for (l, s) in net.iter().enumerate() {
            assert!(
                s.log_q_post.is_finite() && s.log_g.is_finite(),
                "c0 = 1, layer {l}: {s:?}"
            );
            assert!(
                (s.c_pre - 1.0).abs() < 1e-5,
                "c0 = 1, layer {l}: c {}",
                s.c_pre
            );
        }
    }
    let mut flags = common::stack(64, 60, "tanh", "custom");
    flags.init.sigma_w2 = Some(0.5);
    flags.init.sigma_b2 = Some(0.5);
    let out = run(&ctx, &spec(flags, 8, 2, 1, true), EngineChoice::Gram);
    let rank = out.info.gram_rank_min.unwrap();
    assert!(
        rank < 8,
        "the ordered phase should lose rank (least rank {rank})"
    );
    for net in &out.per_network {
        for (l, s) in net.iter().enumerate() {
            assert!(
                s.log_q_post.is_finite() && s.log_g.is_finite(),
                "tanh, layer {l}: {s:?}"
            );
        }
    }
}

/// Runs the words of `line`, asserts that the binary refuses them (exit 2)
/// and returns its stderr.
fn refused(line: &str) -> String {
    let out = varprop_line(line, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{line}: {err}");
    err
}

/// Bad combinations under --engine gram exit 2 with one line naming
/// --engine and the reason; auto says what it chose and why.
#[test]
fn engine_flag_errors_and_auto_choice() {
    let base = "run --width 32 --depth 2 --batch 4 --networks 1 --engine";
    let cases = [
        ("gram --init xavier-uniform", "uniform"),
        ("gram --init truncated-normal", "truncated-normal"),
        ("gram --init siren", "uniform"),
        ("gram --bias mean-preserving", "mean-preserving"),
        ("gram --device cpu", "--device gpu"),
        ("fast", "accepted: dense, gram, blocks, auto"),
    ];
    for (extra, why) in cases {
        let err = refused(&format!("{base} {extra}"));
        assert!(
            err.contains("--engine") && err.contains(why),
            "{extra:?}: {err}"
        );
        // one line of ours (Mesa's XDG_RUNTIME_DIR warning is not ours)
        let ours = err
            .lines()
            .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
            .count();
        assert_eq!(ours, 1, "{extra:?}: {err}");
    }
    let err = refused("run --widths 16,32,32 --init orthogonal --batch 4 --engine gram");
    assert!(err.contains("square"), "{err}");
    // orthogonal layers need n >= 4 K: 4 B, and 8 B with --jacobian
    let err = refused("run --width 12 --batch 4 --init orthogonal --jacobian --engine gram");
    assert!(err.contains("--jacobian") && err.contains("4 B"), "{err}");

    // auto: gram at 4 B <= n, dense above (with --jacobian too); the reason
    // is in the config block
    let cases = [
        ("4", "-q", "gpu-gram"),
        ("16", "-q", "gpu-dense"),
        ("4", "--jacobian", "gpu-gram"),
        ("16", "--jacobian", "gpu-dense"),
    ];
    for (batch, probe, engine) in cases {
        let out = varprop_line(
            &format!("run --width 32 --depth 2 --batch {batch} --networks 1 {probe} --format json"),
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["config"]["engine"], engine);
        let reason = json["config"]["engine_reason"].as_str().unwrap();
        assert!(reason.starts_with("auto:"), "{reason}");
        assert_eq!(
            json["config"]["gram_rank_min"].is_null(),
            engine == "gpu-dense"
        );
    }
}

/// Rows are bound through windows of at most two row blocks, and the
/// checkpoints spread over several buffers, wherever the adapter's limits
/// ask for it (at width 10^6 on software adapters, which bind 128 MiB at
/// once). Here the limits are shrunk to exactly that at a small width (a
/// binding of two blocks, buffers of six), so that every dispatch of the
/// forward pass, the backward pass, the Jacobian probes, orthogonal layers
/// and the bias runs through windows: the results equal those with
/// whole-buffer bindings bit for bit. One block less than two is refused.
#[test]
fn narrow_bindings_change_no_bit() {
    let wide = common::gpu();
    let mut narrow = common::gpu();
    // wide enough that the records (bound whole: three parts of six K x K
    // Gram matrices, issue 12) fit the narrow binding of two panels
    let (width, batch, depth) = (200usize, 4, 12);
    // a panel: K = 2B rows (--jacobian) of `width` floats, in bytes
    let panel = (width * 2 * batch * 4).next_multiple_of(256) as u64;
    narrow.limits.max_storage_buffer_binding_size = 2 * panel;
    narrow.limits.max_buffer_size = 6 * panel;
    let probes = Probes {
        jacobian: true,
        backward: true,
        weight_grads: true,
        ntk: None,
    };
    for init in ["orthogonal", "custom"] {
        let mut flags = common::stack(width, depth, "tanh", init);
        if init == "custom" {
            flags.init.sigma_w2 = Some(1.5);
        }
        flags.init.sigma_b2 = Some(0.1);
        let spec = RunSpec {
            probes,
            ..RunSpec::new(flags.resolve().unwrap(), batch, 2, 5)
        };
        let a = run(&wide, &spec, EngineChoice::Gram);
        let b = run(&narrow, &spec, EngineChoice::Gram);
        assert!(a.per_network[0][depth].log_jac_m1.is_finite(), "{init}");
        assert_eq!(
            format!("{:?}", a.per_network),
            format!("{:?}", b.per_network),
            "{init}"
        );
        assert_eq!(format!("{:?}", a.tops), format!("{:?}", b.tops), "{init}");
    }
    narrow.limits.max_storage_buffer_binding_size = 2 * panel - 4;
    let flags = common::stack(width, depth, "relu", "he-normal");
    let spec = RunSpec {
        probes,
        engine: EngineChoice::Gram,
        ..RunSpec::new(flags.resolve().unwrap(), batch, 1, 5)
    };
    let err = run_gpu(&narrow, &spec, GpuOptions::default(), &mut |_, _| {})
        .err()
        .expect("one panel short of two is refused");
    assert!(err.to_string().contains("two panels of rows"), "{err}");
}

/// Orthogonal layers at the least width the engine accepts (n = 4K): the
/// backward frame of span(X)^perp is well conditioned, and a linear
/// orthogonal network stays an isometry backward (||W^T delta|| = ||delta||,
/// so log g is the same at every layer of each network, up to f32
/// rounding) in every one of 200 networks. At n = 2K the frame came from a
/// nearly singular Wishart matrix: log g strayed by up to 0.18, or the run
/// stopped; that width is refused.
#[test]
fn orthogonal_backward_at_width_4k_is_an_isometry() {
    let ctx = common::gpu();
    let (width, batch, depth) = (16, 4, 4);
    let mut flags = common::stack(width, depth, "identity", "orthogonal");
    let out = run(
        &ctx,
        &spec(flags.clone(), batch, 200, 3, true),
        EngineChoice::Gram,
    );
    for (s, net) in out.per_network.iter().enumerate() {
        let top = net[depth].log_g;
        for (l, row) in net.iter().enumerate() {
            assert!(
                (row.log_g - top).abs() < 1e-5,
                "network {s}, layer {l}: log g {} against {top} at the top",
                row.log_g
            );
        }
    }
    flags.width = Some(2 * batch * 2 - 1);
    let mut narrow = spec(flags, batch, 1, 3, true);
    narrow.engine = EngineChoice::Gram;
    let err = run_gpu(&ctx, &narrow, GpuOptions::default(), &mut |_, _| {})
        .err()
        .expect("n < 4 K is refused");
    assert!(err.to_string().contains("nearly singular Wishart"), "{err}");
}
