//! `varprop bench`: kernel and end-to-end throughput on this adapter.

use std::path::PathBuf;

use clap::Args;

use varprop::bench::{self, BenchOptions};
use varprop::gpu::GpuContext;
use varprop::io::output::{self, Format};
use varprop::{Error, Result};

#[derive(Args)]
pub struct BenchArgs {
    /// Small sizes only: a smoke test (seconds), not a measurement
    #[arg(long)]
    pub quick: bool,
    /// table or json (csv is not offered: the report is not a table of rows)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to this file (atomically)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Adapter index (as `varprop devices` counts) or part of its name
    #[arg(long)]
    pub adapter: Option<String>,
    /// No progress lines on stderr
    #[arg(long)]
    pub quiet: bool,
}

pub fn cmd_bench(args: BenchArgs) -> Result<()> {
    if let Some(out) = &args.out {
        super::validate::writable_destination("--out", out)?;
    }
    let format = match (args.format, args.out.as_deref()) {
        (Some(Format::Csv), _) => {
            return Err(Error::invalid("--format", "table or json"));
        }
        (Some(f), _) => f,
        (None, Some(p)) if p.extension().is_some_and(|e| e == "json") => Format::Json,
        (None, _) => Format::Table,
    };
    let ctx = GpuContext::new(args.adapter.as_deref())?;
    let options = BenchOptions { quick: args.quick };
    let quiet = args.quiet;
    let report = bench::run(&ctx, options, &mut |step| {
        if !quiet {
            eprintln!("bench: {step}");
        }
    })?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report).expect("json") + "\n",
        _ => bench::to_table(&report),
    };
    output::write_output(args.out.as_deref(), &text)
}
