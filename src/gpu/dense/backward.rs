//! The dense engine's backward pass: one checkpoint segment recomputed and
//! walked down as one job, and its records taken from the readback.

use super::*;

impl<'a> DenseGpu<'a> {
    /// Recomputes segment j (layers a+1..=b from the checkpoint of h_a) and
    /// walks the backward pass down through it, producing delta_b..delta_a
    /// (and delta_L at the top).
    pub(super) fn encode_backward<'p>(
        &'p self,
        network: usize,
        j: usize,
        steps: &mut Vec<Step<'p>>,
        ranges: &mut Vec<Range>,
    ) {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let depth = lay.depth;
        let probes = self.spec.probes;
        // the NTK's backward pass starts from the readout's gradient
        let ntk = probes.ntk.is_some();
        let plan = self.segment_plan(j);
        let (a, b) = (plan.a, plan.b);
        let (back_len, gram_len, with_grams) = (plan.back_len, plan.gram_len, plan.with_grams);
        let back_rec = |l: usize| plan.back_rec(l);
        let gram_rec = |l: usize| plan.gram_rec(l);

        // recompute: x_a from the checkpoint, then h_{a+1..=b}
        let base_a = self.base(network, a);
        let flags = FLAG_AUX_STORE | if a == 0 { FLAG_INPUT } else { 0 };
        let p = Params {
            flags,
            aux_off: lay.checkpoint(j) as u32,
            out_off: lay.x[a % 2] as u32,
            ..base_a
        };
        steps.push(self.activate_step(net.widths[a], p));
        for l in a + 1..=b {
            let base = self.base(network, l);
            self.weights_steps(steps, base, true);
            let x_prev = lay.x[(l - 1) % 2] as u32;
            let p = Params {
                flags: FLAG_OUT_STORE,
                in_off: x_prev,
                out_off: lay.segment(l - a - 1) as u32,
                scale_a: lay.forward_scale(l - 1),
                ..base
            };
            steps.push(self.product_step(p, false));
            if with_grams {
                let p = Params {
                    in_off: x_prev,
                    n_out: net.widths[l - 1] as u32,
                    rec_off: gram_rec(l) as u32,
                    ..base
                };
                steps.push(self.gram_step(p, net.widths[l - 1]));
            }
            if l < b {
                let p = Params {
                    flags: FLAG_AUX_STORE,
                    aux_off: lay.segment(l - a - 1) as u32,
                    out_off: lay.x[l % 2] as u32,
                    ..base
                };
                steps.push(self.activate_step(net.widths[l], p));
            }
        }

        // h_l of this segment for phi': recomputed, or the checkpoint for h_a
        let h_of = |l: usize| -> (u32, u32) {
            if l == a {
                (lay.checkpoint(j) as u32, FLAG_AUX_STORE)
            } else {
                (lay.segment(l - a - 1) as u32, FLAG_AUX_STORE)
            }
        };
        let back_finalize = |steps: &mut Vec<Step<'p>>, l: usize| {
            let base = self.base(network, l);
            let p = Params {
                flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                rec_off: back_rec(l) as u32,
                rows: batch as u32,
                scale_out: lay.delta_scale(l),
                ..base
            };
            self.finalize_step(steps, p);
            if probes.jacobian {
                let rec = back_rec(l) + batch * lay.slice_stride;
                let p = Params {
                    flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                    rec_off: rec as u32,
                    rows: batch as u32,
                    scale_out: lay.vjp_scale(l),
                    ..base
                };
                self.finalize_step(steps, p);
            }
        };
        if b == depth {
            // delta_L: Gaussian rows; with --jacobian, phi'(h_L) t_L beside
            // them; for the NTK phi'(h_L) w, w the readout (its 1 / sqrt(n_L)
            // is left to the statistics)
            let base = self.base(network, depth);
            let d = lay.d[depth % 2];
            let p = Params {
                flags: if ntk { FLAG_READOUT } else { 0 },
                out_off: d as u32,
                ..base
            };
            steps.push(Step {
                pipeline: &self.pipelines.gen_normal_rows,
                params: p,
                groups: dispatch_1d(batch * net.widths[depth].div_ceil(4), GEN_WG),
            });
            let p = if ntk {
                let (h, flag) = h_of(depth);
                Params {
                    flags: flag,
                    in_off: d as u32,
                    out_off: d as u32,
                    aux_off: h,
                    rec_off: back_rec(depth) as u32,
                    ..base
                }
            } else {
                Params {
                    flags: FLAG_NO_DERIV,
                    in_off: d as u32,
                    out_off: d as u32,
                    rec_off: back_rec(depth) as u32,
                    ..base
                }
            };
            self.row_steps(steps, p);
            if ntk {
                // X_L^T X_L for the readout's term, into layer a's unused Gram slot
                let (h, flag) = h_of(depth);
                let p = Params {
                    flags: flag,
                    aux_off: h,
                    out_off: lay.x[depth % 2] as u32,
                    ..base
                };
                steps.push(self.activate_step(net.widths[depth], p));
                let p = Params {
                    in_off: lay.x[depth % 2] as u32,
                    n_out: net.widths[depth] as u32,
                    rec_off: gram_rec(a) as u32,
                    ..base
                };
                steps.push(self.gram_step(p, net.widths[depth]));
            }
            if probes.jacobian {
                let (h, flag) = h_of(depth);
                let rows_b = (batch * stride(net.widths[depth])) as u32;
                let p = Params {
                    flags: flag,
                    in_off: lay.t[depth % 2] as u32,
                    out_off: d as u32 + rows_b,
                    aux_off: h,
                    rec_off: (back_rec(depth) + batch * lay.slice_stride) as u32,
                    ..base
                };
                self.row_steps(steps, p);
            }
            back_finalize(steps, depth);
        }
        for l in (a + 1..=b).rev() {
            let base = self.base(network, l);
            let rows = lay.back_rows as u32;
            self.weights_steps(steps, base, false);
            let p = Params {
                in_off: lay.d[l % 2] as u32,
                out_off: lay.y as u32,
                rows,
                ..base
            };
            steps.push(self.product_step(p, true));
            if with_grams {
                let p = Params {
                    in_off: lay.d[l % 2] as u32,
                    rec_off: (gram_rec(l) + gram_len) as u32,
                    ..base
                };
                steps.push(self.gram_step(p, net.widths[l]));
            }
            // delta_{l-1} = phi'(h_{l-1}) * r (W^T delta_l); at l - 1 = 0 the
            // gradient with respect to the input (no phi')
            let below = self.base(network, l - 1);
            let (h, flag) = if l - 1 == 0 {
                (0, FLAG_NO_DERIV)
            } else {
                h_of(l - 1)
            };
            let p = Params {
                flags: flag,
                in_off: lay.y as u32,
                out_off: lay.d[(l - 1) % 2] as u32,
                aux_off: h,
                rec_off: back_rec(l - 1) as u32,
                rows,
                scale_a: lay.delta_scale(l),
                scale_b: lay.vjp_scale(l),
                ..below
            };
            self.row_steps(steps, p);
            back_finalize(steps, l - 1);
        }
        // per produced layer: its records and its two r; then the Gram matrices
        for l in plan.produced() {
            ranges.extend([
                Range::Records(back_rec(l), back_len),
                Range::Scale(lay.delta_scale(l)),
                Range::Scale(lay.vjp_scale(l)),
            ]);
        }
        if with_grams {
            ranges.extend((a + 1..=b).map(|l| Range::Records(gram_rec(l), 2 * gram_len)));
        }
        if ntk && b == depth {
            ranges.push(Range::Records(gram_rec(a), gram_len));
        }
    }

    /// The B x B Gram matrix of the rows at `p.in_off` (n units each) into
    /// the records at `p.rec_off`: the product kernel with the rows as W,
    /// one slice of units per workgroup layer (GRAM in
    /// shaders/dense/product.wgsl).
    fn gram_step<'p>(&'p self, p: Params, n: usize) -> Step<'p> {
        let rows = p.rows as usize;
        let (x, y, _) = self.kernel.groups(rows, rows);
        Step {
            pipeline: &self.pipelines.gram,
            params: Params {
                n_in: n as u32,
                n_out: p.rows,
                ..p
            },
            groups: (x, y, slices(n) as u32),
        }
    }

    /// Where segment j's records go, and which layers it produces.
    pub(super) fn segment_plan(&self, j: usize) -> SegmentPlan {
        let lay = &self.layout;
        let batch = self.spec.batch;
        let a = j * lay.every;
        SegmentPlan {
            a,
            b: (a + lay.every).min(lay.depth),
            depth: lay.depth,
            back_len: lay.back_rows * lay.slice_stride,
            gram_len: batch * batch * lay.slice_stride,
            with_grams: self.spec.probes.weight_grads || self.spec.probes.ntk.is_some(),
        }
    }

    /// Segment j's backward records and Gram matrices, as read back.
    pub(super) fn take_backward(&self, j: usize, data: &[f32], raw: &mut NetworkRaw) {
        let plan = self.segment_plan(j);
        let (back_len, gram_len) = (plan.back_len, plan.gram_len);
        let produced = plan.produced();
        let (back_data, gram_data) = data.split_at(produced.len() * (back_len + 2));
        for (c, l) in back_data.chunks(back_len + 2).zip(produced) {
            raw.backward[l] = Raw {
                records: c[..back_len].to_vec(),
                scales: [c[back_len], c[back_len + 1]],
            };
        }
        if plan.with_grams {
            for (i, l) in (plan.a + 1..=plan.b).enumerate() {
                let chunk = &gram_data[i * 2 * gram_len..(i + 1) * 2 * gram_len];
                raw.grams[l - 1] = (chunk[..gram_len].to_vec(), chunk[gram_len..].to_vec());
            }
            if self.spec.probes.ntk.is_some() && plan.b == plan.depth {
                let at = (plan.b - plan.a) * 2 * gram_len;
                raw.top_gram = gram_data[at..at + gram_len].to_vec();
            }
        }
    }
}
