//! The block engine's passes: forward (with the tangents riding along),
//! the recomputation of a backward segment, and the backward walk, each
//! block written as the sum or product it computes.

use super::layout::Places;
use super::{BlockParams, BlocksGpu, FLAG_NO_DERIV, Pending, STREAM_DELTA, STREAM_TANGENT};
use crate::error::Result;
use crate::model::activation::Activation;
use crate::model::arch::Block;

impl BlocksGpu<'_> {
    /// The forward pass through blocks `blocks` (numbered from 1) with
    /// the rows at `pl`; `recompute`: a backward segment's recomputation
    /// (no records). The full pass also carries the tangents along with
    /// --jacobian, each block's step while its saved state is at hand.
    pub(super) fn forward(
        &self,
        q: &mut Pending,
        network: usize,
        blocks: std::ops::RangeInclusive<usize>,
        pl: &Places,
        recompute: bool,
    ) -> Result<()> {
        let lay = &self.layout;
        let arch = self.arch();
        let batch = self.spec.batch;
        let id = Activation::Identity;
        let tangents = self.spec.probes.jacobian && !recompute;
        if !recompute {
            self.elementwise(q, network, "draw_input", &id, batch, arch.units(0), |p| {
                p.out_off = pl.x[0] as u32;
            })?;
            self.record_forward(q, network, 0, pl.x[0], pl.x[0], None, false)?;
            if self.spec.probes.ntk.is_some() {
                self.ntk_x_gram(q, network, false, pl.x[0])?;
            }
            if tangents {
                self.elementwise(q, network, "draw_normal", &id, batch, arch.units(0), |p| {
                    p.out_off = lay.t[0] as u32;
                    p.stream = STREAM_TANGENT;
                    p.layer = 0;
                })?;
                self.record_tangent(q, network, 0)?;
            }
        }
        for l in blocks {
            let block = &arch.blocks[l - 1];
            let m = self.first_layer[l - 1];
            let (x_in, x_out) = (pl.x[l - 1], pl.x[l]);
            let units = arch.units(l);
            match block {
                Block::Layer(layer) => {
                    let h = pl.h[m - 1];
                    self.weights(q, network, m, layer, 0)?;
                    self.layer_forward(q, network, layer, 0, x_in, h)?;
                    let shift = self.program.shifts[m - 1];
                    self.elementwise(q, network, "activate", &layer.act, batch, units, |p| {
                        p.in_off = h as u32;
                        p.out_off = x_out as u32;
                        p.shift = shift as f32;
                    })?;
                    let act = Some(&layer.act);
                    self.record_forward(q, network, l, h, x_out, act, recompute)?;
                }
                Block::Residual {
                    branch,
                    alpha,
                    shared,
                    shortcut,
                } => {
                    // a projection shortcut goes to x_out as soon as its
                    // input (x, or the shared layers' output) is at hand
                    let slot = branch.len();
                    let project = |q: &mut Pending, z: usize| -> Result<()> {
                        let p = shortcut.as_ref().expect("a projection");
                        self.weights(q, network, m + slot, p, slot)?;
                        self.layer_forward(q, network, p, slot, z, x_out)
                    };
                    if shortcut.is_some() && *shared == 0 {
                        project(q, x_in)?;
                    }
                    let mut f = x_in;
                    for (j, layer) in branch.iter().enumerate() {
                        let h = pl.h[m + j - 1];
                        self.weights(q, network, m + j, layer, j)?;
                        self.layer_forward(q, network, layer, j, f, h)?;
                        let shift = self.program.shifts[m + j - 1];
                        let n = layer.output.units();
                        self.elementwise(q, network, "activate", &layer.act, batch, n, |p| {
                            p.in_off = h as u32;
                            p.out_off = lay.tmp as u32;
                            p.shift = shift as f32;
                        })?;
                        f = lay.tmp;
                        if shortcut.is_some() && j + 1 == *shared {
                            project(q, lay.tmp)?;
                        }
                    }
                    if self.spp() && !recompute {
                        self.channel_moments(q, network, l, lay.tmp, lay.spp_branch_rec[l])?;
                    }
                    let s = if shortcut.is_some() { x_out } else { x_in };
                    self.elementwise(q, network, "axpy", &id, batch, units, |p| {
                        p.in_off = s as u32;
                        p.v_off = lay.tmp as u32;
                        p.out_off = x_out as u32;
                        p.alpha = *alpha as f32;
                    })?;
                    self.record_forward(q, network, l, x_out, x_out, None, recompute)?;
                }
                Block::Highway {
                    transform,
                    gate,
                    gate_bias,
                } => {
                    let (hh, g) = (pl.h[m - 1], pl.h[m]);
                    self.weights(q, network, m, transform, 0)?;
                    self.weights(q, network, m + 1, gate, 1)?;
                    self.linear(q, network, transform, 0, x_in, hh, batch, true, 0.0)?;
                    self.linear(q, network, gate, 1, x_in, g, batch, false, *gate_bias)?;
                    let act = &transform.act;
                    self.elementwise(q, network, "highway_forward", act, batch, units, |p| {
                        p.in_off = x_in as u32;
                        p.g_off = g as u32;
                        p.h_off = hh as u32;
                        p.out_off = x_out as u32;
                    })?;
                    self.record_forward(q, network, l, x_out, x_out, None, recompute)?;
                }
            }
            if tangents {
                self.tangent_step(q, network, l, pl)?;
                self.record_tangent(q, network, l)?;
            }
        }
        if !recompute && self.spec.probes.ntk.is_some() {
            self.ntk_x_gram(q, network, true, pl.x[arch.depth()])?;
        }
        Ok(())
    }

    /// The norms of the tangents t_l and their renormalisation factor.
    fn record_tangent(&self, q: &mut Pending, network: usize, l: usize) -> Result<()> {
        let lay = &self.layout;
        let (batch, units) = (self.spec.batch, self.arch().units(l));
        let factors = [(0, lay.tan_scale(l))];
        self.record_rows(
            q,
            network,
            lay.t[l % 2],
            batch,
            units,
            lay.tan_rec[l],
            &factors,
        )
    }

    /// t_l = J_l t_{l-1} (renormalised), through block l: its weights are
    /// still in their slots from the block's forward step.
    fn tangent_step(&self, q: &mut Pending, network: usize, l: usize, pl: &Places) -> Result<()> {
        let lay = &self.layout;
        let arch = self.arch();
        let batch = self.spec.batch;
        let id = Activation::Identity;
        let m = self.first_layer[l - 1];
        let (t_in, t_out) = (lay.t[(l - 1) % 2], lay.t[l % 2]);
        let units = arch.units(l);
        self.elementwise(
            q,
            network,
            "scale_rows",
            &id,
            batch,
            arch.units(l - 1),
            |p| {
                p.out_off = t_in as u32;
                p.scale_a = lay.tan_scale(l - 1);
            },
        )?;
        match &arch.blocks[l - 1] {
            Block::Layer(layer) => {
                let h = pl.h[m - 1];
                self.layer_tangent(q, network, layer, 0, t_in, lay.tu, batch, h)?;
                self.elementwise(q, network, "mul_deriv", &layer.act, batch, units, |p| {
                    p.in_off = lay.tu as u32;
                    p.h_off = pl.h[m - 1] as u32;
                    p.out_off = t_out as u32;
                    p.alpha = 1.0;
                })?;
            }
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            } => {
                // a projection's tangent goes to t_out, as in the forward step
                let slot = branch.len();
                let project = |q: &mut Pending, z: usize| -> Result<()> {
                    let p = shortcut.as_ref().expect("a projection");
                    self.linear(q, network, p, slot, z, t_out, batch, false, 0.0)
                };
                if shortcut.is_some() && *shared == 0 {
                    project(q, t_in)?;
                }
                let mut f = t_in;
                for (j, layer) in branch.iter().enumerate() {
                    let h = pl.h[m + j - 1];
                    self.layer_tangent(q, network, layer, j, f, lay.tu, batch, h)?;
                    let n = layer.output.units();
                    self.elementwise(q, network, "mul_deriv", &layer.act, batch, n, |p| {
                        p.in_off = lay.tu as u32;
                        p.h_off = pl.h[m + j - 1] as u32;
                        p.out_off = lay.tv as u32;
                        p.alpha = 1.0;
                    })?;
                    f = lay.tv;
                    if shortcut.is_some() && j + 1 == *shared {
                        project(q, lay.tv)?;
                    }
                }
                let s = if shortcut.is_some() { t_out } else { t_in };
                self.elementwise(q, network, "axpy", &id, batch, units, |p| {
                    p.in_off = s as u32;
                    p.v_off = lay.tv as u32;
                    p.out_off = t_out as u32;
                    p.alpha = *alpha as f32;
                })?;
            }
            Block::Highway {
                transform, gate, ..
            } => {
                self.linear(q, network, transform, 0, t_in, lay.tu, batch, false, 0.0)?;
                self.linear(q, network, gate, 1, t_in, lay.tv, batch, false, 0.0)?;
                let act = &transform.act;
                self.elementwise(q, network, "highway_tangent", act, batch, units, |p| {
                    p.in_off = t_in as u32;
                    p.u_off = lay.tu as u32;
                    p.v_off = lay.tv as u32;
                    p.g_off = pl.h[m] as u32;
                    p.h_off = pl.h[m - 1] as u32;
                    p.x_off = pl.x[l - 1] as u32;
                    p.out_off = t_out as u32;
                })?;
            }
        }
        Ok(())
    }

    /// The norms of the backward rows of row l and their factors.
    fn record_backward(&self, q: &mut Pending, network: usize, l: usize) -> Result<()> {
        let lay = &self.layout;
        let mut factors = vec![(0, lay.d_scale(l))];
        if self.spec.probes.jacobian {
            factors.push((self.spec.batch, lay.v_scale(l)));
        }
        let units = self.arch().units(l);
        let (at, rows) = (lay.d[l % 2], lay.back_rows);
        self.record_rows(q, network, at, rows, units, lay.back_rec[l], &factors)
    }

    /// The backward rows: delta_L (and the vector-Jacobian rows from t_L)
    /// down to the input, renormalised every row, segment by segment from
    /// the top: each segment's forward is recomputed from its checkpoint,
    /// then walked down. Row l's rows are the gradient with respect to the
    /// block's output, with respect to h for a plain layer: the factor
    /// phi'(h_l) is applied when the walk reaches block l, in its segment.
    pub(super) fn backward(&self, q: &mut Pending, network: usize) -> Result<()> {
        let lay = &self.layout;
        let arch = self.arch();
        let batch = self.spec.batch;
        let depth = arch.depth();
        let rows = lay.back_rows;
        let jacobian = self.spec.probes.jacobian;
        let id = Activation::Identity;
        let layers = self.layers;
        for j in (0..lay.checkpoints.len()).rev() {
            let (a, b) = lay.segment(j);
            let pl = lay.segment_places(j, &self.first_layer, layers);
            self.forward(q, network, a + 1..=b, &pl, true)?;
            for l in (a + 1..=b).rev() {
                let block = &arch.blocks[l - 1];
                let m = self.first_layer[l - 1];
                let units = arch.units(l);
                let d_in = lay.d[l % 2];
                let ntk = self.spec.probes.ntk.is_some();
                if l == depth && ntk {
                    // df/dx_L = w / sqrt(n_L) (the factor on the host), through
                    // phi' of a plain top below
                    self.draw_readout(q, network, d_in)?;
                } else if l == depth {
                    self.elementwise(q, network, "draw_normal", &id, batch, units, |p| {
                        p.out_off = d_in as u32;
                        p.stream = STREAM_DELTA;
                        p.layer = depth as u32;
                    })?;
                    if jacobian {
                        // v = t_L, through phi' of a plain top layer
                        let (act, h, flags) = match block {
                            Block::Layer(layer) => (layer.act, pl.h[m - 1], 0),
                            _ => (id, 0, FLAG_NO_DERIV),
                        };
                        self.elementwise(q, network, "mul_deriv", &act, batch, units, |p| {
                            p.in_off = lay.t[depth % 2] as u32;
                            p.h_off = h as u32;
                            p.out_off = (d_in + batch * units) as u32;
                            p.alpha = 1.0;
                            p.flags = flags;
                        })?;
                    }
                }
                // the gradient with respect to h of a plain layer (at the top
                // the random delta_L already is one)
                if let (Block::Layer(layer), true) = (block, l < depth || ntk) {
                    self.elementwise(q, network, "mul_deriv", &layer.act, rows, units, |p| {
                        p.in_off = d_in as u32;
                        p.h_off = pl.h[m - 1] as u32;
                        p.out_off = d_in as u32;
                        p.alpha = 1.0;
                    })?;
                }
                self.record_backward(q, network, l)?;
                self.backward_step(q, network, l, &pl)?;
            }
        }
        self.record_backward(q, network, 0)
    }

    /// The rows of row l (scaled by their factors) through block l, to the
    /// gradient with respect to its input, at row l - 1's place.
    fn backward_step(&self, q: &mut Pending, network: usize, l: usize, pl: &Places) -> Result<()> {
        let lay = &self.layout;
        let arch = self.arch();
        let rows = lay.back_rows;
        let id = Activation::Identity;
        let m = self.first_layer[l - 1];
        let (d_in, d_out) = (lay.d[l % 2], lay.d[(l - 1) % 2]);
        let units = arch.units(l);
        self.elementwise(q, network, "scale_rows", &id, rows, units, |p| {
            p.out_off = d_in as u32;
            p.scale_a = lay.d_scale(l);
            // rows past the first B: the vector-Jacobian rows, or the NTK's
            // further sets (one factor for all sets, from the first)
            p.scale_b = if self.spec.probes.jacobian {
                lay.v_scale(l)
            } else {
                lay.d_scale(l)
            };
        })?;
        let ntk = self.spec.probes.ntk.is_some();
        let x_in = pl.x[l - 1];
        match &arch.blocks[l - 1] {
            Block::Layer(layer) => {
                self.weights(q, network, m, layer, 0)?;
                let h = pl.h[m - 1];
                if ntk {
                    self.ntk_layer(q, network, layer, m, 0, x_in, d_in, h)?;
                }
                self.layer_adjoint(q, network, layer, 0, d_in, d_out, rows, h)?;
            }
            Block::Residual {
                branch,
                alpha,
                shared,
                shortcut,
            } => {
                // through the branch from its output: alpha dy, then per
                // layer (last first) phi'(h) and W^T; a projection's P^T dy
                // (at dp) joins where the shared layers' output is
                let slot = branch.len();
                for (j, layer) in branch.iter().enumerate() {
                    self.weights(q, network, m + j, layer, j)?;
                }
                // a branch layer's input: x, or phi(h) - shift of the layer below (at tmp)
                let input = |q: &mut Pending, j: usize| -> Result<usize> {
                    if j == 0 {
                        return Ok(x_in);
                    }
                    let below = &branch[j - 1];
                    let shift = self.program.shifts[m + j - 2];
                    let n = below.output.units();
                    self.elementwise(
                        q,
                        network,
                        "activate",
                        &below.act,
                        self.spec.batch,
                        n,
                        |p| {
                            p.in_off = pl.h[m + j - 2] as u32;
                            p.out_off = lay.tmp as u32;
                            p.shift = shift as f32;
                        },
                    )?;
                    Ok(lay.tmp)
                };
                if let Some(p) = shortcut {
                    self.weights(q, network, m + slot, p, slot)?;
                    if ntk {
                        let z = input(q, *shared)?;
                        self.ntk_layer(q, network, p, m + slot, slot, z, d_in, 0)?;
                    }
                    self.linear_t(q, network, p, slot, d_in, lay.dp, rows)?;
                }
                let join = |q: &mut Pending, out: usize, n: usize| -> Result<()> {
                    self.elementwise(q, network, "axpy", &id, rows, n, |p| {
                        p.in_off = lay.dv as u32;
                        p.v_off = lay.dp as u32;
                        p.out_off = out as u32;
                        p.alpha = 1.0;
                    })
                };
                let mut g = d_in;
                let mut factor = *alpha;
                for (j, layer) in branch.iter().enumerate().rev() {
                    let n = layer.output.units();
                    self.elementwise(q, network, "mul_deriv", &layer.act, rows, n, |p| {
                        p.in_off = g as u32;
                        p.h_off = pl.h[m + j - 1] as u32;
                        p.out_off = lay.du as u32;
                        p.alpha = factor as f32;
                    })?;
                    let h = pl.h[m + j - 1];
                    if ntk {
                        let z = input(q, j)?;
                        self.ntk_layer(q, network, layer, m + j, j, z, lay.du, h)?;
                    }
                    self.layer_adjoint(q, network, layer, j, lay.du, lay.dv, rows, h)?;
                    if shortcut.is_some() && *shared > 0 && j == *shared {
                        join(q, lay.dv, layer.input.units())?;
                    }
                    g = lay.dv;
                    factor = 1.0;
                }
                let n_in = arch.units(l - 1);
                match shortcut {
                    None => self.elementwise(q, network, "axpy", &id, rows, units, |p| {
                        p.in_off = d_in as u32;
                        p.v_off = lay.dv as u32;
                        p.out_off = d_out as u32;
                        p.alpha = 1.0;
                    })?,
                    Some(_) if *shared == 0 => join(q, d_out, n_in)?,
                    // a copy: dv + 0 dv
                    Some(_) => self.elementwise(q, network, "axpy", &id, rows, n_in, |p| {
                        p.in_off = lay.dv as u32;
                        p.v_off = lay.dv as u32;
                        p.out_off = d_out as u32;
                        p.alpha = 0.0;
                    })?,
                }
            }
            Block::Highway {
                transform, gate, ..
            } => {
                self.weights(q, network, m, transform, 0)?;
                self.weights(q, network, m + 1, gate, 1)?;
                let saved = |p: &mut BlockParams| {
                    p.g_off = pl.h[m] as u32;
                    p.h_off = pl.h[m - 1] as u32;
                    p.x_off = pl.x[l - 1] as u32;
                };
                let act = &transform.act;
                self.elementwise(q, network, "highway_back_split", act, rows, units, |p| {
                    saved(p);
                    p.in_off = d_in as u32;
                    p.u_off = lay.du as u32;
                    p.v_off = lay.dv as u32;
                })?;
                if ntk {
                    self.ntk_layer(q, network, transform, m, 0, x_in, lay.du, 0)?;
                    self.ntk_layer(q, network, gate, m + 1, 1, x_in, lay.dv, 0)?;
                }
                self.linear_t(q, network, transform, 0, lay.du, lay.dp, rows)?;
                self.linear_t(q, network, gate, 1, lay.dv, lay.dq, rows)?;
                self.elementwise(q, network, "highway_back_combine", act, rows, units, |p| {
                    saved(p);
                    p.in_off = d_in as u32;
                    p.u_off = lay.dp as u32;
                    p.v_off = lay.dq as u32;
                    p.out_off = d_out as u32;
                })?;
            }
        }
        Ok(())
    }
}
