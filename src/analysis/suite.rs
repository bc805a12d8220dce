//! `check --config FILE [--golden DIR] [--bless]` as library calls: a
//! regression suite of cases (TOML `[[case]]` tables of run settings), each
//! compared with theory and, with a golden directory, with its recorded
//! output (or recorded, with bless). The same steps and the same texts as
//! `varprop check` (src/cli/check.rs); the simulation itself is the
//! caller's (the Python package's `varprop.check_suite` runs it on its own
//! engine), between [`prepare_case`] and [`judge_case`].

use std::path::{Path, PathBuf};

use crate::analysis::checking::{self, CheckOutcome};
use crate::analysis::comparisons::{self, Comparison, FALSE_FAILURE_RATE};
use crate::analysis::report;
use crate::config::settings::{RunSettings, parse_toml};
use crate::error::{Error, Result};
use crate::io::output::{self, Table};
use crate::sim::RunOutput;
use crate::spec::{NetworkSpec, RunSpec};

/// A suite file: an optional bound and the cases.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Suite {
    #[serde(default, alias = "max_z")]
    pub max_z: Option<f64>,
    #[serde(rename = "case")]
    pub cases: Vec<RunSettings>,
}

/// Parses a suite's TOML text (`label` names it in errors: its path).
/// Every case needs a name (its golden file and its line in the report),
/// safe as a file name and not used twice; `max-z` is checked as
/// `--max-z` is.
pub fn parse_suite(label: &str, text: &str) -> Result<Suite> {
    let suite: Suite = parse_toml(label, text)?;
    if suite.cases.is_empty() {
        return Err(Error::invalid(label, "no [[case]] tables"));
    }
    check_max_z(&format!("{label}, key 'max-z'"), suite.max_z)?;
    let mut seen = std::collections::HashSet::new();
    for (i, case) in suite.cases.iter().enumerate() {
        let Some(name) = &case.name else {
            return Err(Error::invalid(
                format!("{label}, case {}", i + 1),
                "has no name; each [[case]] needs name = \"...\" (its golden file and its report line)",
            ));
        };
        check_case_name(&format!("{label}, case {}, key 'name'", i + 1), name)?;
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid(
                format!("{label}, case {}, key 'name'", i + 1),
                format!("'{name}' names two cases; their golden files would overwrite each other"),
            ));
        }
    }
    Ok(suite)
}

/// The name of the i-th case (0-based): its `name` (every case of a parsed
/// suite has one).
pub fn case_name(i: usize, case: &RunSettings) -> String {
    case.name
        .clone()
        .unwrap_or_else(|| format!("case{}", i + 1))
}

/// A case's name becomes a file name in the golden directory: letters,
/// digits, '.', '_' and '-', not starting with '.', at most 100 characters,
/// so that it cannot leave the directory or hide in it.
pub fn check_case_name(flag: &str, name: &str) -> Result<()> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 100 || name.starts_with('.') || !name.chars().all(safe) {
        return Err(Error::invalid(
            flag,
            format!(
                "'{name}' is not a usable case name: letters, digits, '.', '_' and '-', not \
                 starting with '.', 1 to 100 characters (it names the golden file NAME.json)"
            ),
        ));
    }
    Ok(())
}

/// A bound on |z| given by the user: finite and positive.
pub fn check_max_z(flag: &str, z: Option<f64>) -> Result<()> {
    match z {
        Some(z) if !(z.is_finite() && z > 0.0) => Err(Error::invalid(
            flag,
            format!("must be a finite number > 0 (a bound on |z|), got {z}"),
        )),
        _ => Ok(()),
    }
}

/// Before any case runs: without bless, every case's golden file must be
/// there to compare with; with bless, the directory must be creatable.
pub fn check_golden_files(dir: &Path, names: &[String], bless: bool) -> Result<()> {
    if bless {
        let existing = dir
            .ancestors()
            .find(|a| a.as_os_str().is_empty() || a.exists());
        return match existing {
            Some(a) if !a.as_os_str().is_empty() && !a.is_dir() => Err(Error::invalid(
                "--golden",
                format!("{} is not a directory", a.display()),
            )),
            _ => Ok(()),
        };
    }
    if !dir.is_dir() {
        return Err(Error::invalid(
            "--golden",
            format!(
                "{} is not a directory of golden files (record them first with --bless)",
                dir.display()
            ),
        ));
    }
    for name in names {
        let path = dir.join(format!("{name}.json"));
        if !path.is_file() {
            return Err(Error::invalid(
                "--golden",
                format!(
                    "{}: no such golden file (record it first with --bless)",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// An error of a case, as the CLI reports it: the flag prefixed with the
/// suite's label and the case's name.
pub fn case_error(label: &str, name: &str, e: Error) -> Error {
    match e {
        Error::Invalid { flag, message } => {
            Error::invalid(format!("{label} case '{name}': {flag}"), message)
        }
        other => other,
    }
}

/// The run of a case and the network its theory is computed for (the
/// run's own, or with `theory_sigma_w2` the test-only wrong one).
pub fn prepare_case(
    settings: &RunSettings,
    theory_sigma_w2: Option<f64>,
) -> Result<(RunSpec, NetworkSpec)> {
    let spec = settings.resolve(checking::CHECK_NETWORKS)?;
    crate::spec::check_networks_for_standard_errors("check", spec.networks)?;
    let mut theory_net = spec.net.clone();
    if let Some(w) = theory_sigma_w2 {
        theory_net.init.sigma_w2 = w;
    }
    Ok((spec, theory_net))
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub name: String,
    pub comparisons: usize,
    pub bound: f64,
    pub failures: Vec<Comparison>,
    pub worst: Option<Comparison>,
    pub golden: Option<GoldenVerdict>,
}

impl Verdict {
    /// No comparison with theory failed, nor with the golden output.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.golden.as_ref().is_none_or(|g| g.failures.is_empty())
    }
}

/// The comparison of a case with its golden output, or its recording.
#[derive(Clone, Debug)]
pub struct GoldenVerdict {
    pub comparisons: usize,
    pub bound: f64,
    /// (layer, column, z) of every measurement that moved.
    pub failures: Vec<(usize, String, f64)>,
    /// With bless: the file written.
    pub written: Option<PathBuf>,
}

/// Judges the run of a case: theory, then the golden output in `golden`
/// (`Some((dir, bless))`). Returns the verdict and the outcome of the
/// comparison with theory (its table and every comparison).
pub fn judge_case(
    name: &str,
    run: &RunOutput,
    theory_net: &NetworkSpec,
    max_z: Option<f64>,
    golden: Option<(&Path, bool)>,
) -> Result<(Verdict, CheckOutcome)> {
    let outcome = checking::check_run(run, theory_net, max_z);
    let golden = match golden {
        Some((dir, bless)) => Some(golden_verdict(
            dir,
            name,
            &run.spec,
            run,
            &outcome.table,
            bless,
            max_z,
        )?),
        None => None,
    };
    let verdict = Verdict {
        name: name.to_string(),
        comparisons: outcome.comparisons.len(),
        bound: outcome.bound,
        failures: outcome.failures().cloned().collect(),
        worst: outcome.worst().cloned(),
        golden,
    };
    Ok((verdict, outcome))
}

/// Every comparison of every case as one CSV table (`check --format csv`):
/// case, layer, column, measured, se, theory, z, the bound, whether the
/// statement is exact at finite width, and whether it failed.
pub fn comparisons_csv(cases: &[(String, CheckOutcome)]) -> String {
    let mut text = String::from("case,layer,column,measured,se,theory,z,bound,exact,failed\n");
    for (name, outcome) in cases {
        for c in &outcome.comparisons {
            text += &format!(
                "{name},{},{},{:?},{:?},{:?},{:?},{:?},{},{}\n",
                c.layer,
                c.column,
                c.measured,
                c.se,
                c.theory,
                c.z,
                outcome.bound,
                c.exact,
                c.z.abs() > outcome.bound
            );
        }
    }
    text
}

/// The measured (mean, se) columns a golden file keeps.
pub fn golden_columns(table: &Table) -> Vec<(String, String)> {
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

/// Records (bless) or compares the golden file DIR/NAME.json of a case.
pub fn golden_verdict(
    dir: &Path,
    name: &str,
    spec: &RunSpec,
    run: &RunOutput,
    table: &Table,
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

/// The report `check` prints (table format).
pub fn report_text(verdicts: &[Verdict]) -> String {
    let mut text = String::new();
    for v in verdicts {
        let status = if v.passed() { "pass" } else { "FAIL" };
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

/// The report `check --format json` prints.
pub fn report_json(verdicts: &[Verdict]) -> String {
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
