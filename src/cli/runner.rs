//! Many runs in one process (`compare`, `sweep`, `phase`): one GPU context
//! for all of them, created on the first run, and one progress bar over
//! all of them.

use std::io::IsTerminal;
use std::path::PathBuf;

use varprop::Result;
use varprop::Simulator;
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;

use super::args::{EngineArgs, RunArgs};

/// Runs specs on one engine: the library's `Simulator`, with a bar.
pub struct Runner {
    simulator: Simulator,
}

impl Runner {
    pub fn new(args: &EngineArgs) -> Result<Runner> {
        Ok(Runner {
            simulator: args.simulator()?,
        })
    }

    /// One run; the bar advances as the engine reports (after each chunk of
    /// layers it reads back anyway: no extra device sync).
    pub fn run(&self, spec: &RunSpec, bar: &mut WorkBar, message: &str) -> Result<RunOutput> {
        bar.start(message);
        let offset = bar.done;
        let out = self
            .simulator
            .run(spec, |done: u64, _total: u64| bar.set(offset + done));
        bar.done = offset + work(spec);
        bar.set(bar.done);
        out
    }
}

/// The work of a run in the bar's unit: layers (rows) times networks.
pub fn work(spec: &RunSpec) -> u64 {
    (spec.net.depth() as u64 + 1) * spec.networks as u64
}

/// A progress bar over several runs, on stderr, only when stderr is a
/// terminal and not --quiet.
pub struct WorkBar {
    bar: Option<indicatif::ProgressBar>,
    done: u64,
}

impl WorkBar {
    pub fn new(total: u64, quiet: bool) -> WorkBar {
        let bar = (!quiet && std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} layers  {per_sec}  eta {eta}  {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        WorkBar { bar, done: 0 }
    }

    fn start(&self, message: &str) {
        if let Some(b) = &self.bar {
            b.set_message(message.to_string());
        }
    }

    fn set(&self, position: u64) {
        if let Some(b) = &self.bar {
            b.set_position(position);
        }
    }

    /// Prints a line above the bar (or to stderr without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

/// Where a plot goes, checked before anything runs.
pub fn check_plot_path(plot: Option<&PathBuf>) -> Result<()> {
    if let Some(p) = plot {
        varprop::io::plot::ImageFormat::from_path(p, "--plot")?;
    }
    Ok(())
}

/// Checks --plot and --plot-quantity before anything runs.
pub fn check_plot_args(args: &RunArgs) -> Result<()> {
    if args.plot_quantity.is_some() && args.plot.is_none() {
        return Err(varprop::Error::invalid(
            "--plot-quantity",
            "needs --plot FILE",
        ));
    }
    check_plot_path(args.plot.as_ref())
}

/// Writes the --plot of some runs, one curve each: labelled by the given
/// name, or by the run's activation and init; the title is the command and
/// the shape of the first run.
pub fn save_layer_plot(
    args: &RunArgs,
    command: &str,
    runs: &[(Option<&str>, &RunSpec, &RunOutput)],
) -> Result<()> {
    use varprop::analysis::layer_plot::{LabelledRun, LayerFigure, run_shape, scheme_name};
    let (Some(path), Some((_, first, _))) = (&args.plot, runs.first()) else {
        return Ok(());
    };
    let labelled: Vec<LabelledRun> = runs
        .iter()
        .map(|(label, spec, run)| LabelledRun {
            label: label.map_or_else(|| scheme_name(spec), str::to_string),
            spec,
            run,
        })
        .collect();
    let title = format!("varprop {command}: {}", run_shape(first));
    let figure = LayerFigure::new(title, &labelled, args.plot_quantity.unwrap_or_default());
    varprop::io::plot::save(&figure, path, "--plot")
}
