//! The `varprop` command line: parse, call the library, write.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::args::RunArgs;
use cli::bench::BenchArgs;
use varprop::io::output::Format;

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
    /// Simulate one configuration: one row per layer (row 0 is the input), theory beside it.
    Run(RunArgs),
    /// The mean-field recurrences alone (no GPU): the per-layer table, the fixed points (--summary),
    /// the edge of chaos (--edge-of-chaos).
    Theory(cli::theory::TheoryArgs),
    /// Simulate and compare with theory; exit 1 when a measurement leaves the statistical tolerance.
    Check(cli::check::CheckArgs),
    /// Kernel and end-to-end throughput on this adapter, against its FMA
    /// peak and a naive product (`--quick` for a smoke test).
    Bench(BenchArgs),
    /// Several schemes (--inits, --acts, --sigma-w2s lists) on one shape and seed, side by side.
    Compare(cli::compare::CompareArgs),
    /// A grid of run settings from a TOML file: one result file per configuration, a summary CSV;
    /// resumable, shardable across array jobs (--shard I/N, Slurm, Grid Engine).
    Sweep(cli::sweep::SweepArgs),
    /// The summary of sweep results spread over directories (one per shard).
    Merge(cli::sweep::MergeArgs),
    /// The order-to-chaos diagram: a grid of sigma_w2 and sigma_b2 for one activation, measured c and
    /// log q at the last layer against theory; --plot draws the heatmap with the edge of chaos.
    Phase(cli::phase::PhaseArgs),
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
        Command::Theory(args) => cli::theory::cmd_theory(args),
        Command::Check(args) => match cli::check::cmd_check(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Bench(args) => cli::bench::cmd_bench(args),
        Command::Compare(args) => cli::compare::cmd_compare(args),
        Command::Sweep(args) => cli::sweep::cmd_sweep(args),
        Command::Merge(args) => cli::sweep::cmd_merge(args),
        Command::Phase(args) => cli::phase::cmd_phase(args),
        Command::Devices { format } => cli::devices::cmd_devices(format),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = e.with_flag_names();
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
