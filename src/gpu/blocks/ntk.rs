//! The NTK through an architecture file on the block engine (--ntk): the
//! backward pass starts from the readout's gradient (`passes::backward`),
//! and at every layer with parameters two B x B Gram matrices are recorded,
//! from which the host forms the layer's term of Theta as
//! `sim::cpu::block_ntk` does from the per-example gradients:
//!
//! ```text
//! dense:            G(d) * (v G(x) + sb)           (entrywise)
//! conv, conv-transpose:  v G(dW) + sb G(db)        dW the per-example weight gradient, db = sum_p d
//! normalisation (affine): g G(sum_p d y) + s G(sum_p d)
//! standardised conv, dense:  v G(dV) + sb G(db)       dV = s (dW - mean dW - u mean(u dW)) per row
//! ```
//!
//! with d the gradient with respect to the layer's pre-activation, x its
//! input, (v, sb), (g, s) as `stats::ntk` counts them, and for weight
//! standardisation W = s (V - mean V) row by row, u = W / gain: the
//! parameters are the raw draws V. Where a batch-norm couples the inputs the
//! backward pass runs B sets of B rows (set a from df_a/dx_L = w in row a
//! only), and each output's gradients are summed over its set's rows before
//! their Gram matrix is taken (dense layers then form dW too). The rows are on
//! their stored scales: x times the forward renormalisations up to its row,
//! d times sqrt(n_L) (the readout's w is drawn without 1 / sqrt(n_L)) and
//! the backward renormalisations from the top down to the block's row.

use super::layout::NtkPlaces;
use super::*;
use crate::gpu::abi::{FLAG_GAIN, FLAG_READOUT, STREAM_READOUT};
use crate::model::arch::Block;
use crate::sim::stats::ntk::{NtkTerms, affine_coefficients, layer_coefficients};

impl BlocksGpu<'_> {
    fn ntk_places(&self) -> &NtkPlaces {
        self.layout.ntk.as_ref().expect("laid out for --ntk")
    }

    /// The readout's w in every backward row at `at` (row `units` long);
    /// with sets (a batch-norm), only in row a of set a.
    pub(super) fn draw_readout(&self, q: &mut Pending, network: usize, at: usize) -> Result<()> {
        let id = Activation::Identity;
        let (rows, depth) = (self.layout.back_rows, self.arch().depth());
        let units = self.arch().units(depth);
        self.elementwise(q, network, "draw_normal", &id, rows, units, |p| {
            p.out_off = at as u32;
            p.stream = STREAM_READOUT;
            p.layer = depth as u32;
            p.flags = FLAG_READOUT;
        })?;
        if self.ntk_places().sets > 1 {
            self.elementwise(q, network, "own_rows_only", &id, rows, units, |p| {
                p.out_off = at as u32;
            })?;
        }
        Ok(())
    }

    /// The Gram matrix of the B rows of `units` at `at` into `rec`.
    fn row_gram(
        &self,
        q: &mut Pending,
        network: usize,
        at: usize,
        units: usize,
        rec: usize,
    ) -> Result<()> {
        let stride = self.ntk_places().stride;
        let mut p = self.base(network);
        p.units = units as u32;
        p.in_off = at as u32;
        p.rec_off = rec as u32;
        p.slice_stride = stride as u32;
        let b = self.spec.batch as u32;
        self.push(
            q,
            self.plain("row_gram")?,
            p,
            (unit_slices(units) as u32, b, b),
        )
    }

    /// X_0^T X_0 (`top` false) or X_L^T X_L of the rows at `at`.
    pub(super) fn ntk_x_gram(
        &self,
        q: &mut Pending,
        network: usize,
        top: bool,
        at: usize,
    ) -> Result<()> {
        let row = if top { self.arch().depth() } else { 0 };
        let rec = self.ntk_places().x_rec[top as usize];
        self.row_gram(q, network, at, self.arch().units(row), rec)
    }

    /// Whether a layer's term needs its weight gradient itself (a
    /// convolution, a standardised layer, any layer with sets), not the
    /// product of its input's and its delta's Gram matrices.
    fn forms_weight_gradients(&self, layer: &Layer) -> bool {
        match layer.kind {
            LayerKind::Dense { .. } => layer.standardise.is_some() || self.ntk_places().sets > 1,
            LayerKind::Conv { .. } | LayerKind::ConvTranspose { .. } => true,
            _ => false,
        }
    }

    /// The two Gram matrices of weight layer `number` (in weight slot
    /// `slot`): its input rows at `x`, the gradient with respect to its
    /// pre-activation at `d` (every backward row), a normalisation's output
    /// at `y`. With sets, each output's gradients are first summed over its
    /// set's rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ntk_layer(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        number: usize,
        slot: usize,
        x: usize,
        d: usize,
        y: usize,
    ) -> Result<()> {
        let places = self.ntk_places();
        let [rec_a, rec_b] = places.layer_rec[number - 1];
        let batch = self.spec.batch;
        let rows = places.sets * batch;
        let (n_in, n_out) = (layer.input.units(), layer.output.units());
        let channels = out_channels(layer);
        // per-row gradients of `len` at `at`, to the B rows whose Gram matrix is taken
        let per_output = |q: &mut Pending, at: usize, summed: usize, len: usize| -> Result<usize> {
            if places.sets == 1 {
                return Ok(at);
            }
            let id = Activation::Identity;
            self.elementwise(q, network, "sum_sets", &id, batch, len, |p| {
                p.in_off = at as u32;
                p.out_off = summed as u32;
            })?;
            Ok(summed)
        };
        let channel_grads = |q: &mut Pending, gain: bool, rec: usize| -> Result<()> {
            let mut p = self.layer_params(network, layer, slot, d, places.channel_grads, rows);
            p.h_off = y as u32;
            p.flags = if gain { FLAG_GAIN } else { 0 };
            self.push(
                q,
                self.plain("channel_grads")?,
                p,
                groups_1d(rows * channels),
            )?;
            let g = per_output(
                q,
                places.channel_grads,
                places.summed_channel_grads,
                channels,
            )?;
            self.row_gram(q, network, g, channels, rec)
        };
        if !self.forms_weight_gradients(layer) {
            return match layer.kind {
                LayerKind::Dense { .. } => {
                    self.row_gram(q, network, x, n_in, rec_a)?;
                    self.row_gram(q, network, d, n_out, rec_b)
                }
                LayerKind::Norm { affine: true, .. } => {
                    channel_grads(q, true, rec_a)?;
                    channel_grads(q, false, rec_b)
                }
                _ => Ok(()),
            };
        }
        let (tensor_rows, per_row) = tensor_shape(layer);
        let len = tensor_rows * per_row;
        let mut p = self.layer_params(network, layer, slot, d, places.grads, rows);
        p.x_off = x as u32;
        match layer.kind {
            LayerKind::Dense { .. } => {
                self.push(
                    q,
                    self.plain("dense_weight_grads")?,
                    p,
                    groups_1d(rows * len),
                )?;
            }
            LayerKind::Conv {
                kernel: 3,
                stride: 1,
                ..
            } => {
                // 4 output by 4 input channels at a kernel row's 3 taps per invocation
                let c_in = dims(layer.input).0;
                let tiles = channels.div_ceil(4) * c_in.div_ceil(4) * 3;
                self.push(
                    q,
                    self.plain("weight_grads_3x3")?,
                    p,
                    groups_1d(rows * tiles),
                )?;
            }
            LayerKind::Conv { kernel, .. } => {
                // 8 output by 4 input channels at a tap per invocation
                let c_in = dims(layer.input).0;
                let tiles = channels.div_ceil(8) * c_in.div_ceil(4) * kernel * kernel;
                self.push(
                    q,
                    self.plain("weight_grads_tiled")?,
                    p,
                    groups_1d(rows * tiles),
                )?;
            }
            _ => self.push(
                q,
                self.plain("convt_weight_grads")?,
                p,
                groups_1d(rows * len),
            )?,
        }
        let g = per_output(q, places.grads, places.summed_grads, len)?;
        if let Some(ws) = layer.standardise {
            // back to the raw draws, output by output (the map is linear)
            let mut p = self.layer_params(network, layer, slot, d, g, batch);
            p.per_row = per_row as u32;
            p.c_out = tensor_rows as u32;
            p.u_off = self.row_scales_offset(slot);
            p.w_scale = (ws.gain(per_row) * layer.scale) as f32;
            let groups = (tensor_rows as u32, batch as u32, 1);
            self.push(q, self.plain("standardise_grads")?, p, groups)?;
        }
        self.row_gram(q, network, g, len, rec_a)?;
        channel_grads(q, false, rec_b)
    }

    /// The NTK's terms from the records and scales of one network.
    pub(super) fn ntk_terms(&self, records: &[f32], scales: &[f32]) -> NtkTerms {
        let places = self.ntk_places();
        let lay = &self.layout;
        let arch = self.arch();
        let param = self.spec.probes.ntk.expect("an NTK run");
        let b = self.spec.batch;
        let depth = arch.depth();
        let gram = |rec: usize| -> Vec<f64> {
            let entry = |i: usize, j: usize| -> f64 {
                let (i, j) = (i.min(j), i.max(j));
                let at = rec + (i * b + j) * places.stride;
                records[at..at + places.stride]
                    .iter()
                    .map(|&v| v as f64)
                    .sum()
            };
            (0..b * b).map(|k| entry(k / b, k % b)).collect()
        };
        // log of stored over true: x of row l, and d within block l
        let ln = |i: u32| (scales[i as usize] as f64).ln();
        let mut log_x = vec![0.0; depth + 1];
        let mut acc = 0.0;
        for (l, lx) in log_x.iter_mut().enumerate() {
            acc += ln(lay.fwd_scale(l));
            *lx = acc;
        }
        let n_top = arch.units(depth);
        let mut log_d = vec![0.0; depth + 1];
        let mut acc = 0.5 * (n_top as f64).ln();
        for l in (1..=depth).rev() {
            acc += ln(lay.d_scale(l));
            log_d[l] = acc;
        }
        let scaled = |g: Vec<f64>, log: f64| -> Vec<f64> {
            let s = (-2.0 * log).exp();
            g.into_iter().map(|v| v * s).collect()
        };
        let mut terms = vec![vec![0.0; b * b]; depth];
        for (l, block) in arch.blocks.iter().enumerate() {
            let first = self.first_layer[l];
            let (lx, ld) = (log_x[l], log_d[l + 1]);
            for (slot, layer) in block.layers().into_iter().enumerate() {
                let number = first + slot;
                let [rec_a, rec_b] = places.layer_rec[number - 1];
                let bias = !matches!(block, Block::Highway { .. }) || slot == 0;
                let term: Vec<f64> = match layer.kind {
                    LayerKind::Dense { .. } if !self.forms_weight_gradients(layer) => {
                        let (v, sb) = layer_coefficients(layer, number, param, bias);
                        let (xx, dd) = (scaled(gram(rec_a), lx), scaled(gram(rec_b), ld));
                        dd.iter().zip(&xx).map(|(g, k)| g * (v * k + sb)).collect()
                    }
                    LayerKind::Dense { .. }
                    | LayerKind::Conv { .. }
                    | LayerKind::ConvTranspose { .. } => {
                        let (v, sb) = layer_coefficients(layer, number, param, bias);
                        let (w, c) = (scaled(gram(rec_a), lx + ld), scaled(gram(rec_b), ld));
                        w.iter().zip(&c).map(|(w, c)| v * w + sb * c).collect()
                    }
                    LayerKind::Norm {
                        kind, affine: true, ..
                    } => {
                        let (g, s) = affine_coefficients(kind);
                        let (a, c) = (scaled(gram(rec_a), ld), scaled(gram(rec_b), ld));
                        a.iter().zip(&c).map(|(a, c)| g * a + s * c).collect()
                    }
                    _ => continue,
                };
                for (acc, v) in terms[l].iter_mut().zip(term) {
                    *acc += v;
                }
            }
        }
        NtkTerms {
            terms,
            top_x: scaled(gram(places.x_rec[1]), log_x[depth]),
            input_x: scaled(gram(places.x_rec[0]), log_x[0]),
            n_top,
        }
    }
}
