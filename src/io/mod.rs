//! Files in and out, knowing nothing of the simulation: TOML text into
//! typed records with errors that name the line (toml), tables as CSV,
//! JSON and text (output), and figures drawn with plotters (plot).

pub mod output;
pub mod plot;
pub mod toml;
