//! `varprop sweep FILE --out-dir DIR [--shard I/N] [--force]` as library
//! calls, the same steps and files as the command (src/cli/sweep.rs): load
//! the configurations, [`plan`] which of them this shard computes (a
//! result already in DIR is not computed again), [`write_result`] each run
//! as it finishes (atomically: an interrupted sweep loses only the
//! configuration in flight), then [`write_summary`]. The runs themselves
//! are the caller's (the Python package's `varprop.sweep` runs them on its
//! own engine).

use std::path::{Path, PathBuf};

use super::{Configuration, ResultSummary, Shard, configurations, parse_sweep, read_result};
use super::{result_document, summary_csv};
use crate::analysis::headline::{Headline, table_with_theory};
use crate::analysis::report;
use crate::config::settings::DEFAULT_NETWORKS;
use crate::error::{Error, Result};
use crate::sim::RunOutput;
use crate::spec::RunSpec;

/// An I/O error that names the file.
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Reads and resolves a sweep file: every configuration in grid order.
pub fn load(file: &Path) -> Result<Vec<(Configuration, RunSpec)>> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(io_error(file))?;
    let sweep = parse_sweep(&path, &text)?;
    configurations(&path, &sweep, DEFAULT_NETWORKS)
}

/// The shard: `--shard I/N` when given (`flag` names it in errors), else
/// the array job's (see [`Shard::from_env`]), else None (the whole grid).
pub fn shard(explicit: Option<&str>, flag: &'static str) -> Result<Option<(Shard, &'static str)>> {
    match explicit {
        Some(s) => Ok(Some((Shard::parse(flag, s)?, flag))),
        None => Shard::from_env(|k| std::env::var(k).ok()),
    }
}

/// The shard of `--shards N`: the array task's id of the sweep's N shards
/// (see `Shard::from_task_id`).
pub fn shard_of_count(count: usize, flag: &'static str) -> Result<(Shard, &'static str)> {
    Shard::from_task_id(flag, count, |k| std::env::var(k).ok())
}

/// DIR/ID.json.
pub fn result_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Which configurations (indices into `configs`) are this shard's, and
/// which of them still need computing.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub mine: Vec<usize>,
    pub todo: Vec<usize>,
}

/// Creates `out_dir` and plans the shard's work: a configuration whose
/// result file is in `out_dir` and reads back is done (unless `force`).
pub fn plan(
    configs: &[(Configuration, RunSpec)],
    shard: Option<Shard>,
    out_dir: &Path,
    force: bool,
) -> Result<Plan> {
    std::fs::create_dir_all(out_dir).map_err(io_error(out_dir))?;
    let mine: Vec<usize> = (0..configs.len())
        .filter(|k| shard.is_none_or(|s| s.contains(*k)))
        .collect();
    let todo = mine
        .iter()
        .copied()
        .filter(|&k| {
            let existing = result_path(out_dir, &configs[k].0.id);
            force || !(existing.exists() && read_result(&existing).is_ok())
        })
        .collect();
    Ok(Plan { mine, todo })
}

/// Writes the result file of one configuration's run (atomically).
pub fn write_result(
    out_dir: &Path,
    config: &Configuration,
    spec: &RunSpec,
    run: &RunOutput,
) -> Result<PathBuf> {
    let (table, predictions) = table_with_theory(spec, run);
    let headline = Headline::of(spec, run, &table, &predictions);
    let doc = result_document(
        config,
        &headline,
        report::config_json(spec, run),
        table.rows_json(),
        crate::analysis::ntk::ntk_report(spec, run).map(|r| serde_json::to_value(r).expect("json")),
    );
    let path = result_path(out_dir, &config.id);
    crate::io::output::write_atomic(&path, doc.as_bytes())?;
    Ok(path)
}

/// The summary's path: DIR/summary.csv, or a shard's
/// DIR/summary-shard-I-of-N.csv.
pub fn summary_path(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out_dir.join(format!("summary-shard-{}-of-{}.csv", s.index, s.count)),
        None => out_dir.join("summary.csv"),
    }
}

/// Reads the shard's results back and writes its summary; returns its path.
pub fn write_summary(
    out_dir: &Path,
    configs: &[(Configuration, RunSpec)],
    plan: &Plan,
    shard: Option<Shard>,
) -> Result<PathBuf> {
    let results: Vec<ResultSummary> = plan
        .mine
        .iter()
        .map(|&k| read_result(&result_path(out_dir, &configs[k].0.id)))
        .collect::<Result<_>>()?;
    let path = summary_path(out_dir, shard);
    crate::io::output::write_atomic(&path, summary_csv(&results).as_bytes())?;
    Ok(path)
}

/// The line the command prints at the end.
pub fn summary_line(
    configs: usize,
    plan: &Plan,
    shard: Option<(Shard, &str)>,
    out_dir: &Path,
    summary: &Path,
) -> String {
    let shard_text = match shard {
        Some((s, source)) => format!(
            ", shard {}/{} (from {source}): {} of them",
            s.index,
            s.count,
            plan.mine.len()
        ),
        None => String::new(),
    };
    format!(
        "sweep: {} configuration{}{shard_text}; {} computed, {} already in {}; summary {}",
        configs,
        if configs == 1 { "" } else { "s" },
        plan.todo.len(),
        plan.mine.len() - plan.todo.len(),
        out_dir.display(),
        summary.display()
    )
}
