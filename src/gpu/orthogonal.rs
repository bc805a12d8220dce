//! Haar-random (semi-)orthogonal matrices on the GPU for the block engine:
//! the dense engine's Householder kernels (shaders/common/orthogonal.wgsl) run on
//! a matrix of any shape, on the weight stream of any (network, layer), and
//! leave gain * Q D in an output buffer (rows of stride(n_in), zero
//! padded) that the block engine then places into its weight layout. The
//! CPU twin is `sim::cpu::orthogonal_matrix`.

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::dense::{Params, stride};
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::model::activation::Activation;
use crate::model::init::Dist;

use crate::gpu::abi::ORTHO_WG;
use crate::gpu::submit::dispatch_1d;

fn groups(invocations: usize) -> (u32, u32, u32) {
    dispatch_1d(invocations, ORTHO_WG as u32)
}

/// The kernels, their parameter buffer and workspace, for matrices up to
/// the largest shape of a run.
pub struct OrthogonalQr {
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    params_stride: usize,
    init: wgpu::ComputePipeline,
    vector: wgpu::ComputePipeline,
    apply: wgpu::ComputePipeline,
    accumulate: wgpu::ComputePipeline,
    write: wgpu::ComputePipeline,
    /// Bytes of the buffers this allocated (the output buffer is the caller's).
    pub device_bytes: u64,
}

impl OrthogonalQr {
    /// For matrices of `shapes` (n_out, n_in); `out` receives gain * Q D
    /// (at least max n_out stride(n_in) floats).
    pub fn new(ctx: &GpuContext, shapes: &[(usize, usize)], out: &wgpu::Buffer) -> Result<Self> {
        let device = &ctx.device;
        // the dense engine's layout, so that the cached pipelines fit both
        let (layout, pipeline_layout) = ctx.layouts("engine", engine_bind_group_layout);
        let p = |entry| {
            ctx.pipeline(
                Module::Orthogonal,
                entry,
                &Activation::Identity,
                Some(&pipeline_layout),
            )
        };
        let largest_n = shapes.iter().map(|&(a, b)| a.min(b)).max().unwrap_or(1);
        let work_len = shapes
            .iter()
            .map(|&(a, b)| 2 * a * b + 2 * a.min(b))
            .max()
            .unwrap_or(1);
        let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
        let params_stride = std::mem::size_of::<Params>().next_multiple_of(align);
        let mut device_bytes = 0;
        let mut buffer = |label: &str, bytes: usize, usage: wgpu::BufferUsages| {
            let size = (bytes as u64).max(16);
            device_bytes += size;
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        // one Householder step per dispatch: 3n + 1 dispatches at most
        let params = buffer(
            "orthogonal params",
            params_stride * (3 * largest_n + 2),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let work = buffer("orthogonal workspace", 4 * work_len, storage);
        // the kernels bind only W (1) and the workspace (7); the rest of the
        // dense engine's bindings get placeholders
        let unused: Vec<wgpu::Buffer> = (2..=6)
            .map(|_| buffer("orthogonal unused", 16, storage))
            .collect();
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 7,
                resource: work.as_entire_binding(),
            },
        ];
        for (i, b) in unused.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 2 + i as u32,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("orthogonal"),
            layout: &layout,
            entries: &entries,
        });
        Ok(OrthogonalQr {
            bind_group,
            params,
            params_stride,
            init: p("ortho_init")?,
            vector: p("ortho_vector")?,
            apply: p("ortho_apply")?,
            accumulate: p("ortho_accumulate")?,
            write: p("ortho_write")?,
            device_bytes,
        })
    }

    /// Submits the QR of the (n_out x n_in) Gaussian of weight layer
    /// `layer` of `network` and the write of gain * Q D into the output
    /// buffer: G[i][j] is the weight stream's entry (row i, group j / 4).
    #[allow(clippy::too_many_arguments)]
    pub fn submit(
        &self,
        ctx: &GpuContext,
        seed: u64,
        network: usize,
        layer: usize,
        n_out: usize,
        n_in: usize,
        gain: f64,
    ) {
        let (m, n) = (n_in.max(n_out), n_in.min(n_out));
        let base = Params {
            n_in: n_in as u32,
            n_out: n_out as u32,
            layer: layer as u32,
            network: network as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            w_dist: Dist::Orthogonal.code(),
            w_scale: gain as f32,
            ..Default::default()
        };
        let at = |k: usize| Params {
            step: k as u32,
            ..base
        };
        // (kernel, parameters, workgroups), as the dense engine's orthogonal_steps
        let mut steps = vec![(&self.init, base, groups(m * n))];
        for k in 0..n {
            steps.push((&self.vector, at(k), (1, 1, 1)));
            if k + 1 < n {
                steps.push((&self.apply, at(k), ((n - k - 1) as u32, 1, 1)));
            }
        }
        for k in (0..n).rev() {
            steps.push((&self.accumulate, at(k), ((n - k) as u32, 1, 1)));
        }
        steps.push((&self.write, base, groups(n_out * stride(n_in))));
        let mut bytes = vec![0u8; self.params_stride * steps.len()];
        for (i, (_, p, _)) in steps.iter().enumerate() {
            let at = i * self.params_stride;
            bytes[at..at + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(p));
        }
        ctx.queue.write_buffer(&self.params, 0, &bytes);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (i, (pipeline, _, g)) in steps.iter().enumerate() {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &self.bind_group, &[(i * self.params_stride) as u32]);
                pass.dispatch_workgroups(g.0, g.1, g.2);
            }
        }
        ctx.queue.submit([encoder.finish()]);
    }
}
