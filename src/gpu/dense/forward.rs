//! The dense engine's forward pass: a chunk of layers encoded as one job
//! (products, moments, renormalisation, tangents), and its records taken
//! from the readback.

use super::*;

impl<'a> DenseGpu<'a> {
    /// Floats of one forward layer's records: pair records, then with
    /// --jacobian the tangent rows' norms.
    pub(super) fn forward_record_lens(&self) -> (usize, usize) {
        let batch = self.spec.batch;
        let pair_len = batch / 2 * self.layout.slice_stride * RECORD;
        let tangent_len = if self.spec.probes.jacobian {
            batch * self.layout.slice_stride
        } else {
            0
        };
        (pair_len, tangent_len)
    }

    /// Forward rows `layers`: the steps, and the ranges to read back (per
    /// layer its records, its forward r, its tangent r).
    pub(super) fn encode_forward<'p>(
        &'p self,
        network: usize,
        layers: std::ops::Range<usize>,
        steps: &mut Vec<Step<'p>>,
        ranges: &mut Vec<Range>,
    ) {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let jacobian = self.spec.probes.jacobian;
        let backward = self.spec.probes.runs_backward();
        let (pair_len, tangent_len) = self.forward_record_lens();
        let renorm = if net.is_homogeneous() { FLAG_RENORM } else { 0 };
        for (slot, l) in layers.clone().enumerate() {
            let base = self.base(network, l);
            let n = net.widths[l];
            let rec = slot * (pair_len + tangent_len);
            let ckpt_off = if backward && l < lay.depth && l % lay.every == 0 {
                lay.checkpoint(l / lay.every) as u32
            } else {
                NO_OFFSET
            };
            let finalize = Params {
                rec_off: rec as u32,
                scale_out: lay.forward_scale(l),
                flags: renorm,
                ..base
            };
            if l == 0 {
                let p = Params {
                    out_off: lay.h as u32,
                    ..base
                };
                steps.push(Step {
                    pipeline: &self.pipelines.gen_input,
                    params: p,
                    groups: dispatch_1d(batch / 2 * n.div_ceil(4), GEN_WG),
                });
                let p = Params {
                    flags: FLAG_INPUT,
                    in_off: lay.h as u32,
                    out_off: lay.x[0] as u32,
                    rec_off: rec as u32,
                    ckpt_off,
                    ..base
                };
                steps.push(self.stats_step(n, p));
                self.finalize_step(steps, finalize);
                if jacobian {
                    // the probes u: Gaussian rows; their norms are row 0's records
                    let p = Params {
                        flags: FLAG_INPUT,
                        out_off: lay.t[0] as u32,
                        ..base
                    };
                    steps.push(Step {
                        pipeline: &self.pipelines.gen_normal_rows,
                        params: p,
                        groups: dispatch_1d(batch * n.div_ceil(4), GEN_WG),
                    });
                    self.tangent_norm_steps(
                        steps,
                        base,
                        lay.t[0],
                        lay.t[0],
                        FLAG_NO_DERIV,
                        NO_SCALE,
                        rec + pair_len,
                        0,
                    );
                }
                continue;
            }
            self.weights_steps(steps, base, true);
            let p = Params {
                in_off: lay.x[(l - 1) % 2] as u32,
                out_off: lay.h as u32,
                scale_a: lay.forward_scale(l - 1),
                ..base
            };
            steps.push(self.product_step(p, false));
            let p = Params {
                in_off: lay.h as u32,
                out_off: lay.x[l % 2] as u32,
                rec_off: rec as u32,
                ckpt_off,
                ..base
            };
            steps.push(self.stats_step(n, p));
            self.finalize_step(steps, finalize);
            if jacobian {
                // t_l = phi'(h_l) * r_t (W t_{l-1}); the product without bias
                let p = Params {
                    in_off: lay.t[(l - 1) % 2] as u32,
                    out_off: lay.ht as u32,
                    b_scale: 0.0,
                    ..base
                };
                steps.push(self.product_step(p, false));
                let p = Params {
                    aux_off: lay.h as u32,
                    ..base
                };
                self.tangent_norm_steps(
                    steps,
                    p,
                    lay.ht,
                    lay.t[l % 2],
                    0,
                    lay.tangent_scale(l - 1),
                    rec + pair_len,
                    l,
                );
            }
        }
        // per layer: its records, its forward r, its tangent r
        let per_layer = pair_len + tangent_len;
        for (slot, l) in layers.enumerate() {
            ranges.extend([
                Range::Records(slot * per_layer, per_layer),
                Range::Scale(lay.forward_scale(l)),
                Range::Scale(lay.tangent_scale(l)),
            ]);
        }
    }

    /// The raw pair records (and tangent records) of `layers`, as read back.
    pub(super) fn take_forward(
        &self,
        layers: std::ops::Range<usize>,
        data: &[f32],
        raw: &mut NetworkRaw,
    ) {
        let (pair_len, tangent_len) = self.forward_record_lens();
        let per_layer = pair_len + tangent_len;
        debug_assert_eq!(data.len(), layers.len() * (per_layer + 2));
        for c in data.chunks(per_layer + 2) {
            raw.forward.push(Raw {
                records: c[..pair_len].to_vec(),
                scales: [c[per_layer], 1.0],
            });
            if self.spec.probes.jacobian {
                raw.tangent.push(Raw {
                    records: c[pair_len..per_layer].to_vec(),
                    scales: [c[per_layer + 1], 1.0],
                });
            }
        }
    }

    /// out = phi'(aux) * scales[scale] * in for the B tangent rows, their
    /// norms recorded at `rec`, then the tangent's renormalisation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tangent_norm_steps<'p>(
        &'p self,
        steps: &mut Vec<Step<'p>>,
        base: Params,
        input: usize,
        out: usize,
        flags: u32,
        scale: u32,
        rec: usize,
        l: usize,
    ) {
        let p = Params {
            flags,
            in_off: input as u32,
            out_off: out as u32,
            rec_off: rec as u32,
            scale_a: scale,
            ..base
        };
        self.row_steps(steps, p);
        let p = Params {
            flags: FLAG_ROW_RECORDS | FLAG_RENORM,
            rec_off: rec as u32,
            scale_out: self.layout.tangent_scale(l),
            ..base
        };
        self.finalize_step(steps, p);
    }
}
