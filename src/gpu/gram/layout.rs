//! The gram engine's memory plan: panels in the row buffers and the
//! checkpoint store (Layout), coefficient slots, the checkpoint interval
//! and the adapter's limits.

use super::*;

/// A panel: K rows (the columns of X~: B, or 2B with --jacobian, the
/// tangents' rows after the inputs') of stride(n) floats of the widest
/// layer. `buffer`: which of the engine's row buffers holds it (ROWS, or a
/// checkpoint store buffer), `at`: where (in f32s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Panel {
    pub(super) buffer: usize,
    pub(super) at: usize,
}

/// Panels start at multiples of this many floats (256 bytes, the
/// largest storage-binding offset alignment an adapter may ask).
pub(super) const PANEL_ALIGN: usize = 64;

/// The engine's buffers of rows: SPARE (bound where a kernel reads no
/// rows), ROWS (h, x, Z, the backward rows), then the checkpoint store.
pub(super) const SPARE: usize = 0;

pub(super) const ROWS: usize = 1;

pub(super) const FIRST_STORE: usize = 2;

/// Where everything lives. Rows are in panels so that widths of a million
/// fit adapters that bind at most 128 MiB at once (software adapters):
/// each dispatch binds only windows of at most two adjacent panels (see
/// `GramGpu::place`), the rows in the order h, x, Z, d_0, y, d_1 so that
/// every kernel finds its operands so. The forward pass needs x_{l-1} only
/// for its Gram matrix, so one x panel serves every layer; Gaussian layers
/// draw Z inside the combination, so Z has a panel only for orthogonal
/// layers and the backward Z'.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) row: usize,
    pub(super) batch: usize,
    /// columns of X~: B, or 2B with --jacobian
    pub(super) cols: usize,
    /// floats per panel
    pub(super) panel: usize,
    pub(super) h: Panel,
    pub(super) x: Panel,
    pub(super) z: Panel,
    pub(super) d: [Panel; 2],
    /// W^T delta before phi'
    pub(super) y: Panel,
    pub(super) rows_len: usize,
    pub(super) every: usize,
    pub(super) checkpoints: usize,
    /// checkpoint store panels per buffer
    pub(super) slots_per_buffer: usize,
    /// records per row (or pair) for the slices of the widest layer
    pub(super) bs: usize,
    /// records: forward pair records, backward row records (K rows), the
    /// tangent rows' records (--jacobian), then six K x K Gram matrices (x,
    /// z, delta, (h - b)^T delta, x^T z', z'^T z'), each as the three parts
    /// of gram_cross's compensated sums, one after the other
    pub(super) stats: usize,
    pub(super) back: usize,
    pub(super) tangent: usize,
    pub(super) grams: [usize; 6],
    pub(super) gram_len: usize,
    pub(super) records_len: usize,
    pub(super) depth: usize,
}

pub(super) const GX: usize = 0;

pub(super) const GZ: usize = 1;

pub(super) const GD: usize = 2;

pub(super) const GM: usize = 3;

pub(super) const GXZ: usize = 4;

pub(super) const GZZ: usize = 5;

impl Layout {
    pub(super) fn new(spec: &RunSpec, every: usize) -> Self {
        let batch = spec.batch;
        let cols = if spec.probes.jacobian {
            2 * batch
        } else {
            batch
        };
        let row = stride(*spec.net.widths.iter().max().unwrap());
        let panel = (row * cols).next_multiple_of(PANEL_ALIGN);
        let backward = spec.probes.runs_backward();
        let needs_z = backward || has_orthogonal_layers(spec);
        let mut at = 0;
        let mut region = |wanted: bool| {
            let start = Panel { buffer: ROWS, at };
            if wanted {
                at += panel;
            }
            start
        };
        let h = region(true);
        let x = region(true);
        let z = region(needs_z);
        let d0 = region(backward);
        let y = region(backward);
        let d1 = region(backward);
        let rows_len = at;
        let depth = spec.net.depth();
        let (every, checkpoints) = if backward {
            (every, depth.div_ceil(every))
        } else {
            (1, 0)
        };
        let bs = slices(row);
        let stats = 0;
        let back = batch / 2 * bs * RECORD;
        let tangent = back + cols * bs;
        let gram_len = 3 * cols * cols * bs;
        let first_gram = tangent + (cols - batch) * bs;
        let grams = std::array::from_fn(|k| first_gram + k * gram_len);
        Layout {
            row,
            batch,
            cols,
            panel,
            h,
            x,
            z,
            d: [d0, d1],
            y,
            rows_len,
            every,
            checkpoints,
            slots_per_buffer: usize::MAX,
            bs,
            stats,
            back,
            tangent,
            grams,
            gram_len,
            records_len: first_gram + 6 * gram_len,
            depth,
        }
    }

    /// Store panels: the checkpoints, then the segment being recomputed.
    pub(super) fn store_slots(&self) -> usize {
        if self.checkpoints == 0 {
            0
        } else {
            self.checkpoints + self.every
        }
    }

    pub(super) fn slot(&self, s: usize) -> Panel {
        Panel {
            buffer: FIRST_STORE + s / self.slots_per_buffer,
            at: (s % self.slots_per_buffer) * self.panel,
        }
    }

    pub(super) fn checkpoint(&self, j: usize) -> Panel {
        self.slot(j)
    }

    pub(super) fn segment(&self, i: usize) -> Panel {
        self.slot(self.checkpoints + i)
    }

    /// Floats of each checkpoint store buffer.
    pub(super) fn store_buffers(&self) -> Vec<usize> {
        let slots = self.store_slots();
        (0..slots.div_ceil(self.slots_per_buffer))
            .map(|k| (slots - k * self.slots_per_buffer).min(self.slots_per_buffer) * self.panel)
            .collect()
    }

    pub(super) fn delta_scale(&self, l: usize) -> u32 {
        (self.depth + 1 + l) as u32
    }

    /// --jacobian: the tangent's r, and the vector-Jacobian rows' r
    pub(super) fn tangent_scale(&self, l: usize) -> u32 {
        (2 * (self.depth + 1) + l) as u32
    }

    pub(super) fn vjp_scale(&self, l: usize) -> u32 {
        (3 * (self.depth + 1) + l) as u32
    }

    pub(super) fn scales_len(&self) -> usize {
        self.cols / self.batch * 2 * (self.depth + 1)
    }

    pub(super) fn bytes(&self) -> u64 {
        let coefs = (self.every + 2) * coef_slot(self.cols);
        4 * (self.rows_len
            + self.store_slots() * self.panel
            + self.records_len
            + self.scales_len()
            + coefs
            + self.row) as u64
    }
}

/// Floats of one coefficient slot: two matrices of K rows of stride(K) (K:
/// the columns), the forward coefficients' high and low parts
/// (algebra::split_f32; the backward pass uses the first only).
pub(super) fn coef_slot(cols: usize) -> usize {
    2 * cols * stride(cols)
}

/// The checkpoint interval: `every` if given, else the largest that fits
/// `max_memory` (at least ceil(sqrt(L))), else ceil(sqrt(L)).
pub fn checkpoint_interval(
    spec: &RunSpec,
    every: Option<usize>,
    max_memory: Option<u64>,
) -> Result<usize> {
    let bytes = |k: usize| Layout::new(spec, k).bytes();
    crate::gpu::checkpoint::interval(spec.net.depth(), every, max_memory, "layers", bytes)
}

/// Sizes beyond the adapter's limits are bad input, caught before any work.
pub(super) fn check_limits(ctx: &GpuContext, spec: &RunSpec, lay: &Layout) -> Result<()> {
    check_arena_bindings(
        ctx,
        spec,
        "the gram engine's",
        lay.row,
        [
            ("two panels of rows (bound together)", 2 * lay.panel),
            ("records", lay.records_len),
            ("coefficients", (lay.every + 2) * coef_slot(lay.cols)),
        ],
    )?;
    let rows_bytes = 4 * lay.rows_len as u64;
    if rows_bytes > ctx.limits.max_buffer_size {
        return Err(Error::invalid(
            "batch",
            format!(
                "the gram engine's rows of batch {} at width {} need one buffer of {:.2} GiB, over this adapter's {:.2} GiB; use a smaller batch or width",
                spec.batch,
                lay.row,
                rows_bytes as f64 / (1u64 << 30) as f64,
                ctx.limits.max_buffer_size as f64 / (1u64 << 30) as f64
            ),
        ));
    }
    let max_dispatch = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if spec.batch > max_dispatch {
        return Err(Error::invalid(
            "batch",
            format!("at most {max_dispatch} (one dispatch)"),
        ));
    }
    Ok(())
}
