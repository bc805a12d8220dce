//! TOML text into typed records, with errors that name the file, the line
//! and the key (settings, suites, sweeps and architecture files use it).

use serde::Deserialize;

use crate::error::{Error, Result};

/// Parses TOML text into `T`, with errors that name the file, the line and
/// the key.
pub fn parse_toml<T: for<'de> Deserialize<'de>>(path: &str, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        let message = e.message().trim().to_string();
        Error::invalid(
            path.to_string(),
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            },
        )
    })
}
