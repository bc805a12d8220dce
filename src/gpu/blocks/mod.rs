//! The block engine on the GPU: architecture files (dense, convolution and
//! transposed-convolution layers, normalisations, residual and highway
//! blocks) and the
//! mean-preserving shift, forward, with tangents and backward. It computes
//! what `sim::cpu::blocks` computes, step for step and on the same Philox
//! counters, with the plain kernels of shaders/blocks/blocks.wgsl (one invocation
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

use crate::error::{Error, Result};
use crate::gpu::buffers::DeviceBuffers;
use crate::gpu::context::GpuContext;
use crate::gpu::orthogonal::OrthogonalQr;
use crate::gpu::pipelines::{Module, bind_group_layout};
use crate::gpu::submit::{InFlight, Readback, Step, Submitter};
use crate::model::activation::Activation;
use crate::model::arch::{Layer, LayerKind, Padding, Shape};
use crate::model::init::Dist;
use crate::sim::plan::Program;
use crate::sim::stats::{ChannelSums, LayerSums, NetworkSums, PositionSums, RowSums};
use crate::spec::RunSpec;

mod layout;
mod ntk;
mod ops;
mod passes;

pub use layout::checkpoint_interval;
use layout::{
    Layout, dims, groups_1d, orthogonal_shape, out_channels, slots, tensor_shape, unit_slices,
    weight_slot,
};

pub use crate::gpu::abi::BlockParams;
use crate::gpu::abi::{
    BLOCKS_WG as WG, CONV_TILE_C, CONV_TILE_X, FLAG_BIAS, FLAG_NO_DERIV, FLAG_RENORM,
    FLAG_ROW_RECORDS, FLAG_ZEROS, KIND_AVG_POOL, KIND_CONV, KIND_CONV_TRANSPOSE, KIND_DENSE,
    KIND_SCALE, NO_SCALE, PAD_CIRCULAR, PAD_ZERO, RECORD, STREAM_DELTA, STREAM_TANGENT,
    UNITS_PER_SLICE,
};
/// Dispatches per submission at most (the parameter buffer's slots).
const MAX_STEPS: usize = 1024;

/// One queued dispatch: kernel (a handle from the context's cache),
/// parameters, workgroups.
struct Queued {
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
    /// the parameter slots and the staging buffer of the records and scales
    submitter: Submitter<BlockParams>,
    records: wgpu::Buffer,
    scales: wgpu::Buffer,
    /// floats of one weight slot: the largest tensor, then the largest bias
    slot_len: usize,
    max_tensor: usize,
    /// where a slot's row factors start (after the tensor and the bias)
    row_scales_at: usize,
    /// the first weight layer number (1-based) of each block
    first_layer: Vec<usize>,
    /// weight layers in all
    layers: usize,
    /// the QR for orthogonal and delta-orthogonal layers, when there are any
    orthogonal: Option<OrthogonalQr>,
    /// Bytes of every buffer this engine allocated on the device.
    pub device_bytes: u64,
    /// How stride-1 convolutions run (the bench times both).
    pub conv_kernel: ConvKernel,
}

/// The kernels of a stride-1 convolution: the plain one (one invocation per
/// output value) or the tiled one (CONV_TILE_C channels at CONV_TILE_X
/// positions per invocation), the same sums in the same order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvKernel {
    Plain,
    #[default]
    Tiled,
}

/// The dispatches queued for the next submission, and the bytes of their
/// parameters (reused).
struct Pending {
    steps: Vec<Queued>,
    scratch: Vec<u8>,
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
        let (max_tensor, row_scales_at, slot_len) = weight_slot(arch);
        let layers = arch.blocks.iter().map(|b| b.layers().len()).sum();
        // the shapes (n_out, n_in) of the orthogonal matrices the QR makes
        let orthogonal_shapes: Vec<(usize, usize)> = arch
            .blocks
            .iter()
            .flat_map(|b| b.layers())
            .enumerate()
            .filter(|(i, l)| l.draw_law(i + 1).dist == Dist::Orthogonal)
            .map(|(_, l)| orthogonal_shape(l))
            .collect();
        let limit = ctx.max_binding_bytes();
        let gib = |floats: usize| floats as f64 * 4.0 / (1u64 << 30) as f64;
        for (what, floats) in [
            ("the weight slots", slots(arch) * slot_len),
            ("the activation rows", layout.arena_len),
            ("the records", layout.records_len),
        ] {
            if floats as u64 * 4 > limit || floats > u32::MAX as usize {
                let mut kept = if spec.probes.runs_backward() {
                    format!(
                        " (with checkpoints every {} blocks: `checkpoint_every` sets it)",
                        layout.every
                    )
                } else {
                    String::new()
                };
                if layout.ntk.as_ref().is_some_and(|n| n.sets > 1) {
                    kept += "; --ntk through a batch-norm holds B sets of B backward rows";
                }
                return Err(Error::invalid(
                    "arch",
                    format!(
                        "{what} need {:.2} GiB, over the {:.2} GiB this adapter ({}) can bind{kept}; use a smaller `batch`, fewer or smaller blocks, or `device` cpu",
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
                "batch",
                format!(
                    "the block engine handles up to {max_rows} rows at once (the batch, twice it with `jacobian`); got {}",
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
        let params_size = std::mem::size_of::<BlockParams>();
        let (bind_layout, pipeline_layout) = ctx.layouts("blocks", |device| {
            bind_group_layout(device, "blocks", params_size, 5)
        });
        let readback = layout.records_len + layout.scales_len();
        let submitter = Submitter::with_capacity(ctx, MAX_STEPS, 1, readback, false);
        let mut buffers = DeviceBuffers::new(device);
        let storage_usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let weights = buffers.make("block weights", 4 * slots(arch) * slot_len, storage_usage);
        let arena = buffers.make("block arena", 4 * layout.arena_len, storage_usage);
        let records = buffers.make("block records", 4 * layout.records_len, storage_usage);
        let scales = buffers.make("block scales", 4 * layout.scales_len(), storage_usage);
        let q_out_len = orthogonal_shapes
            .iter()
            .map(|&(n_out, n_in)| n_out * n_in.next_multiple_of(4))
            .max()
            .unwrap_or(0);
        let q_out = buffers.make("block orthogonal Q", 4 * q_out_len, storage_usage);
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
                submitter.params_entry(),
                whole(1, &weights),
                whole(2, &arena),
                whole(3, &records),
                whole(4, &scales),
                whole(5, &q_out),
            ],
        });
        let mut device_bytes = submitter.device_bytes + buffers.bytes;
        let orthogonal = if orthogonal_shapes.is_empty() {
            None
        } else {
            let qr = OrthogonalQr::new(ctx, &orthogonal_shapes, &q_out)?;
            device_bytes += qr.device_bytes;
            Some(qr)
        };
        Ok(BlocksGpu {
            conv_kernel: ConvKernel::default(),
            ctx,
            spec,
            program,
            layout,
            pipeline_layout,
            bind_group,
            submitter,
            records,
            scales,
            slot_len,
            max_tensor,
            row_scales_at,
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

    /// Everything one network measures, as the CPU block engine's
    /// `run_network` returns it.
    pub fn run_network(&self, network: usize) -> Result<NetworkSums> {
        let mut q = Pending {
            steps: Vec::new(),
            scratch: Vec::new(),
        };
        let depth = self.arch().depth();
        let places = self.layout.forward_places(self.layers);
        self.forward(&mut q, network, 1..=depth, &places, false)?;
        if self.spec.probes.runs_backward() {
            self.backward(&mut q, network)?;
        }
        let lay = &self.layout;
        let whole = |buffer, len| Readback {
            buffer,
            offset: 0,
            len,
        };
        let reads = [
            whole(&self.records, lay.records_len),
            whole(&self.scales, lay.scales_len()),
        ];
        let job = self.submit(&mut q, &reads)?;
        self.submitter.read(self.ctx, job, |data, _| {
            self.assemble(&data[..lay.records_len], &data[lay.records_len..])
        })
    }

    fn assemble(&self, records: &[f32], scales: &[f32]) -> NetworkSums {
        let lay = &self.layout;
        let arch = self.arch();
        let batch = self.spec.batch;
        let bs = lay.slice_stride;
        let probes = self.spec.probes;
        let row_norms = |at: usize, rows: usize, n: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| {
                    (0..unit_slices(n))
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
                crate::gpu::readback::add_pair_records(
                    &mut sums,
                    &records[lay.fwd_rec[l]..],
                    batch / 2,
                    n,
                    bs,
                );
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
        let channels = self.spp().then(|| {
            (0..=lay.depth)
                .map(|l| {
                    let (c, h, w) = dims(arch.shape(l));
                    let sums = |at: usize| -> Vec<[f64; 2]> {
                        (0..c)
                            .map(|ch| {
                                [records[at + 2 * ch] as f64, records[at + 2 * ch + 1] as f64]
                            })
                            .collect()
                    };
                    let residual = l > 0
                        && matches!(
                            arch.blocks[l - 1],
                            crate::model::arch::Block::Residual { .. }
                        );
                    ChannelSums {
                        count: batch * h * w,
                        output: sums(lay.spp_rec[l]),
                        branch: residual.then(|| sums(lay.spp_branch_rec[l])),
                    }
                })
                .collect()
        });
        NetworkSums {
            positions,
            ntk: None,
            ntk_terms: probes.ntk.map(|_| self.ntk_terms(records, scales)),
            channels,
            ..NetworkSums::new(forward, tangent, backward, None)
        }
    }
}
