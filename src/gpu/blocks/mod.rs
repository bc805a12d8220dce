//! The block engine on the GPU: architecture files (dense, convolution and
//! transposed-convolution layers, residual and highway blocks) and the
//! mean-preserving shift, forward, with tangents and backward. It computes
//! what `sim::cpu_blocks` computes, step for step and on the same Philox
//! counters, with the plain kernels of shaders/blocks.wgsl (one invocation
//! per output value; performance is the dense engine's business).
//!
//! Per network: the forward pass walks the blocks, drawing each weight
//! layer's W and b into one of two slots of the `weights` buffer (iid laws
//! in place; orthogonal and delta-orthogonal tensors from the dense
//! engine's Householder QR, `gpu::orthogonal`), recording the pair moments of each
//! row and, for homogeneous stacks, renormalising on the device; with
//! --jacobian the tangents ride along, each block's step taken while its
//! saved state is at hand. The backward rows (with the vector-Jacobian rows
//! beside them) then run down segment by segment. Records and scales of all
//! rows stay on the device (O(L) floats) and are read back once per
//! network.
//!
//! Memory, as the dense engine: forward-only runs keep two rows of x and
//! two of h (O(B n)). With the backward pass, the forward pass keeps x at a
//! checkpoint every k blocks (k = ceil(sqrt(L)) by default); each segment
//! of k blocks is recomputed from its checkpoint (same kernels, same draws,
//! the forward pass's renormalisation factors: bit for bit the same rows)
//! and walked down: O(sqrt(L) B n).

use crate::model::activation::Activation;
use crate::model::arch::{Layer, LayerKind, Padding};
use crate::sim::plan::Program;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::orthogonal::OrthogonalQr;
use crate::gpu::pipelines::Module;
use crate::model::init::Dist;
use crate::spec::RunSpec;
use crate::sim::stats::{LayerSums, NetworkSums, PositionSums, RowSums};

mod layout;
mod passes;

pub use layout::checkpoint_interval;
use layout::{
    Layout, dims, groups_1d, orthogonal_shape, out_channels, tensor_shape, unit_blocks, weight_slot,
};

pub use crate::gpu::abi::BlockParams;
use crate::gpu::abi::{
    BLOCKS_WG as WG, FLAG_BIAS, FLAG_NO_DERIV, FLAG_RENORM, FLAG_ROW_RECORDS, FLAG_ZEROS,
    KIND_CONV, KIND_CONV_TRANSPOSE, KIND_DENSE, NO_SCALE, PAD_CIRCULAR, PAD_ZERO, RECORD,
    STREAM_DELTA, STREAM_TANGENT, UNITS_PER_BLOCK,
};
/// Dispatches per submission at most (the parameter buffer's slots).
const MAX_STEPS: usize = 1024;

/// One dispatch: kernel, parameters, workgroups.
struct Step {
    pipeline: wgpu::ComputePipeline,
    params: BlockParams,
    groups: (u32, u32, u32),
}

/// The block engine for one run: buffers and pipelines, reused for every
/// network.
pub struct BlocksGpu<'a> {
    ctx: &'a GpuContext,
    spec: &'a RunSpec,
    program: Program<'a>,
    layout: Layout,
    pipeline_layout: wgpu::PipelineLayout,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    params_stride: usize,
    records: wgpu::Buffer,
    scales: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// floats of one weight slot: the largest tensor, then the largest bias
    slot_len: usize,
    max_tensor: usize,
    /// the first weight layer number (1-based) of each block
    first_layer: Vec<usize>,
    /// weight layers in all
    layers: usize,
    /// the QR for orthogonal and delta-orthogonal layers, when there are any
    orthogonal: Option<OrthogonalQr>,
    /// Bytes of every buffer this engine allocated on the device.
    pub device_bytes: u64,
}

/// The dispatches queued for the next submission.
struct Pending {
    steps: Vec<Step>,
}

impl<'a> BlocksGpu<'a> {
    /// `every`: the checkpoint interval of the backward pass (see
    /// `checkpoint_interval`).
    pub fn new(ctx: &'a GpuContext, spec: &'a RunSpec, every: usize) -> Result<Self> {
        let run = spec
            .arch
            .as_ref()
            .expect("the block engine runs architecture runs");
        let arch = &run.arch;
        let program = Program::new(arch, spec.net.q0, spec.net.c0, run.mean_preserving);
        let layout = Layout::new(spec, arch, every);
        let (max_tensor, slot_len) = weight_slot(arch);
        let layers = arch.blocks.iter().map(|b| b.layers().len()).sum();
        // the shapes (n_out, n_in) of the orthogonal matrices the QR makes
        let orthogonal_shapes: Vec<(usize, usize)> = arch
            .blocks
            .iter()
            .flat_map(|b| b.layers())
            .enumerate()
            .filter(|(i, l)| l.weight_law(i + 1).dist == Dist::Orthogonal)
            .map(|(_, l)| orthogonal_shape(l))
            .collect();
        let limit = ctx.max_binding_bytes();
        let gib = |floats: usize| floats as f64 * 4.0 / (1u64 << 30) as f64;
        for (what, floats) in [
            ("the weight slots", 2 * slot_len),
            ("the activation rows", layout.arena_len),
            ("the records", layout.records_len),
        ] {
            if floats as u64 * 4 > limit || floats > u32::MAX as usize {
                let kept = if spec.probes.needs_backward() {
                    format!(
                        " (with checkpoints every {} blocks: --checkpoint-every sets it)",
                        layout.every
                    )
                } else {
                    String::new()
                };
                return Err(Error::invalid(
                    "--arch",
                    format!(
                        "{what} need {:.2} GiB, over the {:.2} GiB this adapter ({}) can bind{kept}; use a smaller --batch, fewer or smaller blocks, or --device cpu",
                        gib(floats),
                        limit as f64 / (1u64 << 30) as f64,
                        ctx.adapter.name
                    ),
                ));
            }
        }
        // the moment kernels run one workgroup row per pair or row
        let max_rows = ctx.limits.max_compute_workgroups_per_dimension as usize;
        if layout.back_rows.max(spec.batch) > max_rows {
            return Err(Error::invalid(
                "--batch",
                format!(
                    "the block engine handles up to {max_rows} rows at once (the batch, twice it with --jacobian); got {}",
                    layout.back_rows.max(spec.batch)
                ),
            ));
        }
        let mut first_layer = Vec::with_capacity(arch.depth());
        let mut number = 1;
        for b in &arch.blocks {
            first_layer.push(number);
            number += b.layers().len();
        }

        let device = &ctx.device;
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let params_size = std::mem::size_of::<BlockParams>() as u64;
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(params_size),
            },
            count: None,
        }];
        entries.extend((1..=5).map(storage));
        let (bind_layout, pipeline_layout) = ctx.layouts("blocks", |device| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("blocks"),
                entries: &entries,
            })
        });
        let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
        let params_stride = (params_size as usize).next_multiple_of(align);
        let mut device_bytes = 0u64;
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
        let storage_usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let params = buffer(
            "block params",
            params_stride * MAX_STEPS,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let weights = buffer("block weights", 4 * 2 * slot_len, storage_usage);
        let arena = buffer("block arena", 4 * layout.arena_len, storage_usage);
        let records = buffer("block records", 4 * layout.records_len, storage_usage);
        let scales = buffer("block scales", 4 * layout.scales_len(), storage_usage);
        let q_out_len = orthogonal_shapes
            .iter()
            .map(|&(n_out, n_in)| n_out * n_in.next_multiple_of(4))
            .max()
            .unwrap_or(0);
        let q_out = buffer("block orthogonal Q", 4 * q_out_len, storage_usage);
        let staging = buffer(
            "block staging",
            4 * (layout.records_len + layout.scales_len()),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        fn whole(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            }
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("blocks"),
            layout: &bind_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params,
                        offset: 0,
                        size: wgpu::BufferSize::new(params_size),
                    }),
                },
                whole(1, &weights),
                whole(2, &arena),
                whole(3, &records),
                whole(4, &scales),
                whole(5, &q_out),
            ],
        });
        let orthogonal = if orthogonal_shapes.is_empty() {
            None
        } else {
            let qr = OrthogonalQr::new(ctx, &orthogonal_shapes, &q_out)?;
            device_bytes += qr.device_bytes;
            Some(qr)
        };
        Ok(BlocksGpu {
            ctx,
            spec,
            program,
            layout,
            pipeline_layout,
            bind_group,
            params,
            params_stride,
            records,
            scales,
            staging,
            slot_len,
            max_tensor,
            first_layer,
            layers,
            orthogonal,
            device_bytes,
        })
    }

    /// The checkpoint interval in use.
    pub fn checkpoint_every(&self) -> usize {
        self.layout.every
    }

    fn arch(&self) -> &crate::model::arch::Architecture {
        self.program.arch
    }

    /// The pipeline of `entry`, specialised for `act` (cached in the context).
    fn pipeline(&self, entry: &str, act: &Activation) -> Result<wgpu::ComputePipeline> {
        self.ctx
            .pipeline(Module::Blocks, entry, act, Some(&self.pipeline_layout))
    }

    /// A kernel that does not use the activation.
    fn plain(&self, entry: &str) -> Result<wgpu::ComputePipeline> {
        self.pipeline(entry, &Activation::Identity)
    }

    fn base(&self, network: usize) -> BlockParams {
        let seed = self.spec.seed;
        BlockParams {
            batch: self.spec.batch as u32,
            rows: self.spec.batch as u32,
            block_stride: self.layout.block_stride as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            network: network as u32,
            scale_a: NO_SCALE,
            scale_b: NO_SCALE,
            q0: self.spec.net.q0 as f32,
            c0: self.spec.net.c0 as f32,
            ..Default::default()
        }
    }

    fn slot_offsets(&self, slot: usize) -> (u32, u32) {
        let w = slot * self.slot_len;
        (w as u32, (w + self.max_tensor) as u32)
    }

    /// The parameters of `layer` (in weight slot `slot`) for linear and linear_t.
    fn layer_params(&self, mut p: BlockParams, layer: &Layer, slot: usize) -> BlockParams {
        let (c_in, h_in, w_in) = dims(layer.input);
        let (c_out, h_out, w_out) = dims(layer.output);
        (p.c_in, p.h_in, p.w_in) = (c_in as u32, h_in as u32, w_in as u32);
        (p.c_out, p.h_out, p.w_out) = (c_out as u32, h_out as u32, w_out as u32);
        (p.w_off, p.b_off) = self.slot_offsets(slot);
        match &layer.kind {
            LayerKind::Dense { .. } => p.kind = KIND_DENSE,
            LayerKind::Conv {
                kernel, padding, ..
            } => {
                p.kind = KIND_CONV;
                p.kernel = *kernel as u32;
                p.stride = 1;
                p.padding = match padding {
                    Padding::Circular => PAD_CIRCULAR,
                    Padding::Zero => PAD_ZERO,
                };
            }
            LayerKind::ConvTranspose { kernel, stride, .. } => {
                p.kind = KIND_CONV_TRANSPOSE;
                p.kernel = *kernel as u32;
                p.stride = *stride as u32;
            }
        }
        p
    }

    fn push(
        &self,
        q: &mut Pending,
        pipeline: wgpu::ComputePipeline,
        params: BlockParams,
        groups: (u32, u32, u32),
    ) -> Result<()> {
        q.steps.push(Step {
            pipeline,
            params,
            groups,
        });
        if q.steps.len() == MAX_STEPS {
            self.flush(q)?;
        }
        Ok(())
    }

    /// Submits the queued dispatches (in order, one compute pass).
    fn flush(&self, q: &mut Pending) -> Result<()> {
        if q.steps.is_empty() {
            return Ok(());
        }
        let mut bytes = vec![0u8; self.params_stride * q.steps.len()];
        for (i, s) in q.steps.iter().enumerate() {
            let at = i * self.params_stride;
            bytes[at..at + std::mem::size_of::<BlockParams>()]
                .copy_from_slice(bytemuck::bytes_of(&s.params));
        }
        self.ctx.queue.write_buffer(&self.params, 0, &bytes);
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (i, s) in q.steps.iter().enumerate() {
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &self.bind_group, &[(i * self.params_stride) as u32]);
                pass.dispatch_workgroups(s.groups.0, s.groups.1, s.groups.2);
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        q.steps.clear();
        Ok(())
    }

    /// W and b of weight layer `number` into weight slot `slot`, on the
    /// Philox counters the CPU reference draws: iid laws drawn in place,
    /// orthogonal ones from the Householder QR of the Gaussian drawn the
    /// same way (submitted after the queued work that still reads the
    /// slot), then placed into the layer's layout.
    fn weights(
        &self,
        q: &mut Pending,
        network: usize,
        number: usize,
        layer: &Layer,
        slot: usize,
    ) -> Result<()> {
        let law = layer.weight_law(number);
        let (w_off, b_off) = self.slot_offsets(slot);
        let (rows, per_row) = tensor_shape(layer);
        let mut p = self.base(network);
        p.layer = number as u32;
        p.rows = rows as u32;
        p.per_row = per_row as u32;
        p.w_off = w_off;
        if law.dist == Dist::Orthogonal {
            let (n_out, n_in) = orthogonal_shape(layer);
            let gain = (law.variance * n_out.max(n_in) as f64).sqrt();
            self.flush(q)?;
            let qr = self
                .orthogonal
                .as_ref()
                .expect("made for orthogonal layers");
            qr.submit(self.ctx, self.spec.seed, network, number, n_out, n_in, gain);
            p.kernel = match &layer.kind {
                LayerKind::Conv { kernel, .. } if layer.delta_orthogonal => *kernel as u32,
                _ => 1,
            };
            let entries = rows * per_row;
            self.push(q, self.plain("place_orthogonal")?, p, groups_1d(entries))?;
        } else {
            p.dist = law.dist.code();
            p.w_scale = law.scale() as f32;
            let groups = groups_1d(rows * per_row.div_ceil(4));
            self.push(q, self.plain("draw_weights")?, p, groups)?;
        }
        let bias = layer.bias_law();
        let channels = out_channels(layer);
        p.rows = channels as u32;
        p.b_off = b_off;
        p.dist = bias.dist.code();
        p.w_scale = if bias.variance == 0.0 {
            0.0
        } else {
            bias.scale() as f32
        };
        self.push(q, self.plain("draw_bias")?, p, groups_1d(channels))
    }

    /// out = W in (+ b) + offset over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
        bias: bool,
        offset: f64,
    ) -> Result<()> {
        let mut p = self.layer_params(self.base(network), layer, slot);
        p.rows = rows as u32;
        p.in_off = input as u32;
        p.out_off = out as u32;
        p.flags = if bias { FLAG_BIAS } else { 0 };
        p.offset = offset as f32;
        self.push(
            q,
            self.plain("linear")?,
            p,
            groups_1d(rows * layer.output.units()),
        )
    }

    /// out = W^T in over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    fn linear_t(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
    ) -> Result<()> {
        let mut p = self.layer_params(self.base(network), layer, slot);
        p.rows = rows as u32;
        p.in_off = input as u32;
        p.out_off = out as u32;
        self.push(
            q,
            self.plain("linear_t")?,
            p,
            groups_1d(rows * layer.input.units()),
        )
    }

    /// An elementwise kernel over `rows` rows of `units`, its operands set by `set`.
    #[allow(clippy::too_many_arguments)]
    fn elementwise(
        &self,
        q: &mut Pending,
        network: usize,
        entry: &str,
        act: &Activation,
        rows: usize,
        units: usize,
        set: impl FnOnce(&mut BlockParams),
    ) -> Result<()> {
        let mut p = self.base(network);
        p.rows = rows as u32;
        p.units = units as u32;
        set(&mut p);
        self.push(q, self.pipeline(entry, act)?, p, groups_1d(rows * units))
    }

    /// The pair records of row `l` (pre at `pre`, post at `post`), its
    /// position sums when it is the position row, and its renormalisation.
    /// A `recompute` (of a backward segment) only renormalises, by the
    /// factor the forward pass found: so its rows are those of the forward
    /// pass bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn record_forward(
        &self,
        q: &mut Pending,
        network: usize,
        l: usize,
        pre: usize,
        post: usize,
        zeros_of: Option<&Activation>,
        recompute: bool,
    ) -> Result<()> {
        let lay = &self.layout;
        let units = self.arch().units(l);
        if recompute {
            if self.program.renormalise {
                let id = Activation::Identity;
                self.elementwise(q, network, "scale_rows", &id, self.spec.batch, units, |s| {
                    s.out_off = post as u32;
                    s.scale_a = lay.fwd_scale(l);
                })?;
            }
            return Ok(());
        }
        let mut p = self.base(network);
        p.units = units as u32;
        p.in_off = pre as u32;
        p.u_off = post as u32;
        p.rec_off = lay.fwd_rec[l] as u32;
        p.flags = if zeros_of.is_some() { FLAG_ZEROS } else { 0 };
        let act = zeros_of.copied().unwrap_or(Activation::Identity);
        let groups = (unit_blocks(units) as u32, (self.spec.batch / 2) as u32, 1);
        self.push(q, self.pipeline("pair_moments", &act)?, p, groups)?;
        let position_row = self.spec.arch.as_ref().and_then(|a| a.position_row);
        if position_row == Some(l) {
            let (c, h, w) = dims(self.arch().shape(l));
            let mut pp = p;
            (pp.c_out, pp.h_out, pp.w_out) = (c as u32, h as u32, w as u32);
            pp.rec_off = lay.pos_rec as u32;
            self.push(q, self.plain("position_moments")?, pp, groups_1d(h * w))?;
        }
        let mut f = p;
        f.flags = if self.program.renormalise {
            FLAG_RENORM
        } else {
            0
        };
        f.scale_out = lay.fwd_scale(l);
        self.push(q, self.plain("finalize")?, f, (1, 1, 1))?;
        if self.program.renormalise {
            self.elementwise(
                q,
                network,
                "scale_rows",
                &Activation::Identity,
                self.spec.batch,
                units,
                |s| {
                    s.out_off = post as u32;
                    s.scale_a = lay.fwd_scale(l);
                },
            )?;
        }
        Ok(())
    }

    /// Norms of `rows` rows of `units` at `at` into `rec`, and the
    /// renormalisation factor of rows first..first+count into `scale_out`.
    #[allow(clippy::too_many_arguments)]
    fn record_rows(
        &self,
        q: &mut Pending,
        network: usize,
        at: usize,
        rows: usize,
        units: usize,
        rec: usize,
        factors: &[(usize, u32)],
    ) -> Result<()> {
        let mut p = self.base(network);
        p.units = units as u32;
        p.in_off = at as u32;
        p.rec_off = rec as u32;
        p.rows = rows as u32;
        let groups = (unit_blocks(units) as u32, rows as u32, 1);
        self.push(q, self.plain("row_norms")?, p, groups)?;
        for &(first, scale_out) in factors {
            let mut f = p;
            f.rows = self.spec.batch as u32;
            f.rec_off = (rec + first * self.layout.block_stride) as u32;
            f.flags = FLAG_ROW_RECORDS | FLAG_RENORM;
            f.scale_out = scale_out;
            self.push(q, self.plain("finalize")?, f, (1, 1, 1))?;
        }
        Ok(())
    }

    /// Everything one network measures, as the CPU block engine's
    /// `run_network` returns it.
    pub fn run_network(&self, network: usize) -> Result<NetworkSums> {
        let mut q = Pending { steps: Vec::new() };
        let depth = self.arch().depth();
        let places = self.layout.forward_places(self.layers);
        self.forward(&mut q, network, 1..=depth, &places, false)?;
        if self.spec.probes.needs_backward() {
            self.backward(&mut q, network)?;
        }
        self.flush(&mut q)?;
        let lay = &self.layout;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        let rec_bytes = 4 * lay.records_len as u64;
        encoder.copy_buffer_to_buffer(&self.records, 0, &self.staging, 0, rec_bytes);
        encoder.copy_buffer_to_buffer(
            &self.scales,
            0,
            &self.staging,
            rec_bytes,
            4 * lay.scales_len() as u64,
        );
        self.ctx.queue.submit([encoder.finish()]);
        let bytes = 4 * (lay.records_len + lay.scales_len()) as u64;
        let data = crate::gpu::dense::read_staging(self.ctx, &self.staging, bytes)?;
        Ok(self.assemble(&data[..lay.records_len], &data[lay.records_len..]))
    }

    fn assemble(&self, records: &[f32], scales: &[f32]) -> NetworkSums {
        let lay = &self.layout;
        let arch = self.arch();
        let batch = self.spec.batch;
        let bs = lay.block_stride;
        let probes = self.spec.probes;
        let row_norms = |at: usize, rows: usize, n: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| {
                    (0..unit_blocks(n))
                        .map(|k| records[at + r * bs + k] as f64)
                        .sum()
                })
                .collect()
        };
        let forward = (0..=lay.depth)
            .map(|l| {
                let n = arch.units(l);
                let mut sums = LayerSums {
                    width: n,
                    batch,
                    renorm: scales[lay.fwd_scale(l) as usize] as f64,
                    ..Default::default()
                };
                crate::gpu::readback::add_pair_records(&mut sums, &records[lay.fwd_rec[l]..], batch / 2, n, bs);
                sums
            })
            .collect();
        let tangent = probes.jacobian.then(|| {
            (0..=lay.depth)
                .map(|l| RowSums {
                    norms: row_norms(lay.tan_rec[l], batch, arch.units(l)),
                    renorm: [scales[lay.tan_scale(l) as usize] as f64, 1.0],
                })
                .collect()
        });
        let backward = probes.needs_backward().then(|| {
            (0..=lay.depth)
                .map(|l| RowSums {
                    norms: row_norms(lay.back_rec[l], lay.back_rows, arch.units(l)),
                    renorm: [
                        scales[lay.d_scale(l) as usize] as f64,
                        if probes.jacobian {
                            scales[lay.v_scale(l) as usize] as f64
                        } else {
                            1.0
                        },
                    ],
                })
                .collect()
        });
        let positions = self
            .spec
            .arch
            .as_ref()
            .and_then(|a| a.position_row)
            .map(|row| {
                let (c, h, w) = dims(arch.shape(row));
                let at = lay.pos_rec;
                PositionSums {
                    row,
                    count: c * batch,
                    pre: records[at..at + h * w].iter().map(|&v| v as f64).collect(),
                    post: records[at + h * w..at + 2 * h * w]
                        .iter()
                        .map(|&v| v as f64)
                        .collect(),
                }
            });
        NetworkSums {
            forward,
            tangent,
            backward,
            grams: None,
            positions,
        }
    }
}
