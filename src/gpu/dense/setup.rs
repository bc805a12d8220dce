//! Building the dense engine: pipelines, buffers and the bind group
//! (DenseGpu::build), the adapter's limits, and the binding windows the gram
//! engine shares (check_arena_bindings, widest_spacing_within,
//! engine_bind_group_ranges).

use super::*;
use crate::gpu::buffers::DeviceBuffers;
use crate::gpu::orthogonal::HouseholderKernels;

impl<'a> DenseGpu<'a> {
    pub(super) fn build(
        ctx: &'a GpuContext,
        spec: &'a RunSpec,
        chunk: usize,
        every: usize,
        kernels: Kernels,
        timed: bool,
    ) -> Result<Self> {
        kernels.product.validate(ctx)?;
        kernels.reduction.validate(ctx)?;
        let kernel = kernels.product;
        let net = &spec.net;
        // buffers are sized for `chunk` layers even when the run is shorter,
        // so that a forward run's memory does not depend on its depth
        let chunk = chunk.max(1);
        let layout = Layout::new(spec, chunk, every.clamp(1, net.depth()));
        let max_weights = net
            .widths
            .windows(2)
            .map(|w| stride(w[0]) * w[1])
            .max()
            .unwrap();
        check_limits(ctx, spec, max_weights, &layout)?;

        let (bind_layout, pipeline_layout) = ctx.layouts("engine", engine_bind_group_layout);
        let p = |module, entry| ctx.pipeline(module, entry, &net.act, Some(&pipeline_layout));
        let stats = Module::Stats {
            subgroup_sum: kernels.reduction.subgroup,
        };
        let reduce = [("REDUCE_WG", kernels.reduction.workgroup as f64)];
        let s = |entry| {
            let layout = Some(&pipeline_layout);
            ctx.specialised_pipeline(stats, entry, &net.act, layout, &reduce)
        };
        let product = |transposed, from_rng, gram: bool| {
            let mut constants = kernel.constants(transposed, from_rng);
            constants.push(("GRAM", gram as u32 as f64));
            let layout = Some(&pipeline_layout);
            ctx.specialised_pipeline(Module::Product, "product", &net.act, layout, &constants)
        };
        let rng = kernel.weights_from_rng;
        let pipelines = Pipelines {
            gen_weights: p(Module::Generate, "gen_weights")?,
            gen_input: p(Module::Generate, "gen_input")?,
            gen_normal_rows: p(Module::Generate, "gen_normal_rows")?,
            product: product(false, false, false)?,
            product_t: product(true, false, false)?,
            product_rng: if rng {
                Some(product(false, true, false)?)
            } else {
                None
            },
            product_t_rng: if rng {
                Some(product(true, true, false)?)
            } else {
                None
            },
            gram: product(false, false, true)?,
            stats: s("stats")?,
            activate: s("activate")?,
            scale_by_deriv: s("scale_by_deriv")?,
            finalize: s("finalize")?,
            householder: HouseholderKernels::new(ctx, &pipeline_layout)?,
        };

        let mut made = DeviceBuffers::new(&ctx.device);
        let mut buffer = |label: &str, floats: usize, usage: wgpu::BufferUsages| {
            made.make(label, floats * 4, usage)
        };
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let weights = buffer("weights", max_weights, storage);
        let bias = buffer("bias", layout.row, storage);
        let act = buffer("act", layout.act_len, storage);
        let store = buffer("store", layout.store_len, storage);
        let records = buffer("records", layout.records_len, storage);
        let scales = buffer("scales", layout.scales_len(), storage);
        // the orthogonal workspace: A and Q (m x n each), beta and alpha
        let orthogonal = (1..=net.depth())
            .any(|l| net.weight_law(l).dist == crate::model::init::Dist::Orthogonal);
        let work_len = if orthogonal {
            net.widths
                .windows(2)
                .map(|w| 2 * w[0] * w[1] + 2 * w[0].min(w[1]))
                .max()
                .unwrap()
        } else {
            0
        };
        let work = buffer("orthogonal workspace", work_len, storage);
        // a job reads back its records and two factors r per layer
        let readback = layout.records_len + 2 * (chunk.max(layout.every) + 1);
        let submitter = Submitter::new(ctx, readback.next_multiple_of(2), timed);
        let device_bytes = made.bytes + submitter.device_bytes;
        let bind_group = engine_bind_group(
            ctx,
            "engine",
            &bind_layout,
            &submitter,
            [&weights, &bias, &act, &store, &records, &scales, &work],
        );
        Ok(DenseGpu {
            ctx,
            spec,
            layout,
            pipelines,
            bind_group,
            submitter,
            weights,
            records,
            scales,
            chunk,
            kernel,
            gpu_seconds: std::cell::Cell::new(None),
            device_bytes,
        })
    }
}

/// Sizes beyond the adapter's limits are bad input, caught before any work.
pub(super) fn check_limits(
    ctx: &GpuContext,
    spec: &RunSpec,
    max_weights: usize,
    layout: &Layout,
) -> Result<()> {
    let limit = ctx.max_binding_bytes();
    let flag = if spec.net.widths.windows(2).all(|w| w[0] == w[1]) {
        "width"
    } else {
        "widths"
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let weight_bytes = max_weights as u64 * 4;
    if weight_bytes > limit {
        return Err(Error::invalid(
            flag,
            format!(
                "a weight matrix of {max_weights} entries needs {:.2} GiB, over the {:.2} GiB this adapter ({}) can bind; accepted: n_in * n_out <= {}",
                gib(weight_bytes),
                gib(limit),
                ctx.adapter.name,
                limit / 4
            ),
        ));
    }
    check_arena_bindings(
        ctx,
        spec,
        "the",
        layout.row,
        [
            ("activation rows", layout.act_len),
            ("checkpoints", layout.store_len),
            ("records", layout.records_len),
        ],
    )?;
    let max_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if spec.batch / 2 > max_dispatch || 2 * spec.batch > max_dispatch {
        return Err(Error::invalid(
            "batch",
            format!("at most {} (one dispatch)", max_dispatch / 2),
        ));
    }
    Ok(())
}

/// Each arena (`(what, f32 count)`) must fit one binding of this adapter
/// and be indexable by u32; else an error naming the batch, or the
/// checkpoint interval for the checkpoints (`whose`: "the" or
/// "the gram engine's").
pub(crate) fn check_arena_bindings(
    ctx: &GpuContext,
    spec: &RunSpec,
    whose: &str,
    row: usize,
    arenas: [(&str, usize); 3],
) -> Result<()> {
    let limit = ctx.max_binding_bytes();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    for (what, floats) in arenas {
        let bytes = floats as u64 * 4;
        if bytes > limit || floats > u32::MAX as usize {
            // more checkpoints than fit: the interval is what to change
            let (field, or_else) = if what == "checkpoints" {
                ("checkpoint_every", ", or a longer checkpoint interval")
            } else {
                ("batch", "")
            };
            return Err(Error::invalid(
                field,
                format!(
                    "{whose} {what} of batch {} at width {row} need {:.2} GiB, over the {:.2} GiB this adapter can bind; use a smaller batch or width{or_else}",
                    spec.batch,
                    gib(bytes),
                    gib(limit),
                ),
            ));
        }
    }
    Ok(())
}

/// The bind group of `engine_bind_group_layout`: the parameters' dynamic
/// window in `submitter`, then bindings 1..=7 whole.
pub(crate) fn engine_bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    submitter: &Submitter,
    buffers: [&wgpu::Buffer; 7],
) -> wgpu::BindGroup {
    let whole = buffers.map(|b| b.as_entire_buffer_binding());
    engine_bind_group_ranges(ctx, label, layout, submitter, whole)
}

/// `engine_bind_group` with a range of each buffer (bindings 1 to 7).
pub(crate) fn engine_bind_group_ranges(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    submitter: &Submitter,
    buffers: [wgpu::BufferBinding; 7],
) -> wgpu::BindGroup {
    let mut entries = vec![submitter.params_entry()];
    entries.extend(
        buffers
            .into_iter()
            .zip(1..)
            .map(|(buf, binding)| wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(buf),
            }),
    );
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}
