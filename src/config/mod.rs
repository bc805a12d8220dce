//! Settings: the flags of run/check/compare/sweep/phase and their TOML form.

pub mod settings;
