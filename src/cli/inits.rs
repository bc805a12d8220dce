//! `varprop inits`: what each --init name means under each --convention,
//! the library function it stands for, its law, and the numbers it resolves
//! to at one pair of fans (computed by the same code the engines draw from).

use varprop::error::{Error, Result};
use varprop::io::output::{self, Format};
use varprop::model::activation::{Activation, SIREN_OMEGA};
use varprop::model::init::{CONVENTION_NAMES, Convention, InitFlags, InitSpec, Scheme, describe};

#[derive(clap::Args)]
pub struct InitsArgs {
    /// Only this convention: pytorch, jax or flax [default: all three]
    #[arg(long)]
    pub convention: Option<String>,
    /// fan_in of the layer the numbers are for
    #[arg(long = "fan-in", default_value_t = 256)]
    pub fan_in: usize,
    /// fan_out of that layer [default: fan_in]
    #[arg(long = "fan-out")]
    pub fan_out: Option<usize>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// One (scheme, convention) line.
#[derive(serde::Serialize)]
struct Row {
    scheme: &'static str,
    convention: &'static str,
    function: &'static str,
    law: &'static str,
    dist: &'static str,
    /// v fan_in at the fans asked (a hidden layer; siren's first layer differs)
    v_fan_in: Option<f64>,
    /// E w^4 / v^2
    kurtosis: Option<f64>,
    gain: Option<f64>,
}

pub fn cmd_inits(args: InitsArgs) -> Result<()> {
    let conventions: Vec<Convention> = match &args.convention {
        Some(name) => vec![Convention::parse(name)?],
        None => CONVENTION_NAMES.iter().map(|(_, c)| *c).collect(),
    };
    if args.fan_in == 0 || args.fan_out == Some(0) {
        return Err(Error::invalid(
            if args.fan_in == 0 {
                "--fan-in"
            } else {
                "--fan-out"
            },
            "must be >= 1",
        ));
    }
    let (fan_in, fan_out) = (args.fan_in, args.fan_out.unwrap_or(args.fan_in));
    let mut rows = Vec::new();
    for scheme in describe::schemes() {
        for &convention in &conventions {
            let (function, law) = describe::scheme_in_words(scheme, convention);
            let (act, init) = numbers_for(scheme, convention)?;
            let resolved = init.map(|init| (init, init.weight_law(&act, 2, fan_in, fan_out)));
            rows.push(Row {
                scheme: scheme.name(),
                convention: convention.name(),
                function,
                law,
                dist: resolved.map_or("-", |(_, w)| w.dist.name()),
                v_fan_in: resolved.map(|(_, w)| w.variance * fan_in as f64),
                kurtosis: resolved
                    .map(|(_, w)| w.dist.standardised_fourth_moment())
                    .filter(|k| k.is_finite()),
                gain: resolved
                    .filter(|(i, _)| i.gain_source != varprop::model::init::GainSource::None)
                    .map(|(i, _)| i.gain),
            });
        }
    }
    let text = match output::pick_format(args.format, None) {
        Format::Json => serde_json::to_string_pretty(&rows).expect("json") + "\n",
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &rows {
                w.serialize(r).expect("in-memory csv");
            }
            String::from_utf8(w.into_inner().expect("in-memory csv")).expect("utf-8")
        }
        Format::Table => {
            let mut out = format!(
                "# v = variance of one entry, fan = fan_in unless --fan-mode, gain 1 unless --gain; numbers for a\n\
                 # hidden layer with fan_in {fan_in}, fan_out {fan_out} (siren: omega 30), kurtosis = E w^4 / v^2\n"
            );
            let mut last = "";
            for r in &rows {
                if r.scheme != last {
                    out += &format!("{}\n", r.scheme);
                    last = r.scheme;
                }
                let num = |x: Option<f64>| x.map_or("-".to_string(), output::format_num);
                out += &format!(
                    "  {:<8} {}\n  {:<8}   {}\n  {:<8}   {}, v fan_in {}, kurtosis {}\n",
                    r.convention,
                    r.function,
                    "",
                    r.law,
                    "",
                    r.dist,
                    num(r.v_fan_in),
                    num(r.kurtosis)
                );
            }
            out
        }
    };
    output::write_output(None, &text)
}

/// The activation and resolved init the numbers come from: relu (sin for
/// siren); none for custom, whose variance is the user's.
fn numbers_for(scheme: Scheme, convention: Convention) -> Result<(Activation, Option<InitSpec>)> {
    let act = if scheme == Scheme::Siren {
        Activation::Sin { omega: SIREN_OMEGA }
    } else {
        Activation::Relu
    };
    if scheme == Scheme::Custom {
        return Ok((act, None));
    }
    let flags = InitFlags {
        init: Some(scheme.name().into()),
        convention: Some(convention.name().into()),
        ..Default::default()
    };
    Ok((act, Some(InitSpec::resolve(&flags, &act)?)))
}
