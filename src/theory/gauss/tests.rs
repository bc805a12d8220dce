//! Unit tests of theory/gauss.rs.

use super::*;

#[test]
fn gauss_hermite_orders_are_accurate_up_to_their_limits() {
    // At each order's limit, shifted phi and phi' against graded panels
    // (1e-15): the limits are 0.85 of the measured 1e-14 boundary, so
    // 1e-13 leaves room only for platform differences in libm.
    let smooth = [
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
    ];
    for act in smooth {
        let Rule::Smooth { reach } = rule(&act) else {
            unreachable!()
        };
        for &(order, limit) in &GH_ORDERS {
            let std = limit * reach;
            let q = std * std;
            for m in [-2.0, 0.0, 1.5] {
                for deriv in [false, true] {
                    let h = |u: f64| {
                        if deriv {
                            act.deriv(m + u)
                        } else {
                            act.value(m + u)
                        }
                    };
                    let gh = expect_1d_order(h, q, order);
                    let reference = expect_1d_panels(h, q, &[-m], false);
                    assert!(
                        (gh - reference).abs() <= 1e-13 * (1.0 + m.abs() + std),
                        "{act} order {order} m {m} deriv {deriv}: {gh} vs {reference}"
                    );
                }
            }
        }
    }
}

#[test]
fn order_choice_follows_the_table() {
    assert_eq!(gauss_hermite_order(PI, 0.0), Some(8));
    assert_eq!(gauss_hermite_order(PI / 2.0, 0.3), Some(32)); // 0.3 / (pi/2) = 0.19 <= 0.217
    assert_eq!(gauss_hermite_order(PI / 2.0, 1.0), None);
}

#[test]
fn piecewise_inner_expectations_match_numeric_integrals() {
    // The closed-form E[phi(m + b z)] and E[phi'(m + b z)] of the
    // piecewise activations against graded panels split at the kinks.
    for (act, p) in [
        (Activation::Relu6, Pieces::Relu6),
        (
            Activation::Elu,
            Pieces::ScaledElu {
                scale: 1.0,
                alpha: 1.0,
            },
        ),
        (
            Activation::Selu,
            Pieces::ScaledElu {
                scale: SELU_SCALE,
                alpha: SELU_ALPHA,
            },
        ),
    ] {
        for m in [-30.0, -3.0, -0.2, 0.0, 0.7, 5.9, 40.0] {
            for b in [1e-3, 0.3, 2.0, 50.0] {
                let kinks: Vec<f64> = [0.0, 6.0].iter().map(|k| k - m).collect();
                let v = expect_1d_panels(|u| act.value(m + u), b * b, &kinks, false);
                let d = expect_1d_panels(|u| act.deriv(m + u), b * b, &kinks, false);
                let scale = 1.0 + m.abs() + b;
                assert!(
                    (p.mean_value(m, b) - v).abs() <= 1e-13 * scale,
                    "{act} m={m} b={b}: {} vs {v}",
                    p.mean_value(m, b)
                );
                assert!(
                    (p.mean_deriv(m, b) - d).abs() <= 1e-13 * scale,
                    "{act}' m={m} b={b}: {} vs {d}",
                    p.mean_deriv(m, b)
                );
            }
        }
    }
}
