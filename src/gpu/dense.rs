//! The dense forward engine on the GPU. Per layer: generate W_l (and b_l)
//! from the Philox streams into a reused buffer, h = r W x + b, x = phi(h)
//! with the moment records, and the renormalisation factor r. Many layers are
//! encoded per submission (a chunk); the records are read back once per
//! chunk. Every buffer is allocated once per run; activations ping-pong
//! between two buffers; nothing grows with depth.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::shaders::{Module, engine_bind_group_layout};
use crate::init::WeightLaw;
use crate::spec::RunSpec;
use crate::stats::LayerSums;

/// Mirrors `struct Params` in shaders/bindings.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub n_in: u32,
    pub n_out: u32,
    pub batch: u32,
    pub layer: u32,
    pub network: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub w_dist: u32,
    pub w_scale: f32,
    pub b_scale: f32,
    pub b_dist: u32,
    pub slot: u32,
    pub flags: u32,
    pub block_stride: u32,
    pub q0: f32,
    pub c0: f32,
}

const FLAG_INPUT: u32 = 1;
const FLAG_RENORM: u32 = 2;
/// Must match shaders/stats.wgsl.
const RECORD: usize = 10;
const UNITS_PER_BLOCK: usize = 4096;
const GEN_WG: u32 = 64;
const PRODUCT_WG: u32 = 64;
/// Outputs per product invocation along units and along samples.
const PRODUCT_BLOCK: usize = 4;
const MAX_DISPATCH: u32 = 65_535;

/// Default number of layers per submission.
pub const DEFAULT_CHUNK: usize = 128;

fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Row stride of W and of the activations: n padded to a multiple of 4
/// (shaders/params.wgsl `stride`).
pub fn stride(n: usize) -> usize {
    n.next_multiple_of(4)
}

/// Workgroup counts for `invocations` folded into 2-D (shaders use flat_index).
fn dispatch_1d(invocations: usize, wg: u32) -> (u32, u32) {
    let groups = div_ceil(invocations, wg as usize).max(1) as u64;
    if groups <= MAX_DISPATCH as u64 {
        (groups as u32, 1)
    } else {
        let y = groups.div_ceil(MAX_DISPATCH as u64);
        (groups.div_ceil(y) as u32, y as u32)
    }
}

struct Pipelines {
    gen_weights: wgpu::ComputePipeline,
    gen_bias: wgpu::ComputePipeline,
    gen_input: wgpu::ComputePipeline,
    product: wgpu::ComputePipeline,
    stats: wgpu::ComputePipeline,
    finalize: wgpu::ComputePipeline,
}

/// The engine for one run: pipelines and buffers, reused for every network.
pub struct DenseGpu<'a> {
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    pipelines: Pipelines,
    bind_groups: [wgpu::BindGroup; 2],
    params: wgpu::Buffer,
    params_stride: u64,
    weights: wgpu::Buffer,
    partials: wgpu::Buffer,
    scale: wgpu::Buffer,
    staging: wgpu::Buffer,
    chunk: usize,
    block_stride: usize,
    /// Bytes of every buffer this engine allocated on the device.
    pub device_bytes: u64,
}

impl<'a> DenseGpu<'a> {
    pub fn new(ctx: &'a GpuContext, spec: &'a RunSpec, chunk: usize) -> Result<Self> {
        let net = &spec.net;
        let batch = spec.batch;
        let pairs = batch / 2;
        let chunk = chunk.clamp(1, net.depth() + 1);
        let max_width = stride(*net.widths.iter().max().unwrap());
        let max_weights = net
            .widths
            .windows(2)
            .map(|w| stride(w[0]) * w[1])
            .max()
            .unwrap();
        let block_stride = div_ceil(max_width, UNITS_PER_BLOCK);
        check_limits(ctx, spec, max_weights, max_width)?;

        let layout = engine_bind_group_layout(&ctx.device);
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("engine"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let p = |module, entry| ctx.pipeline(module, entry, &net.act, Some(&pipeline_layout));
        let pipelines = Pipelines {
            gen_weights: p(Module::Generate, "gen_weights")?,
            gen_bias: p(Module::Generate, "gen_bias")?,
            gen_input: p(Module::Generate, "gen_input")?,
            product: p(Module::Product, "product")?,
            stats: p(Module::Stats, "stats")?,
            finalize: p(Module::Stats, "finalize")?,
        };

        let mut device_bytes = 0u64;
        let mut buffer = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            let size = bytes.max(16).next_multiple_of(4);
            device_bytes += size;
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let f32s = |n: usize| (n * 4) as u64;
        let weights = buffer("weights", f32s(max_weights), storage);
        let bias = buffer("bias", f32s(max_width), storage);
        let x = [
            buffer("x0", f32s(batch * max_width), storage),
            buffer("x1", f32s(batch * max_width), storage),
        ];
        let h = buffer("h", f32s(batch * max_width), storage);
        let records_bytes = f32s(chunk * pairs * block_stride * RECORD);
        let partials = buffer("partials", records_bytes, storage);
        let scale = buffer("scale", f32s(1 + chunk), storage);
        let align = ctx.limits.min_uniform_buffer_offset_alignment as u64;
        let params_stride = (std::mem::size_of::<Params>() as u64).next_multiple_of(align);
        let params = buffer(
            "params",
            params_stride * chunk as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let staging = buffer(
            "staging",
            records_bytes + f32s(1 + chunk),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );

        // Layer l reads x[(l+1) % 2] and writes x[l % 2]: row 0 writes x[0].
        fn whole(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            }
        }
        let bind_group = |x_prev: &wgpu::Buffer, x_next: &wgpu::Buffer| {
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("engine"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &params,
                            offset: 0,
                            size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                        }),
                    },
                    whole(1, &weights),
                    whole(2, &bias),
                    whole(3, x_prev),
                    whole(4, &h),
                    whole(5, x_next),
                    whole(6, &partials),
                    whole(7, &scale),
                ],
            })
        };
        let bind_groups = [bind_group(&x[1], &x[0]), bind_group(&x[0], &x[1])];
        Ok(DenseGpu {
            ctx,
            spec,
            pipelines,
            bind_groups,
            params,
            params_stride,
            weights,
            partials,
            scale,
            staging,
            chunk,
            block_stride,
            device_bytes,
        })
    }

    fn layer_params(&self, network: usize, layer: usize, slot: usize) -> Params {
        let net = &self.spec.net;
        let seed = self.spec.seed;
        let mut flags = if net.is_homogeneous() { FLAG_RENORM } else { 0 };
        let (n_in, n_out, w, b) = if layer == 0 {
            flags |= FLAG_INPUT;
            let none = WeightLaw {
                dist: crate::init::Dist::Normal,
                variance: 0.0,
            };
            (0, net.widths[0], none, none)
        } else {
            (
                net.widths[layer - 1],
                net.widths[layer],
                net.weight_law(layer),
                net.bias_law(layer),
            )
        };
        Params {
            n_in: n_in as u32,
            n_out: n_out as u32,
            batch: self.spec.batch as u32,
            layer: layer as u32,
            network: network as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            w_dist: w.dist.code(),
            w_scale: w.scale() as f32,
            b_scale: b.scale() as f32,
            b_dist: b.dist.code(),
            slot: slot as u32,
            flags,
            block_stride: self.block_stride as u32,
            q0: net.q0 as f32,
            c0: net.c0 as f32,
        }
    }

    /// Runs network `network` through every layer and returns the sums of
    /// rows 0..=L. `on_chunk(rows_done)` is called after each readback.
    pub fn run_network(
        &self,
        network: usize,
        on_chunk: &mut dyn FnMut(usize),
    ) -> Result<Vec<LayerSums>> {
        let rows = self.spec.net.depth() + 1;
        let mut out = Vec::with_capacity(rows);
        let mut first = 0;
        while first < rows {
            let last = (first + self.chunk).min(rows);
            out.extend(self.run_chunk(network, first..last)?);
            on_chunk(last);
            first = last;
        }
        Ok(out)
    }

    fn run_chunk(&self, network: usize, layers: std::ops::Range<usize>) -> Result<Vec<LayerSums>> {
        let net = &self.spec.net;
        let pairs = self.spec.batch / 2;
        let mut params_bytes = vec![0u8; (self.params_stride as usize) * layers.len()];
        for (slot, layer) in layers.clone().enumerate() {
            let p = self.layer_params(network, layer, slot);
            let at = slot * self.params_stride as usize;
            params_bytes[at..at + std::mem::size_of::<Params>()]
                .copy_from_slice(bytemuck::bytes_of(&p));
        }
        self.ctx.queue.write_buffer(&self.params, 0, &params_bytes);

        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (slot, layer) in layers.clone().enumerate() {
                let offset = (slot as u64 * self.params_stride) as u32;
                pass.set_bind_group(0, &self.bind_groups[layer % 2], &[offset]);
                let n_out = net.widths[layer];
                if layer == 0 {
                    let (x, y) = dispatch_1d(pairs * div_ceil(n_out, 4), GEN_WG);
                    pass.set_pipeline(&self.pipelines.gen_input);
                    pass.dispatch_workgroups(x, y, 1);
                } else {
                    let n_in = net.widths[layer - 1];
                    let (x, y) = dispatch_1d(n_out * div_ceil(n_in, 4), GEN_WG);
                    pass.set_pipeline(&self.pipelines.gen_weights);
                    pass.dispatch_workgroups(x, y, 1);
                    if net.bias_law(layer).variance > 0.0 {
                        let (x, y) = dispatch_1d(div_ceil(n_out, 4), GEN_WG);
                        pass.set_pipeline(&self.pipelines.gen_bias);
                        pass.dispatch_workgroups(x, y, 1);
                    }
                    let blocks =
                        div_ceil(n_out, PRODUCT_BLOCK) * div_ceil(self.spec.batch, PRODUCT_BLOCK);
                    let (x, y) = dispatch_1d(blocks, PRODUCT_WG);
                    pass.set_pipeline(&self.pipelines.product);
                    pass.dispatch_workgroups(x, y, 1);
                }
                pass.set_pipeline(&self.pipelines.stats);
                pass.dispatch_workgroups(div_ceil(n_out, UNITS_PER_BLOCK) as u32, pairs as u32, 1);
                pass.set_pipeline(&self.pipelines.finalize);
                pass.dispatch_workgroups(1, 1, 1);
            }
        }
        let records = layers.len() * pairs * self.block_stride * RECORD;
        let records_bytes = (records * 4) as u64;
        let scale_bytes = (layers.len() * 4) as u64;
        encoder.copy_buffer_to_buffer(&self.partials, 0, &self.staging, 0, records_bytes);
        encoder.copy_buffer_to_buffer(&self.scale, 4, &self.staging, records_bytes, scale_bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let data = read_staging(self.ctx, &self.staging, records_bytes + scale_bytes)?;

        let (record_data, renorm) = data.split_at(records);
        Ok(layers
            .enumerate()
            .map(|(slot, layer)| {
                let n = net.widths[layer];
                let mut sums = LayerSums {
                    width: n,
                    batch: self.spec.batch,
                    pairs: Vec::with_capacity(pairs),
                    renorm: renorm[slot] as f64,
                    ..Default::default()
                };
                for pair in 0..pairs {
                    let mut p = [0.0; 5];
                    for block in 0..div_ceil(n, UNITS_PER_BLOCK) {
                        let base = ((slot * pairs + pair) * self.block_stride + block) * RECORD;
                        let r = &record_data[base..base + RECORD];
                        for k in 0..5 {
                            p[k] += r[k] as f64;
                        }
                        sums.sum_h += r[5] as f64;
                        sums.sum_h4 += r[6] as f64;
                        sums.sum_x += r[7] as f64;
                        sums.zeros += r[8] as f64;
                    }
                    sums.pairs.push(p);
                }
                sums
            })
            .collect())
    }
}

impl DenseGpu<'_> {
    /// Generates W_l of network `network` alone and reads it back (tests).
    pub fn generate_weights(&self, network: usize, layer: usize) -> Result<Vec<f32>> {
        let p = self.layer_params(network, layer, 0);
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        let row = stride(p.n_in as usize);
        let bytes = (row * p.n_out as usize * 4) as u64;
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("weights readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_bind_group(0, &self.bind_groups[layer % 2], &[0]);
            let (x, y) = dispatch_1d(p.n_out as usize * div_ceil(p.n_in as usize, 4), GEN_WG);
            pass.set_pipeline(&self.pipelines.gen_weights);
            pass.dispatch_workgroups(x, y, 1);
        }
        encoder.copy_buffer_to_buffer(&self.weights, 0, &staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let padded = read_staging(self.ctx, &staging, bytes)?;
        Ok(padded
            .chunks(row)
            .flat_map(|r| &r[..p.n_in as usize])
            .copied()
            .collect())
    }
}

/// Sizes beyond the adapter's limits are bad input, caught before any work.
fn check_limits(
    ctx: &GpuContext,
    spec: &RunSpec,
    max_weights: usize,
    max_width: usize,
) -> Result<()> {
    let limit = ctx.max_binding_bytes();
    let flag = if spec.net.widths.windows(2).all(|w| w[0] == w[1]) {
        "--width"
    } else {
        "--widths"
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
    let act_bytes = (spec.batch * max_width) as u64 * 4;
    if act_bytes > limit {
        return Err(Error::invalid(
            "--batch",
            format!(
                "batch {} x width {max_width} needs {:.2} GiB per activation buffer, over the adapter's {:.2} GiB; accepted: batch * width <= {}",
                spec.batch,
                gib(act_bytes),
                gib(limit),
                limit / 4
            ),
        ));
    }
    let max_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if spec.batch / 2 > max_dispatch {
        return Err(Error::invalid(
            "--batch",
            format!("at most {} (one dispatch)", 2 * max_dispatch),
        ));
    }
    Ok(())
}

/// Maps `bytes` of a staging buffer, copies them out as f32 and unmaps.
pub fn read_staging(ctx: &GpuContext, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    let slice = staging.slice(0..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| Error::Gpu("the readback was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e:?}")))?;
        bytemuck::cast_slice::<u8, f32>(&view).to_vec()
    };
    staging.unmap();
    Ok(out)
}
