//! The benchmark's in-run baselines: the arithmetic ceiling (independent
//! FMA chains) and the textbook 16 x 16 shared-memory product, each in its
//! own shader, timed pass by pass.

use std::time::Instant;

use super::{median, product_flops};
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::dense::stride;
use crate::gpu::pipelines::Module;
use crate::model::activation::Activation;

/// One compute pass of `dispatch` on `ctx`, timed on the GPU where it can
/// be; returns seconds.
struct PassTimer<'c> {
    ctx: &'c GpuContext,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
}

impl<'c> PassTimer<'c> {
    fn new(ctx: &'c GpuContext) -> Self {
        let queries = ctx
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| {
                let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("bench"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                });
                let buffer = |usage| {
                    ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("bench timestamps"),
                        size: 16,
                        usage,
                        mapped_at_creation: false,
                    })
                };
                let resolved =
                    buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
                let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
                (set, resolved, staging)
            });
        PassTimer { ctx, queries }
    }

    fn time(&self, dispatch: &dyn Fn(&mut wgpu::ComputePass)) -> Result<f64> {
        let ctx = self.ctx;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let timestamp_writes =
                self.queries
                    .as_ref()
                    .map(|(set, _, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bench"),
                timestamp_writes,
            });
            dispatch(&mut pass);
        }
        if let Some((set, resolved, staging)) = &self.queries {
            encoder.resolve_query_set(set, 0..2, resolved, 0);
            encoder.copy_buffer_to_buffer(resolved, 0, staging, 0, 16);
        }
        let start = Instant::now();
        ctx.queue.submit([encoder.finish()]);
        ctx.wait()?;
        let wall = start.elapsed().as_secs_f64();
        let Some((_, _, staging)) = &self.queries else {
            return Ok(wall);
        };
        let words = crate::gpu::dense::read_staging(ctx, staging, 16)?;
        let ticks: &[u64] = bytemuck::cast_slice(&words);
        let ns = ticks[1].saturating_sub(ticks[0]) as f64 * ctx.queue.get_timestamp_period() as f64;
        Ok(ns * 1e-9)
    }
}

/// Independent FMA chains, no memory traffic: GFLOP/s. The iteration count
/// doubles until a dispatch lasts 50 ms, so that launch costs vanish.
pub fn fma_peak(ctx: &GpuContext, trials: usize) -> Result<f64> {
    const FLOPS_PER_ITERATION: f64 = 2.0 * 12.0 * 4.0;
    let pipeline = ctx.pipeline(Module::FmaPeak, "fma_peak", &Activation::Identity, None)?;
    // enough invocations for every core or SM several times over
    let invocations = 64 * 1024;
    let out = storage(ctx, 256 * 4);
    let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("fma params"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("fma"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let timer = PassTimer::new(ctx);
    let run = |iterations: u32| {
        ctx.queue
            .write_buffer(&params, 0, bytemuck::cast_slice(&[iterations, 0, 0, 0]));
        timer.time(&|pass| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups((invocations / 64) as u32, 1, 1);
        })
    };
    let mut iterations = 16u32;
    while run(iterations)? < 0.05 && iterations < 1 << 24 {
        iterations *= 2;
    }
    let times = (0..trials)
        .map(|_| run(iterations))
        .collect::<Result<Vec<_>>>()?;
    let flops = FLOPS_PER_ITERATION * iterations as f64 * invocations as f64;
    Ok(flops / median(times) / 1e9)
}

fn storage(ctx: &GpuContext, bytes: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench"),
        size: bytes.max(16) as u64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

/// The textbook 16 x 16 shared-memory product at (B, n): GFLOP/s.
pub fn naive_product(ctx: &GpuContext, batch: usize, width: usize, trials: usize) -> Result<f64> {
    let pipeline = ctx.pipeline(
        Module::NaiveProduct,
        "naive_product",
        &Activation::Identity,
        None,
    )?;
    let row = stride(width);
    let w = storage(ctx, 4 * width * row);
    let x = storage(ctx, 4 * batch * row);
    let h = storage(ctx, 4 * batch * row);
    let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("naive params"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let sizes = [width as u32, width as u32, batch as u32, 0];
    ctx.queue
        .write_buffer(&params, 0, bytemuck::cast_slice(&sizes));
    let entries: Vec<wgpu::BindGroupEntry> = [&params, &w, &x, &h]
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("naive"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let timer = PassTimer::new(ctx);
    let run = || {
        timer.time(&|pass| {
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(width.div_ceil(16) as u32, batch.div_ceil(16) as u32, 1);
        })
    };
    run()?; // warm-up
    let times = (0..trials).map(|_| run()).collect::<Result<Vec<_>>>()?;
    Ok(product_flops(batch, width) / median(times) / 1e9)
}
