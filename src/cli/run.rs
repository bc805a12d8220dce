//! `varprop run`: simulate one configuration, one row per layer.

use varprop::analysis::report;
use varprop::io::output::{self, Format};
use varprop::spec::RunSpec;
use varprop::{Error, Result};

use super::args::{RunArgs, run_spec, simulate};
use super::runner::{check_plot_args, save_layer_plot};

/// The table's default columns: (header, value column, its ± column): the
/// pre-activations' q and c of mean-field theory. Fits 100 characters at a
/// constant width; "±" is always a standard
/// error across networks, and spreads are columns of their own.
const RUN_TABLE: &[(&str, &str, Option<&str>)] = &[
    ("layer", "layer", None),
    ("q_pre", "q_pre_mean", Some("q_pre_se")),
    ("q_pre th.", "q_pre_theory", None),
    ("c_pre", "c_pre_mean", Some("c_pre_se")),
    ("c_pre th.", "c_pre_theory", None),
    ("sd log q_pre", "log_q_pre_std", None),
    ("kurt_pre", "kurt_pre_mean", None),
];

/// The table's columns: `--columns` (names as in the CSV, `q_pre` for
/// q_pre_mean ± q_pre_se), else the defaults and the probes' columns.
fn table_columns(args: &RunArgs, spec: &RunSpec) -> Vec<(String, String, Option<String>)> {
    let owned = |(h, c, pm): &(&str, &str, Option<&str>)| {
        (h.to_string(), c.to_string(), pm.map(str::to_string))
    };
    if let Some(list) = &args.columns {
        let mut shown = vec![("layer".to_string(), "layer".to_string(), None)];
        for name in list.split(',').map(str::trim) {
            shown.push(column_of(name));
        }
        return shown;
    }
    let mut shown: Vec<_> = RUN_TABLE.iter().map(owned).collect();
    if spec.net.widths.windows(2).any(|w| w[0] != w[1]) {
        shown.insert(1, ("width".into(), "width".into(), None));
    }
    if spec.probes.backward {
        shown.push(owned(&("g", "g_mean", Some("g_se"))));
        shown.push(owned(&("g th.", "g_theory", None)));
    }
    if spec.probes.weight_grads {
        shown.push(owned(&("gw", "gw_mean", Some("gw_se"))));
    }
    if spec.probes.jacobian {
        shown.push(owned(&("||J u||^2", "jac_m1_mean", Some("jac_m1_se"))));
        shown.push(owned(&("J th.", "jac_m1_theory", None)));
    }
    if spec.probes.ntk.is_some() {
        shown.push(owned(&(
            "ntk_layer",
            "ntk_layer_mean",
            Some("ntk_layer_se"),
        )));
        shown.push(owned(&("th.", "ntk_layer_theory", None)));
    }
    if spec.arch.as_ref().is_some_and(|a| a.spp) {
        for (name, theory) in [
            ("spp_mean2", "spp_mean2_theory"),
            ("spp_var", "spp_var_theory"),
            ("spp_branch_var", "spp_branch_var_theory"),
        ] {
            let (mean, se) = (format!("{name}_mean"), format!("{name}_se"));
            shown.push((name.to_string(), mean, Some(se)));
            shown.push(("th.".to_string(), theory.to_string(), None));
        }
    }
    if spec
        .arch
        .as_ref()
        .is_some_and(|a| a.arch.input.is_sequence())
    {
        // the tokens: in place of kurtosis and the log spread
        shown.retain(|(h, ..)| h != "kurt_pre" && h != "sd log q_pre");
        for (name, theory) in [
            ("token_cos", Some("token_cos_theory")),
            ("stable_rank", Some("stable_rank_theory")),
            ("attn_entropy", None),
        ] {
            let (mean, se) = (format!("{name}_mean"), format!("{name}_se"));
            shown.push((name.to_string(), mean, Some(se)));
            if let Some(theory) = theory {
                shown.push(("th.".to_string(), theory.to_string(), None));
            }
        }
        if spec.probes.needs_backward() {
            for name in ["grad_wq", "grad_wv"] {
                let (mean, se) = (format!("{name}_mean"), format!("{name}_se"));
                shown.push((name.to_string(), mean, Some(se)));
            }
        }
    }
    shown
}

/// A `--columns` name as a table column: NAME_mean ± NAME_se where those
/// exist, else the column itself.
fn column_of(name: &str) -> (String, String, Option<String>) {
    let mean = format!("{name}_mean");
    if report::known_column(&mean) {
        let se = format!("{name}_se");
        let pm = report::known_column(&se).then_some(se);
        (name.to_string(), mean, pm)
    } else {
        (name.to_string(), name.to_string(), None)
    }
}

/// `--columns` names what a run of `spec` has, before the run.
pub fn check_columns(args: &RunArgs, spec: &RunSpec) -> Result<()> {
    let Some(list) = &args.columns else {
        return Ok(());
    };
    for name in list.split(',').map(str::trim) {
        let (_, column, _) = column_of(name);
        if !report::known_column(&column) {
            return Err(Error::invalid(
                "--columns",
                format!(
                    "no column '{name}'; names as in the CSV header (q_pre for q_pre_mean ± q_pre_se, \
                     c_pre_theory, log_q_post_std, ...): `varprop run --help` lists them"
                ),
            ));
        }
        let needs = report::probe_of_column(&column);
        let has = match needs {
            Some("--backward") => spec.probes.backward,
            Some("--weight-grads") => spec.probes.weight_grads,
            Some("--jacobian") => spec.probes.jacobian,
            Some("--ntk") => spec.probes.ntk.is_some(),
            Some("--spp") => spec.arch.as_ref().is_some_and(|a| a.spp),
            _ => true,
        };
        if !has {
            return Err(Error::invalid(
                "--columns",
                format!("'{name}' is measured with {}", needs.unwrap_or("")),
            ));
        }
    }
    Ok(())
}

/// The config line above the table, wrapped to 100 characters.
fn header_lines(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split(' ') {
        if line.len() + 1 + word.len() > 100 && line.len() > 1 {
            out += &line;
            out.push('\n');
            line = String::from("#  ");
        } else {
            line.push(' ');
        }
        line += word;
    }
    out + &line + "\n"
}

pub fn cmd_run(args: RunArgs) -> Result<()> {
    let (spec, run) = run_and_write(&args)?;
    save_layer_plot(&args, "run", &[(None, &spec, &run)])
}

/// `varprop tokens`: `run` of each sequence file of `--arch a.toml,b.toml`
/// with the same flags, each table under a line naming its file, and
/// --plot the token figure of them all.
pub fn cmd_tokens(args: RunArgs) -> Result<()> {
    let Some(list) = args.settings.net.arch.clone() else {
        return Err(Error::invalid(
            "--arch",
            "tokens needs one or more sequence files (--arch a.toml,b.toml)",
        ));
    };
    if args.plot_quantity.is_some() {
        return Err(Error::invalid(
            "--plot-quantity",
            "tokens' --plot draws the token panels; drop it",
        ));
    }
    if args.out.is_some() {
        return Err(Error::invalid(
            "--out",
            "tokens prints every file's table; write one file's with `varprop run --arch FILE --out`",
        ));
    }
    let paths: Vec<&str> = list.split(',').map(str::trim).collect();
    // every file resolved (and checked to be on sequences) before any runs
    let mut specs = Vec::new();
    for path in &paths {
        let mut one = args.clone();
        one.settings.net.arch = Some(path.to_string());
        let spec = run_spec(&one, varprop::config::settings::DEFAULT_NETWORKS)?;
        if !spec
            .arch
            .as_ref()
            .is_some_and(|a| a.arch.input.is_sequence())
        {
            return Err(Error::invalid(
                "--arch",
                format!("{path} is not on sequences (input = {{ tokens = T, width = d }})"),
            ));
        }
        check_columns(&one, &spec)?;
        specs.push((one, spec));
    }
    check_plot_args(&args)?;
    let mut runs = Vec::new();
    for (path, (one, spec)) in paths.iter().zip(&specs) {
        let run = simulate(one, spec)?;
        println!("# {path}");
        let format = output::pick_format(one.format, None);
        print!("{}", rendered(one, spec, &run, format));
        let label = std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(path)
            .to_string();
        runs.push((label, run));
    }
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let (_, first) = &specs[0];
    let title = format!(
        "varprop tokens: {} networks, batch {}",
        first.networks, first.batch
    );
    let labelled: Vec<(String, &varprop::sim::RunOutput)> =
        runs.iter().map(|(l, r)| (l.clone(), r)).collect();
    let figure = varprop::analysis::tokens::tokens_figure(title, &labelled);
    varprop::io::plot::save(&figure, path, "--plot")
}

/// `varprop spp`: `run` of an architecture with --spp, and its --plot the
/// Signal Propagation Plot.
pub fn cmd_spp(mut args: RunArgs) -> Result<()> {
    if args.settings.net.arch.is_none() {
        return Err(Error::invalid(
            "--arch",
            "spp needs an architecture file (its statistics are per channel of each block's output)",
        ));
    }
    if args.plot_quantity.is_some() {
        return Err(Error::invalid(
            "--plot-quantity",
            "spp's --plot draws the three SPP panels; drop it",
        ));
    }
    args.spp = true;
    let (spec, run) = run_and_write(&args)?;
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let title = format!(
        "varprop spp: {}",
        varprop::analysis::layer_plot::run_shape(&spec)
    );
    let label = args.settings.net.arch.as_deref().map_or("arch", |a| {
        std::path::Path::new(a)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(a)
    });
    let figure = varprop::analysis::spp::spp_figure(title, label, &spec, &run)
        .expect("a run with --spp has its statistics");
    varprop::io::plot::save(&figure, path, "--plot")
}

/// Runs `args` and writes its table (or CSV, JSON) where they say.
fn run_and_write(args: &RunArgs) -> Result<(RunSpec, varprop::sim::RunOutput)> {
    let spec = run_spec(args, varprop::config::settings::DEFAULT_NETWORKS)?;
    check_columns(args, &spec)?;
    check_plot_args(args)?;
    let format = output::pick_format(args.format, args.out.as_deref());
    if args.columns.is_some() && format != Format::Table {
        return Err(Error::invalid(
            "--columns",
            "chooses the columns of the table (--format table); csv and json keep every column",
        ));
    }
    if args.every.is_some() && format != Format::Table {
        return Err(Error::invalid(
            "--every",
            "thins the rows of the table (--format table); csv and json keep every layer",
        ));
    }
    let run = simulate(args, &spec)?;
    for w in &run.warnings {
        eprintln!("warning: {w}");
    }
    if let (Some(path), Some(a)) = (&args.position_map, &spec.arch) {
        let row = a.position_row.expect("set with --position-map");
        let text = report::position_map_csv(&spec, a, row, &run);
        output::write_atomic(path, text.as_bytes())?;
    }
    let text = rendered(args, &spec, &run, format);
    output::write_output(args.out.as_deref(), &text)?;
    Ok((spec, run))
}

/// A run's table, CSV or JSON, as `run` writes it.
fn rendered(
    args: &RunArgs,
    spec: &RunSpec,
    run: &varprop::sim::RunOutput,
    format: Format,
) -> String {
    let table = run.table_with_theory();
    match format {
        Format::Csv => table.to_csv(),
        Format::Json => {
            let mut doc = serde_json::json!({
                "config": report::config_json(spec, run),
                "layers": table.rows_json(),
            });
            if spec.probes.jacobian {
                doc["summary"] = serde_json::to_value(report::jacobian_summary(run)).expect("json");
            }
            if let Some(ntk) = varprop::analysis::ntk::ntk_report(spec, run) {
                doc["ntk"] = serde_json::to_value(ntk).expect("json");
            }
            serde_json::to_string_pretty(&doc).expect("json") + "\n"
        }
        Format::Table => {
            let every = args.every.unwrap_or((table.rows.len() / 30).max(1));
            let header = header_lines(&format!(
                "{} engine ({}{}), {}; widths {}, {} / {}, batch {}, {} networks, seed {}{}",
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
            ));
            let header = header
                + &header_lines(&report::init_header(
                    &spec.net,
                    spec.arch.as_ref().map(|a| &a.arch),
                ));
            let columns = table_columns(args, spec);
            let shown: Vec<(&str, &str, Option<&str>)> = columns
                .iter()
                .map(|(h, c, pm)| (h.as_str(), c.as_str(), pm.as_deref()))
                .collect();
            let mut text = header + &table.to_text(&shown, every);
            if spec.probes.jacobian {
                let j = report::jacobian_summary(run);
                let theory = varprop::analysis::predictions::jacobian_spread_theory(spec)
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
            if let Some(ntk) = varprop::analysis::ntk::ntk_report(spec, run) {
                text += &varprop::analysis::ntk::ntk_footer(&ntk);
            }
            text
        }
    }
}

/// `varprop columns`: the legend of `run`'s columns.
pub fn cmd_columns(format: Option<Format>) -> Result<()> {
    let legend = report::COLUMN_LEGEND;
    let text = match output::pick_format(format, None) {
        Format::Json => {
            let rows: Vec<_> = legend
                .iter()
                .map(|(c, m)| serde_json::json!({"columns": c, "meaning": m}))
                .collect();
            serde_json::to_string_pretty(&rows).expect("json") + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["columns", "meaning"])
                .expect("in-memory csv");
            for (c, m) in legend {
                w.write_record([c, m]).expect("in-memory csv");
            }
            String::from_utf8(w.into_inner().expect("in-memory csv")).expect("utf-8")
        }
        Format::Table => {
            let width = legend.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
            legend
                .iter()
                .map(|(c, m)| format!("{c:<width$}  {m}\n"))
                .collect()
        }
    };
    output::write_output(None, &text)
}
