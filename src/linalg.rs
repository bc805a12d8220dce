//! Symmetric B x B algebra in f64 on the host, for the gram engine's
//! conditioning (gpu/gram/algebra.rs) and the NTK's condition numbers
//! (sim/stats/ntk.rs, theory/ntk.rs): an eigen-decomposition by cyclic Jacobi rotations,
//! deterministic, with an explicit cut-off for the values that rounding
//! cannot tell from 0. Matrices are row-major `Vec<f64>` of b x b.

/// The unit roundoff of f64.
const U64: f64 = 1.0 / (1u64 << 53) as f64;

/// A = U diag(values) U^T with values in decreasing order, those under the
/// cut-off (`eigen_symmetric`) set to 0; `vectors[i * b + k]` is entry i of eigenvector k.
#[derive(Clone, Debug)]
pub struct Eigen {
    pub b: usize,
    pub values: Vec<f64>,
    pub vectors: Vec<f64>,
    /// The values kept (> 0 after the cut-off).
    pub rank: usize,
}

/// Eigen-decomposition of the symmetric b x b matrix `a` (its upper
/// triangle is mirrored first) by cyclic Jacobi rotations. `noise` bounds
/// the spectral norm of the error in `a`: eigenvalues at or below it, plus
/// Jacobi's own rounding (b^2 2^-52 ||a||_F, generous for a backward-stable
/// method), count as 0.
pub fn eigen_symmetric(a: &[f64], b: usize, noise: f64) -> Eigen {
    let mut m = a.to_vec();
    for i in 0..b {
        for j in 0..i {
            m[i * b + j] = m[j * b + i];
        }
    }
    let mut v = identity(b);
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..b)
            .flat_map(|i| (0..b).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * b + j] * m[i * b + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale || scale == 0.0 {
            break;
        }
        for p in 0..b {
            for q in p + 1..b {
                let apq = m[p * b + q];
                if apq == 0.0 {
                    continue;
                }
                // the rotation of columns p, q that zeroes m[p][q]
                let theta = (m[q * b + q] - m[p * b + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..b {
                    let (mkp, mkq) = (m[k * b + p], m[k * b + q]);
                    m[k * b + p] = c * mkp - s * mkq;
                    m[k * b + q] = s * mkp + c * mkq;
                }
                for k in 0..b {
                    let (mpk, mqk) = (m[p * b + k], m[q * b + k]);
                    m[p * b + k] = c * mpk - s * mqk;
                    m[q * b + k] = s * mpk + c * mqk;
                }
                for k in 0..b {
                    let (vkp, vkq) = (v[k * b + p], v[k * b + q]);
                    v[k * b + p] = c * vkp - s * vkq;
                    v[k * b + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..b).collect();
    order.sort_by(|&i, &j| m[j * b + j].total_cmp(&m[i * b + i]).then(i.cmp(&j)));
    let cut = noise.max(0.0) + (b * b) as f64 * 2.0 * U64 * scale;
    let mut values = Vec::with_capacity(b);
    let mut vectors = vec![0.0; b * b];
    for (new, &old) in order.iter().enumerate() {
        let lambda = m[old * b + old];
        values.push(if lambda > cut && lambda > 0.0 {
            lambda
        } else {
            0.0
        });
        for i in 0..b {
            vectors[i * b + new] = v[i * b + old];
        }
    }
    let rank = values.iter().filter(|&&x| x > 0.0).count();
    Eigen {
        b,
        values,
        vectors,
        rank,
    }
}

impl Eigen {
    /// The same with the eigenvalues at or below `cut` set to 0.
    pub fn cut_below(mut self, cut: f64) -> Eigen {
        for v in &mut self.values {
            if *v <= cut {
                *v = 0.0;
            }
        }
        self.rank = self.values.iter().filter(|&&x| x > 0.0).count();
        self
    }

    /// How many eigenvalues exceed `noise`.
    pub fn count_above(&self, noise: f64) -> usize {
        self.values.iter().filter(|&&v| v > noise).count()
    }

    /// The pseudo-inverse U_r diag(1/lambda) U_r^T.
    pub fn pinv(&self) -> Vec<f64> {
        let b = self.b;
        let mut out = vec![0.0; b * b];
        for k in 0..self.rank {
            let w = 1.0 / self.values[k];
            for i in 0..b {
                for j in 0..b {
                    out[i * b + j] += self.vectors[i * b + k] * w * self.vectors[j * b + k];
                }
            }
        }
        out
    }

    /// F (b x b) with F F^T = A: F[i][k] = sqrt(lambda_k) U[i][k] (zero
    /// columns past the rank).
    pub fn sqrt_factor(&self) -> Vec<f64> {
        let b = self.b;
        let mut f = vec![0.0; b * b];
        for i in 0..b {
            for k in 0..self.rank {
                f[i * b + k] = self.values[k].sqrt() * self.vectors[i * b + k];
            }
        }
        f
    }
}

pub fn identity(b: usize) -> Vec<f64> {
    let mut m = vec![0.0; b * b];
    for i in 0..b {
        m[i * b + i] = 1.0;
    }
    m
}

/// lambda_max / lambda_min of a symmetric b x b matrix.
pub fn condition_number(m: &[f64], b: usize) -> f64 {
    let e = eigen_symmetric(m, b, 0.0);
    let (top, bottom) = (e.values[0], e.values[b - 1]);
    if bottom > 0.0 {
        top / bottom
    } else {
        f64::INFINITY
    }
}
