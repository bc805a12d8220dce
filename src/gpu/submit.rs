//! Submitting an engine's dispatches and reading results back without
//! stalling the GPU; the one pass encoder of the dense, gram and block
//! engines and of the orthogonal QR. A job (a chunk of layers, a backward
//! segment, a QR) is a list of steps encoded into compute passes of at most
//! `max_steps` dispatches (the parameter buffer's slots), each step's
//! parameters bound at a dynamic offset, followed by copies of the ranges
//! to read back into one of the staging buffers. The caller submits job
//! k + 1 before it waits for job k, so the GPU always has the next job
//! queued while the host reads the last one. With timestamp queries, every
//! pass records when it began and ended; the times ride back in the same
//! staging buffer, so timing adds no sync.

use crate::error::{Error, Result};
use crate::gpu::abi::Params;
use crate::gpu::buffers::DeviceBuffers;
use crate::gpu::context::GpuContext;
use bytemuck::Pod;
use std::marker::PhantomData;

/// Dispatches encoded per pass at most by `Submitter::new` (the parameter
/// buffer's slots).
pub const MAX_STEPS: usize = 2048;
/// Passes per job whose timestamps are kept (beyond: the job is untimed).
const MAX_TIMED_PASSES: usize = 1024;

/// One dispatch to encode: which kernel, its parameters (`Params` of the
/// dense and gram engines, or the block engine's), its workgroups.
pub struct Step<'p, P = Params> {
    pub pipeline: &'p wgpu::ComputePipeline,
    pub params: P,
    pub groups: (u32, u32, u32),
}

/// A range of f32s of a device buffer to read back.
pub struct Readback<'b> {
    pub buffer: &'b wgpu::Buffer,
    pub offset: usize,
    pub len: usize,
}

struct PassTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    /// nanoseconds per timestamp tick
    period: f64,
}

/// A submitted job: where its results will be, and the submission to wait for.
pub struct InFlight {
    slot: usize,
    floats: usize,
    passes: usize,
    index: wgpu::SubmissionIndex,
}

/// The parameter buffer of steps of type `P`, the staging buffers and the
/// pass timer.
pub struct Submitter<P = Params> {
    params: wgpu::Buffer,
    params_stride: usize,
    max_steps: usize,
    staging: Vec<wgpu::Buffer>,
    staging_floats: usize,
    timer: Option<PassTimer>,
    /// Bytes of the buffers above (and the query set's results).
    pub device_bytes: u64,
    kind: PhantomData<P>,
}

impl Submitter<Params> {
    /// `MAX_STEPS` steps per pass and two staging buffers (the job in
    /// flight and the one being read) of `staging_floats` f32s; `timed`:
    /// record pass timestamps (when the device has TIMESTAMP_QUERY).
    pub fn new(ctx: &GpuContext, staging_floats: usize, timed: bool) -> Self {
        Submitter::with_capacity(ctx, MAX_STEPS, 2, staging_floats, timed)
    }
}

impl<P: Pod> Submitter<P> {
    /// Room for `max_steps` steps per pass, and `slots` staging buffers of
    /// `staging_floats` f32s of results per job (none without readbacks);
    /// `timed` as for `new`.
    pub fn with_capacity(
        ctx: &GpuContext,
        max_steps: usize,
        slots: usize,
        staging_floats: usize,
        timed: bool,
    ) -> Self {
        let device = &ctx.device;
        let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
        let params_stride = std::mem::size_of::<P>().next_multiple_of(align);
        let mut buffers = DeviceBuffers::new(device);
        let params = buffers.make(
            "params",
            params_stride * max_steps,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        let timed = timed && ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        // two u64 per timed pass follow the results in the staging buffer
        let time_floats = if timed { 4 * MAX_TIMED_PASSES } else { 0 };
        let readback = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let staging_bytes = 4 * (staging_floats + time_floats);
        let staging = (0..slots)
            .map(|slot| buffers.make(&format!("staging {slot}"), staging_bytes, readback))
            .collect();
        let timer = timed.then(|| {
            let resolved = buffers.make(
                "pass timestamps",
                2 * 2 * MAX_TIMED_PASSES * 8,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            );
            PassTimer {
                queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("pass timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: (2 * 2 * MAX_TIMED_PASSES) as u32,
                }),
                resolved,
                period: ctx.queue.get_timestamp_period() as f64,
            }
        });
        Submitter {
            params,
            params_stride,
            max_steps,
            staging,
            staging_floats,
            timer,
            device_bytes: buffers.bytes,
            kind: PhantomData,
        }
    }

    pub fn params(&self) -> &wgpu::Buffer {
        &self.params
    }

    pub fn params_binding_size(&self) -> u64 {
        std::mem::size_of::<P>() as u64
    }

    /// The bind group entry of the parameter buffer (binding 0, one step's
    /// parameters at the dynamic offset).
    pub fn params_entry(&self) -> wgpu::BindGroupEntry<'_> {
        wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.params,
                offset: 0,
                size: wgpu::BufferSize::new(self.params_binding_size()),
            }),
        }
    }

    /// The most steps one pass encodes.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }

    pub fn timed(&self) -> bool {
        self.timer.is_some()
    }

    /// Encodes `steps`, copies `readbacks` (in order) into staging buffer
    /// `slot` (0 or 1, not mapped), and submits. `scratch` holds the
    /// parameter bytes (reused between jobs).
    pub fn submit(
        &self,
        ctx: &GpuContext,
        bind_group: &wgpu::BindGroup,
        steps: &[Step<P>],
        readbacks: &[Readback],
        slot: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<InFlight> {
        self.submit_bound(ctx, &|_| bind_group, steps, readbacks, slot, scratch)
    }

    /// `submit` with a bind group per step (`bind_group(i)` for step i).
    pub fn submit_bound<'g>(
        &self,
        ctx: &GpuContext,
        bind_group: &dyn Fn(usize) -> &'g wgpu::BindGroup,
        steps: &[Step<P>],
        readbacks: &[Readback],
        slot: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<InFlight> {
        let parts: Vec<&[Step<P>]> = if steps.is_empty() {
            vec![&[]]
        } else {
            steps.chunks(self.max_steps).collect()
        };
        let timer = self
            .timer
            .as_ref()
            .filter(|_| parts.len() <= MAX_TIMED_PASSES);
        // the two jobs that can be in flight use separate halves of the queries
        let first_query = (slot * 2 * MAX_TIMED_PASSES) as u32;
        let last = parts.len() - 1;
        let mut floats = 0;
        let mut index = None;
        for (pass, part) in parts.iter().enumerate() {
            scratch.clear();
            scratch.resize(self.params_stride * part.len(), 0);
            for (i, s) in part.iter().enumerate() {
                let at = i * self.params_stride;
                scratch[at..at + std::mem::size_of::<P>()]
                    .copy_from_slice(bytemuck::bytes_of(&s.params));
            }
            if !scratch.is_empty() {
                ctx.queue.write_buffer(&self.params, 0, scratch);
            }
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                let timestamp_writes = timer.map(|t| wgpu::ComputePassTimestampWrites {
                    query_set: &t.queries,
                    beginning_of_pass_write_index: Some(first_query + 2 * pass as u32),
                    end_of_pass_write_index: Some(first_query + 2 * pass as u32 + 1),
                });
                let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes,
                });
                for (i, s) in part.iter().enumerate() {
                    let group = bind_group(pass * self.max_steps + i);
                    cpass.set_bind_group(0, group, &[(i * self.params_stride) as u32]);
                    cpass.set_pipeline(s.pipeline);
                    cpass.dispatch_workgroups(s.groups.0, s.groups.1, s.groups.2);
                }
            }
            if pass == last {
                for r in readbacks {
                    encoder.copy_buffer_to_buffer(
                        r.buffer,
                        (r.offset * 4) as u64,
                        &self.staging[slot],
                        (floats * 4) as u64,
                        (r.len * 4) as u64,
                    );
                    floats += r.len;
                }
                if floats > self.staging_floats {
                    return Err(Error::Gpu(format!(
                        "a job reads back {floats} values, over the {} the staging buffer holds",
                        self.staging_floats
                    )));
                }
                if let Some(t) = timer {
                    let queries = first_query..first_query + 2 * parts.len() as u32;
                    let at = first_query as u64 * 8;
                    let bytes = 2 * parts.len() as u64 * 8;
                    encoder.resolve_query_set(&t.queries, queries, &t.resolved, at);
                    let to = (self.staging_floats * 4) as u64;
                    encoder.copy_buffer_to_buffer(&t.resolved, at, &self.staging[slot], to, bytes);
                }
            }
            index = Some(ctx.queue.submit([encoder.finish()]));
        }
        Ok(InFlight {
            slot,
            floats,
            passes: if timer.is_some() { parts.len() } else { 0 },
            index: index.expect("at least one pass"),
        })
    }

    /// Waits for `job`, then hands its results and the GPU seconds its
    /// passes took (None when untimed) to `take`.
    pub fn read<R>(
        &self,
        ctx: &GpuContext,
        job: InFlight,
        take: impl FnOnce(&[f32], Option<f64>) -> R,
    ) -> Result<R> {
        let time_bytes = 16 * job.passes as u64;
        let bytes = if time_bytes > 0 {
            (self.staging_floats * 4) as u64 + time_bytes
        } else {
            (job.floats * 4) as u64
        };
        let index = job.index;
        let wait = move || {
            ctx.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                })
                .map(|_| ())
                .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))
        };
        if bytes == 0 {
            wait()?;
            return Ok(take(&[], None));
        }
        read_mapped(&self.staging[job.slot], bytes, wait, |view| {
            let floats: &[f32] = bytemuck::cast_slice(&view[..job.floats * 4]);
            let seconds = (time_bytes > 0).then(|| {
                let times: &[u64] = bytemuck::cast_slice(&view[self.staging_floats * 4..]);
                let ticks: u64 = times.chunks(2).map(|t| t[1].saturating_sub(t[0])).sum();
                ticks as f64 * self.timer.as_ref().unwrap().period * 1e-9
            });
            take(floats, seconds)
        })
    }
}

/// Maps the first `bytes` of a staging buffer for reading, waits for the
/// GPU (`wait`), hands the bytes to `take` and unmaps.
pub fn read_mapped<R>(
    staging: &wgpu::Buffer,
    bytes: u64,
    wait: impl FnOnce() -> Result<()>,
    take: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    let slice = staging.slice(0..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    wait()?;
    rx.recv()
        .map_err(|_| Error::Gpu("the readback was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e:?}")))?;
        take(&view)
    };
    staging.unmap();
    Ok(out)
}

/// Maps `bytes` of a staging buffer once all submitted work is done, and
/// copies them out as f32.
pub fn read_staging(ctx: &GpuContext, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    read_mapped(
        staging,
        bytes,
        || ctx.wait(),
        |view| bytemuck::cast_slice::<u8, f32>(view).to_vec(),
    )
}

/// Workgroups per dimension at most.
const MAX_DISPATCH: u32 = 65_535;

/// Workgroup counts for `invocations` folded into 2-D (shaders use flat_index).
pub(crate) fn dispatch_1d(invocations: usize, wg: u32) -> (u32, u32, u32) {
    let groups = invocations.div_ceil(wg as usize).max(1) as u64;
    if groups <= MAX_DISPATCH as u64 {
        (groups as u32, 1, 1)
    } else {
        let y = groups.div_ceil(MAX_DISPATCH as u64);
        (groups.div_ceil(y) as u32, y as u32, 1)
    }
}
