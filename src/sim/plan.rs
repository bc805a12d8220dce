//! What an engine needs beyond the spec to run an architecture file, worked
//! out once: the blocks, the mean-preserving bias's analytic shifts and
//! whether the stream is renormalised. The GPU block engine and the CPU
//! reference share it.

use crate::model::arch::Architecture;

/// An architecture run: the blocks, and per layer (in stream order) the
/// analytic E[phi] the mean-preserving bias subtracts (0 without it) and a
/// scale layer's factor (1 elsewhere; 1/sqrt(q) from the theory where the
/// file asks for it).
pub struct Program<'a> {
    pub arch: &'a Architecture,
    pub shifts: Vec<f64>,
    pub factors: Vec<f64>,
    /// renormalise the stream after every block (positively homogeneous
    /// activations, no bias, no highway, no mean shift)
    pub renormalise: bool,
}

impl<'a> Program<'a> {
    pub fn new(arch: &'a Architecture, q0: f64, c0: f64, mean_preserving: bool) -> Self {
        let rows = crate::theory::arch::arch_table(arch, q0, c0, mean_preserving);
        let shifts = rows[1..]
            .iter()
            .flat_map(|r| r.shifts.iter().copied())
            .collect();
        let factors = rows[1..]
            .iter()
            .flat_map(|r| r.factors.iter().copied())
            .collect();
        let renormalise = !mean_preserving && arch.is_homogeneous();
        Program {
            arch,
            shifts,
            factors,
            renormalise,
        }
    }
}
