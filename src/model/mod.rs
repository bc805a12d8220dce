//! The model being simulated: activations, initialisation laws, the
//! counter-based RNG every engine draws from, and architecture files.

pub mod activation;
pub mod arch;
pub mod init;
pub mod rng;
