//! Haar-random (semi-)orthogonal matrices on the GPU: the Householder QR
//! kernels (shaders/common/orthogonal.wgsl) and the order of their steps,
//! which the dense engine's orthogonal layers and the block engine share;
//! and `OrthogonalQr`, which runs them for the block engine on a matrix of
//! any shape, on the weight stream of any (network, layer), and leaves
//! gain * Q D in an output buffer (rows of stride(n_in), zero padded) that
//! the block engine then places into its weight layout. The CPU twin is
//! `sim::cpu::orthogonal_matrix`.

use crate::error::Result;
use crate::gpu::abi::ORTHO_WG;
use crate::gpu::abi::{Params, stride};
use crate::gpu::buffers::DeviceBuffers;
use crate::gpu::context::GpuContext;
use crate::gpu::pipelines::{Module, engine_bind_group_layout};
use crate::gpu::submit::{Step, Submitter, dispatch_1d};
use crate::model::activation::Activation;
use crate::model::init::Dist;

fn groups(invocations: usize) -> (u32, u32, u32) {
    dispatch_1d(invocations, ORTHO_WG as u32)
}

/// The Householder QR kernels (shaders/common/orthogonal.wgsl) and the
/// order of their steps: the dense engine's orthogonal layers and
/// `OrthogonalQr` run the same sequence.
pub struct HouseholderKernels {
    init: wgpu::ComputePipeline,
    vector: wgpu::ComputePipeline,
    apply: wgpu::ComputePipeline,
    accumulate: wgpu::ComputePipeline,
    write: wgpu::ComputePipeline,
}

impl HouseholderKernels {
    /// The kernels for the engine bind group layout's `pipeline_layout`.
    pub fn new(ctx: &GpuContext, pipeline_layout: &wgpu::PipelineLayout) -> Result<Self> {
        let p = |entry| {
            ctx.pipeline(
                Module::Orthogonal,
                entry,
                &Activation::Identity,
                Some(pipeline_layout),
            )
        };
        Ok(HouseholderKernels {
            init: p("ortho_init")?,
            vector: p("ortho_vector")?,
            apply: p("ortho_apply")?,
            accumulate: p("ortho_accumulate")?,
            write: p("ortho_write")?,
        })
    }

    /// The steps that leave w_scale * Q D of the (n_out x n_in) Gaussian of
    /// `p`'s weight layer in `weights` (rows of stride(n_in)): A and Q = [I;
    /// 0] from the weight stream, one Householder vector per column with
    /// its application to the columns right of it, Q accumulated from the
    /// last reflection to the first, then the write. 3n + 1 dispatches,
    /// n = min(n_in, n_out).
    pub fn steps<'p>(&'p self, p: Params, steps: &mut Vec<Step<'p>>) {
        let (n_in, n_out) = (p.n_in as usize, p.n_out as usize);
        let (m, n) = (n_in.max(n_out), n_in.min(n_out));
        let mut push = |pipeline, step: usize, groups| {
            let params = Params {
                step: step as u32,
                ..p
            };
            steps.push(Step {
                pipeline,
                params,
                groups,
            });
        };
        push(&self.init, 0, groups(m * n));
        for k in 0..n {
            push(&self.vector, k, (1, 1, 1));
            if k + 1 < n {
                push(&self.apply, k, ((n - k - 1) as u32, 1, 1));
            }
        }
        for k in (0..n).rev() {
            push(&self.accumulate, k, ((n - k) as u32, 1, 1));
        }
        push(&self.write, 0, groups(n_out * stride(n_in)));
    }
}

/// The kernels, their parameter buffer and workspace, for matrices up to
/// the largest shape of a run.
pub struct OrthogonalQr {
    bind_group: wgpu::BindGroup,
    submitter: Submitter,
    kernels: HouseholderKernels,
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
        let largest_n = shapes.iter().map(|&(a, b)| a.min(b)).max().unwrap_or(1);
        let work_len = shapes
            .iter()
            .map(|&(a, b)| 2 * a * b + 2 * a.min(b))
            .max()
            .unwrap_or(1);
        // one Householder step per dispatch, one pass per matrix; nothing
        // is read back
        let submitter = Submitter::with_capacity(ctx, 3 * largest_n + 2, 0, 0, false);
        let mut buffers = DeviceBuffers::new(device);
        let storage = wgpu::BufferUsages::STORAGE;
        let work = buffers.make("orthogonal workspace", 4 * work_len, storage);
        // the kernels bind only W (1) and the workspace (7); the rest of the
        // dense engine's bindings get placeholders
        let unused: Vec<wgpu::Buffer> = (2..=6)
            .map(|_| buffers.make("orthogonal unused", 16, storage))
            .collect();
        let mut entries = vec![
            submitter.params_entry(),
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
        let device_bytes = submitter.device_bytes + buffers.bytes;
        Ok(OrthogonalQr {
            bind_group,
            submitter,
            kernels: HouseholderKernels::new(ctx, &pipeline_layout)?,
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
    ) -> Result<()> {
        let p = Params {
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
        let mut steps = Vec::new();
        self.kernels.steps(p, &mut steps);
        let mut scratch = Vec::new();
        self.submitter
            .submit(ctx, &self.bind_group, &steps, &[], 0, &mut scratch)?;
        Ok(())
    }
}
