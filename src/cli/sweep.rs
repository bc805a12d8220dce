//! `varprop sweep FILE.toml --out-dir DIR`: every configuration of a grid,
//! one result file each (DIR/ID.json, ID the hash of its settings), a
//! summary CSV; resumable, shardable. `varprop merge DIR...`: the summary
//! of shards' results.

use std::path::PathBuf;

use clap::Args;

use varprop::sweep::{self, ResultSummary, driver, lock, merge};
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
With --shards N the shard is the array task's id (Slurm SLURM_ARRAY_TASK_ID, Grid Engine SGE_TASK_ID - 1) of N.
Without --shard or --shards, a Slurm array job (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN)
or a Grid Engine array job (SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST, SGE_TASK_STEPSIZE) picks the
shard; with PBS or LSF give it: --shard $PBS_ARRAY_INDEX/N, --shard $((LSB_JOBINDEX - 1))/N.

Summary: DIR/summary.csv (one row per configuration of the grid: id, settings, headline numbers);
a shard writes DIR/summary-shard-I-of-N.csv instead, and `varprop merge DIR...` writes the summary of
every result in the directories. A shard of the array whose summary is in none of them is missing:
merge stops and names it, unless --allow-partial."
)]
pub struct SweepArgs {
    /// The sweep file (TOML)
    pub file: PathBuf,
    /// Directory of the results (created if missing)
    #[arg(long = "out-dir")]
    pub out_dir: PathBuf,
    /// Run only the I-th of N disjoint slices of the grid, I in 0..N [default: from the scheduler's
    /// array variables, else the whole grid]
    #[arg(long, allow_hyphen_values = true)]
    pub shard: Option<String>,
    /// Cut the grid into N shards and run the one of this array task (Slurm: SLURM_ARRAY_TASK_ID,
    /// Grid Engine: SGE_TASK_ID - 1): resubmitting any subset of the tasks (sbatch --array=1)
    /// runs exactly their shards, where the count from the array's variables would not
    #[arg(long, conflicts_with = "shard")]
    pub shards: Option<usize>,
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
    /// Merge even when shards of the array are missing (a shard's summary-shard-I-of-N.csv is
    /// not in any directory): the summary has the results there are
    #[arg(long = "allow-partial")]
    pub allow_partial: bool,
}

pub fn cmd_sweep(args: SweepArgs) -> Result<()> {
    args.engine.check()?;
    let configs = driver::load(&args.file)?;
    let largest = configs
        .iter()
        .map(|(_, spec)| varprop::sim::host_memory::run_host_bytes(spec))
        .fold(0.0, f64::max);
    varprop::sim::host_memory::fits_host_memory(
        "--depth",
        "a configuration of this sweep",
        largest,
    )?;
    let shard = match args.shards {
        Some(n) => Some(driver::shard_of_count(n, "--shards")?),
        None => {
            let shard = driver::shard(args.shard.as_deref(), "--shard")?;
            if let Some((s, scheduler)) = shard
                && args.shard.is_none()
            {
                eprintln!(
                    "warning: sweep: shard {}/{} from {scheduler}'s array variables; a resubmitted \
                     subset of the tasks would get other shards: give --shards {} (the sweep's count)",
                    s.index, s.count, s.count
                );
            }
            shard
        }
    };
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

pub fn cmd_merge(args: MergeArgs) -> Result<()> {
    let mut results: Vec<ResultSummary> = Vec::new();
    let mut files = 0;
    let mut finished = Vec::new();
    for dir in &args.dirs {
        finished.extend(merge::finished_shards(dir)?);
    }
    let missing = merge::missing_shards(&finished);
    if !missing.is_empty() && !args.allow_partial {
        return Err(Error::invalid(
            "merge",
            format!(
                "{} ({})",
                merge::missing_text(&missing, &args.dirs),
                merge::missing_hint(&missing)
            ),
        ));
    }
    for dir in &args.dirs {
        for path in merge::result_files(dir)? {
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
            "merge",
            format!(
                "no sweep results (ID.json files) in {}",
                merge::dirs_text(&args.dirs)
            ),
        ));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("summary.csv"));
    varprop::io::output::write_atomic(&out, sweep::summary_csv(&results).as_bytes())?;
    if !missing.is_empty() {
        eprintln!(
            "warning: merge: {} (--allow-partial): the summary has only the other shards' results",
            merge::missing_text(&missing, &args.dirs)
        );
    }
    eprintln!(
        "merge: {} configurations from {files} result files in {} directories; summary {}",
        results.len(),
        args.dirs.len(),
        out.display()
    );
    Ok(())
}
