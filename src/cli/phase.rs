//! `varprop phase`: the order-to-chaos diagram of one activation over a
//! grid of sigma_w^2 and sigma_b^2: a table of the grid (c and log q at the
//! last layer against theory) and, with --plot, the heatmap with the edge
//! of chaos over it.

use clap::Args;

use varprop::analysis::phase::{self, PHASE_COLUMNS};
use varprop::config::settings::DEFAULT_NETWORKS;
use varprop::io::output::{self, Format};
use varprop::{Error, Result};

use super::args::RunArgs;
use super::runner::{Runner, WorkBar, check_plot_path, work};
use super::validate;

#[derive(Args)]
#[command(
    after_long_help = "Every point runs --init custom with weight variance sigma_w2/fan_in and \
normal biases of variance sigma_b2, with the run flags' shape, seed, batch and networks. Columns: \
chi1, q_star, c_star, xi_c (the mean-field fixed point); c_last (c_pre at layer L: mean over networks, \
SE, mean-field value at layer L, z); log_q_last (ln of the mean q_post at layer L, SE, mean-field). \
Deep enough (L several times xi_c), c_last is 1 on the ordered side (chi_1 < 1) and c* on the chaotic \
side. --plot draws the measured and the mean-field c_L as heatmaps with the edge of chaos \
(chi_1 = 1, from the theory) over both."
)]
pub struct PhaseArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// sigma_w^2 values: A:B:N, N points from A to B
    #[arg(
        long = "sigma-w2-range",
        default_value = "0.5:4:8",
        allow_hyphen_values = true
    )]
    pub sigma_w2_range: String,
    /// sigma_b^2 values: A:B:N, N points from A to B
    #[arg(
        long = "sigma-b2-range",
        default_value = "0:0.2:5",
        allow_hyphen_values = true
    )]
    pub sigma_b2_range: String,
    /// What the diagram shows: c (the pair correlation at layer L) or ntk_cond (log10 of the NTK's
    /// condition number lambda_max / lambda_min over the batch, measured and at infinite width: the
    /// trainability diagram of Xiao, Pennington and Schoenholz 2020; runs --ntk at every point)
    #[arg(long, value_enum, default_value = "c")]
    pub quantity: PhaseQuantity,
}

/// `--quantity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PhaseQuantity {
    C,
    #[value(name = "ntk_cond")]
    NtkCond,
}

pub fn cmd_phase(args: PhaseArgs) -> Result<()> {
    args.run.check_engine_flags()?;
    validate::refuse_ignored(
        &args.run,
        "phase",
        &[
            "--backward",
            "--jacobian",
            "--weight-grads",
            "--ntk",
            "--parametrisation",
            "--every",
            "--columns",
            "--position-map",
            "--position-layer",
        ],
    )?;
    for (flag, set) in [
        (
            "--checkpoint-every",
            args.run.engine.checkpoint_every.is_some(),
        ),
        ("--max-memory", args.run.engine.max_memory.is_some()),
    ] {
        if set {
            return Err(Error::invalid(
                flag,
                "phase runs forward passes only; there are no checkpoints to space",
            ));
        }
    }
    if args.run.plot_quantity.is_some() {
        return Err(Error::invalid(
            "--plot-quantity",
            "phase plots the correlation c at the last layer; no quantity to choose",
        ));
    }
    check_plot_path(args.run.plot.as_ref())?;
    let sigma_w2s = phase::parse_range("--sigma-w2-range", &args.sigma_w2_range)?;
    let sigma_b2s = phase::parse_range("--sigma-b2-range", &args.sigma_b2_range)?;
    if sigma_w2s.len() * sigma_b2s.len() > phase::MAX_GRID_POINTS {
        return Err(Error::invalid(
            "--sigma-w2-range",
            format!(
                "a grid of {} x {} points; at most {} points in all (each is a simulation)",
                sigma_w2s.len(),
                sigma_b2s.len(),
                phase::MAX_GRID_POINTS
            ),
        ));
    }
    let mut base = args.run.settings();
    if args.quantity == PhaseQuantity::NtkCond {
        base.ntk = Some(true);
    }
    let grid = phase::grid(&base, &sigma_w2s, &sigma_b2s, DEFAULT_NETWORKS)?;
    varprop::spec::check_networks_for_standard_errors("phase", grid[0].2.networks)?;
    let format = output::pick_format(args.run.format, args.run.out.as_deref());
    if args.quantity == PhaseQuantity::NtkCond
        && args.run.engine.device != super::args::DeviceKind::Cpu
    {
        varprop::gpu::choice::ntk_fits_the_gpu(&grid[0].2)?;
    }
    let runner = Runner::new(&args.run.engine)?;
    let mut bar = WorkBar::new(
        grid.iter().map(|(_, _, s)| work(s)).sum(),
        args.run.engine.quiet,
    );
    let mut runs = Vec::new();
    for (k, (w, b, spec)) in grid.iter().enumerate() {
        let message = format!("{}/{} sigma_w2 {w} sigma_b2 {b}", k + 1, grid.len());
        let run = runner.run(spec, &mut bar, &message)?;
        for warning in &run.warnings {
            bar.println(&format!("warning: sigma_w2 {w}, sigma_b2 {b}: {warning}"));
        }
        runs.push(run);
    }
    bar.finish();
    let points = phase::phase_points(&grid, &runs);
    let table = phase::phase_table(&points);
    let spec = &grid[0].2;
    let shape = varprop::analysis::layer_plot::run_shape(spec)
        .split(", ")
        .filter(|p| !p.starts_with("sigma_b2"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = match format {
        Format::Csv => table.to_csv(),
        Format::Json => {
            let doc = serde_json::json!({
                "act": spec.net.act.to_string(),
                "depth": spec.net.depth(),
                "points": table.rows_json(),
            });
            serde_json::to_string_pretty(&doc).expect("json") + "\n"
        }
        Format::Table => {
            let shown: Vec<(&str, &str, Option<&str>)> = vec![
                ("sigma_w2", "sigma_w2", None),
                ("sigma_b2", "sigma_b2", None),
                ("chi1", "chi1", None),
                ("c*", "c_star", None),
                ("c_L", "c_last", Some("c_last_se")),
                ("c_L th.", "c_last_theory", None),
                ("z", "c_last_z", None),
                ("log q_L", "log_q_last", Some("log_q_last_se")),
                ("log q_L th.", "log_q_last_theory", None),
            ];
            let shown = if args.quantity == PhaseQuantity::NtkCond {
                [
                    shown,
                    vec![
                        ("log10 cond", "log10_ntk_cond", None),
                        ("th.", "log10_ntk_cond_theory", None),
                    ],
                ]
                .concat()
            } else {
                shown
            };
            format!(
                "# phase: {}, layer L = {}; {shape}\n",
                spec.net.act,
                spec.net.depth()
            ) + &table.to_text(&shown, 1)
        }
    };
    debug_assert!(table.columns.len() >= PHASE_COLUMNS.len());
    output::write_output(args.run.out.as_deref(), &text)?;
    if let Some(path) = &args.run.plot {
        let draw = match args.quantity {
            PhaseQuantity::C => phase::phase_figure,
            PhaseQuantity::NtkCond => phase::ntk_phase_figure,
        };
        let figure = draw(
            &spec.net.act,
            spec.net.depth(),
            &shape,
            &sigma_w2s,
            &sigma_b2s,
            &points,
        );
        varprop::io::plot::save(&figure, path, "--plot")?;
    }
    Ok(())
}
