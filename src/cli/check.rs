//! `varprop check`: simulate, compare every layer with theory, and fail
//! (exit 1) when a measurement leaves the statistical tolerance; or run a
//! suite of cases from a TOML file, and record or compare golden outputs.

use std::path::{Path, PathBuf};

use clap::Args;

use varprop::analysis::comparisons::{self, Comparison, FALSE_FAILURE_RATE};
use varprop::analysis::predictions;
use varprop::sim::RunOutput;
use varprop::io::output::{self, Format};
use varprop::analysis::report;
use varprop::config::settings::{RunSettings, parse_toml};
use varprop::spec::RunSpec;
use varprop::{Error, Result};

use super::args::{RunArgs, simulate};
use super::runner::{check_plot_args, save_layer_plot};

/// Networks when `check` is not told: enough for the t statistics to be
/// tight (the bound for S = 4 would be enormous).
pub const CHECK_NETWORKS: usize = 32;

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
  - near c = 1 (mean-field c >= 0.9), log(1 - c) per network: the log-normal estimate of log E[1 - c],
    mean + s^2/2 with its own standard error, against the c-map, where one input's log q spreads by
    at most 1.2 across networks (there a float64 Monte Carlo matches the c-map within its SE).
The default bound on |z| is Bonferroni over the K comparisons made, each z being Student-t with
S - 1 degrees of freedom, at half the family rate (the other half covers the tails the skewness
rule lets double): a correct simulator fails the whole table less than once in 10,000 runs
(measured: 0 of 200 deep relu runs, and 11 of 200 at a family rate of 0.1; tests/check_rate.rs).
Exit codes: 0 pass, 1 a comparison failed, 2 bad input.")]
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
    #[arg(long, requires = "golden")]
    pub bless: bool,
    /// The case's name (its golden file is DIR/NAME.json) [default: check]
    #[arg(long)]
    pub name: Option<String>,
    /// Test-only: compute the theory with this sigma_w2 instead of the simulated one
    #[arg(long = "theory-sigma-w2", hide = true)]
    pub theory_sigma_w2: Option<f64>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Suite {
    #[serde(default, alias = "max_z")]
    max_z: Option<f64>,
    #[serde(rename = "case")]
    cases: Vec<RunSettings>,
}

/// The outcome of one case.
struct Verdict {
    name: String,
    comparisons: usize,
    bound: f64,
    failures: Vec<Comparison>,
    worst: Option<Comparison>,
    golden: Option<GoldenVerdict>,
    /// The run, kept for --plot.
    plotted: Option<(RunSpec, RunOutput)>,
}

struct GoldenVerdict {
    comparisons: usize,
    bound: f64,
    failures: Vec<(usize, String, f64)>,
    written: Option<PathBuf>,
}

fn run_case(
    args: &CheckArgs,
    settings: &RunSettings,
    name: &str,
    max_z: Option<f64>,
) -> Result<Verdict> {
    args.run.check_engine_flags()?;
    let spec = settings.resolve(CHECK_NETWORKS)?;
    if spec.networks < 2 {
        return Err(Error::invalid(
            "--networks",
            "check needs at least 2 networks (standard errors come from them)",
        ));
    }
    let mut theory_net = spec.net.clone();
    if let Some(w) = args.theory_sigma_w2 {
        theory_net.init.sigma_w2 = w;
    }
    let run = simulate(&args.run, &spec)?;
    for w in &run.warnings {
        eprintln!("warning: {name}: {w}");
    }
    let mut table = report::run_table(&spec, &run);
    let preds = predictions::predictions(&spec, &theory_net);
    comparisons::add_theory_columns(&mut table, &spec, &preds, &theory_net);
    let comparisons = comparisons::comparisons(&table, &run, &preds);
    let bound = max_z.unwrap_or_else(|| comparisons::theory_bound(comparisons.len(), spec.networks));
    let failures: Vec<Comparison> = comparisons
        .iter()
        .filter(|c| c.z.abs() > bound)
        .cloned()
        .collect();
    let worst = comparisons
        .iter()
        .max_by(|a, b| a.z.abs().total_cmp(&b.z.abs()))
        .cloned();
    let golden = match &args.golden {
        Some(dir) => Some(golden(dir, name, &spec, &run, &table, args.bless, max_z)?),
        None => None,
    };
    Ok(Verdict {
        name: name.to_string(),
        comparisons: comparisons.len(),
        bound,
        failures,
        worst,
        golden,
        plotted: args.run.plot.is_some().then(|| (spec.clone(), run)),
    })
}

/// The measured (mean, se) columns a golden file keeps.
fn golden_columns(table: &varprop::io::output::Table) -> Vec<(String, String)> {
    table
        .columns
        .iter()
        .filter_map(|c| {
            let base = c.strip_suffix("_mean")?;
            let se = format!("{base}_se");
            table.column(&se).map(|_| (c.clone(), se))
        })
        .collect()
}

fn golden(
    dir: &Path,
    name: &str,
    spec: &RunSpec,
    run: &RunOutput,
    table: &varprop::io::output::Table,
    bless: bool,
    max_z: Option<f64>,
) -> Result<GoldenVerdict> {
    let path = dir.join(format!("{name}.json"));
    let columns = golden_columns(table);
    let layers: Vec<serde_json::Value> = table
        .rows
        .iter()
        .map(|row| {
            let mut map = serde_json::Map::new();
            map.insert("layer".into(), row[0].as_f64().map(|v| v as u64).into());
            for (m, s) in &columns {
                for c in [m, s] {
                    let v = row[table.column(c).unwrap()]
                        .as_f64()
                        .filter(|v| v.is_finite());
                    map.insert(c.clone(), v.map_or(serde_json::Value::Null, Into::into));
                }
            }
            serde_json::Value::Object(map)
        })
        .collect();
    if bless {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let doc = serde_json::json!({ "config": report::config_json(spec, run), "layers": layers });
        output::write_atomic(
            &path,
            (serde_json::to_string_pretty(&doc).expect("json") + "\n").as_bytes(),
        )?;
        return Ok(GoldenVerdict {
            comparisons: 0,
            bound: f64::NAN,
            failures: Vec::new(),
            written: Some(path),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::invalid(
            "--golden",
            format!("{}: {e} (record it first with --bless)", path.display()),
        )
    })?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            "--golden",
            format!("{}: not a golden file: {e}", path.display()),
        )
    })?;
    let golden_layers = doc["layers"]
        .as_array()
        .ok_or_else(|| Error::invalid("--golden", format!("{}: no layers", path.display())))?;
    if golden_layers.len() != layers.len() {
        return Err(Error::invalid(
            "--golden",
            format!(
                "{}: {} layers recorded, {} simulated",
                path.display(),
                golden_layers.len(),
                layers.len()
            ),
        ));
    }
    let golden_networks = doc["config"]["networks"].as_u64().unwrap_or(2) as usize;
    let mut zs = Vec::new();
    for (l, (now, then)) in layers.iter().zip(golden_layers).enumerate() {
        for (m, s) in &columns {
            let get = |v: &serde_json::Value, c: &str| v[c].as_f64();
            if let (Some(a), Some(sa), Some(b), Some(sb)) =
                (get(now, m), get(now, s), get(then, m), get(then, s))
            {
                let se = (sa * sa + sb * sb).sqrt();
                let z = if a == b { 0.0 } else { (a - b) / se };
                if z.is_finite() {
                    zs.push((l, m.clone(), z));
                }
            }
        }
    }
    let bound = max_z.unwrap_or_else(|| {
        comparisons::z_bound(
            zs.len(),
            spec.networks.min(golden_networks),
            FALSE_FAILURE_RATE,
        )
    });
    let failures = zs
        .iter()
        .filter(|(_, _, z)| z.abs() > bound)
        .cloned()
        .collect();
    Ok(GoldenVerdict {
        comparisons: zs.len(),
        bound,
        failures,
        written: None,
    })
}

fn report_text(verdicts: &[Verdict]) -> String {
    let mut text = String::new();
    for v in verdicts {
        let status =
            if v.failures.is_empty() && v.golden.as_ref().is_none_or(|g| g.failures.is_empty()) {
                "pass"
            } else {
                "FAIL"
            };
        let worst = v.worst.as_ref().map_or("no comparison".into(), |w| {
            format!(
                "max |z| {:.2} at layer {} ({})",
                w.z.abs(),
                w.layer,
                w.column
            )
        });
        text += &format!(
            "{status} {}: {} comparisons with theory, {worst}, bound {:.2}\n",
            v.name, v.comparisons, v.bound
        );
        for f in &v.failures {
            text += &format!(
                "  layer {:>5} {:<24} measured {} ± {}  theory {}  z = {:.2}\n",
                f.layer,
                f.column,
                output::format_num(f.measured),
                output::format_num(f.se),
                output::format_num(f.theory),
                f.z
            );
        }
        if let Some(g) = &v.golden {
            match &g.written {
                Some(path) => text += &format!("  golden output recorded in {}\n", path.display()),
                None => {
                    text += &format!(
                        "  golden: {} comparisons, bound {:.2}, {} failed\n",
                        g.comparisons,
                        g.bound,
                        g.failures.len()
                    );
                    for (l, c, z) in &g.failures {
                        text += &format!(
                            "  layer {l:>5} {c:<24} moved from the golden output: z = {z:.2}\n"
                        );
                    }
                }
            }
        }
    }
    text
}

fn report_json(verdicts: &[Verdict]) -> String {
    let cases: Vec<serde_json::Value> = verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.name,
                "comparisons": v.comparisons,
                "bound": v.bound,
                "failures": v.failures,
                "worst": v.worst,
                "golden_failures": v.golden.as_ref().map(|g| g.failures.len()),
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "cases": cases })).expect("json") + "\n"
}

/// Returns whether every case passed.
pub fn cmd_check(args: CheckArgs) -> Result<bool> {
    check_plot_args(&args.run)?;
    let base = args.run.settings();
    let mut verdicts = Vec::new();
    match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            let suite: Suite = parse_toml(&path.display().to_string(), &text)?;
            if suite.cases.is_empty() {
                return Err(Error::invalid(
                    path.display().to_string(),
                    "no [[case]] tables",
                ));
            }
            for (i, case) in suite.cases.iter().enumerate() {
                let name = case
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("case{}", i + 1));
                let settings = base.overlay(case);
                verdicts.push(
                    run_case(&args, &settings, &name, args.max_z.or(suite.max_z)).map_err(|e| {
                        match e {
                            Error::Invalid { flag, message } => Error::invalid(
                                format!("{} case '{name}': {flag}", path.display()),
                                message,
                            ),
                            other => other,
                        }
                    })?,
                );
            }
        }
        None => {
            let name = args.name.clone().unwrap_or_else(|| "check".into());
            verdicts.push(run_case(&args, &base, &name, args.max_z)?);
        }
    }
    let passed = verdicts
        .iter()
        .all(|v| v.failures.is_empty() && v.golden.as_ref().is_none_or(|g| g.failures.is_empty()));
    let text = match output::pick_format(args.run.format, args.run.out.as_deref()) {
        Format::Json => report_json(&verdicts),
        _ => report_text(&verdicts),
    };
    output::write_output(args.run.out.as_deref(), &text)?;
    // one curve per case, named by the case with a suite
    let runs: Vec<(Option<&str>, &RunSpec, &RunOutput)> = verdicts
        .iter()
        .filter_map(|v| {
            let label = args.config.is_some().then_some(v.name.as_str());
            v.plotted.as_ref().map(|(spec, run)| (label, spec, run))
        })
        .collect();
    save_layer_plot(&args.run, "check", &runs)?;
    Ok(passed)
}
