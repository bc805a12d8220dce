//! The gram engine's B x B algebra, in f64 on the host: a symmetric
//! eigen-decomposition (cyclic Jacobi, deterministic), Cholesky, and the
//! coefficient matrices each layer's combination kernel applies.
//!
//! Matrices are row-major `Vec<f64>` of b x b. "Column form" follows the
//! mathematics (X is n x B with the batch as columns); the kernels keep the
//! batch as rows, so a product X A (n x B) is, row by row, out_row_j =
//! sum_c A[c][j] x_row_c, and the kernel's coefficient matrix is A^T.
//!
//! Rank cut-off: an eigenvalue counts as 0 only where the error bound of
//! the summed Gram matrix (`gram_error_bound`, from the compensated sums of
//! shaders/gram/gram.wgsl) cannot tell it from 0. A fixed cut-off relative to
//! lambda_max (once B eps_f32 lambda_max) cut off the directions that carry
//! 1 - c in deep networks (issue 12).

/// The unit roundoff of f32 and f64.
const U32: f64 = 1.0 / (1u64 << 24) as f64;
const U64: f64 = 1.0 / (1u64 << 53) as f64;

pub use crate::linalg::{Eigen, eigen_symmetric, identity};

/// Relative error bound eps of one summed entry of a Gram matrix over the
/// f32 rows x, y: |G_hat - G| <= eps S, S = sum_i |x_i y_i| <= sqrt(G_xx
/// G_yy), for gram_cross's sums (shaders/gram/gram.wgsl) over `slices` slices of
/// units, `chain` terms summed by one lane per slice and a workgroup tree of
/// `levels` levels, with u = 2^-24 and no underflow:
/// - x = xh + xl exactly (xh: 12 significant bits, |xl| < 2^-11 |x|), so
///   xh yh is exact and the rest, |xh yl + xl yh + xl yl| < 2^-10 (1 +
///   2^-12) |x y|, is rounded twice: at most 2^-33 (1 + 2^-10) |x y|;
/// - TwoSum sums the exact parts into s and the rests into r without error;
///   its errors (each at most u |s| or u |r|) go into a plain f32 sum e, so
///   |e| <= (chain + levels) u (1 + 2^-9) S, and e's 2 chain + 3 levels
///   roundings cost at most u |e| each;
/// - the host adds the 3 slices parts in f64: 3 slices 2^-53 S.
pub fn gram_error_bound(slices: usize, chain: usize, levels: usize) -> f64 {
    let e_max = (chain + levels) as f64 * U32 * (1.0 + 2f64.powi(-9));
    let e_roundings = (2 * chain + 3 * levels) as f64 * U32 * e_max;
    2f64.powi(-33) * (1.0 + 2f64.powi(-10)) + e_roundings + 3.0 * slices as f64 * U64
}

/// A bound on the spectral norm of the error of a summed Gram matrix `a`
/// (b x b) whose entries are off by at most eps sqrt(a_ii a_jj): ||E||_2 <=
/// max row sum = eps max_i sqrt(a_ii) sum_j sqrt(a_jj) (E is symmetric). By
/// Weyl's inequality no eigenvalue moves by more.
pub fn gram_noise(a: &[f64], b: usize, eps: f64) -> f64 {
    let roots: Vec<f64> = (0..b).map(|i| a[i * b + i].max(0.0).sqrt()).collect();
    let top = roots.iter().copied().fold(0.0, f64::max);
    eps * top * roots.iter().sum::<f64>()
}

/// A B (a: r x k, b: k x c).
pub fn matmul(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for p in 0..k {
            let aip = a[i * k + p];
            for j in 0..c {
                out[i * c + j] += aip * b[p * c + j];
            }
        }
    }
    out
}

pub fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = a[i * c + j];
        }
    }
    out
}

/// The upper-triangular R with A = R^T R of the leading r x r block of
/// the b x b matrix `a` (positive definite there), or None.
pub fn cholesky_upper(a: &[f64], b: usize, r: usize) -> Option<Vec<f64>> {
    let mut u = vec![0.0; r * r];
    for i in 0..r {
        for j in i..r {
            let mut s = a[i * b + j];
            for k in 0..i {
                s -= u[k * r + i] * u[k * r + j];
            }
            if i == j {
                if !(s > 0.0) {
                    return None;
                }
                u[i * r + i] = s.sqrt();
            } else {
                u[i * r + j] = s / u[i * r + i];
            }
        }
    }
    Some(u)
}

/// X with R X = M for upper-triangular R (r x r) and M (r x c).
pub fn solve_upper(rm: &[f64], m: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut x = m.to_vec();
    for j in 0..c {
        for i in (0..r).rev() {
            let mut s = x[i * c + j];
            for k in i + 1..r {
                s -= rm[i * r + k] * x[k * c + j];
            }
            x[i * c + j] = s / rm[i * r + i];
        }
    }
    x
}

/// The kernel's coefficients (batch as rows) of the column-form matrix A:
/// A^T, in f32.
pub fn kernel_coefficients(a: &[f64], b: usize) -> Vec<f32> {
    transpose(a, b, b).iter().map(|&x| x as f32).collect()
}

/// Coefficients in f32 as two matrices, high parts then low parts (x - high
/// rounded): the forward combination applies both, so the coefficients
/// carry about 48 bits. With f32 coefficients alone their rounding, the
/// same for every unit, moved the small eigenvalues of the next Gram matrix
/// by about eps_f32 lambda_max / B each layer (issue 12); the dense engine's
/// rounding is per unit and moves them by about n eps_f32^2 lambda_max.
pub fn split_f32(coefs: &[f64]) -> Vec<f32> {
    let high: Vec<f32> = coefs.iter().map(|&x| x as f32).collect();
    let low = coefs
        .iter()
        .zip(&high)
        .map(|(&x, &h)| (x - h as f64) as f32);
    let mut out = high.clone();
    out.extend(low);
    out
}

/// Forward, Gaussian W with entry variance v: H = Z C^T with C C^T =
/// v K, K = r^2 G (G the Gram matrix of the stored rows, r the
/// renormalisation applied to them). Returns the kernel's coefficients
/// (C itself: out_row_b = sum_c C[b][c] z_row_c, `split_f32`) and the rank
/// of G.
pub fn gaussian_forward(g: &Eigen, r: f64, v: f64) -> (Vec<f32>, usize) {
    let c: Vec<f64> = g.sqrt_factor().iter().map(|x| x * r * v.sqrt()).collect();
    (split_f32(&c), g.rank)
}

/// Forward, Haar-orthogonal W (square) times `gain`: H = gain F M with
/// M^T M = K = r^2 G (M = Lambda_r^{1/2} U_r^T, rank rows) and F = Z_r
/// R_r^{-1} a Haar-uniform n x rank orthonormal frame, R the Cholesky factor
/// of the Gram matrix `gz` of Z (F is Q of Z's thin QR). Coefficients of
/// out_row_b = sum_c A[c][b] z_row_c with A = gain R_r^{-1} M (rank x B).
/// None when Z's Gram matrix is not positive definite.
pub fn orthogonal_forward(g: &Eigen, r: f64, gain: f64, gz: &[f64]) -> Option<Vec<f32>> {
    let b = g.b;
    let rank = g.rank;
    let mut m = vec![0.0; rank * b];
    for k in 0..rank {
        for j in 0..b {
            m[k * b + j] = r * g.values[k].sqrt() * g.vectors[j * b + k];
        }
    }
    let rz = cholesky_upper(gz, b, rank)?;
    let a = solve_upper(&rz, &m, rank, b);
    let mut full = vec![0.0; b * b];
    for k in 0..rank {
        for j in 0..b {
            full[k * b + j] = gain * a[k * b + j];
        }
    }
    Some(split_f32(&transpose(&full, b, b)))
}

/// Backward through one layer: W^T Delta = X a + Z' beta in distribution,
/// given the forward (W X = H - b). Inputs, all from the stored rows: the
/// eigen-decomposition of G = X^T X, the renormalisation r applied to X in
/// the forward pass, M = (H - b)^T Delta, XZ = X^T Z'. With beta fixed by
/// the weight law (below), the projection on span(X) is
/// X K^+ (H - b)^T Delta with K = r^2 G acting on r X, that is X G^+ M / r,
/// and the rest is (I - P_X) Z' beta = Z' beta - X G^+ XZ beta, so
///   a = G^+ (M / r - XZ beta).
/// Columns with scales of their own (--jacobian: X~ = [r x, r_t t] = r X E,
/// E = diag(e)) are the same with X E for X: `g` is then the
/// eigen-decomposition of E G E, `xz` is E X^T Z', and the coefficients of
/// the stored X are E a (e all ones: no scaling, bit for bit).
/// Returns the kernel's coefficients of X and of Z'.
pub fn backward_coefficients(
    g: &Eigen,
    r: f64,
    e: &[f64],
    m: &[f64],
    xz: &[f64],
    beta: &[f64],
) -> (Vec<f32>, Vec<f32>) {
    let b = g.b;
    let pinv = g.pinv();
    let xz_beta = matmul(xz, beta, b, b, b);
    let inner: Vec<f64> = m.iter().zip(&xz_beta).map(|(mi, xi)| mi / r - xi).collect();
    let mut a = matmul(&pinv, &inner, b, b, b);
    for (i, row) in a.chunks_mut(b).enumerate() {
        row.iter_mut().for_each(|v| *v *= e[i]);
    }
    (kernel_coefficients(&a, b), kernel_coefficients(beta, b))
}

/// E A E for the symmetric b x b matrix `a` and E = diag(e).
pub fn scale_symmetric(a: &[f64], e: &[f64]) -> Vec<f64> {
    let b = e.len();
    (0..b * b).map(|k| e[k / b] * a[k] * e[k % b]).collect()
}

/// E A for the b x c matrix `a` and E = diag(e) (b entries).
pub fn scale_rows(a: &[f64], e: &[f64]) -> Vec<f64> {
    let c = a.len() / e.len();
    a.iter().enumerate().map(|(k, v)| e[k / c] * v).collect()
}

/// The leading b x b block of the cols x cols matrix `a` (with --jacobian:
/// the inputs' part of a matrix over inputs and tangents).
pub fn leading_block(a: &[f64], cols: usize, b: usize) -> Vec<f64> {
    (0..b * b).map(|k| a[k / b * cols + k % b]).collect()
}

/// beta for Gaussian W: Y = W'^T Delta has iid rows N(0, v Delta^T Delta),
/// Y = Z' C'^T with C' C'^T = v D: beta = C'^T.
pub fn gaussian_backward_beta(d: &Eigen, v: f64) -> Vec<f64> {
    let b = d.b;
    let c: Vec<f64> = d.sqrt_factor().iter().map(|x| x * v.sqrt()).collect();
    transpose(&c, b, b)
}

/// beta for Haar W = gain Q: the part of Delta off span(H), E = (I - P_H)
/// Delta with E^T E = D - M^T (H^T H)^+ M and H^T H = gain^2 r^2 G, goes to
/// span(X)^perp through an independent Haar isometry: gain F' M' with M' =
/// Lambda'^{1/2} U'^T (E^T E = M'^T M') and F' = (I - P_X) Z' R'^{-1} a
/// uniform orthonormal frame there, R'^T R' = Z'^T (I - P_X) Z' = ZZ - XZ^T
/// G^+ XZ. So beta = gain R'^{-1} M'. None when that Gram matrix is not
/// positive definite (n - rank < B). `d_noise` bounds the error of D
/// (`gram_noise`); E^T E <= D, so it serves as E^T E's cut-off too.
#[allow(clippy::too_many_arguments)]
pub fn orthogonal_backward_beta(
    g: &Eigen,
    r: f64,
    gain: f64,
    m: &[f64],
    d: &[f64],
    d_noise: f64,
    xz: &[f64],
    zz: &[f64],
) -> Option<Vec<f64>> {
    let b = g.b;
    let pinv = g.pinv();
    let h_pinv_m = matmul(&pinv, m, b, b, b);
    let mt = transpose(m, b, b);
    let seen = matmul(&mt, &h_pinv_m, b, b, b);
    let s2 = gain * gain * r * r;
    let e: Vec<f64> = d.iter().zip(&seen).map(|(di, si)| di - si / s2).collect();
    let e = eigen_symmetric(&e, b, d_noise);
    let mut mp = vec![0.0; b * b];
    for k in 0..e.rank {
        for j in 0..b {
            mp[k * b + j] = e.values[k].sqrt() * e.vectors[j * b + k];
        }
    }
    let xzt = transpose(xz, b, b);
    let proj = matmul(&xzt, &matmul(&pinv, xz, b, b, b), b, b, b);
    let zz_perp: Vec<f64> = zz.iter().zip(&proj).map(|(z, p)| z - p).collect();
    let rz = cholesky_upper(&zz_perp, b, b)?;
    let t = solve_upper(&rz, &mp, b, b);
    Some(t.iter().map(|x| gain * x).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_matrix(r: usize, c: usize, seed: u32) -> Vec<f64> {
        (0..r * c)
            .map(|i| {
                let b = crate::model::rng::bits(
                    7,
                    crate::model::rng::Stream::Gram,
                    seed,
                    0,
                    i as u32,
                    0,
                );
                crate::model::rng::normal4(b)[0]
            })
            .collect()
    }

    #[test]
    fn eigen_reconstructs_and_counts_rank() {
        let b = 6;
        // X: 10 x 6 with column 5 = column 0 + column 1: rank 5
        let mut x = random_matrix(10, b, 1);
        for i in 0..10 {
            x[i * b + 5] = x[i * b] + x[i * b + 1];
        }
        let g = matmul(&transpose(&x, 10, b), &x, b, 10, b);
        // G is summed in f64 over 10 terms
        let e = eigen_symmetric(&g, b, gram_noise(&g, b, 10.0 * U64));
        assert_eq!(e.rank, 5);
        let f = e.sqrt_factor();
        let back = matmul(&f, &transpose(&f, b, b), b, b, b);
        for (u, w) in back.iter().zip(&g) {
            assert!((u - w).abs() < 1e-10 * g[0].abs().max(1.0), "{u} vs {w}");
        }
        // G G^+ G = G
        let ggg = matmul(&matmul(&g, &e.pinv(), b, b, b), &g, b, b, b);
        for (u, w) in ggg.iter().zip(&g) {
            assert!((u - w).abs() < 1e-8 * g[0].abs().max(1.0), "{u} vs {w}");
        }
    }

    /// High and low f32 parts carry a coefficient to about 2^-48 of its
    /// size (f32 alone: 2^-24).
    #[test]
    fn split_coefficients_carry_48_bits() {
        let x = [std::f64::consts::PI, -1.0 / 3.0, 1e-7 / 7.0, 0.0];
        let parts = split_f32(&x);
        for (k, &v) in x.iter().enumerate() {
            let back = parts[k] as f64 + parts[x.len() + k] as f64;
            assert!((back - v).abs() <= v.abs() * 2f64.powi(-47), "{v}: {back}");
            assert!((parts[k] as f64 - v).abs() <= v.abs() * 2f64.powi(-24));
        }
    }

    #[test]
    fn cholesky_and_triangular_solve() {
        let b = 4;
        let x = random_matrix(9, b, 2);
        let g = matmul(&transpose(&x, 9, b), &x, b, 9, b);
        let r = cholesky_upper(&g, b, b).unwrap();
        let back = matmul(&transpose(&r, b, b), &r, b, b, b);
        for (u, w) in back.iter().zip(&g) {
            assert!((u - w).abs() < 1e-10);
        }
        let m = random_matrix(b, 3, 3);
        let sol = solve_upper(&r, &m, b, 3);
        let again = matmul(&r, &sol, b, b, 3);
        for (u, w) in again.iter().zip(&m) {
            assert!((u - w).abs() < 1e-10);
        }
    }

    /// The backward coefficients reproduce W^T Delta exactly on span(X)
    /// when W is known: with H = W X (so M = H^T Delta), X^T (X a) = X^T
    /// W^T Delta for any beta (the projection part is exact, the random part
    /// lies off span(X)).
    #[test]
    fn backward_projection_is_exact_on_span_x() {
        backward_projection_is_exact(1.0, [1.0; 4], 4);
    }

    /// The same with columns of their own scales (--jacobian: X~ = r X E):
    /// the forward saw W X~, the stored rows are X, and X^T (X a + Z' beta)
    /// = X^T W^T Delta exactly.
    #[test]
    fn backward_projection_is_exact_with_column_scales() {
        backward_projection_is_exact(0.7, [1.0, 1.0, 2.5, 0.3], 8);
    }

    /// X^T (X a + Z' beta) = X^T W^T Delta for stored rows X, X~ = r X E
    /// the forward saw (matrices drawn from seeds `seed..seed + 4`).
    fn backward_projection_is_exact(r: f64, e: [f64; 4], seed: u32) {
        let (n, b, m_out) = (12, 4, 10);
        let x = random_matrix(n, b, seed); // stored, column form
        let w = random_matrix(m_out, n, seed + 1);
        let delta = random_matrix(m_out, b, seed + 2);
        let z = random_matrix(n, b, seed + 3);
        // X~ = r X E
        let xt: Vec<f64> = (0..n * b).map(|k| r * x[k] * e[k % b]).collect();
        let h = matmul(&w, &xt, m_out, n, b);
        let g = matmul(&transpose(&x, n, b), &x, b, n, b);
        let m = matmul(&transpose(&h, m_out, b), &delta, b, m_out, b);
        let xz = matmul(&transpose(&x, n, b), &z, b, n, b);
        let d = matmul(&transpose(&delta, m_out, b), &delta, b, m_out, b);
        let beta = gaussian_backward_beta(&eigen_symmetric(&d, b, 0.0), 0.3);
        let gs = eigen_symmetric(&scale_symmetric(&g, &e), b, 0.0);
        let xz_e = scale_rows(&xz, &e);
        let (ca, cb) = backward_coefficients(&gs, r, &e, &m, &xz_e, &beta);
        // back to column form (kernel coefficients are transposed, in f32)
        let a = transpose(&ca.iter().map(|&v| v as f64).collect::<Vec<_>>(), b, b);
        let bt = transpose(&cb.iter().map(|&v| v as f64).collect::<Vec<_>>(), b, b);
        let out: Vec<f64> = matmul(&x, &a, n, b, b)
            .iter()
            .zip(matmul(&z, &bt, n, b, b))
            .map(|(p, q)| p + q)
            .collect();
        let want = matmul(&transpose(&w, m_out, n), &delta, n, m_out, b);
        let xtr = transpose(&x, n, b);
        let got_proj = matmul(&xtr, &out, b, n, b);
        let want_proj = matmul(&xtr, &want, b, n, b);
        for (u, v) in got_proj.iter().zip(&want_proj) {
            assert!((u - v).abs() < 1e-4 * v.abs().max(1.0), "{u} vs {v}");
        }
    }
}
