//! The gram engine's backward pass: checkpoint segments recomputed and
//! walked down, W^T delta sampled from its conditional law.

use super::*;

impl<'a> GramGpu<'a> {
    /// delta_l's r and, with --jacobian, the vjp rows' r, from the row
    /// records at `back`.
    pub(super) fn back_finalize<'p>(&'p self, job: &mut Job<'p>, base: Params, l: usize) {
        let lay = &self.lay;
        let p = Params {
            flags: FLAG_ROW_RECORDS | FLAG_RENORM,
            rec_off: lay.back as u32,
            scale_out: lay.delta_scale(l),
            ..base
        };
        self.push_plain(job, &self.p.finalize, p, (1, 1, 1));
        if self.spec.probes.jacobian {
            let p = Params {
                rec_off: (lay.back + self.spec.batch * lay.bs) as u32,
                scale_out: lay.vjp_scale(l),
                ..p
            };
            self.push_plain(job, &self.p.finalize, p, (1, 1, 1));
        }
    }

    /// delta_{l-1} = phi'(h_{l-1}) r_delta y from the rows y (W^T delta_l,
    /// or J^T delta_l below a normalisation; all K rows, with --jacobian the
    /// vjp rows with their r), h_{l-1} in panel `h`; their norms and r.
    fn scale_delta<'p>(&'p self, job: &mut Job<'p>, network: usize, l: usize, h: Panel) {
        let lay = &self.lay;
        let below = self.base(network, l - 1);
        let mut ops = vec![Operand::act(lay.y), Operand::act(lay.d[(l - 1) % 2])];
        if l - 1 > 0 {
            ops.push(Operand::either(h, FLAG_AUX_STORE));
        }
        let placed = self.place(&ops);
        let p = Params {
            flags: if l - 1 == 0 {
                FLAG_NO_DERIV
            } else {
                placed.flags
            },
            in_off: placed.at[0],
            out_off: placed.at[1],
            aux_off: placed.at.get(2).copied().unwrap_or(0),
            rec_off: lay.back as u32,
            scale_a: lay.delta_scale(l),
            scale_b: if self.spec.probes.jacobian {
                lay.vjp_scale(l)
            } else {
                NO_SCALE
            },
            ..below
        };
        let n_in = self.spec.net.widths[l - 1];
        let groups = (slices(n_in) as u32, lay.cols as u32, 1);
        self.push(job, &self.act(l - 1).scale_by_deriv, p, groups, &placed);
        self.back_finalize(job, below, l - 1);
    }

    /// The NTK's terms of a normalisation l with a gain and bias: the Gram
    /// matrices of the gains' gradients delta_l * y_l into GM (formed in
    /// y's panel, free until the normalisation's adjoint and adjacent to
    /// delta's) and of the biases' gradients delta_l into GD; delta_l the
    /// rows in `d`, y_l = h_l in panel `h`.
    fn affine_grams<'p>(&'p self, job: &mut Job<'p>, network: usize, l: usize, d: Panel, h: Panel) {
        let lay = &self.lay;
        let base = self.base(network, l);
        let n = self.spec.net.widths[l];
        let placed = self.place(&[
            Operand::act(d),
            Operand::either(h, FLAG_AUX_STORE),
            Operand::act(lay.y),
        ]);
        let p = Params {
            n_out: n as u32,
            flags: placed.flags | FLAG_INPUT,
            in_off: placed.at[0],
            aux_off: placed.at[1],
            out_off: placed.at[2],
            rows: self.spec.batch as u32,
            ..base
        };
        let kernels = self.act(l - 1).norm.as_ref().expect("compiled for norms");
        let groups = dispatch_1d(stride(n), ELEMENTWISE_WG);
        self.push(job, &kernels.gain_rows, p, groups, &placed);
        self.cross(job, base, n, lay.y, lay.y, GM, FLAG_SYMMETRIC);
        self.cross(job, base, n, d, d, GD, FLAG_SYMMETRIC);
    }

    /// x_l = phi(h_l) (x_0 itself) into x's panel, h_l in panel `h`.
    fn x_rows<'p>(&'p self, job: &mut Job<'p>, network: usize, l: usize, h: Panel) {
        let lay = &self.lay;
        let placed = self.place(&[Operand::either(h, FLAG_AUX_STORE), Operand::act(lay.x)]);
        let p = Params {
            flags: placed.flags | if l == 0 { FLAG_INPUT } else { 0 },
            aux_off: placed.at[0],
            out_off: placed.at[1],
            ..self.base(network, l)
        };
        let groups = dispatch_1d(
            self.spec.batch * stride(self.spec.net.widths[l]),
            ELEMENTWISE_WG,
        );
        self.push(job, &self.act(l).activate, p, groups, &placed);
    }

    #[allow(clippy::type_complexity)]
    pub(super) fn backward(
        &self,
        network: usize,
        fwd: &Forward,
    ) -> Result<(Vec<RowSums>, Vec<(Vec<f64>, Vec<f64>)>)> {
        let lay = &self.lay;
        let net = &self.spec.net;
        let depth = lay.depth;
        let batch = self.spec.batch;
        let (cols, jacobian) = (lay.cols, self.spec.probes.jacobian);
        // the NTK's backward pass starts from the readout's gradient
        let ntk = self.spec.probes.ntk.is_some();
        let back_len = cols * lay.bs;
        // the rows' records, delta's r, and with --jacobian the vjp rows' r
        let back_read_len = back_len + 1 + usize::from(jacobian);
        let mut back = vec![RowSums::default(); depth + 1];
        let mut grams = vec![(Vec::new(), Vec::new()); depth];
        let (slot_a, slot_b) = (lay.every, lay.every + 1);
        let back_reads = |l: usize| {
            let mut reads = vec![
                Readback {
                    buffer: &self.records,
                    offset: lay.back,
                    len: back_len,
                },
                Readback {
                    buffer: &self.scales,
                    offset: lay.delta_scale(l) as usize,
                    len: 1,
                },
            ];
            if jacobian {
                reads.push(Readback {
                    buffer: &self.scales,
                    offset: lay.vjp_scale(l) as usize,
                    len: 1,
                });
            }
            reads
        };
        for j in (0..lay.checkpoints).rev() {
            let a = j * lay.every;
            let b = (a + lay.every).min(depth);
            // where h_l of this segment is (l in a..=b), in `store`
            let h_at = |l: usize| {
                if l == a {
                    lay.checkpoint(j)
                } else {
                    lay.segment(l - a - 1)
                }
            };
            let mut job = Job::default();
            let mut reads = Vec::new();
            let mut pending: Option<usize> = None;
            // recompute h_{a+1..=b}: the same Z and coefficients (x is not
            // needed: the combination reads Z)
            for l in a + 1..=b {
                if self.is_norm(l) {
                    // h_l = norm(phi(h_{l-1})) (x_0 itself below layer 1)
                    let input = (h_at(l - 1), l - 1 == 0);
                    self.normalise(&mut job, network, l, input, None, (h_at(l), 0), NO_SCALE);
                    if jacobian {
                        // r_t J t_{l-1}: x_{l-1} and t_{l-1} again from
                        // h~_{l-1} into x's panel (free here), so that the
                        // kernel reads one panel and writes one
                        let below = self.below(net.widths[l]);
                        self.x_rows(&mut job, network, l - 1, h_at(l - 1));
                        self.tangent_rows(&mut job, network, l - 1, h_at(l - 1), (lay.x, below));
                        let t = Some((lay.x, below));
                        let r_t = lay.tangent_scale(l - 1);
                        let x = (lay.x, true);
                        self.normalise(&mut job, network, l, x, t, (h_at(l), below), r_t);
                    }
                    continue;
                }
                let base = self.base(network, l);
                let slot = l - a - 1;
                self.upload(slot, &fwd.coefs[l]);
                let z = match self.law(l) {
                    Law::Gaussian { .. } => None,
                    Law::Orthogonal { .. } => {
                        self.normals(&mut job, base, net.widths[l], false);
                        Some(lay.z)
                    }
                };
                let coef = self.slot(slot);
                let n = net.widths[l];
                self.combine(&mut job, base, n, (z, coef), None, (h_at(l), 0));
                if jacobian {
                    let plain = Params {
                        b_scale: 0.0,
                        ..base
                    };
                    let wt = (z, self.tangent_slot(slot));
                    self.combine(&mut job, plain, n, wt, None, (h_at(l), self.below(n)));
                }
            }
            if b == depth {
                // delta_L: Gaussian rows (the dense engine's stream), their
                // norms; for the NTK phi'(h_L) w, w the readout (its 1 /
                // sqrt(n_L) is left to the statistics)
                let base = self.base(network, depth);
                let mut ops = vec![Operand::act(lay.d[depth % 2])];
                if ntk {
                    ops.push(Operand::either(h_at(depth), FLAG_AUX_STORE));
                }
                let placed = self.place(&ops);
                let p = Params {
                    flags: if ntk { FLAG_READOUT } else { 0 },
                    out_off: placed.at[0],
                    ..base
                };
                let n = net.widths[depth];
                let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
                self.push(&mut job, &self.p.gen_normal_rows, p, groups, &placed);
                let p = Params {
                    flags: if ntk { placed.flags } else { FLAG_NO_DERIV },
                    in_off: placed.at[0],
                    out_off: placed.at[0],
                    aux_off: placed.at.get(1).copied().unwrap_or(base.aux_off),
                    rec_off: lay.back as u32,
                    ..base
                };
                let groups = (slices(n) as u32, batch as u32, 1);
                self.push(
                    &mut job,
                    &self.act(depth).scale_by_deriv,
                    p,
                    groups,
                    &placed,
                );
                if jacobian {
                    // the vector-Jacobian rows start as phi'(h_L) t_L (t_L
                    // recomputed into y, free until the first layer below)
                    self.tangent_rows(&mut job, network, depth, h_at(depth), (lay.y, 0));
                    let placed = self.place(&[
                        Operand::act(lay.y),
                        Operand::act(lay.d[depth % 2]),
                        Operand::either(h_at(depth), FLAG_AUX_STORE),
                    ]);
                    let p = Params {
                        flags: placed.flags,
                        in_off: placed.at[0],
                        out_off: placed.at[1] + self.below(n) as u32,
                        aux_off: placed.at[2],
                        rec_off: (lay.back + batch * lay.bs) as u32,
                        ..base
                    };
                    self.push(
                        &mut job,
                        &self.act(depth).scale_by_deriv,
                        p,
                        groups,
                        &placed,
                    );
                }
                self.back_finalize(&mut job, base, depth);
                reads.extend(back_reads(depth));
                pending = Some(depth);
            }
            for l in (a + 1..=b).rev() {
                if self.is_norm(l) {
                    // the NTK's gain and bias terms, from delta_l and h_l
                    let affine =
                        ntk && matches!(self.layers[l].step, LayerStep::Norm { affine: true, .. });
                    if affine {
                        self.affine_grams(&mut job, network, l, lay.d[l % 2], h_at(l));
                        reads.extend([self.gram_read(GD), self.gram_read(GM)]);
                    }
                    // the rows read back so far first: the records at
                    // `back` are about to be written again
                    if pending.is_some() || affine {
                        let data = self.submit_read(&job, &reads)?;
                        let mut at = 0;
                        if let Some(p) = pending.take() {
                            back[p] = self.row_sums(&data[..back_read_len], net.widths[p], cols);
                            at = back_read_len;
                        }
                        if affine {
                            let (n, gl) = (net.widths[l], lay.gram_len);
                            let bias = self.gram_matrix(&data[at..], n, true);
                            let gain = self.gram_matrix(&data[at + gl..], n, true);
                            grams[l - 1] = (gain, bias);
                        }
                        job = Job::default();
                        reads.clear();
                    }
                    // delta_{l-1} = phi'(h_{l-1}) r_delta J^T delta_l, J the
                    // normalisation's Jacobian at x_{l-1}
                    let input = (h_at(l - 1), l - 1 == 0);
                    let d = lay.d[l % 2];
                    self.normalise(
                        &mut job,
                        network,
                        l,
                        input,
                        Some((d, 0)),
                        (lay.y, 0),
                        NO_SCALE,
                    );
                    if jacobian {
                        // the vector-Jacobian rows through the same J
                        let below = self.below(net.widths[l]);
                        let vjp = Some((d, below));
                        self.normalise(&mut job, network, l, input, vjp, (lay.y, below), NO_SCALE);
                    }
                    self.scale_delta(&mut job, network, l, h_at(l - 1));
                    reads.extend(back_reads(l - 1));
                    pending = Some(l - 1);
                    continue;
                }
                let base = self.base(network, l);
                let (n_in, n_out) = (net.widths[l - 1], net.widths[l]);
                let d = lay.d[l % 2];
                // x_{l-1} from h_{l-1}; b_l; Z'; the Gram matrices
                self.x_rows(&mut job, network, l - 1, h_at(l - 1));
                if jacobian {
                    let t = (lay.x, self.below(n_in));
                    self.tangent_rows(&mut job, network, l - 1, h_at(l - 1), t);
                }
                let with_bias = base.b_scale != 0.0;
                if with_bias {
                    let groups = dispatch_1d(n_out.div_ceil(4), GRAM_WG);
                    self.push_plain(&mut job, &self.p.bias, base, groups);
                }
                self.normals(&mut job, base, n_in, true);
                self.cross(&mut job, base, n_out, d, d, GD, FLAG_SYMMETRIC);
                let sub = if with_bias { FLAG_SUB_BIAS } else { 0 };
                let h = h_at(l);
                self.cross_rows(&mut job, base, n_out, (h, 0..batch), d, GM, sub);
                if jacobian {
                    // W t has no bias
                    self.cross_rows(&mut job, base, n_out, (h, batch..cols), d, GM, 0);
                }
                self.cross(&mut job, base, n_in, lay.x, lay.z, GXZ, 0);
                let orthogonal = matches!(self.law(l), Law::Orthogonal { .. });
                if orthogonal {
                    self.cross(&mut job, base, n_in, lay.z, lay.z, GZZ, FLAG_SYMMETRIC);
                }
                let first = reads.len();
                for k in [GD, GM, GXZ] {
                    reads.push(self.gram_read(k));
                }
                if orthogonal {
                    reads.push(self.gram_read(GZZ));
                }
                let data = self.submit_read(&job, &reads)?;
                let mut at = 0;
                if let Some(p) = pending.take() {
                    back[p] = self.row_sums(&data[..back_read_len], net.widths[p], cols);
                    at = back_read_len;
                }
                debug_assert_eq!(first > 0, at > 0);
                let gl = lay.gram_len;
                let dm = self.gram_matrix(&data[at..], n_out, true);
                let m = self.gram_matrix(&data[at + gl..], n_out, false);
                let xz = self.gram_matrix(&data[at + 2 * gl..], n_in, false);
                let g = self.gram_eigen(&fwd.grams[l - 1], n_in);
                let r = fwd.r[l - 1] as f64;
                // X~ = r X E: the conditioning is on W X~ = H~ - b~ (with
                // --jacobian the tangents are columns too), XZ becomes E XZ
                let r_t = jacobian.then(|| fwd.tangent[l - 1].renorm[0] as f32);
                let e = self.column_scales(fwd.r[l - 1], r_t);
                let xz = if jacobian {
                    algebra::scale_rows(&xz, &e)
                } else {
                    xz
                };
                let beta = match self.law(l) {
                    Law::Gaussian { v } => {
                        algebra::gaussian_backward_beta(&self.gram_eigen(&dm, n_out), v)
                    }
                    Law::Orthogonal { gain } => {
                        let zz = self.gram_matrix(&data[at + 3 * gl..], n_in, true);
                        let d_noise = self.gram_noise(&dm, n_out);
                        algebra::orthogonal_backward_beta(&g, r, gain, &m, &dm, d_noise, &xz, &zz)
                            .ok_or_else(|| {
                            Error::Gpu(format!(
                                "layer {l}: Z'^T (I - P_X) Z' is not positive definite"
                            ))
                        })?
                    }
                };
                let (ca, cb) = algebra::backward_coefficients(&g, r, &e, &m, &xz, &beta);
                self.upload(slot_a, &ca);
                self.upload(slot_b, &cb);
                if self.spec.probes.weight_grads || ntk {
                    // the B x B blocks of x and delta (the tangents' scale is 1 there)
                    let lead = |a: &[f64]| algebra::leading_block(a, cols, batch);
                    grams[l - 1] = (lead(&fwd.grams[l - 1]), lead(&dm));
                }
                // W^T delta_l = X a + Z' beta; delta_{l-1} = phi'(h_{l-1}) r_delta (W^T delta_l)
                job = Job::default();
                reads.clear();
                // (all K rows: with --jacobian the vjp rows, with their r)
                let plain = Params {
                    b_scale: 0.0,
                    rows: cols as u32,
                    ..base
                };
                self.combine(
                    &mut job,
                    plain,
                    n_in,
                    (Some(lay.x), self.slot(slot_a)),
                    Some((lay.z, self.slot(slot_b))),
                    (lay.y, 0),
                );
                self.scale_delta(&mut job, network, l, h_at(l - 1));
                reads.extend(back_reads(l - 1));
                pending = Some(l - 1);
            }
            let data = self.submit_read(&job, &reads)?;
            let p = pending.expect("a segment produces delta_a");
            back[p] = self.row_sums(&data[..back_read_len], net.widths[p], cols);
        }
        Ok((back, grams))
    }
}
