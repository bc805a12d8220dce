//! `varprop theory`: the mean-field recurrences alone, no GPU.

use clap::Args;

use varprop::io::output::{self, Format};
use varprop::theory;
use varprop::{Error, Result};

use super::args::NetArgs;
use super::validate;

#[derive(Args)]
pub struct TheoryArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// The fixed-point summary of a constant-width stack: q*, c*, chi_1, the depth scales xi_q and
    /// xi_c, and the phase (ordered, chaotic or critical)
    #[arg(long)]
    pub summary: bool,
    /// The edge of chaos (chi_1 = 1) for --act: with --sigma-b2 the critical sigma_w2 (and q* there),
    /// with --sigma-w2 the sigma_b2 when one exists
    #[arg(long = "edge-of-chaos")]
    pub edge_of_chaos: bool,
    /// Output format [default: table on a terminal, else csv; or from --out's extension]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (atomically) instead of stdout
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Show every K-th layer in the table (default: about 30 rows); not with csv/json, which keep every row
    #[arg(long)]
    pub every: Option<usize>,
    /// The infinite-width neural tangent kernel with the readout f = w^T x_L / sqrt(n_L): per depth
    /// l, Theta of the network cut at l (ntk_diag_theory, ntk_c_theory: the pair's correlation) and
    /// layer l's contribution to the whole network's Theta (ntk_layer_theory, ntk_layer_c_theory)
    #[arg(long)]
    pub ntk: bool,
    /// How --ntk counts parameters: ntk (W = sqrt(v) omega, b = sqrt(sb) beta, the parameters omega
    /// and beta, as neural-tangents' default) or standard (W and b themselves) [default: ntk]
    #[arg(long, value_name = "ntk|standard")]
    pub parametrisation: Option<String>,
}

pub use varprop::analysis::theory_table::{THEORY_COLUMNS, theory_table};

fn key_values(pairs: &[(&str, f64)], format: Format) -> String {
    match format {
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        if v.is_finite() {
                            (*v).into()
                        } else {
                            serde_json::Value::String(format!("{v}"))
                        },
                    )
                })
                .collect();
            serde_json::to_string_pretty(&map).expect("json") + "\n"
        }
        Format::Csv => {
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
            let values: Vec<String> = pairs.iter().map(|(_, v)| format!("{v:?}")).collect();
            format!("{}\n{}\n", keys.join(","), values.join(","))
        }
        Format::Table => pairs
            .iter()
            .map(|(k, v)| format!("{k:>10}  {}\n", output::format_num(*v)))
            .collect(),
    }
}

/// The flags `theory` would ignore, and its destination, before any work.
fn check_theory_flags(args: &TheoryArgs) -> Result<()> {
    validate::format_agrees_with_out(
        args.format,
        args.out.as_deref(),
        &[Format::Csv, Format::Json, Format::Table],
    )?;
    if let Some(out) = &args.out {
        validate::writable_destination("--out", out)?;
    }
    if args.net.arch.is_some() {
        return Err(Error::invalid(
            "--arch",
            "theory prints the plain stack's recurrences; an architecture's theory is printed \
             beside its measurement by `varprop run --arch FILE` (the *_theory columns)",
        ));
    }
    if args.net.bias.as_deref() == Some("mean-preserving") {
        return Err(Error::invalid(
            "--bias",
            "theory prints the plain stack's recurrences; the mean-preserving bias's theory is \
             printed beside its measurement by `varprop run --bias mean-preserving`",
        ));
    }
    if args.summary && args.edge_of_chaos {
        return Err(Error::invalid(
            "--summary",
            "and --edge-of-chaos print different things; give one",
        ));
    }
    if args.every.is_some() && (args.summary || args.edge_of_chaos) {
        return Err(Error::invalid(
            "--every",
            "thins the per-layer table; --summary and --edge-of-chaos print none",
        ));
    }
    if args.every == Some(0) {
        return Err(Error::invalid("--every", "must be >= 1"));
    }
    if args.ntk && (args.summary || args.edge_of_chaos) {
        return Err(Error::invalid(
            "--ntk",
            "prints a per-layer table; --summary and --edge-of-chaos print none",
        ));
    }
    if let Some(p) = &args.parametrisation {
        if !args.ntk {
            return Err(Error::invalid(
                "--parametrisation",
                "chooses how --ntk counts parameters; without --ntk it would be ignored",
            ));
        }
        varprop::spec::Parametrisation::parse(p)?;
    }
    if args.every.is_some()
        && output::pick_format(args.format, args.out.as_deref()) != Format::Table
    {
        return Err(Error::invalid(
            "--every",
            "thins the rows of the table (--format table); csv and json keep every layer",
        ));
    }
    Ok(())
}

pub fn cmd_theory(args: TheoryArgs) -> Result<()> {
    check_theory_flags(&args)?;
    let format = output::pick_format(args.format, args.out.as_deref());
    let settings = varprop::config::settings::RunSettings {
        net: args.net.clone(),
        ..Default::default()
    };
    let net = settings.net.resolve()?;
    // a row of the table and its text: some 20 numbers, a few hundred bytes
    let bytes = (net.depth() as f64 + 1.0) * 2048.0;
    validate::fits_host_memory("--depth", "this table", bytes)?;
    let text = if args.edge_of_chaos {
        let (b, w) = (args.net.init.sigma_b2, args.net.init.sigma_w2);
        match (w, b) {
            (None, Some(b)) => {
                let e = theory::edge_of_chaos_sigma_w2(&net.act, b)?;
                key_values(
                    &[
                        ("sigma_b2", b),
                        ("sigma_w2", e.sigma_w2),
                        ("q_star", e.q_star),
                    ],
                    format,
                )
            }
            (Some(w), None) => match theory::edge_of_chaos_sigma_b2(&net.act, w)? {
                Some(e) => key_values(
                    &[
                        ("sigma_w2", w),
                        ("sigma_b2", e.sigma_b2),
                        ("q_star", e.q_star),
                    ],
                    format,
                ),
                None => {
                    return Err(Error::invalid(
                        "--edge-of-chaos",
                        format!(
                            "no sigma_b2 >= 0 puts {} at chi_1 = 1 with sigma_w2 = {w}",
                            net.act
                        ),
                    ));
                }
            },
            _ => {
                return Err(Error::invalid(
                    "--edge-of-chaos",
                    "give exactly one of --sigma-b2 (to find sigma_w2) or --sigma-w2 (to find sigma_b2)",
                ));
            }
        }
    } else if args.summary {
        let s = theory::summary(&net)?;
        match format {
            Format::Json => serde_json::to_string_pretty(&s).expect("json") + "\n",
            _ => {
                let mut text = key_values(
                    &[
                        ("sigma_w2", s.sigma_w2),
                        ("sigma_b2", s.sigma_b2),
                        ("q_star", s.fixed_point.q_star),
                        ("c_star", s.fixed_point.c_star),
                        ("chi1", s.fixed_point.chi1),
                        ("xi_q", s.fixed_point.xi_q),
                        ("xi_c", s.fixed_point.xi_c),
                    ],
                    format,
                );
                if format == Format::Table {
                    text += &format!("{:>10}  {}\n", "phase", s.fixed_point.phase);
                } else {
                    text = text.replacen('\n', ",phase\n", 1).trim_end().to_string()
                        + &format!(",{}\n", s.fixed_point.phase);
                }
                text
            }
        }
    } else if args.ntk {
        let param = match &args.parametrisation {
            Some(p) => varprop::spec::Parametrisation::parse(p)?,
            None => varprop::spec::Parametrisation::Ntk,
        };
        let table = varprop::analysis::theory_table::ntk_theory_table(&net, param)?;
        match format {
            Format::Csv => table.to_csv(),
            Format::Json => serde_json::to_string_pretty(&table.rows_json()).expect("json") + "\n",
            Format::Table => {
                let every = args.every.unwrap_or((table.rows.len() / 30).max(1));
                let shown: Vec<(&str, &str, Option<&str>)> = table.columns[1..]
                    .iter()
                    .map(|c| (c.strip_suffix("_theory").unwrap_or(c), c.as_str(), None))
                    .collect();
                let shown = [vec![("layer", "layer", None)], shown].concat();
                format!(
                    "# infinite-width NTK ({} parametrisation), readout w^T x_l / sqrt(n_l) on the network cut at l: widths {}, {} / {}\n",
                    param.name(),
                    varprop::analysis::report::widths_text(&net.widths),
                    net.act,
                    net.init.scheme.name()
                ) + &format!("# {}\n", varprop::analysis::report::init_header(&net, None))
                    + &table.to_text(&shown, every)
            }
        }
    } else {
        let table = theory_table(&theory::layer_table(&net));
        match format {
            Format::Csv => table.to_csv(),
            Format::Json => serde_json::to_string_pretty(&table.rows_json()).expect("json") + "\n",
            Format::Table => {
                let every = args.every.unwrap_or((table.rows.len() / 30).max(1));
                let shown: Vec<(&str, &str, Option<&str>)> = THEORY_COLUMNS
                    .iter()
                    .map(|c| (c.strip_suffix("_theory").unwrap_or(c), *c, None))
                    .collect();
                format!(
                    "# mean-field theory: widths {}, {} / {}\n",
                    varprop::analysis::report::widths_text(&net.widths),
                    net.act,
                    net.init.scheme.name()
                ) + &format!("# {}\n", varprop::analysis::report::init_header(&net, None))
                    + &table.to_text(&shown, every)
            }
        }
    };
    output::write_output(args.out.as_deref(), &text)
}
