//! Files: tables as CSV, JSON and text (output), pictures (plot), and
//! sweeps of many runs with their shards and results (sweep).

pub mod output;
pub mod plot;
pub mod sweep;
