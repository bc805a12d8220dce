//! The gram engine's forward pass: per layer the Gram matrix, the host's
//! coefficients and the combination, with the moments and renormalisation.

use super::*;

impl<'a> GramGpu<'a> {
    /// Layer l's coefficients from x_{l-1}'s Gram matrix (and Z's).
    pub(super) fn forward_coefficients(
        &self,
        l: usize,
        g: &Eigen,
        r: f64,
        gz: &[f64],
    ) -> Result<Vec<f32>> {
        match self.law(l) {
            Law::Gaussian { v } => Ok(algebra::gaussian_forward(g, r, v).0),
            Law::Orthogonal { gain } => {
                algebra::orthogonal_forward(g, r, gain, gz).ok_or_else(|| {
                    Error::Gpu(format!(
                        "layer {l}: the Gram matrix of Z is not positive definite"
                    ))
                })
            }
        }
    }

    pub(super) fn forward(
        &self,
        network: usize,
        on_layer: &mut dyn FnMut(usize),
    ) -> Result<Forward> {
        let lay = &self.lay;
        let net = &self.spec.net;
        let depth = lay.depth;
        let batch = self.spec.batch;
        let backward = self.spec.probes.runs_backward();
        let renorm = if self.spec.renormalises() {
            FLAG_RENORM
        } else {
            0
        };
        let pair_len = batch / 2 * lay.bs * RECORD;
        let jacobian = self.spec.probes.jacobian;
        // the NTK's readout term needs X_L^T X_L too, and its kernel of
        // the inputs X_0^T X_0 (where layer 1 is a normalisation)
        let ntk = self.spec.probes.ntk.is_some();
        let tangent_len = if jacobian { batch * lay.bs } else { 0 };
        let mut out = Forward {
            sums: Vec::with_capacity(depth + 1),
            r: Vec::with_capacity(depth + 1),
            tangent: Vec::new(),
            grams: Vec::with_capacity(depth),
            coefs: vec![Vec::new()],
            rank_min: batch,
        };
        for l in 0..=depth {
            let base = self.base(network, l);
            let n = net.widths[l];
            let mut job = Job::default();
            // x = phi(h) with the moment records (and h checkpointed)
            let checkpoint = (backward && l < depth && l % lay.every == 0)
                .then(|| lay.checkpoint(l / lay.every));
            let mut ops = vec![Operand::act(lay.h), Operand::act(lay.x)];
            ops.extend(checkpoint.map(Operand::store));
            let placed = self.place(&ops);
            let stats = Params {
                in_off: placed.at[0],
                out_off: placed.at[1],
                rec_off: lay.stats as u32,
                ckpt_off: placed.at.get(2).copied().unwrap_or(NO_OFFSET),
                flags: if l == 0 { FLAG_INPUT } else { 0 },
                ..base
            };
            if l == 0 {
                let p = Params {
                    out_off: placed.at[0],
                    ..base
                };
                let groups = dispatch_1d(batch / 2 * n.div_ceil(4), GEN_WG);
                self.push(&mut job, &self.p.gen_input, p, groups, &placed);
            } else if self.is_norm(l) {
                // h_l = norm(x_{l-1}), x_{l-1} as the layer below left it
                self.normalise(
                    &mut job,
                    network,
                    l,
                    (lay.x, true),
                    None,
                    (lay.h, 0),
                    NO_SCALE,
                );
                if jacobian {
                    // the rows below h: r_t J t_{l-1} (a dense layer's W t
                    // carries r_t in its coefficients), into the checkpoint too
                    let below = self.below(n);
                    let t = Some((lay.x, below));
                    let r_t = lay.tangent_scale(l - 1);
                    self.normalise(&mut job, network, l, (lay.x, true), t, (lay.h, below), r_t);
                    if let Some(c) = checkpoint {
                        self.normalise(&mut job, network, l, (lay.x, true), t, (c, below), r_t);
                    }
                }
            } else {
                self.upload(0, &out.coefs[l]);
                // Gaussian layers draw Z inside the combination
                let z = match self.law(l) {
                    Law::Gaussian { .. } => None,
                    Law::Orthogonal { .. } => Some(lay.z),
                };
                self.combine(&mut job, base, n, (z, self.slot(0)), None, (lay.h, 0));
                if jacobian {
                    // W t: rows B..2B of the combination, without the bias
                    // (into the checkpoint too, for the backward pass)
                    let plain = Params {
                        b_scale: 0.0,
                        ..base
                    };
                    let wt = (z, self.tangent_slot(0));
                    let below = self.below(n);
                    self.combine(&mut job, plain, n, wt, None, (lay.h, below));
                    if let Some(c) = checkpoint {
                        self.combine(&mut job, plain, n, wt, None, (c, below));
                    }
                }
            }
            let groups = (slices(n) as u32, (batch / 2) as u32, 1);
            self.push(&mut job, &self.act(l).stats, stats, groups, &placed);
            let p = Params {
                rec_off: lay.stats as u32,
                scale_out: l as u32,
                flags: renorm,
                ..base
            };
            self.push_plain(&mut job, &self.p.finalize, p, (1, 1, 1));
            let mut reads = vec![
                Readback {
                    buffer: &self.records,
                    offset: lay.stats,
                    len: pair_len,
                },
                Readback {
                    buffer: &self.scales,
                    offset: l,
                    len: 1,
                },
            ];
            if jacobian {
                // t_l = phi'(h_l) (W t)_l (r_t is in the coefficients), or
                // the probes u at l = 0; its norms and its r_t
                let below = self.below(n) as u32;
                let p = if l == 0 {
                    let p = Params {
                        flags: FLAG_INPUT,
                        out_off: placed.at[1] + below,
                        ..base
                    };
                    let groups = dispatch_1d(batch * n.div_ceil(4), GEN_WG);
                    self.push(&mut job, &self.p.gen_normal_rows, p, groups, &placed);
                    Params {
                        flags: FLAG_NO_DERIV,
                        in_off: placed.at[1] + below,
                        ..base
                    }
                } else {
                    Params {
                        in_off: placed.at[0] + below,
                        aux_off: placed.at[0],
                        ..base
                    }
                };
                let p = Params {
                    out_off: placed.at[1] + below,
                    rec_off: lay.tangent as u32,
                    ..p
                };
                let groups = (slices(n) as u32, batch as u32, 1);
                self.push(&mut job, &self.act(l).scale_by_deriv, p, groups, &placed);
                let p = Params {
                    flags: FLAG_ROW_RECORDS | FLAG_RENORM,
                    rec_off: lay.tangent as u32,
                    scale_out: lay.tangent_scale(l),
                    ..base
                };
                self.push_plain(&mut job, &self.p.finalize, p, (1, 1, 1));
                reads.push(Readback {
                    buffer: &self.records,
                    offset: lay.tangent,
                    len: tangent_len,
                });
                reads.push(Readback {
                    buffer: &self.scales,
                    offset: lay.tangent_scale(l) as usize,
                    len: 1,
                });
            }
            // a normalisation above needs no Gram matrix of x_l
            let linear_next = l < depth && !self.is_norm(l + 1);
            let orthogonal_next = linear_next && matches!(self.law(l + 1), Law::Orthogonal { .. });
            if linear_next || (ntk && (l == 0 || l == depth)) {
                self.cross(&mut job, base, n, lay.x, lay.x, GX, FLAG_SYMMETRIC);
                reads.push(self.gram_read(GX));
                if orthogonal_next {
                    let next = self.base(network, l + 1);
                    let n_next = net.widths[l + 1];
                    self.normals(&mut job, next, n_next, false);
                    self.cross(&mut job, next, n_next, lay.z, lay.z, GZ, FLAG_SYMMETRIC);
                    reads.push(self.gram_read(GZ));
                }
            }
            let data = self.submit_read(&job, &reads)?;
            let r = data[pair_len];
            let mut sums = self.layer_sums(&data[..pair_len], n);
            sums.renorm = r as f64;
            out.sums.push(sums);
            out.r.push(r);
            let mut at = pair_len + 1;
            let mut r_t = None;
            if jacobian {
                let t = self.row_sums(&data[at..at + tangent_len + 1], n, batch);
                r_t = Some(t.renorm[0] as f32);
                out.tangent.push(t);
                at += tangent_len + 1;
            }
            if l < depth && !linear_next {
                out.grams.push(if ntk && l == 0 {
                    self.gram_matrix(&data[at..], n, true)
                } else {
                    Vec::new()
                });
                out.coefs.push(Vec::new());
            } else if l < depth {
                let g_data = &data[at..];
                let g = self.gram_matrix(g_data, n, true);
                let gz = if orthogonal_next {
                    self.gram_matrix(&g_data[lay.gram_len..], net.widths[l + 1], true)
                } else {
                    Vec::new()
                };
                // X~ = r X E: the tangents' r_t relative to r
                let g = if jacobian {
                    algebra::scale_symmetric(&g, &self.column_scales(r, r_t))
                } else {
                    g
                };
                // the forward keeps every direction the sums give (as the
                // dense engine's f32 product does): a cut there is what
                // collapsed deep correlations (issue 12); the rank reported
                // counts the eigenvalues above the sums' error bound
                let mut eigen = algebra::eigen_symmetric(&g, lay.cols, 0.0);
                if let Some(eps) = legacy_cutoff() {
                    let top = eigen.values[0];
                    eigen = eigen.cut_below(lay.cols as f64 * eps * top);
                }
                let rank = if jacobian {
                    // the inputs' rank, as without --jacobian
                    let x = algebra::leading_block(&g, lay.cols, batch);
                    self.gram_eigen(&x, n).rank
                } else {
                    eigen.count_above(self.gram_noise(&g, n))
                };
                out.rank_min = out.rank_min.min(rank);
                out.coefs
                    .push(self.forward_coefficients(l + 1, &eigen, r as f64, &gz)?);
                out.grams.push(g);
            } else if ntk {
                out.grams.push(self.gram_matrix(&data[at..], n, true));
            }
            on_layer(l + 1);
        }
        Ok(out)
    }

    /// A layer's moments from its pair records, as the dense engine sums them.
    pub(super) fn layer_sums(&self, records: &[f32], n: usize) -> LayerSums {
        let batch = self.spec.batch;
        let bs = self.lay.bs;
        let mut sums = LayerSums {
            width: n,
            batch,
            pairs: Vec::with_capacity(batch / 2),
            renorm: 1.0,
            ..Default::default()
        };
        crate::gpu::readback::add_pair_records(&mut sums, records, batch / 2, n, bs);
        sums
    }

    /// Squared norms of `b` rows (records), and their factor (factors: one
    /// for the first B rows and, if read, one for the rest).
    pub(super) fn row_sums(&self, data: &[f32], n: usize, b: usize) -> RowSums {
        let bs = self.lay.bs;
        RowSums {
            norms: (0..b)
                .map(|r| {
                    data[r * bs..r * bs + slices(n)]
                        .iter()
                        .map(|&v| v as f64)
                        .sum()
                })
                .collect(),
            renorm: [
                data[b * bs] as f64,
                data.get(b * bs + 1).map_or(1.0, |&r| r as f64),
            ],
        }
    }
}
