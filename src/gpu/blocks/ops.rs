//! The block engine's dispatch builders: the pipelines it uses, the
//! parameters of a layer's kernels, the queue of pending dispatches and its
//! flush, and the steps that draw weights, apply a layer (forward and
//! transposed), apply elementwise maps and record a row's moments.

use super::*;

impl<'a> BlocksGpu<'a> {
    pub(super) fn arch(&self) -> &crate::model::arch::Architecture {
        self.program.arch
    }

    /// The pipeline of `entry`, specialised for `act` (cached in the context).
    pub(super) fn pipeline(&self, entry: &str, act: &Activation) -> Result<wgpu::ComputePipeline> {
        self.ctx
            .pipeline(Module::Blocks, entry, act, Some(&self.pipeline_layout))
    }

    /// A kernel that does not use the activation.
    pub(super) fn plain(&self, entry: &str) -> Result<wgpu::ComputePipeline> {
        self.pipeline(entry, &Activation::Identity)
    }

    pub(super) fn base(&self, network: usize) -> BlockParams {
        let seed = self.spec.seed;
        BlockParams {
            batch: self.spec.batch as u32,
            rows: self.spec.batch as u32,
            slice_stride: self.layout.slice_stride as u32,
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

    pub(super) fn slot_offsets(&self, slot: usize) -> (u32, u32) {
        let w = slot * self.slot_len;
        (w as u32, (w + self.max_tensor) as u32)
    }

    /// Where slot `slot`'s row factors gain / std of a standardised tensor are.
    pub(super) fn row_scales_offset(&self, slot: usize) -> u32 {
        (slot * self.slot_len + self.row_scales_at) as u32
    }

    /// The parameters of `layer` (in weight slot `slot`) for linear and
    /// linear_t over `rows` rows from `input` to `out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_params(
        &self,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
    ) -> BlockParams {
        let mut p = self.base(network);
        p.rows = rows as u32;
        p.in_off = input as u32;
        p.out_off = out as u32;
        let (c_in, h_in, w_in) = dims(layer.input);
        let (c_out, h_out, w_out) = dims(layer.output);
        (p.c_in, p.h_in, p.w_in) = (c_in as u32, h_in as u32, w_in as u32);
        (p.c_out, p.h_out, p.w_out) = (c_out as u32, h_out as u32, w_out as u32);
        (p.w_off, p.b_off) = self.slot_offsets(slot);
        match &layer.kind {
            LayerKind::Dense { .. } => p.kind = KIND_DENSE,
            LayerKind::Attention(_) => {
                unreachable!("no attention reaches the block engine: gpu::choice refuses it")
            }
            LayerKind::Conv {
                kernel,
                padding,
                stride,
                ..
            } => {
                p.kind = KIND_CONV;
                p.kernel = *kernel as u32;
                p.stride = *stride as u32;
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
            LayerKind::Scale { .. } => p.kind = KIND_SCALE,
            LayerKind::AvgPool { kh, kw, stride } => {
                p.kind = KIND_AVG_POOL;
                (p.kernel, p.kernel_w, p.stride) = (*kh as u32, *kw as u32, *stride as u32);
            }
            LayerKind::Norm { kind, eps, .. } => {
                p.kind = crate::gpu::abi::norm_kind_code(*kind);
                p.eps = *eps as f32;
                p.units = layer.output.units() as u32;
            }
        }
        p
    }

    /// Groups of a normalisation's statistics over `rows` rows (sets of B).
    fn norm_group_count(&self, layer: &Layer, rows: usize) -> usize {
        layout::norm_group_count(layer, rows, self.spec.batch).expect("a normalisation")
    }

    /// A layer's pre-activation over the B rows at `input`, to `out`: W x
    /// + b, or the normalisation (its statistics beside `out`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_forward(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
    ) -> Result<()> {
        let batch = self.spec.batch;
        if !layer.is_norm() {
            // pooling and scales have no bias (nothing was drawn into the slot's)
            let bias = layer.has_weights();
            return self.linear(q, network, layer, slot, input, out, batch, bias, 0.0);
        }
        let mut p = self.layer_params(network, layer, slot, input, out, batch);
        let stats = self.layout.stats_of(out);
        p.out_off = stats as u32;
        let groups = self.norm_group_count(layer, batch) as u32;
        self.push(q, self.plain("norm_stats")?, p, (groups, 1, 1))?;
        p.out_off = out as u32;
        p.u_off = stats as u32;
        let entries = batch * layer.output.units();
        self.push(q, self.plain("norm_apply")?, p, groups_1d(entries))
    }

    /// The derivative of a layer's pre-activation along `rows` rows at
    /// `input`, to `out`: W a, or the normalisation's Jacobian at its saved
    /// output `h` (symmetric: also its adjoint).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_tangent(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
        h: usize,
    ) -> Result<()> {
        if !layer.is_norm() {
            return self.linear(q, network, layer, slot, input, out, rows, false, 0.0);
        }
        self.norm_jacobian(q, network, layer, input, out, rows, h)
    }

    /// The adjoint of [`Self::layer_tangent`]: W^T a, or the Jacobian.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_adjoint(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
        h: usize,
    ) -> Result<()> {
        if !layer.is_norm() {
            return self.linear_t(q, network, layer, slot, input, out, rows);
        }
        self.norm_jacobian(q, network, layer, input, out, rows, h)
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_jacobian(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        input: usize,
        out: usize,
        rows: usize,
        h: usize,
    ) -> Result<()> {
        let mut p = self.layer_params(network, layer, 0, input, out, rows);
        p.h_off = h as u32;
        p.u_off = self.layout.stats_of(h) as u32;
        p.v_off = self.layout.norm_scratch as u32;
        let groups = self.norm_group_count(layer, rows) as u32;
        self.push(q, self.plain("norm_jacobian_sums")?, p, (groups, 1, 1))?;
        let entries = rows * layer.output.units();
        self.push(q, self.plain("norm_jacobian")?, p, groups_1d(entries))
    }

    pub(super) fn push(
        &self,
        q: &mut Pending,
        pipeline: wgpu::ComputePipeline,
        params: BlockParams,
        groups: (u32, u32, u32),
    ) -> Result<()> {
        q.steps.push(Queued {
            pipeline,
            params,
            groups,
        });
        if q.steps.len() == self.submitter.max_steps() {
            self.flush(q)?;
        }
        Ok(())
    }

    /// Submits the queued dispatches (in order, one compute pass).
    pub(super) fn flush(&self, q: &mut Pending) -> Result<()> {
        if !q.steps.is_empty() {
            self.submit(q, &[])?;
        }
        Ok(())
    }

    /// Submits the queued dispatches and then the copies of `reads`.
    pub(super) fn submit(&self, q: &mut Pending, reads: &[Readback]) -> Result<InFlight> {
        let steps: Vec<Step<BlockParams>> = q
            .steps
            .iter()
            .map(|s| Step {
                pipeline: &s.pipeline,
                params: s.params,
                groups: s.groups,
            })
            .collect();
        let job =
            self.submitter
                .submit(self.ctx, &self.bind_group, &steps, reads, 0, &mut q.scratch)?;
        q.steps.clear();
        Ok(job)
    }

    /// W and b of weight layer `number` into weight slot `slot`, on the
    /// Philox counters the CPU reference draws: iid laws drawn in place,
    /// orthogonal ones from the Householder QR of the Gaussian drawn the
    /// same way (submitted after the queued work that still reads the
    /// slot), then placed into the layer's layout.
    pub(super) fn weights(
        &self,
        q: &mut Pending,
        network: usize,
        number: usize,
        layer: &Layer,
        slot: usize,
    ) -> Result<()> {
        if let LayerKind::Scale { .. } = layer.kind {
            // its factor, from the program, where the linear kernel reads it
            let mut p = self.base(network);
            p.w_off = self.slot_offsets(slot).0;
            p.w_scale = self.program.factors[number - 1] as f32;
            return self.push(q, self.plain("set_factor")?, p, (1, 1, 1));
        }
        if !layer.has_weights() {
            return Ok(());
        }
        let law = layer.draw_law(number);
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
            qr.submit(self.ctx, self.spec.seed, network, number, n_out, n_in, gain)?;
            p.kernel = match &layer.kind {
                LayerKind::Conv { kernel, .. } if layer.delta_orthogonal => *kernel as u32,
                _ => 1,
            };
            let entries = rows * per_row;
            self.push(q, self.plain("place_orthogonal")?, p, groups_1d(entries))?;
        } else {
            p.dist = law.dist.code();
            p.trunc = law.dist.truncation_mass() as f32;
            p.w_scale = law.scale() as f32;
            let groups = groups_1d(rows * per_row.div_ceil(4));
            self.push(q, self.plain("draw_weights")?, p, groups)?;
            if let Some(ws) = layer.standardise {
                let mut s = p;
                s.w_scale = (ws.gain(per_row) * layer.scale) as f32;
                s.u_off = self.row_scales_offset(slot);
                self.push(
                    q,
                    self.plain("standardise_weights")?,
                    s,
                    (rows as u32, 1, 1),
                )?;
            }
        }
        let bias = layer.bias_law();
        let channels = out_channels(layer);
        p.rows = channels as u32;
        p.b_off = b_off;
        p.dist = bias.dist.code();
        p.trunc = bias.dist.truncation_mass() as f32;
        p.w_scale = if bias.variance == 0.0 {
            0.0
        } else {
            bias.scale() as f32
        };
        self.push(q, self.plain("draw_bias")?, p, groups_1d(channels))
    }

    /// out = W in (+ b) + offset over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear(
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
        let mut p = self.layer_params(network, layer, slot, input, out, rows);
        p.flags = if bias { FLAG_BIAS } else { 0 };
        p.offset = offset as f32;
        if let Some(tiles) = self.conv_tiles(layer, layer.output) {
            return self.push(q, self.plain("conv_tiled")?, p, groups_1d(rows * tiles));
        }
        self.push(
            q,
            self.plain("linear")?,
            p,
            groups_1d(rows * layer.output.units()),
        )
    }

    /// out = W^T in over `rows` rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear_t(
        &self,
        q: &mut Pending,
        network: usize,
        layer: &Layer,
        slot: usize,
        input: usize,
        out: usize,
        rows: usize,
    ) -> Result<()> {
        let p = self.layer_params(network, layer, slot, input, out, rows);
        if let Some(tiles) = self.conv_tiles(layer, layer.input) {
            return self.push(q, self.plain("conv_tiled_t")?, p, groups_1d(rows * tiles));
        }
        let groups = groups_1d(rows * layer.input.units());
        self.push(q, self.plain("linear_t")?, p, groups)
    }

    /// The invocations per row of the tiled kernel for `layer`'s result of
    /// shape `result` (its output forward, its input for the adjoint):
    /// stride-1 convolutions, unless the plain kernel is asked for.
    fn conv_tiles(&self, layer: &Layer, result: Shape) -> Option<usize> {
        let tiled = self.conv_kernel == ConvKernel::Tiled;
        match (&layer.kind, result) {
            (LayerKind::Conv { stride: 1, .. }, Shape::Image(c, h, w)) if tiled => {
                let (tc, tx) = (CONV_TILE_C as usize, CONV_TILE_X as usize);
                Some(c.div_ceil(tc) * h * w.div_ceil(tx))
            }
            _ => None,
        }
    }

    /// An elementwise kernel over `rows` rows of `units`, its operands set by `set`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn elementwise(
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
    pub(super) fn record_forward(
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
        let groups = (unit_slices(units) as u32, (self.spec.batch / 2) as u32, 1);
        self.push(q, self.pipeline("pair_moments", &act)?, p, groups)?;
        if self.spp() {
            self.channel_moments(q, network, l, post, lay.spp_rec[l])?;
        }
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

    pub(super) fn spp(&self) -> bool {
        self.spec.arch.as_ref().is_some_and(|a| a.spp)
    }

    /// The SPP's per-channel sums of the B rows of row l's shape at `at`.
    pub(super) fn channel_moments(
        &self,
        q: &mut Pending,
        network: usize,
        l: usize,
        at: usize,
        rec: usize,
    ) -> Result<()> {
        let (c, h, w) = dims(self.arch().shape(l));
        let mut p = self.base(network);
        p.units = (c * h * w) as u32;
        (p.c_out, p.h_out, p.w_out) = (c as u32, h as u32, w as u32);
        p.in_off = at as u32;
        p.rec_off = rec as u32;
        self.push(q, self.plain("channel_moments")?, p, (c as u32, 1, 1))
    }

    /// Norms of `rows` rows of `units` at `at` into `rec`, and the
    /// renormalisation factor of rows first..first+count into `scale_out`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_rows(
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
        let groups = (unit_slices(units) as u32, rows as u32, 1);
        self.push(q, self.plain("row_norms")?, p, groups)?;
        for &(first, scale_out) in factors {
            let mut f = p;
            f.rows = self.spec.batch as u32;
            f.rec_off = (rec + first * self.layout.slice_stride) as u32;
            f.flags = FLAG_ROW_RECORDS | FLAG_RENORM;
            f.scale_out = scale_out;
            self.push(q, self.plain("finalize")?, f, (1, 1, 1))?;
        }
        Ok(())
    }
}
