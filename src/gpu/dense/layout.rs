//! The dense engine's memory plan: the regions of the arenas (Layout), the
//! checkpoint interval, and where a backward segment's records go
//! (SegmentPlan).

use super::*;

/// How the run uses device memory: offsets (in f32s) of every region.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    /// stride of the widest layer
    pub(super) row: usize,
    pub(super) batch: usize,
    /// forward x (ping-pong), h, tangents (ping-pong), W t, backward rows
    /// (ping-pong, 2B rows with --jacobian), W^T delta
    pub(super) x: [usize; 2],
    pub(super) h: usize,
    pub(super) t: [usize; 2],
    pub(super) ht: usize,
    pub(super) d: [usize; 2],
    pub(super) y: usize,
    pub(super) act_len: usize,
    /// checkpoints of h every `every` layers, then the segment's recomputed h
    pub(super) every: usize,
    pub(super) checkpoints: usize,
    pub(super) store_len: usize,
    /// backward rows per layer: B, or 2B with the vector-Jacobian rows
    pub(super) back_rows: usize,
    pub(super) slice_stride: usize,
    pub(super) records_len: usize,
    pub(super) depth: usize,
    /// scales: forward r, tangent r, delta r, vector-Jacobian r, each a ring
    /// of this many layers: L + 1 with the backward pass (the recomputation
    /// needs every forward r), else chunk + 1, so that a forward run's memory
    /// does not grow with depth.
    pub(super) ring: usize,
}

impl Layout {
    pub(super) fn new(spec: &RunSpec, chunk: usize, every: usize) -> Self {
        let net = &spec.net;
        let batch = spec.batch;
        let row = stride(*net.widths.iter().max().unwrap());
        let rows = |r: usize| r * row;
        let backward = spec.probes.runs_backward();
        let jacobian = spec.probes.jacobian;
        let back_rows = if jacobian { 2 * batch } else { batch };
        let mut at = 0;
        let mut region = |len: usize| {
            let start = at;
            at += len;
            start
        };
        let x = [region(rows(batch)), region(rows(batch))];
        let h = region(rows(batch));
        let tangent_rows = if jacobian { batch } else { 0 };
        let t = [region(rows(tangent_rows)), region(rows(tangent_rows))];
        let ht = region(rows(tangent_rows));
        let d_rows = if backward { back_rows } else { 0 };
        let d = [region(rows(d_rows)), region(rows(d_rows))];
        let y = region(rows(d_rows));
        let act_len = at;
        let depth = net.depth();
        let (every, checkpoints) = if backward {
            (every, depth.div_ceil(every))
        } else {
            (0, 0)
        };
        let store_len = (checkpoints + every) * rows(batch);
        let slice_stride = slices(row);
        let pairs = batch / 2;
        let forward_records = chunk * (pairs * RECORD + tangent_rows) * slice_stride;
        let grams = if spec.probes.weight_grads || spec.probes.ntk.is_some() {
            2 * batch * batch
        } else {
            0
        };
        let backward_records = (every + 1) * (back_rows + grams) * slice_stride;
        Layout {
            row,
            batch,
            x,
            h,
            t,
            ht,
            d,
            y,
            act_len,
            every,
            checkpoints,
            store_len,
            back_rows,
            slice_stride,
            records_len: forward_records.max(backward_records),
            depth,
            ring: if backward { depth + 1 } else { chunk + 1 },
        }
    }

    pub(super) fn checkpoint(&self, j: usize) -> usize {
        j * self.batch * self.row
    }

    /// The recomputed h of layer a + 1 + i of the current segment.
    pub(super) fn segment(&self, i: usize) -> usize {
        (self.checkpoints + i) * self.batch * self.row
    }

    pub(super) fn forward_scale(&self, l: usize) -> u32 {
        (l % self.ring) as u32
    }
    pub(super) fn tangent_scale(&self, l: usize) -> u32 {
        (self.ring + l % self.ring) as u32
    }
    pub(super) fn delta_scale(&self, l: usize) -> u32 {
        (2 * self.ring + l % self.ring) as u32
    }
    pub(super) fn vjp_scale(&self, l: usize) -> u32 {
        (3 * self.ring + l % self.ring) as u32
    }
    pub(super) fn scales_len(&self) -> usize {
        4 * self.ring
    }

    /// Device bytes for the plan with checkpoints every `every` layers.
    pub(super) fn bytes(&self) -> u64 {
        4 * (self.act_len + self.store_len + self.records_len + self.scales_len()) as u64
    }
}

/// Chooses the checkpoint interval: `every` if given; else the largest k
/// whose plan fits `max_memory`, at least ceil(sqrt(L)) (the least memory);
/// else ceil(sqrt(L)).
pub fn checkpoint_interval(
    spec: &RunSpec,
    chunk: usize,
    every: Option<usize>,
    max_memory: Option<u64>,
) -> Result<usize> {
    let weights = |spec: &RunSpec| {
        let w = spec
            .net
            .widths
            .windows(2)
            .map(|w| stride(w[0]) * w[1])
            .max()
            .unwrap();
        4 * (w + spec.net.widths.iter().max().unwrap()) as u64
    };
    let bytes = |k: usize| Layout::new(spec, chunk, k).bytes() + weights(spec);
    crate::gpu::checkpoint::interval(spec.net.depth(), every, max_memory, "layers", bytes)
}

/// Backward segment j: layers a+1..=b recomputed from the checkpoint of
/// h_a; in the records, per layer l in a..=b its back rows at slot (l - a),
/// then the two Gram matrices of layer l.
pub(super) struct SegmentPlan {
    pub(super) a: usize,
    pub(super) b: usize,
    pub(super) depth: usize,
    pub(super) back_len: usize,
    pub(super) gram_len: usize,
    pub(super) with_grams: bool,
}

impl SegmentPlan {
    pub(super) fn back_rec(&self, l: usize) -> usize {
        let grams = if self.with_grams {
            2 * self.gram_len
        } else {
            0
        };
        (l - self.a) * (self.back_len + grams)
    }

    pub(super) fn gram_rec(&self, l: usize) -> usize {
        self.back_rec(l) + self.back_len
    }

    /// The layers whose delta the segment produces: a..b, and L at the top.
    pub(super) fn produced(&self) -> std::ops::Range<usize> {
        if self.b == self.depth {
            self.a..self.b + 1
        } else {
            self.a..self.b
        }
    }
}
