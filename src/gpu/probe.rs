//! Probes: run the shared WGSL (Philox, draws, activations) and the engine's
//! weight generator on given inputs and read the results back, so tests can
//! hold them against their Rust twins.

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::dense::read_staging;
use crate::gpu::pipelines::Module;
use crate::model::activation::Activation;
use crate::model::init::Dist;
use crate::spec::{NetworkSpec, RunSpec};

fn run_probe(
    ctx: &GpuContext,
    entry: &str,
    act: &Activation,
    input: &[u32],
    out_words: usize,
    invocations: usize,
) -> Result<Vec<u32>> {
    let pipeline = ctx.pipeline(Module::Probe, entry, act, None)?;
    let device = &ctx.device;
    let make = |size: usize, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(entry),
            size: (size.max(4) * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let input_buf = make(
        input.len(),
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    );
    ctx.queue
        .write_buffer(&input_buf, 0, bytemuck::cast_slice(input));
    let out = make(
        out_words,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let staging = make(
        out_words,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(entry),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: input_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(invocations.div_ceil(64) as u32, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, (out_words * 4) as u64);
    ctx.queue.submit([encoder.finish()]);
    let words = read_staging(ctx, &staging, (out_words * 4) as u64)?;
    Ok(words.iter().map(|f| f.to_bits()).collect())
}

/// Philox4x32-10 on the GPU for each (counter, key).
pub fn philox(ctx: &GpuContext, cases: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>> {
    let input: Vec<u32> = cases
        .iter()
        .flat_map(|(c, k)| c.iter().chain(k.iter()).copied())
        .collect();
    let out = run_probe(
        ctx,
        "probe_philox",
        &Activation::Identity,
        &input,
        4 * cases.len(),
        cases.len(),
    )?;
    Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
}

/// The WGSL standard4 draws of `dist` for each counter under `key`.
pub fn draws(
    ctx: &GpuContext,
    dist: Dist,
    key: [u32; 2],
    counters: &[[u32; 4]],
) -> Result<Vec<[f32; 4]>> {
    let mut input = vec![key[0], key[1]];
    for c in counters {
        input.push(dist.code());
        input.push((dist.truncation_mass() as f32).to_bits());
        input.extend_from_slice(c);
    }
    let out = run_probe(
        ctx,
        "probe_draws",
        &Activation::Identity,
        &input,
        4 * counters.len(),
        counters.len(),
    )?;
    Ok(out
        .chunks(4)
        .map(|c| {
            [
                f32::from_bits(c[0]),
                f32::from_bits(c[1]),
                f32::from_bits(c[2]),
                f32::from_bits(c[3]),
            ]
        })
        .collect())
}

/// (phi(z), phi'(z)) computed by the WGSL activation, for each z.
pub fn activation(ctx: &GpuContext, act: &Activation, z: &[f32]) -> Result<Vec<(f32, f32)>> {
    let input: Vec<u32> = z.iter().map(|v| v.to_bits()).collect();
    let out = run_probe(ctx, "probe_activation", act, &input, 2 * z.len(), z.len())?;
    Ok(out
        .chunks(2)
        .map(|c| (f32::from_bits(c[0]), f32::from_bits(c[1])))
        .collect())
}

/// W_l of network `network`, as the engine's gen_weights kernel writes it
/// (row-major, n_out x n_in), read back.
pub fn weights(
    ctx: &GpuContext,
    net: &NetworkSpec,
    seed: u64,
    network: usize,
    layer: usize,
) -> Result<Vec<f32>> {
    if layer == 0 || layer > net.depth() {
        return Err(Error::invalid(
            "layer",
            format!("must lie in 1..={}", net.depth()),
        ));
    }
    // The engine's own pipeline and parameters for this network.
    let spec = RunSpec::new(net.clone(), 2, 1, seed);
    crate::gpu::dense::DenseGpu::new(ctx, &spec, 1, 1)?.generate_weights(network, layer)
}
