//! Where the block engine keeps its rows: the device layout of one run
//! (rows in turn, checkpoints, a recomputed segment, records), the places a
//! pass finds them at, and the choice of the checkpoint interval.

use super::{RECORD, UNITS_PER_SLICE, WG};
use crate::error::Result;
use crate::model::arch::{Layer, LayerKind, Shape};
use crate::spec::RunSpec;

pub(super) fn unit_slices(n: usize) -> usize {
    n.div_ceil(UNITS_PER_SLICE)
}

/// Workgroups of 64 for `invocations`, folded into 2-D (shaders use flat_index).
pub(super) fn groups_1d(invocations: usize) -> (u32, u32, u32) {
    crate::gpu::submit::dispatch_1d(invocations, WG)
}

pub(super) fn dims(shape: Shape) -> (usize, usize, usize) {
    shape.dims()
}

/// Rows and entries per row of a weight layer's tensor, as drawn (PyTorch's
/// layouts: dense W[out][in], conv W[c_out][c_in k^2], transposed conv
/// W[c_in][c_out k^2]).
pub(super) fn tensor_shape(layer: &Layer) -> (usize, usize) {
    let (c_in, _, _) = dims(layer.input);
    match &layer.kind {
        LayerKind::Norm { .. } | LayerKind::AvgPool { .. } => (0, 0),
        // its factor
        LayerKind::Scale { .. } => (1, 1),
        LayerKind::Dense { width } => (*width, layer.input.units()),
        LayerKind::Attention(_) => {
            unreachable!("no attention reaches the block engine: gpu::choice refuses it")
        }
        LayerKind::Conv {
            channels, kernel, ..
        } => (*channels, c_in * kernel * kernel),
        LayerKind::ConvTranspose {
            channels, kernel, ..
        } => (c_in, channels * kernel * kernel),
    }
}

pub(super) fn out_channels(layer: &Layer) -> usize {
    dims(layer.output).0
}

/// The (n_out, n_in) of an orthogonal layer's matrix: the tensor itself
/// for a dense layer, the C_out x C_in centre tap for delta-orthogonal.
pub(super) fn orthogonal_shape(layer: &Layer) -> (usize, usize) {
    let (rows, per_row) = tensor_shape(layer);
    if layer.delta_orthogonal {
        (rows, dims(layer.input).0)
    } else {
        (rows, per_row)
    }
}

/// Layers per block at most (at least 2): the weight slots and the h rows
/// of the forward pass, so that a block's tangent and backward steps find
/// all its layers' state.
pub(super) fn slots(arch: &crate::model::arch::Architecture) -> usize {
    arch.blocks
        .iter()
        .map(|b| b.layers().len())
        .max()
        .unwrap_or(1)
        .max(2)
}

/// The groups a normalisation's statistics run over, for `rows` rows (sets
/// of B): each row for layer-norm and rms-norm, each channel of each set for
/// batch-norm; None for other layers.
pub(super) fn norm_group_count(layer: &Layer, rows: usize, batch: usize) -> Option<usize> {
    use crate::model::arch::NormKind;
    match layer.kind {
        LayerKind::Norm {
            kind: NormKind::BatchNorm,
            ..
        } => Some(rows / batch * dims(layer.input).0),
        LayerKind::Norm { .. } => Some(rows),
        _ => None,
    }
}

/// The most groups of any normalisation over `sets` sets of B rows (0
/// without normalisations).
pub(super) fn norm_groups(
    arch: &crate::model::arch::Architecture,
    batch: usize,
    sets: usize,
) -> usize {
    arch.blocks
        .iter()
        .flat_map(|b| b.layers())
        .filter_map(|l| norm_group_count(l, sets * batch, batch))
        .max()
        .unwrap_or(0)
}

/// A weight slot's layout: the largest tensor, then the largest bias, then
/// the most rows' factors: the offsets of the bias and of the row factors,
/// and the floats of one slot.
pub(super) fn weight_slot(arch: &crate::model::arch::Architecture) -> (usize, usize, usize) {
    let layers: Vec<&Layer> = arch.blocks.iter().flat_map(|b| b.layers()).collect();
    let max_tensor = layers
        .iter()
        .map(|l| {
            let (r, c) = tensor_shape(l);
            r * c
        })
        .max()
        .unwrap();
    let max_bias = layers.iter().map(|l| out_channels(l)).max().unwrap();
    // a standardised tensor's factors gain / std per row (the NTK's gradient
    // with respect to the raw draws), where a layer is standardised
    let max_rows = layers
        .iter()
        .filter(|l| l.standardise.is_some())
        .map(|l| tensor_shape(l).0)
        .max()
        .unwrap_or(0);
    (
        max_tensor.max(1),
        max_tensor.max(1) + max_bias,
        max_tensor.max(1) + max_bias + max_rows,
    )
}

/// Device bytes of the plan with checkpoints every `every` blocks.
pub(super) fn plan_bytes(
    spec: &RunSpec,
    arch: &crate::model::arch::Architecture,
    every: usize,
) -> u64 {
    let lay = Layout::new(spec, arch, every);
    let (_, _, slot_len) = weight_slot(arch);
    4 * (lay.arena_len + lay.records_len + lay.scales_len() + slots(arch) * slot_len) as u64
}

/// The checkpoint interval of the backward pass, as the dense engine
/// chooses it: `every` if given; else the largest k whose plan fits
/// `max_memory`, at least ceil(sqrt(L)); else ceil(sqrt(L)).
pub fn checkpoint_interval(
    spec: &RunSpec,
    every: Option<usize>,
    max_memory: Option<u64>,
) -> Result<usize> {
    let arch = &spec
        .arch
        .as_ref()
        .expect("the block engine runs architecture runs")
        .arch;
    let bytes = |k: usize| plan_bytes(spec, arch, k);
    crate::gpu::checkpoint::interval(arch.depth(), every, max_memory, "blocks", bytes)
}

/// Device memory of one run, offsets in f32s.
pub(super) struct Layout {
    pub(super) depth: usize,
    /// checkpoint interval of the backward pass (blocks per segment)
    pub(super) every: usize,
    /// x (B rows) of rows l = 0..=L in the forward pass: two rows in turn,
    /// or a checkpoint (rows 0, k, 2k, ... below L with the backward pass)
    pub(super) x_ring: [usize; 2],
    pub(super) checkpoints: Vec<usize>,
    /// h (B rows) of the layers in the forward pass, in turn (`slots`
    /// of them); every h row is followed by a normalisation's mean and
    /// 1/sqrt(var + eps) per group (`stats_of`)
    pub(super) h_ring: Vec<usize>,
    /// floats of one B-row block of h
    pub(super) h_row: usize,
    /// a normalisation's Jacobian: mean(a), mean(a y) per group of the
    /// tangent or backward rows
    pub(super) norm_scratch: usize,
    /// a recomputed segment: x of its rows above the checkpoint, h of its
    /// weight layers
    pub(super) seg_x: Vec<usize>,
    pub(super) seg_h: Vec<usize>,
    /// the residual branch's post-activations (B rows)
    pub(super) tmp: usize,
    /// tangents (ping-pong) and two operand rows, B rows each
    pub(super) t: [usize; 2],
    pub(super) tu: usize,
    pub(super) tv: usize,
    /// backward rows (ping-pong) and four operand rows, `back_rows` each
    pub(super) d: [usize; 2],
    pub(super) du: usize,
    pub(super) dv: usize,
    pub(super) dp: usize,
    pub(super) dq: usize,
    pub(super) arena_len: usize,
    pub(super) back_rows: usize,
    pub(super) slice_stride: usize,
    pub(super) fwd_rec: Vec<usize>,
    pub(super) tan_rec: Vec<usize>,
    pub(super) back_rec: Vec<usize>,
    pub(super) pos_rec: usize,
    /// the SPP's per-channel sums of row l's output and of a residual
    /// branch's output (2 floats per channel; empty without --spp)
    pub(super) spp_rec: Vec<usize>,
    pub(super) spp_branch_rec: Vec<usize>,
    pub(super) ntk: Option<NtkPlaces>,
    pub(super) records_len: usize,
}

/// Where --ntk keeps its rows and records (`ntk.rs`).
pub(super) struct NtkPlaces {
    /// sets of B backward rows: 1, or B where a batch-norm couples the
    /// inputs (set a: the gradient of output a, which each row has a part of)
    pub(super) sets: usize,
    /// a layer's per-row weight gradients (every backward row, in the arena)
    pub(super) grads: usize,
    /// its per-channel bias or gain gradients (every backward row)
    pub(super) channel_grads: usize,
    /// with sets: those summed over each set (B rows)
    pub(super) summed_grads: usize,
    pub(super) summed_channel_grads: usize,
    /// slices per Gram entry
    pub(super) stride: usize,
    /// per weight layer (in stream order), its two Gram matrices
    pub(super) layer_rec: Vec<[usize; 2]>,
    /// those of x_0 and x_L
    pub(super) x_rec: [usize; 2],
}

/// The length of a layer's per-example weight gradient the NTK forms (a
/// convolution's, a standardised dense layer's, any dense layer's where a
/// batch-norm couples the inputs; a plain dense layer's term is otherwise a
/// product of Gram matrices).
fn ntk_grad_len(layer: &Layer, coupled: bool) -> usize {
    match layer.kind {
        LayerKind::Dense { .. } if coupled || layer.standardise.is_some() => {
            layer.input.units() * layer.output.units()
        }
        LayerKind::Conv { .. } | LayerKind::ConvTranspose { .. } => {
            let (rows, per_row) = tensor_shape(layer);
            rows * per_row
        }
        _ => 0,
    }
}

/// Where one pass finds the rows: x of row l at `x[l]`, h of weight layer
/// m at `h[m - 1]` (only the rows and layers the pass touches are set).
pub(super) struct Places {
    pub(super) x: Vec<usize>,
    pub(super) h: Vec<usize>,
}

impl Layout {
    /// `every`: the checkpoint interval (used with the backward pass).
    pub(super) fn new(
        spec: &RunSpec,
        arch: &crate::model::arch::Architecture,
        every: usize,
    ) -> Self {
        let batch = spec.batch;
        let depth = arch.depth();
        let probes = spec.probes;
        let keep = probes.runs_backward();
        let every = every.clamp(1, depth);
        let layers: Vec<&Layer> = arch.blocks.iter().flat_map(|b| b.layers()).collect();
        let max_units = (0..=depth)
            .map(|l| arch.units(l))
            .chain(layers.iter().map(|l| l.output.units()))
            .max()
            .unwrap();
        let row = batch * max_units;
        let stats_len = 2 * norm_groups(arch, batch, 1);
        let mut at = 0;
        let mut region = |len: usize| {
            let start = at;
            at += len;
            start
        };
        let x_ring = [region(row), region(row)];
        let h_ring = (0..slots(arch)).map(|_| region(row + stats_len)).collect();
        let (segments, seg_rows, seg_layers) = if keep {
            let segments = depth.div_ceil(every);
            // the most weight layers any segment holds
            let per_block: Vec<usize> = arch.blocks.iter().map(|b| b.layers().len()).collect();
            let seg_layers = per_block
                .chunks(every)
                .map(|c| c.iter().sum())
                .max()
                .unwrap();
            (segments, every, seg_layers)
        } else {
            (0, 0, 0)
        };
        let checkpoints = (0..segments).map(|_| region(row)).collect();
        let seg_x = (0..seg_rows).map(|_| region(row)).collect();
        let seg_h = (0..seg_layers).map(|_| region(row + stats_len)).collect();
        let tmp = region(row);
        let tangent_rows = if probes.jacobian { batch } else { 0 };
        let t = [
            region(tangent_rows * max_units),
            region(tangent_rows * max_units),
        ];
        let tu = region(tangent_rows * max_units);
        let tv = region(tangent_rows * max_units);
        // --ntk through a batch-norm: output a's gradient has rows beside
        // a's, so the backward pass runs B sets of B rows, set a from output a
        let sets = if probes.ntk.is_some() && arch.has_batch_norm() {
            batch
        } else {
            1
        };
        let back_rows = match (probes.runs_backward(), probes.jacobian) {
            (false, _) => 0,
            (true, false) => sets * batch,
            (true, true) => 2 * batch,
        };
        let d = [region(back_rows * max_units), region(back_rows * max_units)];
        let du = region(back_rows * max_units);
        let dv = region(back_rows * max_units);
        let dp = region(back_rows * max_units);
        let dq = region(back_rows * max_units);
        let norm_scratch = region(2 * norm_groups(arch, batch, sets.max(2)));
        // --ntk: a layer's per-row weight gradients and its per-channel
        // bias or gain gradients (every backward row), and with sets their
        // sums over each set: B rows each
        let ntk_grads = if probes.ntk.is_some() {
            layers
                .iter()
                .map(|l| ntk_grad_len(l, sets > 1))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let ntk_rows = if probes.ntk.is_some() {
            sets * batch
        } else {
            0
        };
        let ntk_pg = region(ntk_rows * ntk_grads);
        let ntk_pc = region(ntk_rows * max_units);
        let summed = if sets > 1 { batch } else { 0 };
        let ntk_sum_g = region(summed * ntk_grads);
        let ntk_sum_c = region(summed * max_units);
        let arena_len = at;

        let slice_stride = unit_slices(max_units);
        let mut at = 0;
        let mut region = |len: usize| {
            let start = at;
            at += len;
            start
        };
        let pair_len = batch / 2 * slice_stride * RECORD;
        let fwd_rec = (0..=depth).map(|_| region(pair_len)).collect();
        let tan_rec = (0..=depth)
            .map(|_| region(tangent_rows * slice_stride))
            .collect();
        let back_rec = (0..=depth)
            .map(|_| region(back_rows * slice_stride))
            .collect();
        let positions = match spec.arch.as_ref().and_then(|a| a.position_row) {
            Some(row) => {
                let (_, hh, ww) = dims(arch.shape(row));
                2 * hh * ww
            }
            None => 0,
        };
        let pos_rec = region(positions);
        let spp = spec.arch.as_ref().is_some_and(|a| a.spp);
        let channel_sums = |l: usize, needed: bool| -> usize {
            if spp && needed {
                2 * dims(arch.shape(l)).0
            } else {
                0
            }
        };
        let residual = |l: usize| {
            l > 0
                && matches!(
                    arch.blocks[l - 1],
                    crate::model::arch::Block::Residual { .. }
                )
        };
        let spp_rec = (0..=depth).map(|l| region(channel_sums(l, true))).collect();
        let spp_branch_rec = (0..=depth)
            .map(|l| region(channel_sums(l, residual(l))))
            .collect();
        // --ntk: two B x B Gram matrices per weight layer, and those of x_0
        // and x_L, each entry in slices
        let ntk = probes.ntk.map(|_| {
            let stride = unit_slices(ntk_grads.max(max_units));
            let gram = batch * batch * stride;
            NtkPlaces {
                sets,
                grads: ntk_pg,
                channel_grads: ntk_pc,
                summed_grads: ntk_sum_g,
                summed_channel_grads: ntk_sum_c,
                stride,
                layer_rec: layers
                    .iter()
                    .map(|_| [region(gram), region(gram)])
                    .collect(),
                x_rec: [region(gram), region(gram)],
            }
        });
        Layout {
            depth,
            every,
            x_ring,
            checkpoints,
            h_ring,
            h_row: row,
            norm_scratch,
            seg_x,
            seg_h,
            tmp,
            t,
            tu,
            tv,
            d,
            du,
            dv,
            dp,
            dq,
            arena_len,
            back_rows,
            slice_stride,
            fwd_rec,
            tan_rec,
            back_rec,
            pos_rec,
            spp_rec,
            spp_branch_rec,
            ntk,
            records_len: at,
        }
    }

    /// The forward pass: rows in turn, checkpoint rows in place.
    pub(super) fn forward_places(&self, layers: usize) -> Places {
        let x = (0..=self.depth)
            .map(|l| {
                if !self.checkpoints.is_empty() && l % self.every == 0 && l < self.depth {
                    self.checkpoints[l / self.every]
                } else {
                    self.x_ring[l % 2]
                }
            })
            .collect();
        let h = (0..layers)
            .map(|m| self.h_ring[m % self.h_ring.len()])
            .collect();
        Places { x, h }
    }

    /// Segment j: blocks a + 1..=b (a = j k) recomputed from the checkpoint
    /// of row a; `first_layer[i]` is block i + 1's first weight layer.
    pub(super) fn segment_places(&self, j: usize, first_layer: &[usize], layers: usize) -> Places {
        let (a, b) = self.segment(j);
        let mut x = vec![usize::MAX; self.depth + 1];
        x[a] = self.checkpoints[j];
        // rows a + 1..=b in the segment's rows
        for (slot, place) in x[a + 1..=b].iter_mut().zip(&self.seg_x) {
            *slot = *place;
        }
        let first = first_layer[a];
        let last = first_layer.get(b).copied().unwrap_or(layers + 1);
        let mut h = vec![usize::MAX; layers];
        // weight layers first..last in the segment's h rows
        for (slot, place) in h[first - 1..last - 1].iter_mut().zip(&self.seg_h) {
            *slot = *place;
        }
        Places { x, h }
    }

    /// The rows a..=b of segment j.
    pub(super) fn segment(&self, j: usize) -> (usize, usize) {
        let a = j * self.every;
        (a, (a + self.every).min(self.depth))
    }

    /// Where the normalisation statistics of the h rows at `h` are.
    pub(super) fn stats_of(&self, h: usize) -> usize {
        h + self.h_row
    }

    pub(super) fn fwd_scale(&self, l: usize) -> u32 {
        l as u32
    }
    pub(super) fn tan_scale(&self, l: usize) -> u32 {
        (self.depth + 1 + l) as u32
    }
    pub(super) fn d_scale(&self, l: usize) -> u32 {
        (2 * (self.depth + 1) + l) as u32
    }
    pub(super) fn v_scale(&self, l: usize) -> u32 {
        (3 * (self.depth + 1) + l) as u32
    }
    pub(super) fn scales_len(&self) -> usize {
        4 * (self.depth + 1)
    }
}
