//! The empirical NTK of a run (--ntk) beside its infinite-width theory: the
//! per-layer columns `ntk_layer` and `ntk_layer_c` with `_theory` and `_z`,
//! and the summary (`ntk_diag`, `ntk_c`, `ntk_cond`, `nngp_cond`, each with
//! its standard error across networks, theory and z) that `run` writes as
//! JSON `ntk` and under the table. The condition numbers' theory is the
//! infinite-width kernel of each network's own inputs (`theory::ntk::ntk_batch`),
//! averaged over the networks as the measurement is; it is the limit only,
//! with no z (`Measured::without_z`).

use super::comparisons::z_score;
use crate::io::output::{Cell, Table};
use crate::linalg::condition_number;
use crate::sim::RunOutput;
use crate::sim::stats::ntk::{NetworkNtk, NtkSummary};
use crate::spec::RunSpec;
use crate::theory::ntk::{hanin_nica_fluctuation, ntk_batch, ntk_table};

/// The per-layer measured columns (row 0 has none: no parameters).
pub const NTK_COLUMNS: &[&str] = &[
    "ntk_layer_mean",
    "ntk_layer_se",
    "ntk_layer_c_mean",
    "ntk_layer_c_se",
];

/// Adds the NTK's per-layer columns, their theory and z, to `table`.
pub fn add_ntk_columns(table: &mut Table, spec: &RunSpec, run: &RunOutput) {
    let Some(param) = spec.probes.ntk else {
        return;
    };
    if run.ntk.is_empty() {
        return;
    }
    let summary = NtkSummary::of(&run.ntk);
    let theory = pair_theory(spec, param).ok();
    for name in NTK_COLUMNS.iter().chain(&[
        "ntk_layer_theory",
        "ntk_layer_z",
        "ntk_layer_c_theory",
        "ntk_layer_c_z",
    ]) {
        table.columns.push(name.to_string());
    }
    for (l, row) in table.rows.iter_mut().enumerate() {
        if l == 0 {
            row.extend(std::iter::repeat_n(Cell::Empty, 8));
            continue;
        }
        let (d, c) = (summary.layer_diag[l - 1], summary.layer_c[l - 1]);
        let (d_theory, c_theory) = match &theory {
            Some(t) => (
                Some(t.layers[l - 1].diag()),
                Some(t.layers[l - 1].correlation()),
            ),
            None => (None, None),
        };
        row.extend([d.0, d.1, c.0, c.1].map(Cell::Num));
        row.push(Cell::from(d_theory));
        row.push(Cell::from(z_score(Some(d.0), Some(d.1), d_theory)));
        row.push(Cell::from(c_theory));
        row.push(Cell::from(z_score(Some(c.0), Some(c.1), c_theory)));
    }
}

/// The infinite-width kernel of the run's pair, or why there is none.
fn pair_theory(
    spec: &RunSpec,
    param: crate::spec::Parametrisation,
) -> Result<crate::theory::ntk::NtkTheory, String> {
    if spec.arch.is_some() {
        return Err("no infinite-width NTK recurrence for architecture files (or --bias mean-preserving) here: theory::ntk covers plain dense stacks".into());
    }
    ntk_table(&spec.net, param)
}

/// One summary quantity: mean and standard error across networks, theory, z.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Measured {
    pub mean: Option<f64>,
    pub se: Option<f64>,
    pub theory: Option<f64>,
    pub z: Option<f64>,
}

impl Measured {
    /// An infinite-width value only: the smallest eigenvalues of a finite
    /// network's kernels fluctuate far more than its mean entries (at width
    /// 64 the NNGP kernel's condition number sat ten times its limit), so a
    /// z against the limit would test the width, not the simulator.
    fn without_z(mut self) -> Measured {
        self.z = None;
        self
    }

    fn new((mean, se): (f64, f64), theory: Option<f64>) -> Measured {
        let finite = |v: f64| v.is_finite().then_some(v);
        let (mean, se) = (finite(mean), finite(se));
        Measured {
            mean,
            se,
            theory: theory.and_then(finite),
            z: z_score(mean, se, theory),
        }
    }
}

/// The NTK summary of a run (JSON `ntk`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NtkReport {
    pub parametrisation: &'static str,
    pub ntk_diag: Measured,
    pub ntk_c: Measured,
    pub ntk_cond: Measured,
    pub nngp_cond: Measured,
    /// E[Theta(a, a)^2] / E[Theta(a, a)]^2 over the networks and the batch,
    /// beside Hanin and Nica's exp(5 sum 1/n_l) (`theory::ntk::hanin_nica_fluctuation`:
    /// a law of scaling, equal up to bounded factors, so no z). The sample
    /// second moment of a heavy-tailed Theta falls short of E[Theta^2] unless
    /// the networks are many and beta is small.
    pub ntk_fluctuation: Measured,
    /// Why there is no theory, where there is none.
    pub theory_note: Option<String>,
    /// Per network: Theta (B x B, row-major), each layer's contribution
    /// (`layer_diag`, `layer_c`), the summary's quantities, and the inputs'
    /// Gram matrix; non-finite values (an infinite condition number) are null.
    pub networks: Vec<NetworkNtk>,
}

/// The summary, where the run measured the NTK.
pub fn ntk_report(spec: &RunSpec, run: &RunOutput) -> Option<NtkReport> {
    let param = spec.probes.ntk?;
    if run.ntk.is_empty() {
        return None;
    }
    let summary = NtkSummary::of(&run.ntk);
    let pair = pair_theory(spec, param);
    // the infinite-width kernels of each network's own inputs
    let batch_theory: Result<Vec<(f64, f64)>, String> = run
        .ntk
        .iter()
        .map(|n| {
            pair.as_ref().map_err(Clone::clone)?;
            let (theta, nngp) = ntk_batch(&spec.net, param, &n.input_gram, spec.batch)?;
            Ok((
                condition_number(&theta, spec.batch),
                condition_number(&nngp, spec.batch),
            ))
        })
        .collect();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let (cond_theory, nngp_theory) = match &batch_theory {
        Ok(conds) => (
            Some(mean(conds.iter().map(|c| c.0).collect())),
            Some(mean(conds.iter().map(|c| c.1).collect())),
        ),
        Err(_) => (None, None),
    };
    let theory_note = pair.as_ref().err().cloned();
    let pair = pair.ok();
    Some(NtkReport {
        parametrisation: param.name(),
        ntk_diag: Measured::new(summary.diag, pair.as_ref().map(|p| p.kernel.diag())),
        ntk_c: Measured::new(summary.c, pair.as_ref().map(|p| p.kernel.correlation())),
        ntk_cond: Measured::new(summary.cond, cond_theory).without_z(),
        nngp_cond: Measured::new(summary.nngp_cond, nngp_theory).without_z(),
        ntk_fluctuation: Measured::new(
            (fluctuation(&run.ntk, spec.batch), f64::NAN),
            spec.arch
                .is_none()
                .then(|| hanin_nica_fluctuation(&spec.net))
                .flatten(),
        )
        .without_z(),
        theory_note,
        networks: run.ntk.clone(),
    })
}

/// E[Theta(a, a)^2] / E[Theta(a, a)]^2 over networks and inputs.
fn fluctuation(networks: &[NetworkNtk], batch: usize) -> f64 {
    let diag: Vec<f64> = networks
        .iter()
        .flat_map(|n| (0..batch).map(move |a| n.kernel[a * batch + a]))
        .collect();
    let count = diag.len() as f64;
    let mean = diag.iter().sum::<f64>() / count;
    let second = diag.iter().map(|v| v * v).sum::<f64>() / count;
    second / (mean * mean)
}

/// The lines under `run`'s table.
pub fn ntk_footer(report: &NtkReport) -> String {
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
    let mut out = format!(
        "# NTK ({} parametrisation), readout w^T x_L / sqrt(n_L): mean over networks +- SE (theory, z)\n",
        report.parametrisation
    );
    for (name, m) in [
        ("ntk_diag", report.ntk_diag),
        ("ntk_c", report.ntk_c),
        ("ntk_cond", report.ntk_cond),
        ("nngp_cond", report.nngp_cond),
        ("ntk_fluctuation", report.ntk_fluctuation),
    ] {
        out += &format!(
            "#   {name:<15} {} +- {} (theory {}, z {})\n",
            show(m.mean),
            show(m.se),
            show(m.theory),
            m.z.map_or("-".to_string(), |z| format!("{z:.2}"))
        );
    }
    if let Some(note) = &report.theory_note {
        out += &format!("#   no theory: {note}\n");
    }
    out
}
