//! The empirical NTK (--ntk, issue 17) against independent computations:
//! finite differences of the network's output with respect to every weight,
//! bias and readout weight (f64, the same draws as the CPU reference
//! engine), and the infinite-width theory in a Monte Carlo at large width.

mod common;

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::model::init::InitFlags;
use varprop::model::rng::{Stream, normal_entry};
use varprop::sim::cpu::dense::{bias, inputs, weights};
use varprop::sim::run_cpu;
use varprop::spec::{Parametrisation, RunSpec};

fn spec(
    widths: &str,
    act: &str,
    init: InitFlags,
    batch: usize,
    networks: usize,
    param: &str,
) -> RunSpec {
    RunSettings {
        net: NetworkSettings {
            widths: Some(widths.into()),
            act: Some(act.into()),
            init,
            q0: Some(1.3),
            c0: Some(0.4),
            ..Default::default()
        },
        batch: Some(batch),
        networks: Some(networks),
        seed: Some(11),
        ntk: Some(true),
        parametrisation: Some(param.into()),
        ..Default::default()
    }
    .resolve(networks)
    .unwrap()
}

use common::custom_init as custom;

/// The parameters of network 0 as the engine draws them: per layer W_l
/// (row-major n_l x n_{l-1}) and b_l, and the readout w.
struct Params {
    w: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    readout: Vec<f64>,
}

fn params(spec: &RunSpec) -> Params {
    let depth = spec.net.depth();
    let n_top = spec.net.widths[depth];
    Params {
        w: (1..=depth).map(|l| weights(spec, 0, l)).collect(),
        b: (1..=depth).map(|l| bias(spec, 0, l)).collect(),
        readout: (0..n_top)
            .map(|i| normal_entry(spec.seed, Stream::Readout, 0, depth, 0, i))
            .collect(),
    }
}

/// f(x) = w^T x_L / sqrt(n_L), written out plainly.
fn output(spec: &RunSpec, p: &Params, x0: &[f64]) -> f64 {
    let act = &spec.net.act;
    let mut x = x0.to_vec();
    for l in 1..=spec.net.depth() {
        let (n_in, n_out) = (spec.net.widths[l - 1], spec.net.widths[l]);
        x = (0..n_out)
            .map(|i| {
                let h: f64 = (0..n_in)
                    .map(|j| p.w[l - 1][i * n_in + j] * x[j])
                    .sum::<f64>()
                    + p.b[l - 1][i];
                act.value(h)
            })
            .collect();
    }
    let n_top = x.len() as f64;
    x.iter().zip(&p.readout).map(|(a, w)| a * w).sum::<f64>() / n_top.sqrt()
}

/// Theta(a, b) = sum over parameters theta of df_a/dtheta df_b/dtheta, the
/// derivatives by central differences, with respect to the parameters of
/// `param`: omega = W / sqrt(v), beta = b / sqrt(sb) and w (ntk), or W, b
/// and the readout's w / sqrt(n_L) (standard); no bias parameters where
/// sb = 0.
fn finite_difference_kernel(spec: &RunSpec, param: Parametrisation) -> Vec<f64> {
    let batch = spec.batch;
    let n0 = spec.net.widths[0];
    let x0 = inputs(spec, 0);
    let rows: Vec<&[f64]> = x0.chunks(n0).collect();
    let mut p = params(spec);
    let eps = 1e-6;
    let mut gradients: Vec<Vec<f64>> = Vec::new(); // per parameter, per input
    // d f / d(theta) for the entry `get` of `p`, times the parameter's scale
    let mut derivative = |p: &mut Params, slot: &dyn Fn(&mut Params) -> &mut f64, scale: f64| {
        let v = *slot(p);
        *slot(p) = v + eps;
        let up: Vec<f64> = rows.iter().map(|x| output(spec, p, x)).collect();
        *slot(p) = v - eps;
        let down: Vec<f64> = rows.iter().map(|x| output(spec, p, x)).collect();
        *slot(p) = v;
        gradients.push(
            up.iter()
                .zip(&down)
                .map(|(u, d)| scale * (u - d) / (2.0 * eps))
                .collect(),
        );
    };
    for l in 1..=spec.net.depth() {
        let (v, sb) = (
            spec.net.weight_law(l).variance,
            spec.net.bias_law(l).variance,
        );
        let (w_scale, b_scale) = match param {
            Parametrisation::Ntk => (v.sqrt(), sb.sqrt()),
            Parametrisation::Standard => (1.0, 1.0),
        };
        for k in 0..p.w[l - 1].len() {
            derivative(&mut p, &|p: &mut Params| &mut p.w[l - 1][k], w_scale);
        }
        if sb > 0.0 {
            for k in 0..p.b[l - 1].len() {
                derivative(&mut p, &|p: &mut Params| &mut p.b[l - 1][k], b_scale);
            }
        }
    }
    let n_top = spec.net.widths[spec.net.depth()] as f64;
    let readout_scale = match param {
        Parametrisation::Ntk => 1.0,
        // d f / d(w_i / sqrt(n_L)) = sqrt(n_L) d f / d w_i
        Parametrisation::Standard => n_top.sqrt(),
    };
    for k in 0..p.readout.len() {
        derivative(&mut p, &|p: &mut Params| &mut p.readout[k], readout_scale);
    }
    let mut theta = vec![0.0; batch * batch];
    for g in &gradients {
        for a in 0..batch {
            for b in 0..batch {
                theta[a * batch + b] += g[a] * g[b];
            }
        }
    }
    theta
}

#[test]
fn the_kernel_matches_finite_differences_of_the_output() {
    let cases = [
        ("5,7,6,4", "tanh", custom(1.5, 0.2)),
        ("6,9,3", "erf", custom(2.0, 0.0)),
        ("4,8,8,5,6", "relu", custom(2.0, 0.05)),
        (
            "7,5,6",
            "relu",
            InitFlags {
                init: Some("he-normal".into()),
                ..Default::default()
            },
        ),
        ("6,6,6", "sin", custom(1.0, 0.3)),
    ];
    for (widths, act, init) in cases {
        for param in ["ntk", "standard"] {
            let spec = spec(widths, act, init.clone(), 4, 1, param);
            let run = run_cpu(&spec, &mut |_, _| {}).unwrap();
            let measured = &run.ntk[0].kernel;
            let expected = finite_difference_kernel(&spec, spec.probes.ntk.unwrap());
            let scale = expected.iter().map(|v| v.abs()).fold(0.0, f64::max);
            for (m, e) in measured.iter().zip(&expected) {
                // central differences at eps = 1e-6: truncation ~ eps^2 and
                // rounding ~ 1e-16 / eps relative, far below 1e-6
                assert!(
                    (m - e).abs() <= 1e-6 * scale,
                    "{widths} {act} {param}: {measured:?} against {expected:?}"
                );
            }
        }
    }
}

#[test]
fn wide_networks_follow_the_infinite_width_kernel() {
    // width 512, depth 3, 48 networks of one pair: the finite-width bias of
    // the mean NTK is O(L / n) ~ 0.6%, well under the standard error, and
    // |z| < 4.5 on each of the 12 comparisons has a false-failure rate
    // below 1e-4 (normal tails; 47 degrees of freedom add little)
    let cases = [
        (
            "relu",
            InitFlags {
                init: Some("he-normal".into()),
                ..Default::default()
            },
        ),
        ("erf", custom(1.6, 0.1)),
        ("tanh", custom(1.2, 0.05)),
    ];
    for (act, init) in cases {
        for param in ["ntk", "standard"] {
            let spec = spec("512,512,512,512", act, init.clone(), 2, 48, param);
            let run = run_cpu(&spec, &mut |_, _| {}).unwrap();
            let report = varprop::analysis::ntk::ntk_report(&spec, &run).unwrap();
            for (name, m) in [("ntk_diag", report.ntk_diag), ("ntk_c", report.ntk_c)] {
                let z = m.z.unwrap();
                assert!(z.abs() < 4.5, "{act} {param} {name}: {m:?}");
            }
        }
    }
}

#[test]
fn phase_draws_the_ntk_condition_number() {
    // erf, depth 20: on the ordered side (sigma_w^2 = 0.5, sigma_b^2 = 0.2)
    // every kernel row tends to the same, and the condition number is far
    // above the chaotic side's (sigma_w^2 = 3)
    let out = common::varprop(&[
        "phase",
        "--quantity",
        "ntk_cond",
        "--device",
        "cpu",
        "--act",
        "erf",
        "--width",
        "16",
        "--depth",
        "20",
        "--batch",
        "4",
        "--networks",
        "2",
        "--sigma-w2-range",
        "0.5:3:2",
        "--sigma-b2-range",
        "0.2",
        "--format",
        "csv",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (measured, theory) = (col("log10_ntk_cond"), col("log10_ntk_cond_theory"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2);
    let (ordered, chaotic) = (&rows[0], &rows[1]);
    assert!(ordered[theory] > chaotic[theory] + 2.0, "{rows:?}");
    assert!(ordered[measured] > chaotic[measured] + 1.0, "{rows:?}");
}
