//! What is made of a run's output: the theory predictions and the z-tests
//! of `check` (predictions), the tables (report), headline numbers,
//! curves and the `--plot` figure of them (layer_plot), scheme comparisons
//! and the phase diagram.

pub mod checking;
pub mod compare;
pub mod comparisons;
pub mod curves;
pub mod headline;
pub mod layer_plot;
pub mod ntk;
pub mod phase;
pub mod predictions;
pub mod report;
pub mod spp;
pub mod suite;
pub mod theory_table;
pub mod tokens;
