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
sets them beside the recurrences of signal-propagation theory.",
    after_help = "Exit codes: 0 success; 1 check or a comparison failed; 2 bad input (arguments, \
unreadable or malformed files, destinations that cannot be written); 3 a failure at run time \
(the device, a full disk) or a bug."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate one configuration: one row per layer (row 0 is the input), theory beside it.
    Run(RunArgs),
    /// The Signal Propagation Plot of an architecture file (Brock, De and Smith 2021): per block
    /// output the average channel squared mean and variance, and the residual branches' variance,
    /// beside theory; --plot draws the three panels against depth. Takes run's flags.
    Spp(RunArgs),
    /// Rank collapse and attention of sequence files (--arch a.toml,b.toml: each run with the same
    /// flags): each run's table, and --plot draws 1 - token cosine, the tokens' stable rank and,
    /// with --backward, grad W_Q / grad W_V against depth beside theory. Takes run's flags.
    Tokens(RunArgs),
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
    /// What each column of `run`'s CSV and JSON is (the table's legend).
    Columns {
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// What each --init name means under each --convention (pytorch, jax, flax): the library
    /// function, its law, and v fan_in and the kurtosis at one pair of fans.
    Inits(cli::inits::InitsArgs),
    /// List the adapters wgpu sees (the order `--adapter N` counts).
    Devices {
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

/// The exit codes (README, "Exit codes"): 0 success, 1 a check or a
/// comparison failed, 2 bad input of any kind (arguments, unreadable or
/// malformed files, destinations that cannot be written), 3 a failure at
/// run time (the device, a full disk) or a bug.
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_RUNTIME: u8 = 3;

/// A panic is a bug: one line saying so, exit 3 (never an abort's 134 or
/// the default 101).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let what = what.lines().next().unwrap_or("").to_string();
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "error: internal error (a bug in varprop {}): {what}{at}; please report it with the \
             command line",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(EXIT_RUNTIME as i32);
    }));
}

/// The command line, with negative numbers reaching the validators (so
/// `--width -5` is refused as a width, not as an unknown flag) and numbers
/// that do not parse named with their flag and the type expected.
fn parse_command_line() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_subcommands(|s| s.allow_negative_numbers(true));
    let matches = command
        .try_get_matches()
        .unwrap_or_else(|e| exit_with_clap_error(e));
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_with_clap_error(e))
}

fn exit_with_clap_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::ValueValidation {
        let get = |kind| match e.get(kind) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        if let (Some(arg), Some(value)) =
            (get(ContextKind::InvalidArg), get(ContextKind::InvalidValue))
        {
            let flag = arg.split_whitespace().next().unwrap_or(&arg).to_string();
            let why = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let expected = if why.contains("invalid digit")
                || why.contains("too large")
                || why.contains("empty string")
            {
                "a whole number >= 0".to_string()
            } else if why.contains("invalid float literal") {
                "a number".to_string()
            } else {
                why
            };
            eprintln!("error: {flag}: '{value}' is not {expected}");
            std::process::exit(EXIT_BAD_INPUT as i32);
        }
    }
    e.exit()
}

fn main() -> ExitCode {
    install_panic_hook();
    let cli = parse_command_line();
    // test hook (tests/bad_inputs.rs): a panic must come out as one line, exit 3
    if std::env::var_os("VARPROP_TEST_PANIC").is_some() {
        panic!("VARPROP_TEST_PANIC is set");
    }
    let result = match cli.command {
        Command::Run(args) => cli::run::cmd_run(args),
        Command::Spp(args) => cli::run::cmd_spp(args),
        Command::Tokens(args) => cli::run::cmd_tokens(args),
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
        Command::Columns { format } => cli::run::cmd_columns(format),
        Command::Inits(args) => cli::inits::cmd_inits(args),
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
