//! Unit tests of the statistics (mod.rs).

use super::*;

#[test]
fn renormalisation_is_carried_as_a_log() {
    // Two layers; the first renormalised by r = 1/4, so the stored values
    // of the second are 4 times smaller than the true ones.
    let layer = |h2: f64, renorm: f64| LayerSums {
        width: 1,
        batch: 2,
        pairs: vec![[h2, h2, h2, h2, h2, 0.0]],
        sum_h: 0.0,
        sum_h4: 2.0 * h2 * h2,
        sum_x: 0.0,
        zeros: 0.0,
        renorm,
    };
    let (samples, lost) = network_samples(&[layer(16.0, 0.25), layer(1.0, 1.0)]);
    assert_eq!(lost, NonFinite::default());
    assert!((samples[0].log_q_pre - 16f64.ln()).abs() < 1e-15);
    assert!((samples[1].log_q_pre - 16f64.ln()).abs() < 1e-15);
    assert!((samples[1].c_pre - 1.0).abs() < 1e-15);
}

#[test]
fn non_finite_rows_propagate() {
    let good = LayerSums {
        width: 1,
        batch: 2,
        pairs: vec![[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]],
        renorm: 1.0,
        ..Default::default()
    };
    let bad = LayerSums {
        pairs: vec![[f64::INFINITY; 6]],
        ..good.clone()
    };
    let (samples, lost) = network_samples(&[good.clone(), bad, good]);
    assert_eq!(lost.all_from, Some(1));
    assert_eq!(lost.first(), Some((1, "q_pre")));
    assert!(samples[2].log_q_pre.is_nan());
}

/// A finite layer whose f32 sum of h^4 overflowed (q = 1e36 or so).
fn kurtosis_overflowed() -> LayerSums {
    LayerSums {
        width: 1,
        batch: 2,
        pairs: vec![[1e36, 1e36, 5e35, 4e35, 4e35, 1e36]],
        sum_h: 1e17,
        sum_h4: f64::INFINITY,
        sum_x: 1e17,
        zeros: 1.0,
        renorm: 1.0,
    }
}

/// A row of one unit and one pair whose sums are all finite.
fn finite_row() -> LayerSums {
    LayerSums {
        width: 1,
        batch: 2,
        pairs: vec![[1.0, 1.0, 0.5, 0.5, 0.5, 1.0]],
        sum_h4: 6.0,
        renorm: 1.0,
        ..Default::default()
    }
}

#[test]
fn an_overflowed_column_is_nan_and_the_rest_of_its_row_kept() {
    let good = finite_row();
    let (samples, _) = network_samples(&[good, kurtosis_overflowed()]);
    let s = samples[1];
    assert!(s.kurt_pre.is_nan(), "kurt_pre = {}", s.kurt_pre);
    assert!((s.log_q_pre - 1e36f64.ln()).abs() < 1e-12);
    assert!((s.log_q_post - 4e35f64.ln()).abs() < 1e-12);
    assert!((s.c_pre - 0.5).abs() < 1e-12);
    assert_eq!(s.zero_frac, 0.5);
    assert!(samples[0].kurt_pre.is_finite());
}

#[test]
fn the_warning_names_the_first_non_finite_row_and_column() {
    let good = finite_row();
    let broken = LayerSums {
        pairs: vec![[f64::INFINITY; 6]],
        ..good.clone()
    };
    let forward = vec![good, kurtosis_overflowed(), kurtosis_overflowed(), broken];
    let (samples, _, lost) = network_results(&NetworkSums::new(forward, None, None, None));
    assert_eq!(lost.first(), Some((1, "kurt_pre")));
    assert_eq!(lost.all_from, Some(3));
    assert_eq!(
        lost.warning(7).unwrap(),
        "network 7: values became non-finite (overflow in f32) at layer 1, first in kurt_pre; \
         NaN where they did: kurt_pre on 2 rows from layer 1, every column from layer 3 on (q_pre)"
    );
    assert!(samples[2].log_q_pre.is_finite() && samples[3].log_q_pre.is_nan());
}

#[test]
fn spreads_over_no_finite_value_are_nan() {
    let sample = |log_q: f64| LayerSample {
        sample_log_q_post: log_q,
        sample_log_q_post_sq: log_q * log_q,
        ..LayerSample::NAN
    };
    let per_network = vec![vec![sample(1.0)], vec![sample(f64::NAN)]];
    let s = summarise(&per_network)[0];
    assert!(s.sample_log_q_post_mean.is_nan());
    assert!(
        s.sample_log_q_post_std.is_nan(),
        "std = {}",
        s.sample_log_q_post_std
    );
    let all_nan = vec![vec![LayerSample::NAN]; 2];
    let s = summarise(&all_nan)[0];
    assert!(s.sample_log_q_post_std.is_nan());
    // a NaN beside a zero (log -inf) is still NaN, not 0
    assert!(log_mean_exp([f64::NAN, f64::NEG_INFINITY].into_iter()).is_nan());
    assert!(log_mean_exp([f64::NEG_INFINITY, f64::NAN].into_iter()).is_nan());
    assert_eq!(
        log_mean_exp([f64::NEG_INFINITY, f64::NEG_INFINITY].into_iter()),
        f64::NEG_INFINITY
    );
}
