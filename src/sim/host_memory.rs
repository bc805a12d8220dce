//! Host memory a job will hold, estimated before it starts, so that a size
//! the machine cannot hold is refused with a message instead of an abort
//! when the allocation fails.

use crate::error::{Error, Result};
use crate::spec::RunSpec;

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes of host memory a run of `spec` holds at the end: per network and
/// row its sample (about 30 f64) and sums, and per row the summary, the
/// table and its text (about 60 columns of some 24 bytes each).
pub fn run_host_bytes(spec: &RunSpec) -> f64 {
    let rows = spec.net.depth() as f64 + 1.0;
    let per_network_row = 2.0 * 30.0 * 8.0 + 4.0 * spec.batch as f64 * 8.0;
    rows * (spec.networks as f64 * per_network_row + 60.0 * 3.0 * 24.0)
}

/// Bytes the f64 CPU reference holds for one network: the largest layer's
/// W twice (the orthogonal factorisation's copy), and the B rows of h, x
/// and the tangents of every layer, kept for the backward pass.
pub fn cpu_engine_bytes(spec: &RunSpec) -> f64 {
    if let Some(a) = &spec.arch {
        return arch_cpu_bytes(&a.arch, spec.batch);
    }
    let widths = &spec.net.widths;
    let largest_w = widths
        .windows(2)
        .map(|w| w[0] as f64 * w[1] as f64)
        .fold(0.0, f64::max);
    let rows: f64 = widths.iter().map(|&n| n as f64).sum::<f64>() * spec.batch as f64;
    8.0 * (2.0 * largest_w + 4.0 * rows)
}

/// The CPU block reference holds every layer's weights (fan-in times
/// outputs, channels for convolutions) and, per layer, its B rows of h, its
/// output and the branch's (the backward pass's saved state).
fn arch_cpu_bytes(arch: &crate::model::arch::Architecture, batch: usize) -> f64 {
    let layers = arch.blocks.iter().flat_map(|b| b.layers());
    let (mut weights, mut rows) = (0.0, 0.0);
    for l in layers {
        weights += match &l.kind {
            crate::model::arch::LayerKind::Attention(a) => a
                .matrices(l.input.channels())
                .iter()
                .map(|m| (m.rows * m.cols) as f64)
                .sum(),
            _ => l.fans().0 as f64 * l.output.channels() as f64,
        };
        rows += 3.0 * (l.output.units() * batch) as f64;
    }
    8.0 * (weights + rows)
}

/// Refuses a job whose host memory (an estimate, `bytes`) would not fit:
/// more than half of what the machine has available.
pub fn fits_host_memory(flag: &str, what: &str, bytes: f64) -> Result<()> {
    let available = available_memory().unwrap_or(8.0 * GIB);
    if bytes > available / 2.0 {
        return Err(Error::invalid(
            flag,
            format!(
                "{what} would hold about {:.1} GiB of host memory, over half of the {:.1} GiB \
                 available; use a smaller size",
                bytes / GIB,
                available / GIB
            ),
        ));
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo (Linux), in bytes.
fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}
