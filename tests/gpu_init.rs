//! Every init scheme under every convention: the weights the GPU generates
//! have the variance of the resolved law, and the fourth moment of its
//! distribution (3 v^2 normal, 1.8 v^2 uniform, 2.37 v^2 for the normal
//! truncated at 2 std, nearly 3 v^2 for PyTorch's trunc_normal_ at wide
//! fans), within a tolerance from the standard error of the estimate.
//! (tests/init_conventions.rs checks the laws against the libraries' docs.)

mod common;

use varprop::gpu::probe;
use varprop::model::init::Dist;

/// (init flags, activation) covering every scheme and the options that change
/// the law.
const CASES: &[(&str, &str, &[&str])] = &[
    ("xavier-normal", "tanh", &[]),
    ("xavier-normal", "tanh", &["jax"]),
    ("xavier-uniform", "tanh", &[]),
    ("he-normal", "relu", &[]),
    ("he-normal", "tanh", &[]),
    ("he-normal", "relu", &["flax"]),
    ("he-uniform", "relu", &["fan_out"]),
    ("lecun-normal", "selu", &[]),
    ("lecun-normal", "selu", &["jax"]),
    ("lecun-uniform", "selu", &[]),
    ("truncated-normal", "relu", &[]),
    ("truncated-normal", "relu", &["jax"]),
    ("truncated-normal", "relu", &["flax"]),
    ("siren", "sin", &[]),
    ("torch-default", "relu", &[]),
    ("custom-normal", "relu", &[]),
    ("custom-uniform", "relu", &[]),
    ("custom-truncated-normal", "relu", &[]),
];

#[test]
fn generated_weights_have_the_scheme_law() {
    let ctx = common::gpu();
    // two layers of different shape, so fan_in, fan_out and siren's first
    // layer rule all show
    let widths = "300,200,260";
    let comparisons = CASES.len() * 2 * 2;
    let bound = common::z_bound(comparisons);
    for (init, act, opts) in CASES {
        let custom = init.strip_prefix("custom-");
        let mut flags = varprop::config::settings::NetworkSettings {
            c0: Some(0.0),
            ..common::flags(widths, act, if custom.is_some() { "custom" } else { *init })
        };
        if let Some(dist) = custom {
            flags.init.sigma_w2 = Some(1.7);
            flags.init.dist = Some(dist.into());
        }
        if opts.contains(&"fan_out") {
            flags.init.fan_mode = Some("fan_out".into());
        }
        for convention in ["jax", "flax"] {
            if opts.contains(&convention) {
                flags.init.convention = Some(convention.into());
            }
        }
        let net = flags.resolve().unwrap();
        for layer in 1..=2 {
            let law = net.weight_law(layer);
            let w = probe::weights(&ctx, &net, 7, 3, layer).unwrap();
            let n = w.len() as f64;
            let moment = |k: i32| w.iter().map(|x| (*x as f64).powi(k)).sum::<f64>() / n;
            let (m2, m4, m8) = (moment(2), moment(4), moment(8));
            // E[w] = 0 is known, so mean(w^2) estimates v with variance
            // (E w^4 - v^2)/N; mean(w^4) estimates E w^4 with (E w^8 - (E w^4)^2)/N.
            let z2 = (m2 - law.variance) / ((m4 - m2 * m2) / n).sqrt();
            let want4 = law.dist.standardised_fourth_moment() * law.variance * law.variance;
            let z4 = (m4 - want4) / ((m8 - m4 * m4) / n).sqrt();
            assert!(
                z2.abs() < bound,
                "{init} {opts:?} layer {layer}: variance {m2} vs {} (z = {z2})",
                law.variance
            );
            assert!(
                z4.abs() < bound,
                "{init} {opts:?} layer {layer}: fourth moment {m4} vs {want4} (z = {z4})"
            );
            // the supports: uniform within +-sqrt(3v), truncated within its bound
            let max = w.iter().fold(0.0f64, |a, x| a.max((*x as f64).abs()));
            match law.dist {
                Dist::Uniform => assert!(
                    max <= law.scale() * (1.0 + 1e-6),
                    "{init}: {max} beyond the uniform support"
                ),
                Dist::TruncatedNormal { bound } => assert!(
                    max <= bound * law.scale() * (1.0 + 1e-6),
                    "{init}: {max} beyond {bound} std"
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn fourth_moments_tell_the_distributions_apart() {
    // The test above can only tell the distributions apart if their fourth
    // moments differ by many standard errors at N = 52,000: check the gaps.
    let k = |d: Dist| d.standardised_fourth_moment();
    let truncated = Dist::TruncatedNormal { bound: 2.0 };
    assert!((k(Dist::Normal) - k(truncated)).abs() > 0.5);
    assert!((k(truncated) - k(Dist::Uniform)).abs() > 0.5);
}
