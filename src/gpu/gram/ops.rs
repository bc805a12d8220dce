//! The gram engine's dispatch builders (normals, combinations, cross Gram
//! matrices, row kernels) and the reads of Gram matrices back into f64.

use super::*;
use crate::gpu::abi::KIND_BATCH_NORM;
use crate::model::init::WeightLaw;

impl<'a> GramGpu<'a> {
    /// How layer l's W is drawn (a normalisation has none: `weight_law`).
    pub(super) fn law(&self, l: usize) -> Law {
        let net = &self.spec.net;
        let w = self.weight_law(l);
        match w.dist {
            Dist::Orthogonal => Law::Orthogonal {
                gain: (w.variance * net.widths[l].max(net.widths[l - 1]) as f64).sqrt(),
            },
            _ => Law::Gaussian { v: w.variance },
        }
    }

    fn weight_law(&self, l: usize) -> WeightLaw {
        match self.layers[l].step {
            LayerStep::Linear { weight, .. } => weight,
            _ => unreachable!("layer {l} has no weights"),
        }
    }

    pub(super) fn is_norm(&self, l: usize) -> bool {
        self.layers[l].is_norm()
    }

    /// Parameters every step of layer `layer` shares (n_out: its width).
    pub(super) fn base(&self, network: usize, layer: usize) -> Params {
        // no weights are drawn (w zero); the combinations read their
        // coefficients from slot 0, over all B columns; the bias is the
        // layer's own (an architecture file's, not the summary's)
        let base = Params {
            w_dist: 0,
            w_scale: 0.0,
            cols: self.spec.batch as u32,
            coef_a: 0,
            ..Params::for_layer(self.spec, network, layer, self.lay.bs)
        };
        match self.layers[layer].step {
            LayerStep::Input => base,
            LayerStep::Linear { bias, .. } => Params {
                b_scale: bias.scale() as f32,
                b_dist: bias.dist.code(),
                b_trunc: bias.dist.truncation_mass() as f32,
                ..base
            },
            LayerStep::Norm { kind, eps, .. } => Params {
                b_scale: 0.0,
                norm_eps: eps as f32,
                norm_kind: crate::gpu::abi::norm_kind_code(kind),
                ..base
            },
        }
    }

    /// h_l = norm(x_{l-1}) for the normalisation layer l: x (B rows) read
    /// from `input` (with `is_x`, as it is: the forward pass's x or the
    /// input row; else phi(h_{l-1}), the activation of layer l - 1), h
    /// written to `out` (panel, float offset); with `adjoint` instead J^T d
    /// (= J d: J is symmetric) for the B rows d at `adjoint` (panel, float
    /// offset), times scales[`scale`] unless NO_SCALE.
    pub(super) fn normalise<'p>(
        &'p self,
        job: &mut Job<'p>,
        network: usize,
        l: usize,
        (input, is_x): (Panel, bool),
        adjoint: Option<(Panel, usize)>,
        out: (Panel, usize),
        scale: u32,
    ) {
        let base = self.base(network, l);
        let n = self.spec.net.widths[l];
        let mut ops = vec![
            Operand::either(input, FLAG_AUX_STORE),
            Operand::either(out.0, FLAG_OUT_STORE),
        ];
        ops.extend(adjoint.map(|(panel, _)| Operand::act(panel)));
        let placed = self.place(&ops);
        let p = Params {
            n_out: n as u32,
            flags: placed.flags | if is_x { FLAG_INPUT } else { 0 },
            aux_off: placed.at[0],
            out_off: placed.at[1] + out.1 as u32,
            in_off: adjoint.map_or(0, |(_, at)| placed.at[2] + at as u32),
            rows: self.spec.batch as u32,
            scale_a: scale,
            ..base
        };
        // batch-norm: an invocation per unit; else a workgroup per row
        let kernels = self.act(l - 1).norm.as_ref().expect("compiled for norms");
        let per_unit = base.norm_kind == KIND_BATCH_NORM;
        let pipeline = match (per_unit, adjoint.is_some()) {
            (true, false) => &kernels.units,
            (true, true) => &kernels.units_adjoint,
            (false, false) => &kernels.rows,
            (false, true) => &kernels.rows_adjoint,
        };
        let groups = if per_unit {
            dispatch_1d(stride(n), ELEMENTWISE_WG)
        } else {
            (self.spec.batch as u32, 1, 1)
        };
        self.push(job, pipeline, p, groups, &placed);
    }

    /// K standard normal rows of `n` units at Z's panel (the forward Z of
    /// layer `layer`, or with `back` the backward Z').
    pub(super) fn normals<'p>(&'p self, job: &mut Job<'p>, base: Params, n: usize, back: bool) {
        let placed = self.place(&[Operand::either(self.lay.z, FLAG_OUT_STORE)]);
        let p = Params {
            n_out: n as u32,
            out_off: placed.at[0],
            flags: placed.flags | if back { FLAG_GRAM_BACK } else { 0 },
            rows: self.lay.cols as u32,
            ..base
        };
        let groups = dispatch_1d(n.div_ceil(4) * self.lay.cols, GRAM_WG);
        self.push(job, &self.p.normals, p, groups, &placed);
    }

    /// out = sum of coefficient rows times in1 (and in2) + bias, base.rows
    /// rows of n over the K columns, written `out.1` floats into panel
    /// `out.0`; in1 None: the forward Z, drawn in the kernel. Coefficients:
    /// slot offsets.
    pub(super) fn combine<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        in1: (Option<Panel>, u32),
        in2: Option<(Panel, u32)>,
        out: (Panel, usize),
    ) {
        let mut ops = vec![Operand::either(out.0, FLAG_OUT_STORE)];
        if let Some(b) = in1.0 {
            ops.push(Operand::either(b, FLAG_IN_STORE));
        }
        if let Some((b, _)) = in2 {
            ops.push(Operand::act(b));
        }
        let placed = self.place(&ops);
        let mut at = placed.at[1..].iter();
        let in_off = if in1.0.is_some() {
            *at.next().unwrap()
        } else {
            0
        };
        let aux_off = if in2.is_some() {
            *at.next().unwrap()
        } else {
            0
        };
        let p = Params {
            n_out: n as u32,
            in_off,
            coef_a: in1.1,
            aux_off,
            // without a second input: the forward pass, whose coefficients'
            // low parts follow their high parts
            coef_b: in2.map_or(
                in1.1 + (self.lay.cols * stride(self.lay.cols)) as u32,
                |i| i.1,
            ),
            out_off: placed.at[0] + out.1 as u32,
            flags: placed.flags
                | if in1.0.is_none() { FLAG_Z_PHILOX } else { 0 }
                | if in2.is_none() { FLAG_COEF_LOW } else { 0 },
            cols: self.lay.cols as u32,
            ..base
        };
        let (x, y, _) = dispatch_1d(n.div_ceil(4), GRAM_WG);
        let tiles = (base.rows as usize).div_ceil(COMBINE_TILE) as u32;
        self.push(job, &self.p.combine, p, (x, y, tiles), &placed);
    }

    /// Records at grams[which] of (first - bias)^T second over n units
    /// (K rows each).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cross<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        first: Panel,
        second: Panel,
        which: usize,
        flags: u32,
    ) {
        let all = 0..self.lay.cols;
        self.cross_rows(job, base, n, (first, all), second, which, flags);
    }

    /// `cross` for rows `first.1` of the first operand only (their records).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cross_rows<'p>(
        &'p self,
        job: &mut Job<'p>,
        base: Params,
        n: usize,
        first: (Panel, std::ops::Range<usize>),
        second: Panel,
        which: usize,
        flags: u32,
    ) {
        let (first, rows) = first;
        let cols = self.lay.cols;
        let placed = self.place(&[
            Operand::either(first, FLAG_IN_STORE),
            Operand::either(second, FLAG_SECOND_STORE),
        ]);
        let p = Params {
            n_out: n as u32,
            in_off: placed.at[0] + (rows.start * stride(n)) as u32,
            aux_off: placed.at[1],
            rec_off: (self.lay.grams[which] + rows.start * cols * self.lay.bs) as u32,
            flags: flags | placed.flags,
            rows: rows.len() as u32,
            cols: cols as u32,
            // 1, unknown to the compiler: its bits XOR those of 1.0 are the 0
            // that gram_cross's opaque() XORs with (TwoSum)
            w_scale: 1.0,
            ..base
        };
        let tiles = |k: usize| k.div_ceil(CROSS_TILE) as u32;
        let groups = (slices(n) as u32, tiles(rows.len()), tiles(cols));
        self.push(job, &self.p.cross, p, groups, &placed);
    }

    pub(super) fn gram_read(&self, which: usize) -> Readback<'_> {
        Readback {
            buffer: &self.records,
            offset: self.lay.grams[which],
            len: self.lay.gram_len,
        }
    }

    /// The B x B matrix of grams[which] as read back (at `data`), its three
    /// parts summed over the slices of n units in f64; `symmetric`: mirror
    /// the upper triangle.
    pub(super) fn gram_matrix(&self, data: &[f32], n: usize, symmetric: bool) -> Vec<f64> {
        let b = self.lay.cols;
        let bs = self.lay.bs;
        let low = b * b * bs;
        let mut m = vec![0.0; b * b];
        for a in 0..b {
            for c in 0..b {
                let (i, j) = if symmetric && a > c { (c, a) } else { (a, c) };
                let at = (i * b + j) * bs;
                m[a * b + c] = (0..3)
                    .flat_map(|part| &data[part * low + at..][..slices(n)])
                    .map(|&v| v as f64)
                    .sum();
            }
        }
        m
    }

    /// The bound on the spectral norm of the error of the symmetric Gram
    /// matrix `g` (or E G E) summed by gram_cross over n units.
    pub(super) fn gram_noise(&self, g: &[f64], n: usize) -> f64 {
        algebra::gram_noise(g, side(g), self.sums_error_bound(n))
    }

    pub(super) fn submit_read(&self, job: &Job, reads: &[Readback]) -> Result<Vec<f32>> {
        let groups: Vec<wgpu::BindGroup> = job.views.iter().map(|&v| self.bind_group(v)).collect();
        let mut scratch = Vec::new();
        let flight = self.submitter.submit_bound(
            self.ctx,
            &|i| &groups[i],
            &job.steps,
            reads,
            0,
            &mut scratch,
        )?;
        self.submitter
            .read(self.ctx, flight, |data, _| data.to_vec())
    }

    /// The offset (in f32s) of coefficient slot `slot`.
    pub(super) fn slot(&self, slot: usize) -> u32 {
        (slot * coef_slot(self.lay.cols)) as u32
    }

    /// --jacobian: the coefficients of the rows W t in slot `slot` (rows B..2B).
    pub(super) fn tangent_slot(&self, slot: usize) -> u32 {
        self.slot(slot) + (self.spec.batch * stride(self.lay.cols)) as u32
    }

    /// The scales e of the stored columns of X~ = r X E, E = diag(e): 1 for
    /// x, r_t / r for the tangents (--jacobian; else all 1).
    pub(super) fn column_scales(&self, r: f32, r_t: Option<f32>) -> Vec<f64> {
        let b = self.spec.batch;
        let rho = r_t.map_or(1.0, |rt| rt as f64 / r as f64);
        (0..self.lay.cols)
            .map(|c| if c < b { 1.0 } else { rho })
            .collect()
    }

    /// The offset of the tangent rows (rows B..2B) of a panel at width n.
    pub(super) fn below(&self, n: usize) -> usize {
        self.spec.batch * stride(n)
    }

    /// --jacobian: the stored tangent t_l (B rows at the start of panel
    /// `out`, or at its tangent rows with `tangent_half`) again from the
    /// checkpointed h~_l in panel `h`: t_l = phi'(h_l) (W t)_l, or at l = 0
    /// the probes u themselves (their stream).
    pub(super) fn tangent_rows<'p>(
        &'p self,
        job: &mut Job<'p>,
        network: usize,
        l: usize,
        h: Panel,
        out: (Panel, usize),
    ) {
        let base = self.base(network, l);
        let n = self.spec.net.widths[l];
        let batch = self.spec.batch;
        if l == 0 {
            let placed = self.place(&[Operand::act(out.0)]);
            let p = Params {
                flags: FLAG_INPUT,
                out_off: placed.at[0] + out.1 as u32,
                ..base
            };
            let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
            self.push(job, &self.p.gen_normal_rows, p, groups, &placed);
            return;
        }
        let placed = self.place(&[Operand::either(h, FLAG_AUX_STORE), Operand::act(out.0)]);
        let p = Params {
            flags: placed.flags | FLAG_INPUT,
            aux_off: placed.at[0] + self.below(n) as u32,
            out_off: placed.at[1] + out.1 as u32,
            ..base
        };
        let groups = dispatch_1d(batch * stride(n), ELEMENTWISE_WG);
        self.push(job, &self.act(l).activate, p, groups, &placed);
        let p = Params {
            flags: placed.flags,
            in_off: placed.at[1] + out.1 as u32,
            out_off: placed.at[1] + out.1 as u32,
            aux_off: placed.at[0],
            rec_off: self.lay.tangent as u32,
            ..base
        };
        let groups = (slices(n) as u32, batch as u32, 1);
        self.push(job, &self.act(l).scale_by_deriv, p, groups, &placed);
    }

    /// The Gram matrix the engine's compensated sums give of K given rows
    /// of the input width (row-major, K rows of n), in f64, with the bound
    /// on each entry's relative error the engine uses on this adapter
    /// (`sums_error_bound`): the kernel on its own, for tests.
    pub fn gram_of_rows(&self, rows: &[f32]) -> Result<(Vec<f64>, f64)> {
        let n = self.spec.net.widths[0];
        let (g, _) = self.gram_of_rows_over(rows, n)?;
        Ok((g, self.sums_error_bound(n)))
    }

    /// The Gram matrix of rows of n <= the input width units, with the
    /// derived bound (`algebra::gram_error_bound`).
    pub(super) fn gram_of_rows_over(&self, rows: &[f32], n: usize) -> Result<(Vec<f64>, f64)> {
        let k = self.lay.cols;
        assert_eq!(rows.len(), k * n, "K rows of the input width");
        let mut padded = vec![0.0f32; k * stride(n)];
        for (r, row) in rows.chunks(n).enumerate() {
            padded[r * stride(n)..r * stride(n) + n].copy_from_slice(row);
        }
        let x = self.lay.x;
        self.ctx.queue.write_buffer(
            &self.row_buffers[x.buffer],
            (x.at * 4) as u64,
            bytemuck::cast_slice(&padded),
        );
        let mut job = Job::default();
        self.cross(&mut job, self.base(0, 0), n, x, x, GX, FLAG_SYMMETRIC);
        let data = self.submit_read(&job, &[self.gram_read(GX)])?;
        Ok((
            self.gram_matrix(&data, n, true),
            Self::derived_error_bound(n),
        ))
    }
}
