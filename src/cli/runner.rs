//! What several commands share around a run: checking and writing the
//! --plot of its curves.

use std::path::PathBuf;

use varprop::Result;
use varprop::engine::RunOutput;
use varprop::spec::RunSpec;

use super::args::RunArgs;

/// Where a plot goes, checked before anything runs.
pub fn check_plot_path(plot: Option<&PathBuf>) -> Result<()> {
    if let Some(p) = plot {
        varprop::plot::ImageFormat::from_path(p, "--plot")?;
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
    use varprop::plot::layers::{LabelledRun, LayerFigure, run_shape, scheme_name};
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
    varprop::plot::save(&figure, path, "--plot")
}
