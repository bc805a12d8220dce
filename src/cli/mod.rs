//! The subcommands, one file each; `args` holds the flags they share.

pub mod args;
pub mod bench;
pub mod check;
pub mod compare;
pub mod devices;
pub mod inits;
pub mod phase;
pub mod run;
pub mod runner;
pub mod sweep;
pub mod theory;
pub mod validate;
