//! Unit tests of theory/ntk.rs.

use std::f64::consts::PI;

use super::*;
use crate::model::activation::Activation;
use crate::model::init::{InitFlags, InitSpec};

fn stack(width: usize, depth: usize, act: Activation, init: InitFlags, c0: f64) -> NetworkSpec {
    NetworkSpec {
        widths: vec![width; depth + 1],
        init: InitSpec::resolve(&init, &act).unwrap(),
        act,
        q0: 1.5,
        c0,
    }
}

fn scheme(name: &str) -> InitFlags {
    InitFlags {
        init: Some(name.into()),
        ..Default::default()
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

/// The relu NTK of Arora et al. (2019, "On exact computation with an
/// infinitely wide neural net", eq. 4-5 with c_sigma = 2), written from the
/// arc-cosine kernels of Cho and Saul: with He weights and no bias the
/// diagonal of Sigma stays 2 q0 and the correlation follows
/// rho_{l+1} = kappa1(rho_l), Sdot = kappa0 / 2.
#[test]
fn relu_matches_the_arc_cosine_recursion() {
    let kappa0 = |r: f64| (PI - r.acos()) / PI;
    let kappa1 = |r: f64| ((1.0 - r * r).max(0.0).sqrt() + (PI - r.acos()) * r) / PI;
    for (depth, c0) in [(1, 0.3), (5, 0.5), (40, -0.2)] {
        let net = stack(64, depth, Activation::Relu, scheme("he-normal"), c0);
        let q0 = net.q0;
        let theory = ntk_table(&net, Parametrisation::Ntk).unwrap();
        // Theta^(1) = Sigma^(1); Theta^(l) = Sigma^(l) + kappa0(rho_{l-1}) Theta^(l-1)
        let mut rho = c0;
        let mut theta = 2.0 * q0 * rho;
        for _ in 2..=depth {
            let next = kappa1(rho);
            theta = 2.0 * q0 * next + kappa0(rho) * theta;
            rho = next;
        }
        // the readout (variance 1): K_L + Sdot_L Theta^(L)
        let expected = q0 * kappa1(rho) + 0.5 * kappa0(rho) * theta;
        assert!(
            close(theory.kernel.ab, expected, 1e-12),
            "depth {depth}: {} against {expected}",
            theory.kernel.ab
        );
        // the diagonal: 2 q0 per layer, halved by Sdot = 1/2, plus K_L = q0
        assert!(close(theory.kernel.aa, q0 * (depth as f64 + 1.0), 1e-12));
        let last = theory.cut.last().unwrap();
        assert!(close(last.ab, theory.kernel.ab, 1e-14) && close(last.aa, theory.kernel.aa, 1e-14));
    }
}

#[test]
fn contributions_sum_to_the_kernel_and_cuts_are_shorter_networks() {
    let mut init = scheme("custom");
    init.sigma_w2 = Some(1.7);
    init.sigma_b2 = Some(0.1);
    let net = stack(32, 12, Activation::Tanh, init.clone(), 0.4);
    for param in [Parametrisation::Ntk, Parametrisation::Standard] {
        let full = ntk_table(&net, param).unwrap();
        let sum = full.layers.iter().map(|c| c.ab).sum::<f64>() + full.readout.ab;
        assert!(close(full.kernel.ab, sum, 1e-13));
        for depth in [1, 5, 11] {
            let short = stack(32, depth, Activation::Tanh, init.clone(), 0.4);
            let kernel = ntk_table(&short, param).unwrap().kernel;
            for (a, b) in [
                (full.cut[depth - 1].aa, kernel.aa),
                (full.cut[depth - 1].ab, kernel.ab),
            ] {
                assert!(
                    close(a, b, 1e-12),
                    "{param:?} depth {depth}: {a} against {b}"
                );
            }
        }
    }
}

#[test]
fn standard_parametrisation_scales_the_weight_terms_by_width_over_sigma_w2() {
    // no bias: T_l = n K_{l-1} (standard) against sigma_w^2 K_{l-1} (ntk)
    let net = stack(200, 6, Activation::Erf, scheme("xavier-normal"), 0.2);
    let ntk = ntk_table(&net, Parametrisation::Ntk).unwrap();
    let standard = ntk_table(&net, Parametrisation::Standard).unwrap();
    for (a, b) in ntk.layers.iter().zip(&standard.layers) {
        assert!(close(b.ab, a.ab * 200.0, 1e-12) && close(b.aa, a.aa * 200.0, 1e-12));
    }
    // the readout's own term: w (ntk) against w / sqrt(n_L) (standard)
    assert!(close(standard.readout.ab, 200.0 * ntk.readout.ab, 1e-14));
}

#[test]
fn the_batch_kernel_holds_the_pairs() {
    let net = stack(16, 4, Activation::Tanh, scheme("xavier-normal"), 0.6);
    let n0 = 16.0;
    // two inputs at q0 = 1.5, c0 = 0.6, and a third orthogonal to both
    let q = 1.5 * n0;
    let gram0 = [q, 0.6 * q, 0.0, 0.6 * q, q, 0.0, 0.0, 0.0, 2.0 * q];
    let (theta, nngp) = ntk_batch(&net, Parametrisation::Ntk, &gram0, 3).unwrap();
    let pair = ntk_table(&net, Parametrisation::Ntk).unwrap();
    assert!(close(theta[1], pair.kernel.ab, 1e-14) && close(theta[3], pair.kernel.ab, 1e-14));
    assert!(close(theta[0], pair.kernel.aa, 1e-14) && close(nngp[1], pair.readout.ab, 1e-14));
    // tanh is odd: an uncorrelated input stays uncorrelated
    assert!(theta[2].abs() < 1e-12 && nngp[5].abs() < 1e-12);
}

#[test]
fn a_uniform_bias_has_no_prediction() {
    let net = stack(16, 3, Activation::Relu, scheme("torch-default"), 0.5);
    assert!(ntk_table(&net, Parametrisation::Ntk).is_err());
}

/// The condition number of the B x B kernel of inputs in two pairs (c0
/// within, 0 across): its divergence with depth in the ordered phase
/// (every correlation goes to 1) and its approach to a constant in the
/// chaotic phase (c -> c* < 1), as Xiao, Pennington and Schoenholz (2020)
/// describe the trainability of deep networks.
fn batch_cond(sigma_w2: f64, sigma_b2: f64, depth: usize) -> f64 {
    let mut init = scheme("custom");
    init.sigma_w2 = Some(sigma_w2);
    init.sigma_b2 = Some(sigma_b2);
    let net = stack(16, depth, Activation::Tanh, init, 0.3);
    let q = 16.0;
    let c = 0.3 * q;
    let gram0 = [
        q, c, 0.0, 0.0, c, q, 0.0, 0.0, 0.0, 0.0, q, c, 0.0, 0.0, c, q,
    ];
    let (theta, _) = ntk_batch(&net, Parametrisation::Ntk, &gram0, 4).unwrap();
    crate::linalg::condition_number(&theta, 4)
}

#[test]
fn the_condition_number_diverges_when_ordered_and_settles_when_chaotic() {
    // tanh, sigma_b^2 = 0.1: ordered at sigma_w^2 = 0.8 (chi_1 < 1), chaotic at 3
    let ordered: Vec<f64> = [20, 40, 80]
        .iter()
        .map(|&d| batch_cond(0.8, 0.1, d))
        .collect();
    assert!(
        ordered[1] > 10.0 * ordered[0] && ordered[2] > 10.0 * ordered[1],
        "{ordered:?}"
    );
    let chaotic: Vec<f64> = [40, 80, 160]
        .iter()
        .map(|&d| batch_cond(3.0, 0.1, d))
        .collect();
    assert!((chaotic[2] / chaotic[1] - 1.0).abs() < 1e-3, "{chaotic:?}");
}

#[test]
fn hanin_nica_holds_for_he_relu_without_bias_only() {
    let mut net = stack(10, 4, Activation::Relu, scheme("he-normal"), 0.5);
    net.widths = vec![7, 20, 40, 10, 3];
    // beta sums the hidden widths n_1 .. n_{L-1}
    let beta: f64 = 1.0 / 20.0 + 1.0 / 40.0 + 1.0 / 10.0;
    assert!(close(
        hanin_nica_fluctuation(&net).unwrap(),
        (5.0 * beta).exp(),
        1e-15
    ));
    let tanh = stack(10, 4, Activation::Tanh, scheme("he-normal"), 0.5);
    assert!(hanin_nica_fluctuation(&tanh).is_none());
    let mut biased = scheme("he-normal");
    biased.sigma_b2 = Some(0.1);
    assert!(hanin_nica_fluctuation(&stack(10, 4, Activation::Relu, biased, 0.5)).is_none());
    assert!(
        hanin_nica_fluctuation(&stack(
            10,
            4,
            Activation::Relu,
            scheme("xavier-normal"),
            0.5
        ))
        .is_none()
    );
}
