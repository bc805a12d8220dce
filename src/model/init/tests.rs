//! Unit tests of model/init/mod.rs.

use super::*;

/// He for relu: n v = 2 exactly, so q_pre = 2 q_post with no rounding
/// noise for the theory to carry (sqrt(2)^2 is 2.0000000000000004);
/// tanh's gain 5/3 and a gain given by hand are squared as they are.
#[test]
fn a_square_root_gain_squares_to_its_whole_number() {
    let relu = Activation::Relu;
    for fan in [1usize, 3, 128, 1000] {
        let law = spec("he-normal", &relu).weight_law(&relu, 1, fan, fan);
        assert_eq!(law.variance * fan as f64, 2.0, "fan {fan}");
    }
    assert_eq!(gain_squared(3f64.sqrt()), 3.0);
    assert_eq!(gain_squared(5.0 / 3.0), (5.0f64 / 3.0) * (5.0 / 3.0));
    assert_eq!(gain_squared(1.5), 2.25);
    assert_eq!(gain_squared(1.4142), 1.4142 * 1.4142);
}

fn spec(init: &str, act: &Activation) -> InitSpec {
    let flags = InitFlags {
        init: Some(init.into()),
        ..Default::default()
    };
    InitSpec::resolve(&flags, act).unwrap()
}

#[test]
fn pytorch_variances() {
    let relu = Activation::Relu;
    let tanh = Activation::Tanh;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-15 * b.abs().max(1.0);
    // (scheme, activation, Var W at fan_in 100, fan_out 50), as torch.nn.init
    // states them; he-normal takes kaiming's default nonlinearity
    // (leaky_relu, a = 0) whatever the activation
    let cases = [
        ("he-normal", &relu, 2.0 / 100.0),
        ("he-normal", &tanh, 2.0 / 100.0),
        ("xavier-normal", &relu, 2.0 / 150.0),
        ("torch-default", &relu, 1.0 / 300.0),
    ];
    for (scheme, act, variance) in cases {
        let law = spec(scheme, act).weight_law(act, 2, 100, 50);
        assert!(
            close(law.variance, variance),
            "{scheme} {act:?}: {}",
            law.variance
        );
    }
    // torch-default's half-width is 1/sqrt(fan_in)
    let law = spec("torch-default", &relu).weight_law(&relu, 2, 100, 50);
    assert!(close(law.scale(), 0.1));
    let flags = InitFlags {
        init: Some("he-uniform".into()),
        fan_mode: Some("fan_out".into()),
        ..Default::default()
    };
    let he_out = InitSpec::resolve(&flags, &relu).unwrap();
    assert!(close(
        he_out.weight_law(&relu, 2, 100, 50).variance,
        2.0 / 50.0
    ));
}

#[test]
fn misused_flags_are_errors() {
    let relu = Activation::Relu;
    let bad = [
        InitFlags {
            init: Some("he-normal".into()),
            sigma_w2: Some(2.0),
            ..Default::default()
        },
        InitFlags {
            init: Some("custom".into()),
            ..Default::default()
        },
        InitFlags {
            init: Some("he-normal".into()),
            dist: Some("uniform".into()),
            ..Default::default()
        },
        InitFlags {
            init: Some("xavier-normal".into()),
            fan_mode: Some("fan_out".into()),
            ..Default::default()
        },
        InitFlags {
            sigma_w2: Some(-1.0),
            ..Default::default()
        },
        InitFlags {
            init: Some("siren".into()),
            ..Default::default()
        },
        InitFlags {
            init: Some("nope".into()),
            ..Default::default()
        },
    ];
    for flags in bad {
        assert!(InitSpec::resolve(&flags, &relu).is_err(), "{flags:?}");
    }
    let implied = InitFlags {
        sigma_w2: Some(2.0),
        ..Default::default()
    };
    assert_eq!(
        InitSpec::resolve(&implied, &relu).unwrap().scheme,
        Scheme::Custom
    );
}
