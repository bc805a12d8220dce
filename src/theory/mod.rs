//! Mean-field theory of signal propagation in deep random networks, in
//! pure f64 (no GPU): Gaussian expectations of the activations, the
//! per-layer recurrences for any stack, fixed points, order and chaos for
//! constant-width stacks, and the exact finite-width law of log q where
//! one exists.
//!
//! - [`gauss`]: `E[phi^2]`, `E[phi]`, `E[phi'^2]`, `E[phi(u1) phi(u2)]`, ...:
//!   closed forms where they exist, quadrature otherwise.
//! - [`recurrence`]: [`layer_table`], one row per layer.
//! - [`fixed_point`](mod@fixed_point): q*, c*, chi_1, depth scales, phase; the edge of chaos.
//! - [`finite_width`]: the exact law of log q for relu and identity-like
//!   stacks with Gaussian weights and no bias.
//! - [`quadrature`], [`special`]: the rules and functions under them.

pub mod arch;
pub mod edge_of_chaos;
pub mod expectation;
pub mod finite_width;
pub mod fixed_point;
pub mod gauss;
pub mod ntk;
pub mod quadrature;
pub mod recurrence;
pub mod special;
pub mod uniform_bias;

pub use edge_of_chaos::{EdgeOfChaos, edge_of_chaos_sigma_b2, edge_of_chaos_sigma_w2};
pub use fixed_point::{FixedPoint, Phase, Summary, fixed_point, summary};
pub use recurrence::{LayerTheory, layer_table};
