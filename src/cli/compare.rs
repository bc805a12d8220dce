//! `varprop compare`: several schemes on one shape and one seed, side by
//! side: one headline row per scheme, every per-layer row with a `scheme`
//! column in CSV/JSON, one curve per scheme in --plot.

use clap::Args;

use varprop::Result;
use varprop::analysis::compare::{
    ACTS_FLAG, INITS_FLAG, SIGMA_W2S_FLAG, SchemeLists, parse_names, parse_numbers, schemes,
};
use varprop::analysis::headline::{Headline, headline_table, table_with_theory};
use varprop::analysis::report;
use varprop::config::settings::DEFAULT_NETWORKS;
use varprop::io::output::{self, Format, LabelledTable};

use super::args::RunArgs;
use super::runner::{Runner, WorkBar, check_plot_args, save_layer_plot, work};
use super::validate;

#[derive(Args)]
#[command(
    after_long_help = "Every scheme runs with the same seed, shape, batch and networks (the run \
flags), so the numbers are those of `varprop run` with the same flags. The table has one row per \
scheme:
  log q_L      ln of the mean q_post over networks at the last layer, ± its standard error
  slope        d ln q / d layer over the last half of the layers (least squares)
  g_1/g_L      with --backward: the mean square gradient at layer 1 over that at layer L
  zero_frac    fraction of units with phi'(h) = 0 at layer L
  c_L          correlation of the input pairs at layer L
  max |z|      the largest |z| of `check`'s comparisons with theory, and its bound
`theory` columns are mean-field. CSV (--format csv or --out x.csv) has every layer of every scheme \
with a `scheme` column; JSON has both."
)]
pub struct CompareArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Init schemes to compare, comma-separated (e.g. xavier-normal,he-normal,torch-default)
    #[arg(long)]
    pub inits: Option<String>,
    /// Activations to compare, comma-separated (e.g. relu,tanh,gelu)
    #[arg(long)]
    pub acts: Option<String>,
    /// Weight variances sigma_w^2 (v = sigma_w2/fan_in, --init custom), comma-separated
    #[arg(long = "sigma-w2s", allow_hyphen_values = true)]
    pub sigma_w2s: Option<String>,
}

/// The headline columns the table shows: (header, column, ± column).
fn shown(backward: bool) -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    let mut v = vec![
        ("log q_L", "log_q_last", Some("log_q_last_se")),
        ("log q_L th.", "log_q_last_theory", None),
        ("slope", "log_q_slope", None),
        ("slope th.", "log_q_slope_theory", None),
    ];
    if backward {
        v.push(("g_1/g_L", "grad_ratio", None));
        v.push(("log g_1/g_L", "log_grad_ratio", None));
        v.push(("log g th.", "log_grad_ratio_theory", None));
    }
    v.extend([
        ("zero_frac", "zero_frac_last", None),
        ("c_L", "c_last", Some("c_last_se")),
        ("c_L th.", "c_last_theory", None),
        ("max |z|", "max_abs_z", None),
        ("bound", "z_bound", None),
    ]);
    v
}

pub fn cmd_compare(args: CompareArgs) -> Result<()> {
    args.run.check_engine_flags()?;
    check_plot_args(&args.run)?;
    validate::refuse_ignored(&args.run, "compare", validate::RUN_ONLY_FLAGS)?;
    let lists = SchemeLists {
        acts: args
            .acts
            .as_deref()
            .map(|t| parse_names(ACTS_FLAG, t))
            .transpose()?
            .unwrap_or_default(),
        inits: args
            .inits
            .as_deref()
            .map(|t| parse_names(INITS_FLAG, t))
            .transpose()?
            .unwrap_or_default(),
        sigma_w2s: args
            .sigma_w2s
            .as_deref()
            .map(|t| parse_numbers(SIGMA_W2S_FLAG, t))
            .transpose()?
            .unwrap_or_default(),
    };
    let schemes = schemes(&args.run.settings(), &lists, DEFAULT_NETWORKS)?;
    if let Some((_, first)) = schemes.first() {
        validate::backward_flags_need_backward(&args.run, first)?;
        validate::ntk_engine_fits(&args.run, first)?;
        varprop::spec::check_networks_for_standard_errors("compare", first.networks)?;
    }
    let total_bytes: f64 = schemes
        .iter()
        .map(|(_, s)| validate::run_host_bytes(s))
        .sum();
    validate::fits_host_memory("--depth", "these runs", total_bytes)?;
    let format = output::pick_format(args.run.format, args.run.out.as_deref());
    let runner = Runner::new(&args.run.engine)?;
    let mut bar = WorkBar::new(
        schemes.iter().map(|(_, s)| work(s)).sum(),
        args.run.engine.quiet,
    );
    let mut runs = Vec::new();
    for (scheme, spec) in &schemes {
        let run = runner.run(spec, &mut bar, &scheme.label)?;
        for w in &run.warnings {
            bar.println(&format!("warning: {}: {w}", scheme.label));
        }
        runs.push(run);
    }
    bar.finish();

    let mut parts = Vec::new();
    let mut headlines = Vec::new();
    for ((scheme, spec), run) in schemes.iter().zip(&runs) {
        let (table, predictions) = table_with_theory(spec, run);
        headlines.push(Headline::of(spec, run, &table, &predictions));
        parts.push((vec![scheme.label.clone()], table));
    }
    let labels: Vec<Vec<String>> = schemes.iter().map(|(s, _)| vec![s.label.clone()]).collect();
    let summary = LabelledTable {
        label_columns: vec!["scheme".into()],
        labels,
        table: headline_table(&headlines),
    };
    let (_, first_spec) = &schemes[0];
    let text = match format {
        Format::Csv => LabelledTable::stack(vec!["scheme".into()], parts).to_csv(),
        Format::Json => {
            let per_scheme: Vec<serde_json::Value> = schemes
                .iter()
                .zip(&runs)
                .zip(&headlines)
                .map(|(((scheme, spec), run), headline)| {
                    serde_json::json!({
                        "scheme": scheme.label,
                        "config": report::config_json(spec, run),
                        "headline": headline,
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "schemes": per_scheme,
                "layers": LabelledTable::stack(vec!["scheme".into()], parts).rows_json(),
            });
            serde_json::to_string_pretty(&doc).expect("json") + "\n"
        }
        Format::Table => {
            let info = &runs[0].info;
            // schemes may run on different engines (auto: gram where it is exact)
            let mut engines: Vec<&str> = Vec::new();
            for run in &runs {
                if !engines.contains(&run.info.engine) {
                    engines.push(run.info.engine);
                }
            }
            format!(
                "# compare: {} engine{}, {}; {}; q_post at layer L = {} (natural logs)\n",
                engines.join(" and "),
                if engines.len() > 1 { "s" } else { "" },
                info.adapter
                    .as_ref()
                    .map_or("cpu".into(), |a| a.name.clone()),
                varprop::analysis::layer_plot::run_shape(first_spec),
                first_spec.net.depth(),
            ) + &summary.to_text(&shown(first_spec.probes.backward))
        }
    };
    output::write_output(args.run.out.as_deref(), &text)?;
    let plotted: Vec<_> = schemes
        .iter()
        .zip(&runs)
        .map(|((scheme, spec), run)| (Some(scheme.label.as_str()), spec, run))
        .collect();
    save_layer_plot(&args.run, "compare", &plotted)
}
