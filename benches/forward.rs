//! End-to-end forward throughput of the dense GPU engine (statistics
//! included): layers/s and GFLOP/s counting 2 B n^2 per layer.
//! `cargo bench --bench forward`; sizes stay small enough for lavapipe.

use std::time::Instant;

use varprop::engine::{GpuOptions, run_gpu};
use varprop::init::InitFlags;
use varprop::spec::{NetworkFlags, RunSpec};

fn main() -> anyhow::Result<()> {
    let ctx = varprop::gpu::GpuContext::new(None)?;
    println!(
        "adapter: {} ({}, {})",
        ctx.adapter.name, ctx.adapter.backend, ctx.adapter.device_type
    );
    println!(
        "{:>6} {:>6} {:>6} {:>12} {:>10}",
        "batch", "width", "depth", "layers/s", "GFLOP/s"
    );
    for (batch, width, depth) in [(16, 256, 200), (64, 512, 100), (256, 1024, 50)] {
        let net = NetworkFlags {
            width: Some(width),
            depth: Some(depth),
            act: Some("tanh".into()),
            init: InitFlags {
                init: Some("xavier-normal".into()),
                ..Default::default()
            },
            q0: 1.0,
            c0: 0.5,
            ..Default::default()
        }
        .resolve()?;
        let spec = RunSpec::new(net, batch, 1, 0);
        run_gpu(
            &ctx,
            &spec,
            GpuOptions {
                chunk: 128,
                ..Default::default()
            },
            &mut |_, _| {},
        )?; // warm-up: pipelines, buffers
        let start = Instant::now();
        run_gpu(
            &ctx,
            &spec,
            GpuOptions {
                chunk: 128,
                ..Default::default()
            },
            &mut |_, _| {},
        )?;
        let secs = start.elapsed().as_secs_f64();
        let flops = 2.0 * (batch * width * width * depth) as f64;
        println!(
            "{batch:>6} {width:>6} {depth:>6} {:>12.1} {:>10.2}",
            depth as f64 / secs,
            flops / secs / 1e9
        );
    }
    Ok(())
}
