//! The neural tangent kernel at infinite width (Jacot, Gabriel and Hongler
//! 2018; the layer rules of neural-tangents' `stax.Dense`) of a plain stack
//! with the scalar readout f(x) = w^T x_L / sqrt(n_L), w iid N(0, 1), for a
//! pair of inputs a, b:
//!
//! ```text
//! Sigma_l = n_{l-1} v_l K_{l-1} + sb_l        the kernel of h_l; K_0 = x_0^a . x_0^b / n_0
//! K_l     = E[phi(u) phi(u')],  Sdot_l = E[phi'(u) phi'(u')],  (u, u') ~ N(0, Sigma_l)
//! P_L     = Sdot_L,  P_l = n_l v_{l+1} Sdot_l P_{l+1}    the limit of delta_l^a . delta_l^b
//! T_l     = Sigma_l                            (ntk parametrisation)
//!         = n_{l-1} K_{l-1} + [sb_l > 0]       (standard)
//! Theta   = sum_{l=1}^L P_l T_l + R_L          R_L: the readout's own term,
//! R_L     = K_L (ntk), n_L K_L (standard: the parameters are w / sqrt(n_L))
//! ```
//!
//! `P_l T_l` is layer l's contribution (the `ntk_layer` columns). Unrolled,
//! the sum is the recurrence Theta_h(l) = T_l + n_{l-1} v_l Sdot_{l-1}
//! Theta_h(l-1), Theta_h(1) = T_1, with the readout on top: Theta of the
//! network cut at depth l is R_l + Sdot_l Theta_h(l) (`varprop theory --ntk`).
//! The Gaussian moments come from `gauss` (closed forms for relu,
//! leaky-relu, abs, identity, erf and sin; quadrature otherwise). A uniform
//! bias (torch-default, siren) leaves h non-Gaussian: no prediction there.

use super::gauss::{cross_moment, deriv_cross_moment};
use crate::model::init::Dist;
use crate::spec::{NetworkSpec, Parametrisation};

/// Second moments of a pair of inputs a, b: (a, a), (b, b), (a, b).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Pair {
    pub aa: f64,
    pub bb: f64,
    pub ab: f64,
}

impl Pair {
    /// The pair of two inputs of second moment q at correlation c.
    pub fn of(q: f64, c: f64) -> Pair {
        Pair {
            aa: q,
            bb: q,
            ab: c * q,
        }
    }

    fn zip(self, other: Pair, f: impl Fn(f64, f64) -> f64) -> Pair {
        Pair {
            aa: f(self.aa, other.aa),
            bb: f(self.bb, other.bb),
            ab: f(self.ab, other.ab),
        }
    }

    fn map(self, f: impl Fn(f64) -> f64) -> Pair {
        Pair {
            aa: f(self.aa),
            bb: f(self.bb),
            ab: f(self.ab),
        }
    }

    /// The mean of the two diagonal entries.
    pub fn diag(&self) -> f64 {
        0.5 * (self.aa + self.bb)
    }

    /// ab / sqrt(aa bb).
    pub fn correlation(&self) -> f64 {
        self.ab / (self.aa * self.bb).sqrt()
    }

    fn is_finite(&self) -> bool {
        self.aa.is_finite() && self.bb.is_finite() && self.ab.is_finite()
    }
}

/// The infinite-width NTK of a pair, and what it is made of.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NtkTheory {
    /// Theta(a, b) of the whole network with its readout.
    pub kernel: Pair,
    /// Layer l's contribution P_l T_l, at index l - 1.
    pub layers: Vec<Pair>,
    /// The readout's own term R_L: K_L, the NNGP kernel of the output (ntk),
    /// or n_L K_L (standard).
    pub readout: Pair,
    /// Theta of the network cut at depth l (the readout on x_l), at index l - 1.
    pub cut: Vec<Pair>,
}

/// Why the theory has no NTK for `net`, if it has none.
pub fn unsupported(net: &NetworkSpec) -> Option<String> {
    (1..=net.depth())
        .any(|l| {
            let b = net.bias_law(l);
            b.dist == Dist::Uniform && b.variance > 0.0
        })
        .then(|| {
            "a uniform bias (torch-default, siren) leaves h non-Gaussian, and the NTK \
             recurrence is stated for Gaussian pre-activations"
                .into()
        })
}

/// The NTK of the pair of inputs with second moments `input` (per entry:
/// x_0^a . x_0^b / n_0), or why there is none (`unsupported`, or a value
/// that over- or underflowed f64).
pub fn ntk_pair(
    net: &NetworkSpec,
    param: Parametrisation,
    input: Pair,
) -> Result<NtkTheory, String> {
    if let Some(why) = unsupported(net) {
        return Err(why);
    }
    let act = &net.act;
    let depth = net.depth();
    // forward: Sigma_l, K_l, Sdot_l and T_l for l = 1..L (index l - 1)
    let mut post = input; // K_{l-1}
    let (mut k, mut sdot, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for l in 1..=depth {
        let n_in = net.widths[l - 1] as f64;
        let nv = n_in * net.weight_law(l).variance;
        let sb = net.bias_law(l).variance;
        let sigma = post.map(|kk| nv * kk + sb);
        t.push(match param {
            Parametrisation::Ntk => sigma,
            Parametrisation::Standard => {
                let has_bias = if sb > 0.0 { 1.0 } else { 0.0 };
                post.map(|kk| n_in * kk + has_bias)
            }
        });
        let moments = |f: fn(&crate::model::activation::Activation, f64, f64, f64) -> f64| Pair {
            aa: f(act, sigma.aa, sigma.aa, sigma.aa),
            bb: f(act, sigma.bb, sigma.bb, sigma.bb),
            ab: f(act, sigma.aa, sigma.bb, sigma.ab),
        };
        post = moments(cross_moment);
        k.push(post);
        sdot.push(moments(deriv_cross_moment));
    }
    // backward: P_L = Sdot_L, P_l = n_l v_{l+1} Sdot_l P_{l+1}
    let mut p = vec![sdot[depth - 1]; depth];
    for l in (1..depth).rev() {
        let nv_next = net.widths[l] as f64 * net.weight_law(l + 1).variance;
        p[l - 1] = sdot[l - 1].zip(p[l], |s, pp| nv_next * s * pp);
    }
    let layers: Vec<Pair> = (0..depth).map(|i| p[i].zip(t[i], |a, b| a * b)).collect();
    // the readout's own term: its weights w / sqrt(n_l) are the parameters
    // (standard), or w (ntk)
    let readout_term = |l: usize| match param {
        Parametrisation::Ntk => k[l - 1],
        Parametrisation::Standard => k[l - 1].map(|kk| net.widths[l] as f64 * kk),
    };
    let readout = readout_term(depth);
    let kernel = layers
        .iter()
        .fold(readout, |acc, c| acc.zip(*c, |a, b| a + b));
    // the network cut at l: K_l + Sdot_l Theta_h(l)
    let mut cut = Vec::with_capacity(depth);
    let mut theta_h = t[0];
    for l in 1..=depth {
        if l > 1 {
            let nv = net.widths[l - 1] as f64 * net.weight_law(l).variance;
            theta_h = t[l - 1].zip(sdot[l - 2].zip(theta_h, |s, th| nv * s * th), |a, b| a + b);
        }
        cut.push(readout_term(l).zip(sdot[l - 1].zip(theta_h, |s, th| s * th), |a, b| a + b));
    }
    if !kernel.is_finite() || layers.iter().chain(&cut).any(|c| !c.is_finite()) {
        return Err("the kernel over- or underflows f64 at this depth".into());
    }
    Ok(NtkTheory {
        kernel,
        layers,
        readout,
        cut,
    })
}

/// The NTK of the pair (2k, 2k + 1) of the spec's inputs: second moment q0
/// at correlation c0.
pub fn ntk_table(net: &NetworkSpec, param: Parametrisation) -> Result<NtkTheory, String> {
    ntk_pair(net, param, Pair::of(net.q0, net.c0))
}

/// The B x B NTK (row-major) and the B x B NNGP kernel K_L of a batch whose
/// inputs have the Gram matrix `gram0` (x_0^a . x_0^b, B x B), or why there
/// is none.
pub fn ntk_batch(
    net: &NetworkSpec,
    param: Parametrisation,
    gram0: &[f64],
    batch: usize,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let n0 = net.widths[0] as f64;
    let mut theta = vec![0.0; batch * batch];
    let mut nngp = vec![0.0; batch * batch];
    for a in 0..batch {
        for b in a..batch {
            let input = Pair {
                aa: gram0[a * batch + a] / n0,
                bb: gram0[b * batch + b] / n0,
                ab: gram0[a * batch + b] / n0,
            };
            let pair = ntk_pair(net, param, input)?;
            for (i, j) in [(a, b), (b, a)] {
                theta[i * batch + j] = pair.kernel.ab;
                nngp[i * batch + j] = match param {
                    Parametrisation::Ntk => pair.readout.ab,
                    Parametrisation::Standard => pair.readout.ab / net.widths[net.depth()] as f64,
                };
            }
        }
    }
    Ok((theta, nngp))
}

/// Hanin and Nica's finite-width law ("Finite depth and width corrections
/// to the neural tangent kernel", ICLR 2020, Theorem 1): in a relu network
/// with Gaussian weights of variance 2 / fan_in and no bias, the diagonal
/// NTK fluctuates across networks as
///
/// ```text
/// E[Theta(x, x)^2] / E[Theta(x, x)]^2  ~  exp(5 beta),  beta = sum_{l=1}^{L-1} 1 / n_l
/// ```
///
/// (the hidden widths). `~` is theirs: equal up to factors bounded
/// independently of depth and width, stated for depth and widths both
/// large; the exponent 5 beta is the law, the prefactor is not. None
/// outside that setting (another activation, a bias, non-Gaussian weights,
/// or a weight variance other than 2 / fan_in: any positive homogeneous
/// relu stack has the same ratio, but the theorem is stated for He's).
pub fn hanin_nica_fluctuation(net: &NetworkSpec) -> Option<f64> {
    let relu = net.act == crate::model::activation::Activation::Relu;
    let he = (1..=net.depth()).all(|l| {
        let w = net.weight_law(l);
        let b = net.bias_law(l);
        w.dist == Dist::Normal
            && b.variance == 0.0
            && (w.variance * net.widths[l - 1] as f64 - 2.0).abs() < 1e-12
    });
    let beta: f64 = net.widths[1..net.depth()]
        .iter()
        .map(|&n| 1.0 / n as f64)
        .sum();
    (relu && he).then(|| (5.0 * beta).exp())
}

#[cfg(test)]
mod tests;
