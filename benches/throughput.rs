//! `cargo bench --bench throughput` (add `-- --quick` for the small sizes):
//! the same measurements as `varprop bench`, printed as its table.
//! Figures: GFLOP/s counting 2 B n^2 per layer, against the adapter's FMA
//! peak and a naive shared-memory product measured in the same run.

use varprop::bench::{self, BenchOptions};

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let ctx = varprop::gpu::GpuContext::new(None)?;
    let report = bench::run(&ctx, BenchOptions { quick }, &mut |step| {
        eprintln!("bench: {step}")
    })?;
    print!("{}", bench::to_table(&report));
    Ok(())
}
