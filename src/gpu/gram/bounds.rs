//! The gram engine's error bounds and eigen-decompositions of Gram
//! matrices (f64 on the host).

use super::*;

impl<'a> GramGpu<'a> {
    /// gram_cross's derived bound over n units (`algebra::gram_error_bound`).
    pub(super) fn derived_error_bound(n: usize) -> f64 {
        algebra::gram_error_bound(slices(n), CROSS_CHAIN, CROSS_WG.ilog2() as usize)
    }

    /// The relative error bound of the Gram sums over n units on this
    /// adapter: the derived one (`algebra::gram_error_bound`) where the
    /// probe found the compensated sums intact, else the bound of plain f32
    /// sums of chain + levels terms (gamma_m = m u / (1 - m u)): shader
    /// compilers may reassociate float arithmetic (WGSL has no `precise`)
    /// and so lose TwoSum's errors.
    pub fn sums_error_bound(&self, n: usize) -> f64 {
        if self.sums_exact {
            Self::derived_error_bound(n)
        } else {
            let m = (CROSS_CHAIN + CROSS_WG.ilog2() as usize) as f64 * 2f64.powi(-24);
            m / (1.0 - m) + Self::derived_error_bound(n)
        }
    }

    /// Runs gram_cross on rows built to defeat plain f32 sums (K rows of up
    /// to 4096 units, nearly parallel, some entries 300 times the others)
    /// and compares with their exact Gram matrix (products of f32 are exact
    /// in f64): (the largest relative error, whether it is within the
    /// derived bound).
    pub(super) fn probe_sums(&self) -> Result<(f64, bool)> {
        let n = self.spec.net.widths[0].min(4096);
        let k = self.lay.cols;
        let noise = |i: usize, j: usize| {
            let b = crate::model::rng::bits(
                0x5eed,
                crate::model::rng::Stream::Gram,
                j as u32,
                0,
                i as u32,
                0,
            );
            crate::model::rng::normal4(b)[0]
        };
        let mut rows = Vec::with_capacity(k * n);
        for j in 0..k {
            let tilt = 2f64.powi(-10 - (j % 8) as i32);
            rows.extend((0..n).map(|i| {
                let big = if i % 97 == 0 { 300.0 } else { 1.0 };
                (big * (1.0 + 0.5 * noise(i, 0)) + tilt * noise(i, j + 1)) as f32
            }));
        }
        let (g, eps) = self.gram_of_rows_over(&rows, n)?;
        let row = |a: usize| &rows[a * n..(a + 1) * n];
        let mut worst: f64 = 0.0;
        for a in 0..k {
            for c in a..k {
                let (exact, abs) = row(a)
                    .iter()
                    .zip(row(c))
                    .map(|(&p, &q)| p as f64 * q as f64)
                    .fold((0.0, 0.0), |(s, t), v| (s + v, t + v.abs()));
                if abs > 0.0 {
                    worst = worst.max((g[a * k + c] - exact).abs() / abs);
                }
            }
        }
        // the f64 reference's own rounding: n 2^-53
        Ok((worst, worst <= eps + n as f64 * 2f64.powi(-53)))
    }

    /// The eigen-decomposition of a Gram matrix summed over n units, its
    /// eigenvalues within the error bound counted as 0.
    pub(super) fn gram_eigen(&self, g: &[f64], n: usize) -> Eigen {
        algebra::eigen_symmetric(g, side(g), self.gram_noise(g, n))
    }
}
