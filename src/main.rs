//! The `varprop` command line: parse, call the library, write.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::args::RunArgs;
use cli::bench::BenchArgs;
use varprop::output::Format;

#[derive(Parser)]
#[command(
    name = "varprop",
    version,
    about = "Variance propagation in deep random networks: GPU simulation beside mean-field theory",
    long_about = "Pushes batches through thousands of randomly initialised layers on the GPU \
(WGSL compute shaders through wgpu), reads back per-layer second moments of the signal, and \
sets them beside the recurrences of signal-propagation theory."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate one configuration: one row per layer (row 0 is the input).
    Run(RunArgs),
    /// Kernel and end-to-end throughput on this adapter, against its FMA
    /// peak and a naive product (`--quick` for a smoke test).
    Bench(BenchArgs),
    /// List the adapters wgpu sees (the order `--adapter N` counts).
    Devices {
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::cmd_run(args),
        Command::Bench(args) => cli::bench::cmd_bench(args),
        Command::Devices { format } => cli::devices::cmd_devices(format),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
