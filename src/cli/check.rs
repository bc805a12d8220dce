//! `varprop check`: simulate, compare every layer with theory, and fail
//! (exit 1) when a measurement leaves the statistical tolerance; or run a
//! suite of cases from a TOML file, and record or compare golden outputs.

use std::path::PathBuf;

use clap::Args;

use varprop::analysis::checking::CheckOutcome;
use varprop::analysis::suite::{self, Verdict};
use varprop::config::settings::RunSettings;
use varprop::io::output::{self, Format};
use varprop::sim::RunOutput;
use varprop::spec::{NetworkSpec, RunSpec};
use varprop::{Error, Result};

use super::args::{RunArgs, simulate};
use super::runner::{check_plot_args, save_layer_plot};
use super::validate;

#[derive(Args)]
#[command(after_long_help = "Which comparisons are made:
  - exact finite-width statements are always compared: E[q_pre], E[q_post], E[g] and E[||J u||^2]
    for identity, relu, leaky-relu and abs (their recurrences hold in expectation at any width),
    relu's zero fraction 1/2, and the law of one input's log q (relu or identity, Gaussian weights,
    no bias);
  - an infinite-width prediction m is compared at a layer only where its finite-width bias, estimated
    as |m| Var[log q] (second order in the measured fluctuations of q), is below the standard error;
  - a mean of a positive quantity (q, g, ||J u||^2) is compared only where its standard error is
    honest: where the standard deviation s of its log across the S networks keeps the skewness
    gamma = (e^(s^2) + 2) sqrt(e^(s^2) - 1) of a log-normal law below what the Student-t tail at the
    bound z bears, gamma (2 z^2 + 1) phi(z) / (6 sqrt(S)) <= Phi(-z) (one Edgeworth term: the tail at
    most doubled). For S = 32 and a 1,000-layer table (z = 7.7) that is s <= 0.012; for 100
    comparisons (z = 6.3), s <= 0.022. Deeper, q across networks is close to log-normal with
    Var[log q] of several units, and its mean is compared on a log scale instead (one input's log q
    against its exact law);
  - near c = 1 (mean-field c >= 0.9 and 1 - c >= 1.4e-11, above what f32 rows resolve), log(1 - c) per network: the log-normal estimate of log E[1 - c],
    mean + s^2/2 with its own standard error, against the c-map, where one input's log q spreads by
    at most 1.2 across networks (there a float64 Monte Carlo matches the c-map within its SE).
The default bound on |z| is Bonferroni over the K comparisons made, each z being Student-t with
S - 1 degrees of freedom, at half the family rate (the other half covers the tails the skewness
rule lets double): a correct simulator fails the whole table less than once in 10,000 runs
(measured: 0 of 200 deep relu runs, and 11 of 200 at a family rate of 0.1; tests/check_rate.rs).
Exit codes: 0 pass, 1 a comparison failed, 2 bad input (arguments, files, destinations), 3 a failure at run time.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Fail when any |z| exceeds this [default: from the number of comparisons, see below]
    #[arg(long = "max-z")]
    pub max_z: Option<f64>,
    /// A regression suite: a TOML file with [[case]] tables of run settings (name = "..." and the
    /// flags of `run` as keys); the command-line settings are the defaults of every case
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Compare with the golden outputs in DIR (one JSON file per case), or record them with --bless
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// Record the golden outputs instead of comparing with them
    #[arg(long)]
    pub bless: bool,
    /// The case's name (its golden file is DIR/NAME.json) [default: check]
    #[arg(long)]
    pub name: Option<String>,
    /// Test-only: compute the theory with this sigma_w2 instead of the simulated one
    #[arg(long = "theory-sigma-w2", hide = true)]
    pub theory_sigma_w2: Option<f64>,
}

/// A case ready to run: its name, spec, theory network and bound.
struct Case {
    name: String,
    spec: RunSpec,
    theory_net: NetworkSpec,
    max_z: Option<f64>,
}

/// A case's verdict, its comparisons, and its run (kept for --plot).
type Judged = (Verdict, CheckOutcome, Option<(RunSpec, RunOutput)>);

/// One case run and judged.
fn run_case(args: &CheckArgs, case: &Case) -> Result<Judged> {
    let run = simulate(&args.run, &case.spec)?;
    for w in &run.warnings {
        eprintln!("warning: {}: {w}", case.name);
    }
    let golden = args.golden.as_deref().map(|dir| (dir, args.bless));
    let (verdict, outcome) =
        suite::judge_case(&case.name, &run, &case.theory_net, case.max_z, golden)?;
    let kept = args.run.plot.is_some().then(|| (case.spec.clone(), run));
    Ok((verdict, outcome, kept))
}

/// Every case of the command, resolved and checked before the first runs.
fn prepare_cases(args: &CheckArgs) -> Result<Vec<Case>> {
    check_plot_args(&args.run)?;
    args.run.check_engine_flags()?;
    validate::refuse_ignored(&args.run, "check", validate::RUN_ONLY_FLAGS)?;
    suite::check_max_z("--max-z", args.max_z)?;
    if args.bless && args.golden.is_none() {
        return Err(Error::invalid(
            "--bless",
            "records golden files; give the directory with --golden DIR",
        ));
    }
    let base = args.run.settings();
    let mut cases = Vec::new();
    let prepare = |name: String, settings: &RunSettings, max_z| -> Result<Case> {
        let (spec, theory_net) = suite::prepare_case(settings, args.theory_sigma_w2)?;
        validate::fits_host_memory("--depth", "this case", validate::run_host_bytes(&spec))?;
        Ok(Case {
            name,
            spec,
            theory_net,
            max_z,
        })
    };
    match &args.config {
        Some(path) => {
            if args.name.is_some() {
                return Err(Error::invalid(
                    "--name",
                    "names the one case checked without --config; a suite's cases have their own names",
                ));
            }
            let label = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
                path: label.clone(),
                source: e,
            })?;
            let suite = suite::parse_suite(&label, &text)?;
            for (i, case) in suite.cases.iter().enumerate() {
                let name = suite::case_name(i, case);
                let settings = base.overlay(case);
                let case = prepare(name.clone(), &settings, args.max_z.or(suite.max_z))
                    .map_err(|e| suite::case_error(&label, &name, e))?;
                cases.push(case);
            }
        }
        None => {
            let name = args.name.clone().unwrap_or_else(|| "check".into());
            suite::check_case_name("--name", &name)?;
            cases.push(prepare(name, &base, args.max_z)?);
        }
    }
    let specs: Vec<&RunSpec> = cases.iter().map(|c| &c.spec).collect();
    if !specs.iter().any(|s| s.probes.needs_backward()) {
        validate::backward_flags_need_backward(&args.run, specs[0])?;
        validate::ntk_engine_fits(&args.run, specs[0])?;
    }
    if let Some(dir) = &args.golden {
        let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
        suite::check_golden_files(dir, &names, args.bless)?;
    }
    Ok(cases)
}

/// Returns whether every case passed.
pub fn cmd_check(args: CheckArgs) -> Result<bool> {
    let cases = prepare_cases(&args)?;
    let mut verdicts = Vec::new();
    let mut outcomes = Vec::new();
    let mut plotted = Vec::new();
    for case in &cases {
        let (verdict, outcome, run) = run_case(&args, case).map_err(|e| match &args.config {
            Some(path) => suite::case_error(&path.display().to_string(), &case.name, e),
            None => e,
        })?;
        verdicts.push(verdict);
        outcomes.push((case.name.clone(), outcome));
        plotted.push(run);
    }
    let passed = verdicts.iter().all(Verdict::passed);
    // the comparison table as CSV when asked for by --format or the name of
    // --out; else (a pipe, too) the report a person reads
    let out_is_csv = args
        .run
        .out
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "csv");
    let text = match output::pick_format(args.run.format, args.run.out.as_deref()) {
        Format::Json => suite::report_json(&verdicts),
        Format::Csv if args.run.format == Some(Format::Csv) || out_is_csv => {
            suite::comparisons_csv(&outcomes)
        }
        _ => suite::report_text(&verdicts),
    };
    output::write_output(args.run.out.as_deref(), &text)?;
    // one curve per case, named by the case with a suite
    let runs: Vec<(Option<&str>, &RunSpec, &RunOutput)> = verdicts
        .iter()
        .zip(&plotted)
        .filter_map(|(v, run)| {
            let label = args.config.is_some().then_some(v.name.as_str());
            run.as_ref().map(|(spec, run)| (label, spec, run))
        })
        .collect();
    save_layer_plot(&args.run, "check", &runs)?;
    Ok(passed)
}
