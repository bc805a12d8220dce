//! The dense engine's dispatches, one builder a kernel: the base parameters
//! of a layer, weight generation (iid or orthogonal), the products, the row
//! kernels and finalize.

use super::*;

impl<'a> DenseGpu<'a> {
    /// Parameters every step of layer `layer` shares.
    pub(super) fn base(&self, network: usize, layer: usize) -> Params {
        Params::for_layer(self.spec, network, layer, self.layout.slice_stride)
    }

    /// Whether the product kernel draws this layer's W (and b) itself.
    pub(super) fn weights_in_product(&self, p: &Params) -> bool {
        self.kernel.weights_from_rng && p.w_dist != crate::model::init::Dist::Orthogonal.code()
    }

    /// W (and b) into their buffers, unless the product draws them itself.
    pub(super) fn weights_steps<'p>(
        &'p self,
        steps: &mut Vec<Step<'p>>,
        p: Params,
        with_bias: bool,
    ) {
        if !self.weights_in_product(&p) {
            self.generate_steps(steps, p, with_bias);
        }
    }

    /// W (and b) into their buffers.
    pub(super) fn generate_steps<'p>(
        &'p self,
        steps: &mut Vec<Step<'p>>,
        p: Params,
        with_bias: bool,
    ) {
        let (n_in, n_out) = (p.n_in as usize, p.n_out as usize);
        let bias_groups = if with_bias && p.b_scale != 0.0 {
            n_out.div_ceil(4)
        } else {
            0
        };
        if p.w_dist == crate::model::init::Dist::Orthogonal.code() {
            self.pipelines.householder.steps(p, steps);
            if bias_groups == 0 {
                return;
            }
        }
        // gen_weights draws the bias in the invocations past W's
        let weight_groups = if p.w_dist == crate::model::init::Dist::Orthogonal.code() {
            0
        } else {
            n_out * n_in.div_ceil(4)
        };
        steps.push(Step {
            pipeline: &self.pipelines.gen_weights,
            params: p,
            groups: dispatch_1d(weight_groups + bias_groups, GEN_WG),
        });
    }

    /// The moments of the B/2 pairs of rows of width `n` (pair records at
    /// `p.rec_off`) and phi of them, with the checkpoint copy if any.
    pub(super) fn stats_step<'p>(&'p self, n: usize, p: Params) -> Step<'p> {
        Step {
            pipeline: &self.pipelines.stats,
            params: p,
            groups: (slices(n) as u32, (self.spec.batch / 2) as u32, 1),
        }
    }

    /// The elementwise activation kernel over the B rows of width `n` (what
    /// it reads and stores: `p.flags`).
    pub(super) fn activate_step<'p>(&'p self, n: usize, p: Params) -> Step<'p> {
        Step {
            pipeline: &self.pipelines.activate,
            params: p,
            groups: dispatch_1d(self.spec.batch * stride(n), ELEMENTWISE_WG),
        }
    }

    /// The product W in (+ b) or, `transposed`, W^T in, for `p.rows` rows.
    pub(super) fn product_step<'p>(&'p self, p: Params, transposed: bool) -> Step<'p> {
        let pl = &self.pipelines;
        let pipeline = match (transposed, self.weights_in_product(&p)) {
            (false, false) => &pl.product,
            (true, false) => &pl.product_t,
            (false, true) => pl
                .product_rng
                .as_ref()
                .expect("built with weights_from_rng"),
            (true, true) => pl
                .product_t_rng
                .as_ref()
                .expect("built with weights_from_rng"),
        };
        let outputs = if transposed { p.n_in } else { p.n_out };
        // the kernel reads its reduction length from n_in (shaders/dense/product.wgsl)
        let params = if transposed {
            Params {
                n_in: p.n_out,
                n_out: p.n_in,
                ..p
            }
        } else {
            p
        };
        Step {
            pipeline,
            params,
            groups: self.kernel.groups(outputs as usize, p.rows as usize),
        }
    }

    pub(super) fn row_steps<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params) {
        let groups = (slices(p.n_out as usize) as u32, p.rows, 1);
        steps.push(Step {
            pipeline: &self.pipelines.scale_by_deriv,
            params: p,
            groups,
        });
    }

    pub(super) fn finalize_step<'p>(&'p self, steps: &mut Vec<Step<'p>>, p: Params) {
        steps.push(Step {
            pipeline: &self.pipelines.finalize,
            params: p,
            groups: (1, 1, 1),
        });
    }
}
