//! `varprop sweep FILE.toml --out-dir DIR`: every configuration of a grid,
//! one result file each (DIR/ID.json, ID the hash of its settings), a
//! summary CSV; resumable, shardable. `varprop merge DIR...`: the summary
//! of shards' results.

use std::path::{Path, PathBuf};

use clap::Args;

use varprop::io::sweep::{self, ResultSummary, driver, lock};
use varprop::{Error, Result};

use super::args::EngineArgs;
use super::runner::{Runner, WorkBar, work};

#[derive(Args)]
#[command(
    after_long_help = "The file: fixed settings at the top, the grid under [grid] (any setting of \
`run`, names as its flags without the dashes; each grid key takes a list):

    width = 256
    depth = 1000
    networks = 16
    [grid]
    init = [\"xavier-normal\", \"he-normal\", \"torch-default\"]
    sigma-b2 = [0.0, 0.05]

Results: DIR/ID.json per configuration (the run's JSON with its settings and headline numbers), ID =
the first 16 hex digits of the SHA-256 of the configuration's canonical JSON (its settings with the
defaults written out, keys sorted, no spaces: `printf '%s' \"$json\" | sha256sum`). A result already in
DIR is not computed again (--force recomputes); files are written atomically, so an interrupted
sweep loses only the configurations in flight. While it runs, a sweep holds DIR/.varprop-sweep.lock
(a shard's: DIR/.varprop-sweep-shard-I-of-N.lock, so shards can share DIR): a second sweep of the same
shard into DIR stops with exit code 2 before any work, or with --wait waits for the first to finish.
The lock is the operating system's and goes with its process (an error, Ctrl-C, kill), so a file
left behind by a dead sweep never blocks.

Shards: configuration k (grid order: keys sorted, the first outermost) belongs to shard k mod N.
Without --shard, a Slurm array job (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN)
or a Grid Engine array job (SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST, SGE_TASK_STEPSIZE) picks the
shard; with PBS or LSF give it: --shard $PBS_ARRAY_INDEX/N, --shard $((LSB_JOBINDEX - 1))/N.

Summary: DIR/summary.csv (one row per configuration of the grid: id, settings, headline numbers);
a shard writes DIR/summary-shard-I-of-N.csv instead, and `varprop merge DIR...` writes the summary of
every result in the directories."
)]
pub struct SweepArgs {
    /// The sweep file (TOML)
    pub file: PathBuf,
    /// Directory of the results (created if missing)
    #[arg(long = "out-dir")]
    pub out_dir: PathBuf,
    /// Run only the I-th of N disjoint slices of the grid, I in 0..N [default: from the scheduler's
    /// array variables, else the whole grid]
    #[arg(long)]
    pub shard: Option<String>,
    /// Recompute configurations whose result is already in --out-dir
    #[arg(long)]
    pub force: bool,
    /// When another sweep of the same shard holds --out-dir, wait for it to finish instead of
    /// stopping
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// Directories of sweep results (shards' --out-dir)
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the summary [default: summary.csv in the first directory]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn cmd_sweep(args: SweepArgs) -> Result<()> {
    let configs = driver::load(&args.file)?;
    let shard = driver::shard(args.shard.as_deref(), "--shard")?;
    // held until the summary is written; dropped (file removed) on errors too
    let _lock = match lock::acquire(&args.out_dir, shard.map(|(s, _)| s), args.wait, |holder| {
        eprintln!(
            "sweep: waiting for the other sweep into {} ({holder}) to finish",
            args.out_dir.display()
        )
    })? {
        lock::Acquired::Held(held) => Some(held),
        lock::Acquired::Unsupported(why) => {
            eprintln!("warning: sweep: {why}");
            None
        }
    };
    let runner = Runner::new(&args.engine)?;
    let plan = driver::plan(&configs, shard.map(|(s, _)| s), &args.out_dir, args.force)?;
    let mut bar = WorkBar::new(
        plan.todo.iter().map(|&k| work(&configs[k].1)).sum(),
        args.engine.quiet,
    );
    for (n, &k) in plan.todo.iter().enumerate() {
        let (config, spec) = &configs[k];
        let message = format!("{}/{} {}", n + 1, plan.todo.len(), config.point);
        let run = runner.run(spec, &mut bar, &message)?;
        for w in &run.warnings {
            bar.println(&format!("warning: {} ({}): {w}", config.id, config.point));
        }
        driver::write_result(&args.out_dir, config, spec, &run)?;
    }
    bar.finish();
    let summary = driver::write_summary(&args.out_dir, &configs, &plan, shard.map(|(s, _)| s))?;
    eprintln!(
        "{}",
        driver::summary_line(configs.len(), &plan, shard, &args.out_dir, &summary)
    );
    Ok(())
}

/// The result files of a directory: `*.json`, not hidden (temporary files
/// of atomic writes are), sorted by name.
fn result_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(driver::io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

pub fn cmd_merge(args: MergeArgs) -> Result<()> {
    let mut results: Vec<ResultSummary> = Vec::new();
    let mut files = 0;
    for dir in &args.dirs {
        for path in result_files(dir)? {
            files += 1;
            let r = sweep::read_result(&path)?;
            match results.iter().find(|o| o.id == r.id) {
                Some(o) if *o != r => eprintln!(
                    "warning: {} differs from another result with the same id (another engine or adapter?); keeping the first",
                    path.display()
                ),
                Some(_) => {}
                None => results.push(r),
            }
        }
    }
    if results.is_empty() {
        return Err(Error::invalid(
            "DIR",
            "no sweep results (ID.json files) in the directories given",
        ));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("summary.csv"));
    varprop::io::output::write_atomic(&out, sweep::summary_csv(&results).as_bytes())?;
    eprintln!(
        "merge: {} configurations from {files} result files in {} directories; summary {}",
        results.len(),
        args.dirs.len(),
        out.display()
    );
    Ok(())
}
