//! The init names mean what their library means (issue 20). Every expected
//! value here is written from the documentation of torch.nn.init 2.x,
//! jax.nn.initializers and the SIREN reference code, not from varprop's
//! code: the truncated normals' moments come from Simpson's rule on the
//! density, here, not from the closed forms the library uses.

mod common;

use varprop::model::activation::Activation;
use varprop::model::init::{InitFlags, InitSpec, Scheme};

/// E[z^2], E[z^4] of N(0, 1) conditioned on |z| < a, by Simpson's rule.
fn truncated_moments(a: f64) -> (f64, f64) {
    let n = 40_000;
    let h = 2.0 * a / n as f64;
    let (mut z0, mut z2, mut z4) = (0.0, 0.0, 0.0);
    for i in 0..=n {
        let z = -a + i as f64 * h;
        let w = match i {
            0 => 1.0,
            i if i == n => 1.0,
            i if i % 2 == 1 => 4.0,
            _ => 2.0,
        };
        let f = w * (-0.5 * z * z).exp();
        z0 += f;
        z2 += f * z * z;
        z4 += f * z.powi(4);
    }
    (z2 / z0, z4 / z0)
}

/// (variance, E w^4 / v^2) of one weight entry of a layer with these fans,
/// from the peer library's documentation, for the default arguments
/// (gain 1, mode fan_in, PyTorch's kaiming nonlinearity leaky_relu a = 0).
fn documented(scheme: &str, convention: &str, fi: f64, fo: f64) -> (f64, f64) {
    let normal = 3.0;
    let uniform = 9.0 / 5.0;
    // jax variance_scaling(scale, mode, "truncated_normal"): stddev =
    // sqrt(scale / n) / .87962566103423978, cut at +-2 stddev, so the
    // variance is scale / n; "uniform": limit sqrt(3 scale / n).
    let (m2, m4) = truncated_moments(2.0);
    let jax_truncated = m4 / (m2 * m2);
    let jax = convention != "pytorch";
    let normal_kind = if jax { jax_truncated } else { normal };
    match scheme {
        // torch: std = gain sqrt(2 / (fan_in + fan_out)); jax glorot: scale 1, fan_avg
        "xavier-normal" => (2.0 / (fi + fo), normal_kind),
        // torch: bound = gain sqrt(6 / (fan_in + fan_out)), variance bound^2 / 3
        "xavier-uniform" => ((6.0 / (fi + fo)) / 3.0, uniform),
        // torch kaiming_normal_: std = calculate_gain('leaky_relu', 0) / sqrt(fan) = sqrt(2 / fan);
        // jax he_normal: scale 2, fan_in
        "he-normal" => (2.0 / fi, normal_kind),
        // torch kaiming_uniform_: bound = gain sqrt(3 / fan)
        "he-uniform" => (2.0 * 3.0 / fi / 3.0, uniform),
        // jax lecun_normal: scale 1, fan_in; torch has none: kaiming_normal_(nonlinearity='linear')
        "lecun-normal" => (1.0 / fi, normal_kind),
        "lecun-uniform" => (3.0 / fi / 3.0, uniform),
        "truncated-normal" => {
            let s2 = 1.0 / fi;
            match convention {
                // trunc_normal_(std = s, a = -2, b = 2): the bounds are absolute, 2 / s std
                "pytorch" => {
                    let (m2, m4) = truncated_moments(2.0 / s2.sqrt());
                    (s2 * m2, m4 / (m2 * m2))
                }
                // jax.nn.initializers.truncated_normal(stddev = s): random.truncated_normal(-2, 2) * s
                "jax" => (s2 * m2, jax_truncated),
                // variance_scaling(1, fan_in, "truncated_normal")
                _ => (s2, jax_truncated),
            }
        }
        // orthogonal_ / orthogonal(): a (semi-)orthogonal matrix has E w^2 = 1 / max(fan_in, fan_out)
        "orthogonal" => (1.0 / fi.max(fo), f64::NAN),
        // SIREN's sine_init: U(+-sqrt(6 / fan_in) / 30) for a hidden layer
        "siren" => ((6.0 / fi) / (30.0 * 30.0) / 3.0, uniform),
        // nn.Linear.reset_parameters: kaiming_uniform_(a = sqrt 5): bound 1 / sqrt(fan_in)
        "torch-default" => (1.0 / fi / 3.0, uniform),
        other => panic!("no documented law for {other}"),
    }
}

fn resolve(scheme: &str, convention: &str, act: &Activation) -> InitSpec {
    let flags = InitFlags {
        init: Some(scheme.into()),
        convention: Some(convention.into()),
        ..Default::default()
    };
    InitSpec::resolve(&flags, act).unwrap()
}

#[test]
fn every_scheme_and_convention_has_its_documented_variance_and_fourth_moment() {
    let schemes = [
        "xavier-normal",
        "xavier-uniform",
        "he-normal",
        "he-uniform",
        "lecun-normal",
        "lecun-uniform",
        "truncated-normal",
        "orthogonal",
        "siren",
        "torch-default",
    ];
    let mut checked = 0;
    for convention in ["pytorch", "jax", "flax"] {
        for scheme in schemes {
            let act = if scheme == "siren" {
                Activation::Sin { omega: 30.0 }
            } else {
                Activation::Relu
            };
            let init = resolve(scheme, convention, &act);
            for (fi, fo) in [(1usize, 512usize), (256, 512), (512, 256)] {
                // layer 2: siren's hidden-layer rule
                let law = init.weight_law(&act, 2, fi, fo);
                let (v, k) = documented(scheme, convention, fi as f64, fo as f64);
                let what = format!("{scheme} ({convention}) at fan_in {fi}, fan_out {fo}");
                assert!(
                    (law.variance - v).abs() <= 1e-9 * v,
                    "{what}: variance {} vs documented {v}",
                    law.variance
                );
                let k_code = law.dist.standardised_fourth_moment();
                if k.is_nan() {
                    assert!(k_code.is_nan(), "{what}: orthogonal has no entry kurtosis");
                } else {
                    assert!(
                        (k_code - k).abs() <= 1e-8,
                        "{what}: E w^4 / v^2 {k_code} vs documented {k}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 10 * 3);
}

/// The gains of PyTorch's calculate_gain table, through kaiming's
/// `nonlinearity` and `a`, and through --gain-from-act.
#[test]
fn pytorch_kaiming_gains_follow_calculate_gain() {
    let cases: &[(Option<&str>, Option<f64>, f64)] = &[
        (None, None, 2.0),                                  // leaky_relu, a = 0
        (Some("relu"), None, 2.0),                          // sqrt 2
        (Some("tanh"), None, 25.0 / 9.0),                   // 5/3
        (Some("selu"), None, 9.0 / 16.0),                   // 3/4
        (Some("linear"), None, 1.0),                        // 1
        (Some("sigmoid"), None, 1.0),                       // 1
        (Some("conv2d"), None, 1.0),                        // 1
        (Some("leaky_relu"), Some(0.2), 2.0 / 1.04),        // sqrt(2 / (1 + a^2))
        (None, Some(0.2), 2.0 / 1.04), // the default nonlinearity is leaky_relu
        (Some("leaky_relu"), Some(5f64.sqrt()), 1.0 / 3.0), // nn.Linear's a = sqrt 5
    ];
    for (nonlinearity, a, v_fan) in cases {
        let flags = InitFlags {
            init: Some("he-normal".into()),
            nonlinearity: nonlinearity.map(String::from),
            kaiming_a: *a,
            ..Default::default()
        };
        for act in [Activation::Tanh, Activation::Relu, Activation::Gelu] {
            let init = InitSpec::resolve(&flags, &act).unwrap();
            let v = init.weight_law(&act, 1, 100, 100).variance * 100.0;
            assert!(
                (v - v_fan).abs() < 1e-12,
                "{nonlinearity:?} a {a:?} act {act}: v fan_in {v} vs {v_fan}"
            );
        }
    }
    let from_act = |act: Activation| {
        let flags = InitFlags {
            init: Some("he-normal".into()),
            gain_from_act: Some(true),
            ..Default::default()
        };
        InitSpec::resolve(&flags, &act).map(|i| i.weight_law(&act, 1, 100, 100).variance * 100.0)
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(from_act(Activation::Tanh).unwrap(), 25.0 / 9.0));
    assert!(close(from_act(Activation::Selu).unwrap(), 9.0 / 16.0));
    assert!(close(
        from_act(Activation::LeakyRelu { alpha: 0.2 }).unwrap(),
        2.0 / 1.04
    ));
    for act in [Activation::Gelu, Activation::Silu, Activation::Elu] {
        let e = from_act(act).unwrap_err().to_string();
        assert!(e.contains("--gain-from-act"), "{act}: {e}");
    }
}

/// The table, row by row, as `varprop run` states the law in its
/// JSON config (v fan_in of layer 1, and E w^4 / v^2 from the distribution).
#[test]
fn the_peers_numbers_come_out_under_their_convention() {
    let v_fan_in = |widths: &str, extra: &[&str]| -> (f64, serde_json::Value) {
        let mut args = vec![
            "run",
            "--device",
            "cpu",
            "--widths",
            widths,
            "--batch",
            "2",
            "--networks",
            "2",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = common::varprop(&args);
        assert!(out.status.success(), "{extra:?}: {}", common::text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let laws = doc["config"]["layer_laws"][0].clone();
        (laws["v_fan_in"].as_f64().unwrap(), laws)
    };
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
    // (flags at fan_in 256, v fan_in, and the peer's number it reproduces)
    let rows: &[(&[&str], f64)] = &[
        // he-normal, act tanh: kaiming_normal_(w) gives 2.00; the old behaviour 2.778 on request
        (&["--init", "he-normal", "--act", "tanh"], 2.0),
        (
            &["--init", "he-normal", "--act", "tanh", "--gain-from-act"],
            25.0 / 9.0,
        ),
        // leaky-relu 0.2: kaiming_normal_(w, nonlinearity='leaky_relu') is 2.00; with a = 0.2, 1.923
        (
            &[
                "--init",
                "he-normal",
                "--act",
                "leaky-relu",
                "--alpha",
                "0.2",
            ],
            2.0,
        ),
        (
            &[
                "--init",
                "he-normal",
                "--act",
                "leaky-relu",
                "--alpha",
                "0.2",
                "--kaiming-a",
                "0.2",
            ],
            2.0 / 1.04,
        ),
        // gelu: the default convention gives 2 (kaiming's default), never a silent sqrt 2 "gain of gelu"
        (&["--init", "he-normal", "--act", "gelu"], 2.0),
        // selu: the SELU paper's LeCun normal is 1.0; PyTorch's selu gain 3/4 only when asked
        (&["--init", "lecun-normal", "--act", "selu"], 1.0),
        (&["--init", "he-normal", "--act", "selu"], 2.0),
        (
            &["--init", "he-normal", "--act", "selu", "--gain-from-act"],
            0.5625,
        ),
    ];
    for (flags, want) in rows {
        let (v, _) = v_fan_in("256,512", flags);
        assert!(close(v, *want, 1e-12), "{flags:?}: v fan_in {v} vs {want}");
    }
    // truncated-normal at fan_in 1: trunc_normal_(std=1) and jax truncated_normal(1) give 0.774,
    // Flax's variance_scaling 1.00
    let (m2, _) = truncated_moments(2.0);
    for (convention, want) in [("pytorch", m2), ("jax", m2), ("flax", 1.0)] {
        let (v, _) = v_fan_in(
            "1,512",
            &["--init", "truncated-normal", "--convention", convention],
        );
        assert!(close(v, want, 1e-9), "{convention}: {v} vs {want}");
    }
    assert!((m2 - 0.774).abs() < 5e-4, "{m2}");
    // at fan_in 256 the kurtosis tells the conventions apart: 3.0 (pytorch) vs 2.366
    for (convention, want) in [("pytorch", 3.0), ("jax", 2.366), ("flax", 2.366)] {
        let (_, laws) = v_fan_in(
            "256,512",
            &["--init", "truncated-normal", "--convention", convention],
        );
        let bound = laws["truncation"].as_f64().unwrap();
        let (m2, m4) = truncated_moments(bound);
        assert!(
            close(m4 / (m2 * m2), want, 1e-3),
            "{convention}: bound {bound}"
        );
    }
    // JAX's "normal" initialisers are truncated at 2 std; PyTorch's are plain normals
    for init in ["he-normal", "xavier-normal", "lecun-normal"] {
        let (_, jax) = v_fan_in("256,512", &["--init", init, "--convention", "jax"]);
        assert_eq!(jax["weight_dist"], "truncated-normal", "{init}");
        assert_eq!(jax["truncation"].as_f64(), Some(2.0), "{init}");
        let (_, torch) = v_fan_in("256,512", &["--init", init]);
        assert_eq!(torch["weight_dist"], "normal", "{init}");
    }
    // siren keeps nn.Linear's bias U(+-1/sqrt(fan_in)): variance 1/(3 fan_in)
    let (_, siren) = v_fan_in("256,512", &["--init", "siren"]);
    assert_eq!(siren["bias_dist"], "uniform");
    assert!(close(
        siren["bias_variance"].as_f64().unwrap(),
        1.0 / 768.0,
        1e-15
    ));
}

/// A gain PyTorch cannot give is an error naming the flag (exit 2), unless
/// --gain supplies it; flags that would be ignored are errors too.
#[test]
fn gains_pytorch_cannot_give_are_refused_before_any_work() {
    let refused: &[(&[&str], &str)] = &[
        (&["--nonlinearity", "gelu"], "--nonlinearity"),
        (&["--act", "gelu", "--gain-from-act"], "--gain-from-act"),
        (&["--act", "silu", "--gain-from-act"], "--gain-from-act"),
        (&["--nonlinearity", "tanh", "--gain", "1.2"], "--gain"),
        (&["--gain-from-act", "--gain", "1.2"], "--gain"),
        (
            &["--nonlinearity", "relu", "--kaiming-a", "0.1"],
            "--kaiming-a",
        ),
        (
            &["--nonlinearity", "tanh", "--gain-from-act"],
            "--gain-from-act",
        ),
        (
            &["--convention", "jax", "--nonlinearity", "relu"],
            "--nonlinearity",
        ),
        (
            &["--convention", "flax", "--gain-from-act"],
            "--gain-from-act",
        ),
        (&["--convention", "torch"], "--convention"),
        (&["--kaiming-a", "nan"], "--kaiming-a"),
    ];
    for (extra, flag) in refused {
        let mut args = vec!["run", "--device", "cpu", "--width", "8", "--depth", "2"];
        args.extend_from_slice(extra);
        let out = common::varprop(&args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(flag), "{extra:?} should name {flag}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: one line: {err}");
        assert!(
            out.stdout.is_empty(),
            "{extra:?}: no output before the error"
        );
    }
    // --nonlinearity on another scheme is refused, not ignored
    let out = common::varprop(&[
        "run",
        "--device",
        "cpu",
        "--width",
        "8",
        "--depth",
        "2",
        "--init",
        "xavier-normal",
        "--nonlinearity",
        "tanh",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // --gain supplies what calculate_gain cannot
    let flags = InitFlags {
        init: Some("he-normal".into()),
        nonlinearity: Some("gelu".into()),
        gain: Some(1.5),
        ..Default::default()
    };
    let init = InitSpec::resolve(&flags, &Activation::Gelu).unwrap();
    assert_eq!(init.scheme, Scheme::HeNormal);
    assert!((init.weight_law(&Activation::Gelu, 1, 10, 10).variance - 0.225).abs() < 1e-15);
}

/// `varprop inits` lists every scheme under every convention, with the
/// numbers its table promises.
#[test]
fn inits_lists_every_scheme_per_convention() {
    let out = common::varprop(&[
        "inits",
        "--format",
        "json",
        "--fan-in",
        "1",
        "--fan-out",
        "512",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 11 * 3);
    let find = |scheme: &str, convention: &str| {
        rows.iter()
            .find(|r| r["scheme"] == scheme && r["convention"] == convention)
            .unwrap_or_else(|| panic!("{scheme} {convention}"))
            .clone()
    };
    let (m2, _) = truncated_moments(2.0);
    let v = |r: serde_json::Value| r["v_fan_in"].as_f64().unwrap();
    assert!((v(find("truncated-normal", "pytorch")) - m2).abs() < 1e-9);
    assert!((v(find("truncated-normal", "jax")) - m2).abs() < 1e-9);
    assert!((v(find("truncated-normal", "flax")) - 1.0).abs() < 1e-12);
    assert!((v(find("he-normal", "pytorch")) - 2.0).abs() < 1e-12);
    assert!(
        find("he-normal", "pytorch")["function"]
            .as_str()
            .unwrap()
            .contains("kaiming_normal_")
    );
    let out = common::varprop(&["inits", "--convention", "mxnet"]);
    assert_eq!(out.status.code(), Some(2));
}
