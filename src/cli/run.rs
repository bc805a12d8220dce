//! `varprop run`: simulate one configuration, one row per layer.

use varprop::Result;
use varprop::analysis::report;
use varprop::io::output::{self, Format};

use super::args::{RunArgs, run_spec, simulate};
use super::runner::{check_plot_args, save_layer_plot};

const RUN_TABLE: &[(&str, &str, Option<&str>)] = &[
    ("layer", "layer", None),
    ("width", "width", None),
    ("q_pre", "q_pre_mean", Some("q_pre_se")),
    ("q_post", "q_post_mean", Some("q_post_se")),
    ("theory", "q_post_theory", None),
    (
        "log q_post (std)",
        "log_q_post_mean",
        Some("log_q_post_std"),
    ),
    ("c_pre", "c_pre_mean", Some("c_pre_se")),
    ("theory", "c_pre_theory", None),
    ("zero_frac", "zero_frac_mean", None),
    ("kurt_pre", "kurt_pre_mean", None),
];

pub fn cmd_run(args: RunArgs) -> Result<()> {
    let spec = run_spec(&args, varprop::config::settings::DEFAULT_NETWORKS)?;
    check_plot_args(&args)?;
    let format = output::pick_format(args.format, args.out.as_deref());
    let run = simulate(&args, &spec)?;
    for w in &run.warnings {
        eprintln!("warning: {w}");
    }
    if let (Some(path), Some(a)) = (&args.position_map, &spec.arch) {
        let row = a.position_row.expect("set with --position-map");
        let text = report::position_map_csv(&spec, a, row, &run);
        output::write_atomic(path, text.as_bytes())?;
    }
    let table = run.table_with_theory();
    let text = match format {
        Format::Csv => table.to_csv(),
        Format::Json => {
            let mut doc = serde_json::json!({
                "config": report::config_json(&spec, &run),
                "layers": table.rows_json(),
            });
            if spec.probes.jacobian {
                doc["summary"] =
                    serde_json::to_value(report::jacobian_summary(&run)).expect("json");
            }
            serde_json::to_string_pretty(&doc).expect("json") + "\n"
        }
        Format::Table => {
            let every = args.every.unwrap_or((table.rows.len() / 30).max(1));
            let header = format!(
                "# {} engine ({}{}), {}; widths {}, {} / {}, batch {}, {} networks, seed {}{}\n",
                run.info.engine,
                run.info.engine_reason,
                run.info.gram_rank_min.map_or(String::new(), |r| format!(
                    "; least rank of X^T X {r} of {}",
                    spec.batch
                )),
                run.info
                    .adapter
                    .as_ref()
                    .map_or("cpu".into(), |a| a.name.clone()),
                report::widths_text(&spec.net.widths),
                spec.net.act,
                spec.net.init.scheme.name(),
                spec.batch,
                spec.networks,
                spec.seed,
                if spec.renormalises() {
                    "; homogeneous: log q carried exactly"
                } else {
                    ""
                },
            );
            let mut shown: Vec<(&str, &str, Option<&str>)> = RUN_TABLE.to_vec();
            if spec.probes.backward {
                shown.push(("g", "g_mean", Some("g_se")));
                shown.push(("theory", "g_theory", None));
            }
            if spec.probes.weight_grads {
                shown.push(("gw", "gw_mean", Some("gw_se")));
            }
            if spec.probes.jacobian {
                shown.push(("||J u||^2", "jac_m1_mean", Some("jac_m1_se")));
                shown.push(("theory", "jac_m1_theory", None));
            }
            let mut text = header + &table.to_text(&shown, every);
            if spec.probes.jacobian {
                let j = report::jacobian_summary(&run);
                let theory = varprop::analysis::predictions::jacobian_spread_theory(&spec)
                    .map_or("-".into(), output::format_num);
                text += &format!(
                    "# whole network: m1 = {} ± {}, m2 = {} ± {}, spread m2/m1^2 - 1 = {} ± {} (infinite-width theory {theory})\n",
                    output::format_num(j.jac_m1_mean),
                    output::format_num(j.jac_m1_se),
                    output::format_num(j.jac_m2_mean),
                    output::format_num(j.jac_m2_se),
                    output::format_num(j.jac_spread_mean),
                    output::format_num(j.jac_spread_se)
                );
            }
            text
        }
    };
    output::write_output(args.out.as_deref(), &text)?;
    save_layer_plot(&args, "run", &[(None, &spec, &run)])
}
