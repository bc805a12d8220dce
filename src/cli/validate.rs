//! Checks of the command line that come before any work: destinations that
//! can be written, formats that agree with them, flags a command would
//! ignore, and the host memory a run will hold. The run's own settings are
//! checked where they are resolved (`config::settings`); these are the
//! flags of the binary around them.

use std::path::Path;

use varprop::io::output::Format;
use varprop::spec::RunSpec;
use varprop::{Error, Result};

use super::args::RunArgs;

/// `path` can be created or replaced: its parent is an existing directory
/// we may write in (tried with a probe file, removed at once, since
/// permission bits do not bind root), and it is not itself a directory.
pub fn writable_destination(flag: &str, path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::invalid(
            flag,
            format!("{shown} is a directory; give a file name"),
        ));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::invalid(
            flag,
            format!(
                "{shown}: the directory {} does not exist (create it first)",
                parent.display()
            ),
        ));
    }
    writable_directory(flag, parent)
}

/// `dir` is a directory files can be created in.
pub fn writable_directory(flag: &str, dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".varprop-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::invalid(
            flag,
            format!("cannot write in {}: {e}", dir.display()),
        )),
    }
}

/// `--format` and the extension of `--out` say the same thing (a `.csv`
/// file with `--format json` would hold JSON under a CSV name).
pub fn format_agrees_with_out(
    format: Option<Format>,
    out: Option<&Path>,
    accepted: &[Format],
) -> Result<()> {
    if let Some(f) = format
        && !accepted.contains(&f)
    {
        let names: Vec<&str> = accepted.iter().map(|f| format_name(*f)).collect();
        return Err(Error::invalid(
            "--format",
            format!(
                "{} is not offered here; accepted: {}",
                format_name(f),
                names.join(", ")
            ),
        ));
    }
    let (Some(f), Some(path)) = (format, out) else {
        return Ok(());
    };
    let by_extension = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => Some(Format::Csv),
        Some("json") => Some(Format::Json),
        Some("txt") => Some(Format::Table),
        _ => None,
    };
    match by_extension {
        Some(e) if e != f => Err(Error::invalid(
            "--format",
            format!(
                "{} contradicts --out {} (a {} name); drop --format or rename the file",
                format_name(f),
                path.display(),
                format_name(e)
            ),
        )),
        _ => Ok(()),
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Table => "table",
    }
}

/// The flags of `run` alone that check and compare would ignore.
pub const RUN_ONLY_FLAGS: &[&str] = &[
    "--every",
    "--columns",
    "--position-map",
    "--position-layer",
    "--ntk",
    "--parametrisation",
    "--spp",
];

/// Refuses the flags of `names` that are set: `command` would ignore them.
pub fn refuse_ignored(args: &RunArgs, command: &str, names: &[&str]) -> Result<()> {
    for &name in names {
        let set = match name {
            "--every" => args.every.is_some(),
            "--columns" => args.columns.is_some(),
            "--position-map" => args.position_map.is_some(),
            "--position-layer" => args.position_layer.is_some(),
            "--plot" => args.plot.is_some(),
            "--plot-quantity" => args.plot_quantity.is_some(),
            "--backward" => args.settings.backward == Some(true),
            "--jacobian" => args.settings.jacobian == Some(true),
            "--weight-grads" => args.settings.weight_grads == Some(true),
            "--ntk" => args.settings.ntk == Some(true),
            "--parametrisation" => args.settings.parametrisation.is_some(),
            "--spp" => args.spp,
            other => unreachable!("no flag {other} to refuse"),
        };
        if set {
            return Err(Error::invalid(
                name,
                format!("{command} does not use it (it would be ignored); drop it"),
            ));
        }
    }
    Ok(())
}

/// The engine flags that only a backward pass uses, refused without one.
pub fn backward_flags_need_backward(args: &RunArgs, spec: &RunSpec) -> Result<()> {
    // the NTK's own backward pass is checkpointed as the others are
    if spec.probes.runs_backward() {
        return Ok(());
    }
    let engine = &args.engine;
    for (flag, set) in [
        ("--checkpoint-every", engine.checkpoint_every.is_some()),
        ("--max-memory", engine.max_memory.is_some()),
    ] {
        if set {
            return Err(Error::invalid(
                flag,
                "spaces the checkpoints of the backward pass; this run has none (add --backward, \
                 --jacobian, --weight-grads or --ntk, or drop the flag)",
            ));
        }
    }
    Ok(())
}

/// --ntk beside another backward probe runs on the CPU only: refused on a
/// GPU device before the context is made.
pub fn ntk_engine_fits(args: &RunArgs, spec: &RunSpec) -> Result<()> {
    if args.engine.device != super::args::DeviceKind::Cpu {
        varprop::gpu::choice::ntk_fits_the_gpu(spec)?;
    }
    Ok(())
}

pub use varprop::sim::host_memory::{fits_host_memory, run_host_bytes};
