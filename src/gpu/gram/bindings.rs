//! The gram engine's binding windows: where a dispatch's operands are
//! bound (View, Operand, Placed, GramGpu::place), the cached bind groups,
//! and pushing a dispatch with its parameters.

use super::*;

/// A window of one of the row buffers, bound as `act` or `store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct View {
    pub(super) buffer: usize,
    pub(super) start: usize,
    pub(super) len: usize,
}

/// One row operand of a dispatch: its panel, whether the kernel can find it
/// in `act`, and the flag that makes it read or write it in `store` (None:
/// act only).
#[derive(Clone, Copy)]
pub(super) struct Operand {
    pub(super) panel: Panel,
    pub(super) act: bool,
    pub(super) store: Option<u32>,
}

impl Operand {
    pub(super) fn act(panel: Panel) -> Self {
        Operand {
            panel,
            act: true,
            store: None,
        }
    }
    pub(super) fn store(panel: Panel) -> Self {
        Operand {
            panel,
            act: false,
            store: Some(0),
        }
    }
    pub(super) fn either(panel: Panel, flag: u32) -> Self {
        Operand {
            panel,
            act: true,
            store: Some(flag),
        }
    }
}

/// Where a dispatch finds its operands: the two windows, the flags that
/// send operands to `store`, and each operand's offset in its window.
pub(super) struct Placed {
    pub(super) act: View,
    pub(super) store: View,
    pub(super) flags: u32,
    pub(super) at: Vec<u32>,
}

impl<'a> GramGpu<'a> {
    /// Windows for `ops`: each operand in `act` or (where the kernel can
    /// take it there) in `store`, each window within one buffer and at
    /// most one binding wide. The first arrangement that fits, in a fixed
    /// order; `check_limits` guarantees one does (two adjacent panels fit
    /// a binding, and the panel order serves every kernel).
    pub(super) fn place(&self, ops: &[Operand]) -> Placed {
        let spare = View {
            buffer: SPARE,
            start: 0,
            len: 4,
        };
        for mask in 0..1u32 << ops.len() {
            let in_store = |i: usize| mask >> i & 1 == 1;
            let allowed = ops.iter().enumerate().all(|(i, op)| {
                if in_store(i) {
                    op.store.is_some()
                } else {
                    op.act
                }
            });
            if !allowed {
                continue;
            }
            let window = |store: bool| -> Option<View> {
                let mut panels = (0..ops.len())
                    .filter(|&i| in_store(i) == store)
                    .map(|i| ops[i].panel);
                let Some(first) = panels.next() else {
                    return Some(spare);
                };
                let (mut lo, mut hi) = (first.at, first.at);
                for b in panels {
                    if b.buffer != first.buffer {
                        return None;
                    }
                    lo = lo.min(b.at);
                    hi = hi.max(b.at);
                }
                let len = hi + self.lay.panel - lo;
                (len <= self.max_binding).then_some(View {
                    buffer: first.buffer,
                    start: lo,
                    len,
                })
            };
            let (Some(act), Some(store)) = (window(false), window(true)) else {
                continue;
            };
            let mut flags = 0;
            let mut at = Vec::with_capacity(ops.len());
            for (i, op) in ops.iter().enumerate() {
                let view = if in_store(i) {
                    flags |= op.store.unwrap_or(0);
                    store
                } else {
                    act
                };
                at.push((op.panel.at - view.start) as u32);
            }
            return Placed {
                act,
                store,
                flags,
                at,
            };
        }
        panic!(
            "gram engine: no binding windows for {:?} (check_limits lets this through)",
            ops.iter().map(|o| o.panel).collect::<Vec<_>>()
        );
    }

    pub(super) fn push<'p>(
        &'p self,
        job: &mut Job<'p>,
        pipeline: &'p wgpu::ComputePipeline,
        params: Params,
        groups: (u32, u32, u32),
        placed: &Placed,
    ) {
        job.steps.push(Step {
            pipeline,
            params,
            groups,
        });
        job.views.push((placed.act, placed.store));
    }

    /// A dispatch that reads and writes no rows (or only rows placed by hand).
    pub(super) fn push_plain<'p>(
        &'p self,
        job: &mut Job<'p>,
        pipeline: &'p wgpu::ComputePipeline,
        params: Params,
        groups: (u32, u32, u32),
    ) {
        let placed = self.place(&[]);
        self.push(job, pipeline, params, groups, &placed);
    }

    /// The bind group for a pair of windows (made once, then reused).
    pub(super) fn bind_group(&self, views: (View, View)) -> wgpu::BindGroup {
        let mut cache = self.bind_groups.borrow_mut();
        cache
            .entry(views)
            .or_insert_with(|| {
                let range = |v: View| wgpu::BufferBinding {
                    buffer: &self.row_buffers[v.buffer],
                    offset: 4 * v.start as u64,
                    size: wgpu::BufferSize::new(4 * v.len as u64),
                };
                engine_bind_group_ranges(
                    self.ctx,
                    "gram engine",
                    &self.bind_layout,
                    &self.submitter,
                    [
                        self.coefs.as_entire_buffer_binding(),
                        self.bias.as_entire_buffer_binding(),
                        range(views.0),
                        range(views.1),
                        self.records.as_entire_buffer_binding(),
                        self.scales.as_entire_buffer_binding(),
                        self.work.as_entire_buffer_binding(),
                    ],
                )
            })
            .clone()
    }

    /// The K x K coefficients (or the two matrices of split ones) into slot
    /// `slot`, rows padded to stride(K) with zeros (the kernels read them as
    /// vec4).
    pub(super) fn upload(&self, slot: usize, coefs: &[f32]) {
        let b = self.lay.cols;
        let ld = stride(b);
        let mut padded = vec![0.0f32; coefs.len() / b * ld];
        for (row, chunk) in coefs.chunks(b).enumerate() {
            padded[row * ld..row * ld + b].copy_from_slice(chunk);
        }
        let at = (slot * coef_slot(b) * 4) as u64;
        self.ctx
            .queue
            .write_buffer(&self.coefs, at, bytemuck::cast_slice(&padded));
    }
}
